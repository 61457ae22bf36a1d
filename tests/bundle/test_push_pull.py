"""push / pull / diff / manifest / tags / ensure end to end, on the embedded OCI layout registry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from modelops_bundle.testing import BundleProject
from tests.bundle.conftest import ok, pushed_and_cloned, read_tree, state_of


def test_push_then_pull_into_a_fresh_project_is_byte_exact(
    project: BundleProject, clone: Callable[[str], BundleProject]
) -> None:
    (project.root / "src/model.py").chmod(0o755)
    pushed = ok(project.run("push", "--json"))
    assert pushed["up_to_date"] is False and pushed["files"] == 6
    assert pushed["uploaded_blobs"] == pushed["layers"] + 1  # layers and the index, nothing else
    assert state_of(project)["last_push_digest"] == pushed["digest"]

    other = clone("other")
    pulled = ok(other.run("pull", "--ref", pushed["digest"], "--json"))
    assert pulled["digest"] == pushed["digest"] and len(pulled["add"]) == 6
    assert read_tree(other.root) == read_tree(project.root)
    assert (other.root / "src/model.py").stat().st_mode & 0o777 == 0o755
    assert other.tracked() == project.tracked()
    assert state_of(other)["last_pull_digest"] == pushed["digest"]
    status = ok(other.run("status", "--json"))
    assert not any(status["changes"].values())
    assert not list((other.meta / "staging").iterdir())


def test_unchanged_push_is_up_to_date_with_the_same_digest(project: BundleProject) -> None:
    first = ok(project.run("push", "--json"))
    again = ok(project.run("push", "--json"))
    assert again["up_to_date"] is True and again["digest"] == first["digest"]
    assert again["uploaded_blobs"] == 0
    text = project.run("push")
    assert text.exit_code == 0 and "Everything up to date" in text.stdout
    # Pushing the same content under another tag reuses the version: one content, one digest.
    tagged = ok(project.run("push", "--tag", "v1", "--json"))
    assert tagged["digest"] == first["digest"] and tagged["uploaded_blobs"] == 0 and tagged["reused_manifest"]


def test_one_file_change_uploads_one_small_layer(project: BundleProject) -> None:
    for i in range(300):
        project.write(f"data/many/f{i:03d}.txt", f"row {i}\n" * 20)
    ok(project.run("add", "data", "--json"))
    first = ok(project.run("push", "--json"))
    assert first["layers"] > 4
    project.write("data/many/f150.txt", "changed\n")
    second = ok(project.run("push", "--json"))
    assert second["changes"]["modified"] == ["data/many/f150.txt"]
    assert second["uploaded_blobs"] == 2  # one pack and the index
    index_size = ok(project.run("manifest", "--json"))["config"]["size"]
    assert second["uploaded_bytes"] - index_size < 4 * 1024


def test_moved_tag_is_refused_unless_forced(project: BundleProject, clone: Callable[[str], BundleProject]) -> None:
    other, base = pushed_and_cloned(project, clone)
    other.write("data/a.csv", "x,y\n9,9\n")
    theirs = ok(other.run("push", "--json"))
    project.write("src/model.py", "def run():\n    return 43\n")
    before = state_of(project)
    refused = project.run("push")
    assert refused.exit_code == 1
    assert "data/a.csv" in refused.stderr and theirs["digest"] in refused.stderr
    assert state_of(project) == before
    forced = ok(project.run("push", "--force", "--json"))
    assert forced["forced"] and forced["previous_digest"] == theirs["digest"]
    assert forced["digest"] not in (base["digest"], theirs["digest"])


def test_pull_never_overwrites_local_edits_without_overwrite(
    project: BundleProject, clone: Callable[[str], BundleProject]
) -> None:
    other, _ = pushed_and_cloned(project, clone)
    project.write("data/a.csv", "remote edit\n")
    ok(project.run("push", "--json"))
    other.write("data/a.csv", "local edit\n")
    before = (read_tree(other.root), state_of(other))
    refused = other.run("pull")
    assert refused.exit_code == 1 and "data/a.csv" in refused.stderr and "--overwrite" in refused.stderr
    assert (read_tree(other.root), state_of(other)) == before
    dry = ok(other.run("pull", "--overwrite", "--dry-run", "--json"))
    assert dry["overwrite"] == ["data/a.csv"] and (read_tree(other.root), state_of(other)) == before
    ok(other.run("pull", "--overwrite", "--json"))
    assert other.read("data/a.csv") == "remote edit\n"


def test_pull_merges_remote_changes_keeps_local_ones_and_restores_deleted(
    project: BundleProject, clone: Callable[[str], BundleProject]
) -> None:
    ok(project.run("push", "--json"))
    other = clone("other")
    ok(other.run("pull", "--json"))
    project.write("data/b.csv", "remote\n")
    ok(project.run("remove", "--rm", "README.md", "--json"))
    ok(project.run("push", "--json"))
    other.write("src/model.py", "local\n")  # a local change the remote did not touch
    (other.root / "data/a.csv").unlink()  # deleted locally
    result = ok(other.run("pull", "--json"))
    assert result["update"] == ["data/b.csv"] and result["delete"] == ["README.md"]
    assert result["kept_deleted"] == ["data/a.csv"]
    assert other.read("src/model.py") == "local\n" and not (other.root / "README.md").exists()
    assert "README.md" not in other.tracked()
    restored = ok(other.run("pull", "--restore-deleted", "--json"))
    assert restored["restore"] == ["data/a.csv"] and other.read("data/a.csv") == "x,y\n1,2\n"


def test_diff_between_versions_and_against_the_working_tree(project: BundleProject) -> None:
    first = ok(project.run("push", "--json"))
    project.write("data/a.csv", "changed\n")
    project.write("src/new.py", "N = 1\n")
    ok(project.run("add", "src/new.py", "--json"))
    ok(project.run("remove", "README.md", "--json"))
    work = ok(project.run("diff", "--json"))
    assert (work["added"], work["modified"], work["deleted"]) == (["src/new.py"], ["data/a.csv"], ["README.md"])
    second = ok(project.run("push", "--tag", "v2", "--json"))
    between = ok(project.run("diff", first["digest"], "v2", "--json"))
    assert between["added"] == ["src/new.py"] and between["modified"] == ["data/a.csv"]
    assert between["deleted"] == ["README.md"] and between["target"].endswith(second["digest"])
    text = project.run("diff", "latest", "v2")
    assert text.exit_code == 0 and "+ src/new.py" in text.stdout


def test_manifest_and_tags(project: BundleProject) -> None:
    pushed = ok(project.run("push", "--json"))
    ok(project.run("push", "--tag", "v1", "--json"))
    shown = ok(project.run("manifest", "--json"))
    assert shown["artifactType"] == "application/vnd.modelops.bundle.v1"
    assert {f["path"] for f in shown["files"]} == set(project.tracked())
    assert all(f["storage"] == "oci" for f in shown["files"])
    assert "org.opencontainers.image.created" in shown["annotations"]
    titles = {layer["annotations"].get("org.opencontainers.image.title") for layer in shown["layers"]}
    assert {"data/big.bin", "README.md", "data", "src"} <= titles
    versions = ok(project.run("tags", "--json"))["versions"]
    assert versions == [
        {
            "digest": pushed["digest"],
            "tags": ["latest", "v1"],
            "created": shown["annotations"]["org.opencontainers.image.created"],
            "files": 6,
            "size": pushed["bytes"],
            "error": None,
        }
    ]
    missing = project.run("manifest", "nope")
    assert missing.exit_code == 1 and "not found" in missing.stderr


@pytest.mark.mops_env(SOURCE_DATE_EPOCH="1767225600")
def test_tags_of_the_same_second_list_by_version(project: BundleProject) -> None:
    # One creation time for all (as pushes within one second have): the order comes from the tags.
    for tag in ("v1.9.0", "v1.10.0", "v1.2.0"):
        (project.root / "data/a.csv").write_text(f"x\n{tag}\n")
        ok(project.run("push", "--tag", tag, "--json"))
    versions = ok(project.run("tags", "--json"))["versions"]
    assert len({v["created"] for v in versions}) == 1
    assert [v["tags"] for v in versions] == [["v1.10.0"], ["v1.9.0"], ["v1.2.0"]]


def test_ensure_materialises_a_version_and_mirrors(project: BundleProject, tmp_path: Path) -> None:
    pushed = ok(project.run("push", "--json"))
    dest = tmp_path / "run"
    (dest / "data").mkdir(parents=True)
    (dest / "data/stale.txt").write_text("old")
    (dest / "README.md").write_text("wrong bytes")
    state = state_of(project)
    first = ok(project.run("ensure", "--dest", str(dest), "--ref", pushed["digest"], "--json"))
    assert len(first["fetched"]) == 6 and (dest / "data/stale.txt").exists()
    mirrored = ok(project.run("ensure", "--dest", str(dest), "--mirror", "--json"))
    assert mirrored["deleted"] == ["data/stale.txt"] and mirrored["unchanged"] == 6
    assert read_tree(dest) == read_tree(project.root)
    assert state_of(project) == state
    refused = project.run("ensure", "--dest", str(project.root), "--mirror")
    assert refused.exit_code == 2
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    not_a_folder = project.run("ensure", "--dest", str(a_file))
    assert not_a_folder.exit_code == 2 and "is a file, not a folder" in not_a_folder.stderr
    assert a_file.read_text() == "keep me"


def test_registry_yaml_travels_and_json_is_one_document(
    project: BundleProject, clone: Callable[[str], BundleProject]
) -> None:
    (project.meta / "registry.yaml").write_text("version: 1\nmodels: {}\n")
    pushed = ok(project.run("push", "--json"))
    assert "registry.yaml" not in " ".join(project.tracked())
    other = clone("other")
    ok(other.run("pull", "--json"))
    assert (other.meta / "registry.yaml").read_text() == "version: 1\nmodels: {}\n"
    assert ".modelops-bundle/registry.yaml" not in other.tracked()
    dry = project.run("push", "--dry-run", "--json")
    assert json.loads(dry.stdout)["digest"] == pushed["digest"]


def test_tag_moved_during_the_upload_is_refused(project: BundleProject) -> None:
    """A push that lost a race leaves the tag where the other pusher put it."""
    from modelops_bundle import hookimpl
    from modelops_bundle.core.registry import OCI_MANIFEST
    from modelops_bundle.plugins.registry_layout import OciLayoutRegistry

    first = ok(project.run("push", "--json"))
    registry = OciLayoutRegistry({"path": project.env["MODELOPS_HOME"] + "/registry"})
    theirs = json.loads(registry.get_manifest("model", first["digest"]).data)
    theirs["annotations"]["org.example.racer"] = "1"
    racer_bytes = json.dumps(theirs).encode()

    class Racer:
        @hookimpl
        def mops_manifest_annotations(self, index: object, project: object) -> dict[str, str]:
            registry.put_manifest("model", racer_bytes, OCI_MANIFEST, "latest")
            return {}

    project.extra_plugins.append(("racer", Racer()))
    project.write("data/a.csv", "mine\n")
    before = state_of(project)
    result = project.run("push")
    assert result.exit_code == 1 and "moved" in result.stderr
    assert registry.resolve("model", "latest") != first["digest"]
    assert registry.get_manifest("model", "latest").data == racer_bytes
    assert state_of(project) == before


def test_dry_run_push_uploads_nothing(project: BundleProject) -> None:
    before = state_of(project)
    planned = ok(project.run("push", "--dry-run", "--json"))
    assert planned["dry_run"] and planned["uploaded_blobs"] == planned["layers"] + 1
    assert state_of(project) == before
    assert before.get("last_push_digest") is None
    assert ok(project.run("tags", "--json"))["versions"] == []
    pushed = ok(project.run("push", "--json"))
    assert pushed["uploaded_blobs"] == planned["uploaded_blobs"]


def test_unusual_shapes_round_trip(
    make_project: Callable[..., BundleProject], clone: Callable[[str], BundleProject]
) -> None:
    """Identical large files (one blob, two raw layers), many root files (an untitled pack), odd names."""
    project = make_project("model")
    twin = b"\x01" * (1024 * 1024 + 7)
    project.write("a/twin1.bin", twin)
    project.write("b/twin2.bin", twin)
    for i in range(40):
        project.write(f"root{i:02d}.txt", f"{i}\n")
    project.write("data/ünïcode name.csv", "1\n")
    project.write("data/" + "deep/" * 30 + "leaf.txt", "deep\n")
    project.write("data/empty.txt", "")
    ok(project.run("add", ".", "--json"))
    pushed = ok(project.run("push", "--json"))
    layers = ok(project.run("manifest", "--json"))["layers"]
    assert [layer["digest"] for layer in layers].count("sha256:" + hashlib.sha256(twin).hexdigest()) == 2
    assert any("org.opencontainers.image.title" not in (layer.get("annotations") or {}) for layer in layers)
    other = clone("other")
    ok(other.run("pull", "--ref", pushed["digest"], "--json"))
    assert read_tree(other.root) == read_tree(project.root)


def test_a_push_reads_no_manifest_of_earlier_versions_with_other_content(
    project: BundleProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search for an identical earlier version (to reuse its manifest) fetches only candidates whose
    index may match: a project that pushed many versions must not read all their manifests per push."""
    from modelops_bundle.plugins.registry_layout import OciLayoutRegistry

    digests = []
    for round_ in range(4):
        project.write("data/round.txt", f"round {round_}\n")
        ok(project.run("add", "data", "--json"))
        digests.append(ok(project.run("push", "--json"))["digest"])
    fetched: list[str] = []
    original = OciLayoutRegistry.get_manifest

    def counting(self: OciLayoutRegistry, repository: str, reference: str) -> object:
        fetched.append(reference)
        return original(self, repository, reference)

    monkeypatch.setattr(OciLayoutRegistry, "get_manifest", counting)
    project.write("data/round.txt", "round 4\n")
    ok(project.run("push", "--json"))
    assert not set(fetched) & set(digests[:-1]), fetched  # only the tag's own version was read

    project.write("data/round.txt", "round 1\n")  # back to an earlier version's content
    fetched.clear()
    back = ok(project.run("push", "--json"))
    assert back["reused_manifest"] and back["digest"] == digests[1]
    assert set(fetched) & set(digests) == {digests[1]}  # the one candidate whose index matches


def test_pull_and_ensure_take_the_version_as_an_argument_too(
    project: BundleProject, clone: Callable[[str], BundleProject], tmp_path: Path
) -> None:
    """Like diff, verify and manifest: ``pull v1`` is ``pull --ref v1``; naming two versions is refused."""
    v1 = ok(project.run("push", "--tag", "v1", "--json"))["digest"]
    project.write("data/a.csv", "x,y\n5,6\n")
    ok(project.run("push", "--json"))  # latest moves on
    other = clone("other")
    pulled = ok(other.run("pull", "v1", "--json"))
    assert pulled["digest"] == v1 and (other.root / "data/a.csv").read_text() == "x,y\n1,2\n"
    both = other.run("pull", "v1", "--ref", "latest")
    assert both.exit_code == 2 and "two versions named: 'v1' and --ref 'latest'" in both.stderr
    assert ok(other.run("pull", "v1", "--ref", "v1", "--json"))["digest"] == v1  # the same one twice is fine
    ensured = ok(project.run("ensure", "v1", "--dest", str(tmp_path / "out"), "--json"))
    assert ensured["digest"] == v1 and (tmp_path / "out" / "data/a.csv").read_text() == "x,y\n1,2\n"
