"""Hook contracts seen from a third-party plugin, and plugin safety: failures name the plugin and its
distribution, plugins built for other hooks are refused at load, versions are available for provenance."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle import __version__, hookimpl
from modelops_bundle.core.discovery import CodeDependencies, DiscoveredModel, DiscoveredTarget, SourceFile
from modelops_bundle.core.plugins import build_plugin_host
from modelops_bundle.core.project import Project
from modelops_bundle.testing import BundleProject

MODEL = """
from modelops_calabaria import BaseModel, model_output


class SEIR(BaseModel):
    @model_output("incidence")
    def incidence(self, raw, seed):
        return raw
"""


def edit(project: BundleProject, rel: str, text: str) -> None:
    path = project.write(rel, text)
    later = time.time() + 5  # out of the stat cache's racy window
    os.utime(path, (later, later))


# ------------------------------------------------------------------------------------------ discovery


class TargetsByName:
    """Targets are the functions named ``target_<name>``, all comparing against ``incidence``."""

    @hookimpl
    def mops_discover_targets(self, source: SourceFile) -> list[DiscoveredTarget]:
        import ast

        return [
            DiscoveredTarget(name=node.name[7:], function=node.name, rel=source.rel, model_output="incidence",
                             line=node.lineno)
            for node in source.tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("target_")
        ]  # fmt: skip


class KernelDependency:
    """Every model also depends on a compiled kernel that no import names."""

    @hookimpl
    def mops_code_dependencies(self, model: DiscoveredModel, project: Project) -> CodeDependencies:
        return CodeDependencies(files={"lib/kernel.c"})


class ConstantFingerprint:
    """Claims no code edit can change behaviour (a deliberately extreme fingerprint)."""

    calls: list[str]

    def __init__(self) -> None:
        self.calls = []

    @hookimpl
    def mops_code_fingerprint(self, path: Path, source: bytes) -> str:
        self.calls.append(path.name)
        return "const:" + "0" * 64


@pytest.fixture
def project(bundle_project: BundleProject) -> BundleProject:
    bundle_project.write("models/__init__.py", "")
    bundle_project.write("models/seir.py", MODEL)
    bundle_project.write("lib/kernel.c", "int step(void) { return 1; }\n")
    bundle_project.write("targets/lab.py", "def target_peak(data):\n    return data\n\n\ndef helper():\n    pass\n")
    return bundle_project


def test_a_target_discovery_plugin_is_used_by_register_target(project: BundleProject) -> None:
    project.extra_plugins.append(("targets-by-name", TargetsByName()))
    assert project.run("register-model", "models/seir.py").exit_code == 0
    result = project.run("register-target", "targets/lab.py", "--json")
    assert result.exit_code == 0, result
    assert [(t["id"], t["entrypoint"], t["model_output"]) for t in result.json()["targets"]] == [
        ("peak", "targets.lab:target_peak", "incidence")
    ]


def test_code_dependencies_from_a_plugin_join_the_model(project: BundleProject) -> None:
    project.extra_plugins.append(("kernels", KernelDependency()))
    result = project.run("register-model", "models/seir.py", "--json")
    assert result.exit_code == 0, result
    (model,) = result.json()["models"]
    assert "lib/kernel.c" in model["code"] and "models/seir.py" in model["code"]
    edit(project, "lib/kernel.c", "int step(void) { return 2; }\n")
    (status,) = project.run("status", "--offline", "--json").json()["models"]
    assert status["status"] == "stale"


def test_a_fingerprint_plugin_decides_which_code_edits_matter(project: BundleProject) -> None:
    fingerprint = ConstantFingerprint()
    project.extra_plugins.append(("constant", fingerprint))
    assert project.run("register-model", "models/seir.py").exit_code == 0
    registry = project.meta / "registry.yaml"
    registry.write_text(registry.read_text().replace("fingerprint: bytes", "fingerprint: ast"))
    assert project.run("register-model", "models/seir.py").exit_code == 0  # records fingerprints
    edit(project, "models/seir.py", MODEL.replace("return raw", "return raw * 2"))
    (status,) = project.run("status", "--offline", "--json").json()["models"]
    assert status["status"] == "ready"  # the plugin's fingerprint did not change
    assert "seir.py" in fingerprint.calls


# ------------------------------------------------------------------------------ failures name the plugin

TIER_BUG = """
from modelops_bundle import hookimpl


