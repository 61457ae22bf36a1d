"""The packaging and event hooks, implemented by a third-party plugin (which runs before the built-ins)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelops_bundle import hookimpl
from modelops_bundle.core.index import BundleIndex, IndexEntry
from modelops_bundle.core.packaging import LayerPlan, PlannedLayer
from modelops_bundle.core.project import Project
from modelops_bundle.core.settings import StoragePolicy
from modelops_bundle.testing import BundleProject
from tests.bundle.conftest import ok


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Mapping[str, Any]]] = []

    @hookimpl
    def mops_plan_layers(self, entries: Sequence[IndexEntry], policy: StoragePolicy) -> LayerPlan:
        return LayerPlan(tuple(PlannedLayer("raw", (e.path,), e.path) for e in sorted(entries, key=lambda e: e.path)))

    @hookimpl
    def mops_manifest_annotations(self, index: BundleIndex, project: Project) -> dict[str, str]:
        return {"org.example.files": str(len(index.files))}

    @hookimpl
    def mops_extra_files(self, project: Project) -> list[str]:
        return ["notes/always.txt"]

    @hookimpl
    def mops_push_finished(self, result: Mapping[str, Any]) -> None:
        self.events.append(("push", result))

    @hookimpl
    def mops_pull_finished(self, result: Mapping[str, Any]) -> None:
        self.events.append(("pull", result))


class Broken:
    @hookimpl
    def mops_push_finished(self, result: Mapping[str, Any]) -> None:
        raise RuntimeError("observer bug")


class BlobEverything:
    @hookimpl
    def mops_storage_tier(self, entry: IndexEntry, policy: StoragePolicy, blob_available: bool) -> str:
        return "blob"


def test_plugins_shape_the_version_and_observe_transfers(
    project: BundleProject, clone: Callable[[str], BundleProject]
) -> None:
    recorder = Recorder()
    project.extra_plugins += [("recorder", recorder), ("broken", Broken())]
    project.write("notes/always.txt", "travels untracked\n")
    pushed = project.run("push", "--json")
    assert pushed.exit_code == 0 and "observer bug" in pushed.stderr  # reported, not fatal
    manifest = ok(project.run("manifest", "--json"))
    assert all(layer["mediaType"] == "application/vnd.modelops.bundle.file.v1" for layer in manifest["layers"])
    assert manifest["annotations"]["org.example.files"] == "7"
    assert "notes/always.txt" in {f["path"] for f in manifest["files"]}
    kind, result = recorder.events[-1]
    assert kind == "push" and result["digest"] == pushed.json()["digest"] and result["files"] == 7
    other = clone("other")
    other.extra_plugins.append(("recorder", recorder))
    ok(other.run("pull", "--json"))
    kind, result = recorder.events[-1]
    assert kind == "pull" and result["destination"] == str(other.root) and result["files"] == 7


def test_blob_tier_without_a_blob_store_is_a_clear_error(project: BundleProject) -> None:
    # An environment with a registry and no storage section (the embedded `local` one has a blob folder).
    home = Path(project.env["MODELOPS_HOME"])
    (home / "bundle-env").mkdir(parents=True, exist_ok=True)
    (home / "bundle-env" / "nostore.yaml").write_text(
        f"environment: nostore\nregistry:\n  provider: oci-layout\n  path: {home / 'registry'}\n"
    )
    assert project.run("env", "switch", "nostore").exit_code == 0
    project.extra_plugins.append(("blob", BlobEverything()))
    result = project.run("push")
    assert result.exit_code == 1 and "no blob store" in result.stderr