@hookimpl
def mops_storage_tier(entry, policy):
    raise RuntimeError("tier table missing")
"""

HASHER_BUG = """
from modelops_bundle import hookimpl


@hookimpl(tryfirst=True)
def mops_file_hasher(algorithm):
    return {}["no hasher"]
"""

PROVIDERS_BUG = """
from modelops_bundle import hookimpl


@hookimpl
def mops_storage_providers():
    raise ValueError("provider registry corrupt")
"""

COMMAND_BUG = """
from modelops_bundle import hookimpl
from modelops_bundle.core.commands import Command


def _run(ctx, args):
    raise ZeroDivisionError("lab report")


@hookimpl
def mops_add_commands(registry):
    registry.add(Command(name="report", help="lab report", run=_run, epilog="example:\\n  mops bundle report"))
"""


@pytest.mark.parametrize(
    ("module", "argv", "expected"),
    [
        (TIER_BUG, ("push",), "failed in mops_storage_tier: RuntimeError: tier table missing"),
        (HASHER_BUG, ("add", "model.py"), "failed in mops_file_hasher: KeyError: 'no hasher'"),
        (PROVIDERS_BUG, ("push",), "failed in mops_storage_providers: ValueError: provider registry corrupt"),
    ],
    ids=["first-result hook", "hasher", "named providers"],
)
def test_a_raising_plugin_is_named_with_its_distribution(
    bundle_project: BundleProject,
    make_dist: Callable[..., Path],
    module: str,
    argv: tuple[str, ...],
    expected: str,
) -> None:
    bundle_project.write("model.py", "RATE = 1\n")
    if argv[0] != "add":
        assert bundle_project.run("add", "model.py").exit_code == 0
    make_dist("mops-labbug", "1.2", entry_points={"labbug": "mops_labbug_mod"}, modules={"mops_labbug_mod": module})
    result = bundle_project.run(*argv)
    assert result.exit_code == 1, result
    assert f"error: plugin 'labbug' (mops-labbug 1.2) {expected}" in result.stderr, result.stderr
    assert "hint: MOPS_DISABLE_PLUGINS=labbug runs without it" in result.stderr
    assert "Traceback" not in result.stderr
    with_traceback = bundle_project.run(*argv, "-v")
    assert "Traceback" in with_traceback.stderr and expected in with_traceback.stderr
    assert bundle_project.run(*argv, input_env={"MOPS_DISABLE_PLUGINS": "labbug"}).exit_code == 0


def test_a_raising_command_names_its_plugin(bundle_project: BundleProject, make_dist: Callable[..., Path]) -> None:
    make_dist(
        "mops-labbug", "1.2", entry_points={"labbug": "mops_labbug_mod"}, modules={"mops_labbug_mod": COMMAND_BUG}
    )
    result = bundle_project.run("report")
    assert result.exit_code == 1
    assert "error: unexpected error: ZeroDivisionError: lab report" in result.stderr
    assert "hint: it came from plugin 'labbug' (mops-labbug 1.2); MOPS_DISABLE_PLUGINS=labbug runs without it" in (
        result.stderr
    )


def test_json_mode_reports_the_plugin_failure_as_json(
    bundle_project: BundleProject, make_dist: Callable[..., Path]
) -> None:
    make_dist("mops-labbug", "1.2", entry_points={"labbug": "mops_labbug_mod"}, modules={"mops_labbug_mod": TIER_BUG})
    bundle_project.write("model.py", "RATE = 1\n")
    assert bundle_project.run("add", "model.py").exit_code == 0
    result = bundle_project.run("push", "--json")
    assert result.exit_code == 1
    assert result.json()["error"].startswith("plugin 'labbug' (mops-labbug 1.2) failed in mops_storage_tier")


class ObserverBug:
    @hookimpl
    def mops_pull_finished(self, result: Any) -> None:
        raise RuntimeError("observer down")


def test_a_collecting_hook_failure_is_reported_and_not_fatal(bundle_project: BundleProject, tmp_path: Path) -> None:
    bundle_project.write("model.py", "RATE = 1\n")
    assert bundle_project.run("add", "model.py").exit_code == 0
    assert bundle_project.run("push").exit_code == 0
    bundle_project.extra_plugins.append(("observer", ObserverBug()))
    result = bundle_project.run("ensure", "--dest", str(tmp_path / "copy"))
    assert result.exit_code == 0, result
    assert "observer down" in result.stderr and "'observer'" in result.stderr


# ----------------------------------------------------------------------------- refused at load


class ExtraArgument:
    @hookimpl
    def mops_extra_files(self, project: Project, environment: str) -> list[str]:
        raise AssertionError("never called")


def unknown_hook_plugin() -> object:
    """A plugin implementing a hook that does not exist (built by name: the hook-coverage meta-test reads
    ``def mops_...`` in test sources as implementations of real hooks)."""

    class Plugin:
        pass

    def implementation(self: object) -> None:
        raise AssertionError("never called")

    setattr(Plugin, "mops_" + "discover_model", hookimpl(implementation))
    return Plugin()


def test_an_implementation_asking_for_an_unknown_argument_is_refused(bundle_project: BundleProject) -> None:
    bundle_project.extra_plugins.append(("extra-arg", ExtraArgument()))
    result = bundle_project.run("status", "--offline")
    assert result.exit_code == 0, result
    message = (
        f"plugin 'extra-arg' from (test) failed to load: incompatible with modelops-bundle {__version__}: "
        "mops_extra_files() asks for environment, which the hook does not pass (it passes: project)"
    )
    assert message in result.stderr
    entry = {p["name"]: p for p in bundle_project.run("plugins", "--json").json()}["extra-arg"]
    assert entry["status"] == "error" and entry["hooks"] == []


def test_an_implementation_of_an_unknown_hook_is_refused(bundle_project: BundleProject) -> None:
    bundle_project.extra_plugins.append(("misspelt", unknown_hook_plugin()))
    listing = bundle_project.run("plugins", "--json")
    assert listing.exit_code == 1
    entry = {p["name"]: p for p in listing.json()}["misspelt"]
    assert entry["status"] == "error"
    assert (
        "mops_discover_model is not a hook of modelops-bundle (misspelt, or made for another version?)"
        in (entry["error"])
    )


def test_an_optional_hook_of_another_plugin_is_allowed() -> None:
    class Optional:
        pass

    setattr(Optional, "mops_" + "lab_event", hookimpl(optionalhook=True)(lambda self: None))
    host = build_plugin_host({"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"}, extra_plugins=[("optional", Optional())])
    assert host.infos["optional"].status == "loaded"


def test_versions_for_provenance(make_dist: Callable[..., Path]) -> None:
    module = "from modelops_bundle import hookimpl\n\n@hookimpl\ndef mops_extra_files(project):\n    return []\n"
    make_dist("mops-extras", "2.5.1", entry_points={"extras": "mops_extras_mod"}, modules={"mops_extras_mod": module})
    host = build_plugin_host({"MOPS_DISABLE_PLUGINS": "starsim"})
    versions = host.versions()
    assert versions["sha256"] == f"modelops-bundle {__version__}"
    assert versions["extras"] == "mops-extras 2.5.1"
    assert "starsim" not in versions  # disabled: it touched nothing
    assert host.versions(hooks=["mops_extra_files"]) == {
        "extras": "mops-extras 2.5.1",
        "packaging": f"modelops-bundle {__version__}",
    }


# ------------------------------------------------------------------------------ the plugin API version

API_PLUGIN = """
from modelops_bundle.plugin import hookimpl

MOPS_PLUGIN_API = {declared!r}


@hookimpl
def mops_extra_files(project):
    return None
"""


@pytest.mark.parametrize(
    ("declared", "refusal"),
    [
        ("2.0", "it needs plugin API 2.0, and this version provides 1.0 (install a release of the plugin made for "
                "plugin API 1)"),
        ("1.7", "it needs plugin API 1.7, and this version provides 1.0 (upgrade modelops-bundle)"),
        ("v1", "MOPS_PLUGIN_API = 'v1' is not a plugin API version (expected a string like \"1\" or \"1.0\")"),
        ("1", None),
        ("1.0", None),
    ],
)  # fmt: skip
def test_a_plugin_declaring_another_plugin_api_is_refused_at_load(
    bundle_project: BundleProject, make_dist: Callable[..., Path], declared: str, refusal: str | None
) -> None:
    from modelops_bundle import PLUGIN_API

    assert PLUGIN_API == (1, 0)  # the cases above are written for API 1.0
    modules = {"mops_apiver_mod": API_PLUGIN.format(declared=declared)}
    make_dist("mops-apiver", "3.1", entry_points={"apiver": "mops_apiver_mod"}, modules=modules)
    listing = bundle_project.run("plugins", "--json")
    entry = {p["name"]: p for p in listing.json()}["apiver"]
    if refusal is None:
        assert listing.exit_code == 0 and entry["status"] == "loaded", entry
        assert entry["hooks"] == ["mops_extra_files"]
        return
    assert listing.exit_code == 1
    assert entry["status"] == "error" and entry["hooks"] == []
    assert entry["error"] == f"incompatible with modelops-bundle {__version__}: {refusal}"
    status = bundle_project.run("status", "--offline")  # every other command warns and works
    assert status.exit_code == 0, status
    assert "plugin 'apiver' from mops-apiver 3.1 failed to load" in status.stderr and refusal in status.stderr


def test_a_plugin_api_mismatch_is_reported_with_its_hook_problems() -> None:
    class Old:
        MOPS_PLUGIN_API = "0.9"

        @hookimpl
        def mops_extra_files(self, project: Project, environment: str) -> list[str]:
            raise AssertionError("never called")

    host = build_plugin_host({"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"}, extra_plugins=[("old", Old())])
    error = host.infos["old"].error or ""
    assert "it needs plugin API 0.9, and this version provides 1.0" in error
    assert "mops_extra_files() asks for environment" in error


# ------------------------------------------------------------------------------------------ wrappers


class KeepScratchInTheRegistry:
    """The guide's wrapper: whatever the other plugins decide, scratch files never leave the registry."""

    @hookimpl(wrapper=True)
    def mops_storage_tier(self, entry: Any) -> Generator[None, str | None, str | None]:
        tier = yield
        return "oci" if entry.path.startswith("scratch/") else tier


def test_a_hook_wrapper_changes_what_a_push_does(bundle_project: BundleProject) -> None:
    bundle_project.extra_plugins.append(("scratch", KeepScratchInTheRegistry()))
    assert bundle_project.run("config", "storage.force_blob_patterns", "*.bin").exit_code == 0
    bundle_project.write("data/population.bin", b"\x00" * 1000)
    bundle_project.write("scratch/draft.bin", b"\x01" * 1000)
    assert bundle_project.run("add", ".").exit_code == 0
    assert bundle_project.run("push").exit_code == 0
    tiers = {entry["path"]: entry["storage"] for entry in bundle_project.run("manifest", "--json").json()["files"]}
    assert (tiers["data/population.bin"], tiers["scratch/draft.bin"]) == ("blob", "oci")
