"""Versions pushed by modelops-bundle v0.1.1 (raw per-file layers, its index shape, blob-stored files by
``blobRef``) are pulled, ensured and materialised like our own -- and verified as strictly.

The versions are written byte by byte from the documented format (``tests/support/upstream.py``) into the
embedded OCI layout, the CNCF distribution registry and, for blob-stored files, Azurite.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle import api
from modelops_bundle.plugins.registry_distribution import OciDistributionRegistry
from modelops_bundle.plugins.registry_layout import OciLayoutRegistry
from modelops_bundle.testing import BundleProject
from modelops_bundle.worker import BundleRepository
from tests.bundle.conftest import ok, read_tree, state_of
from tests.bundle.test_hostile import observable
from tests.oci.registries import RunningRegistry
from tests.storage.conftest import azurite_service, services_dir  # noqa: F401 - re-exported fixtures
from tests.storage.services import Service, azure_connection_string
from tests.support.upstream import blob_key, publish, sample_files, sha, upstream_version

REPO = "model"
REGISTRY_REL = ".modelops-bundle/registry.yaml"


def layout(project: BundleProject) -> OciLayoutRegistry:
    return OciLayoutRegistry({"path": project.env["MODELOPS_HOME"] + "/registry"})


def expected_tree(files: dict[str, bytes]) -> dict[str, bytes]:
    return {path: data for path, data in files.items() if not path.startswith(".modelops-bundle/")}


@pytest.fixture
def model(make_project: Callable[..., BundleProject]) -> BundleProject:
    """An empty project whose repository (``model`` in the embedded layout) holds the v0.1.1 versions."""
    return make_project(REPO)


# --------------------------------------------------------------------------------------- reading


def test_pull_a_version_pushed_by_v011(model: BundleProject) -> None:
    files = sample_files()
    digest = publish(layout(model), REPO, upstream_version(files), "latest")
    pulled = ok(model.run("pull", "--json"))
    assert pulled["digest"] == digest
    assert read_tree(model.root) == expected_tree(files)
    assert (model.meta / "registry.yaml").read_bytes() == files[REGISTRY_REL]
    state = state_of(model)
    assert state["last_pull_digest"] == digest
    assert state["last_synced_files"] == {path: sha(data) for path, data in files.items()}
    status = ok(model.run("status", "--json"))
    assert status["remote"]["state"] == "synced" and not any(status["changes"].values())

    # The way across: edit and push on top of it; the new version is in the current format.
    model.write("README.md", "# seir, now pushed by this tool\n")
    pushed = ok(model.run("push", "--json"))
    assert pushed["digest"] != digest
    manifest = json.loads(layout(model).get_manifest(REPO, pushed["digest"]).data)
    assert manifest["artifactType"] == "application/vnd.modelops.bundle.v1"
    # (push refreshes the model registry's digests, so registry.yaml is rewritten in the current layout)
    assert ok(model.run("diff", digest, pushed["digest"], "--json"))["modified"] == [REGISTRY_REL, "README.md"]


def test_manifest_tags_and_ensure(model: BundleProject, tmp_path: Path) -> None:
    files = sample_files()
    digest = publish(layout(model), REPO, upstream_version(files), "v011")
    listed = ok(model.run("manifest", "v011", "--json"))
    assert {entry["path"]: entry["storage"] for entry in listed["files"]} == dict.fromkeys(files, "oci")
    assert {entry["mode"] for entry in listed["files"]} == {0o644}
    versions = ok(model.run("tags", "--json"))["versions"]
    assert [(v["digest"], v["tags"], v["files"]) for v in versions] == [(digest, ["v011"], len(files))]
    ensured = ok(model.run("ensure", "--dest", str(tmp_path / "run"), "v011", "--json"))
    assert ensured["files"] == len(files) and sorted(ensured["fetched"]) == sorted(files)
    assert read_tree(tmp_path / "run", skip_meta=False) == files
    verified = ok(model.run("verify", "--remote", "v011", "--json"))
    assert verified["ok"] is True, verified
    publish(layout(model), REPO, upstream_version({**files, "README.md": b"# v0.1.2\n"}), "v012")
    diffed = ok(model.run("diff", "v011", "v012", "--json"))
    assert diffed["modified"] == ["README.md"], diffed


def test_materialize_and_the_worker_entry_point_over_http(
    distribution: RunningRegistry, mops_env: dict[str, str], tmp_path: Path
) -> None:
    files = sample_files()
    repository = f"legacy-{uuid.uuid4().hex[:8]}"
    backend = OciDistributionRegistry({"url": distribution.host, "environ": mops_env})
    try:
        digest = publish(backend, repository, upstream_version(files), "latest")
    finally:
        backend.close()
    env = {**mops_env, "MODELOPS_BUNDLE_CACHE": str(tmp_path / "cache")}
    ref = f"{distribution.host}/{repository}@{digest}"
    tree = api.materialize(ref, environ=env)
    assert read_tree(tree, skip_meta=False) == files
    assert api.materialize_report(ref, environ=env).from_cache is True  # the fast path reads the v0.1.1 index too
    assert set(api.models(ref, environ=env)) == {"seir_seirmodel"}
    selected = api.materialize(ref, tmp_path / "only-model", models=["seir_seirmodel"], environ=env)
    assert "models/seir.py" in read_tree(selected, skip_meta=False)
    worker = BundleRepository(registry_ref=f"{distribution.host}/{repository}", cache_dir=tmp_path / "worker-cache",
                              environ=env)  # fmt: skip
    local = worker.ensure_local(digest)
    assert read_tree(local, skip_meta=False) == files
    assert worker.exists(digest)


def test_blob_stored_files_are_fetched_by_their_blob_ref(
    azurite_service: Service,  # noqa: F811
    make_project: Callable[..., BundleProject],
    mops_env: dict[str, str],
    tmp_path: Path,
) -> None:
    from azure.storage.blob import BlobServiceClient

    container = f"legacy{uuid.uuid4().hex[:8]}"
    connection = azure_connection_string(azurite_service.url)
    big = bytes(range(256)) * 5000 + b"tail"
    key = blob_key(big)
    with BlobServiceClient.from_connection_string(connection) as client:
        client.create_container(container)
        client.get_blob_client(container, key).upload_blob(big)  # where v0.1.1's Azure store put it
    home = Path(mops_env["MODELOPS_HOME"])
    (home / "bundle-env").mkdir(parents=True, exist_ok=True)
    (home / "bundle-env" / "az.yaml").write_text(
        f"environment: az\nregistry:\n  provider: oci-layout\n  path: {home / 'registry'}\n"
        f'storage:\n  provider: azurite\n  container: {container}\n  connection_string: "{connection}"\n'
    )
    project = make_project(REPO, "--env", "az")
    files = {**sample_files(), "data/big.bin": big}
    version = upstream_version(files, blob_stored={"data/big.bin": f"azure://{container}/{key}"})
    digest = publish(layout(project), REPO, version, "v011")
    ok(project.run("pull", "v011", "--json"))
    assert read_tree(project.root) == expected_tree(files)
    listed = {entry["path"]: entry for entry in ok(project.run("manifest", "v011", "--json"))["files"]}
    assert listed["data/big.bin"]["storage"] == "blob"
    assert listed["data/big.bin"]["blobRef"]["uri"] == f"az://{container}/{key}"
    env = {**mops_env, "MOPS_ENV": "az", "MODELOPS_BUNDLE_CACHE": str(tmp_path / "cache")}
    tree = api.materialize(f"{REPO}@{digest}", environ=env)
    assert (tree / "data/big.bin").read_bytes() == big

    # The blob store's bytes are verified like the registry's: a changed object is refused.
    with BlobServiceClient.from_connection_string(connection) as client:
        client.get_blob_client(container, key).upload_blob(big[:-4] + b"TAIL", overwrite=True)
    other = make_project("other", "--env", "az", ref=REPO)
    refused = other.run("pull", "v011")
    assert refused.exit_code != 0 and "data/big.bin" not in read_tree(other.root)
    assert "digest" in refused.stderr


# ---------------------------------------------------------------------------- verified as strictly


def _retitle(path: str, title: str) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        document = json.loads(data)
        for layer in document["layers"]:
            if layer["annotations"]["org.opencontainers.image.title"] == path:
                layer["annotations"]["org.opencontainers.image.title"] = title
        return json.dumps(document).encode()

    return edit


def _edit_manifest(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        document = json.loads(data)
        change(document)
        return json.dumps(document).encode()

    return edit


def _index_with(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], bytes]:
    def build(index: dict[str, Any]) -> bytes:
        change(index)
        return json.dumps(index, sort_keys=True, indent=2).encode()

    return build


def _set_entry(path: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda index: index["files"][path].__setitem__(key, value)


def _rekey(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    return lambda index: index["files"].__setitem__(new, index["files"].pop(old))


def _move(old: str, new: str) -> Callable[[dict[str, Any]], bytes]:
    """The index with ``old`` renamed to ``new`` (its key and its path)."""
    return _index_with(lambda index: (_rekey(old, new)(index), _set_entry(new, "path", new)(index)))


def _duplicate_key(index: dict[str, Any]) -> bytes:
    text = json.dumps(index, sort_keys=True, indent=2)
    entry = json.dumps(index["files"]["README.md"])
    return text.replace('"files": {', f'"files": {{\n"README.md": {entry},', 1).encode()


def _too_big(index: dict[str, Any]) -> None:
    index["files"]["README.md"]["size"] = (1 << 42) + 1


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    return lambda index: index["files"].pop(path)


HOSTILE: dict[str, tuple[Callable[[dict[str, Any]], bytes] | None, Callable[[bytes], bytes] | None, str]] = {
    "layer titled by another path": (None, _retitle("README.md", "NOTES.md"), "index does not match manifest"),
    "two layers with one title": (None, _retitle("models/seir.py", "README.md"), "two layers are titled 'README.md'"),
    "a layer no file names": (_index_with(_drop("README.md")), None, "holds no file of the index"),
    "a registry file without a layer": (
        None,
        _edit_manifest(lambda m: m["layers"].pop()),
        "is in no listed layer",
    ),
    "index size differs from the layer": (
        _index_with(_set_entry("README.md", "size", 3)),
        None,
        "the layer of README.md differs",
    ),
    "index digest differs from the layer": (
        _index_with(_set_entry("README.md", "digest", "sha256:" + "0" * 64)),
        None,
        "the layer of README.md differs",
    ),
    "path climbing out": (
        _move("README.md", "../x"),
        _retitle("README.md", "../x"),
        "'..'",
    ),
    "absolute path": (
        _move("README.md", "/etc/x"),
        _retitle("README.md", "/etc/x"),
        "/etc/x",
    ),
    "a .git path": (
        _move("README.md", ".git/config"),
        _retitle("README.md", ".git/config"),
        ".git/config",
    ),
    "project state in the version": (
        _move("README.md", ".modelops-bundle/state.json"),
        _retitle("README.md", ".modelops-bundle/state.json"),
        ".modelops-bundle/state.json",
    ),
    "file and folder at one path": (
        _move("README.md", "data/a.csv/x"),
        _retitle("README.md", "data/a.csv/x"),
        "both a file and a folder",
    ),
    "key and path disagree": (_index_with(_set_entry("README.md", "path", "NOTES.md")), None, "keyed by"),
    "duplicate key": (_duplicate_key, None, "duplicate key 'README.md'"),
    "unknown entry key": (_index_with(_set_entry("README.md", "mode", 493)), None, "files.README.md.mode: unknown key"),
    "unknown top-level key": (_index_with(lambda i: i.__setitem__("layers", [])), None, "layers: unknown key"),
    "size as a string": (_index_with(_set_entry("README.md", "size", "41")), None, "files.README.md.size"),
    "size beyond the bound": (_index_with(_too_big), None, "files.README.md.size"),
    "another algorithm": (
        _index_with(_set_entry("README.md", "digest", "md5:" + "0" * 32)),
        None,
        "must be a sha256 digest",
    ),
    "blob storage without blobRef": (
        _index_with(_set_entry("README.md", "storage", "blob")),
        None,
        "needs an object with uri",
    ),
    "unknown storage": (_index_with(_set_entry("README.md", "storage", "s3")), None, "must be 'oci' or 'blob'"),
    "another index version": (_index_with(lambda i: i.__setitem__("version", "2.0")), None, "index version '2.0'"),
    "an artifactType of ours": (
        None,
        _edit_manifest(lambda m: m.__setitem__("artifactType", "application/vnd.modelops.bundle.v1")),
        "unexpected media type",
    ),
}


@pytest.fixture
def victim(model: BundleProject) -> BundleProject:
    """A project that pulled a sound v0.1.1 version: the working tree a hostile one must not harm."""
    publish(layout(model), REPO, upstream_version(sample_files()), "latest")
    ok(model.run("pull", "--json"))
    return model


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_v011_version_is_refused_and_nothing_is_touched(
    case: str, victim: BundleProject, snapshot: Callable[[Path], Any]
) -> None:
    build_config, edit_manifest, message = HOSTILE[case]
    version = upstream_version({**sample_files(), "README.md": b"# changed upstream\n"})
    config = build_config(json.loads(version.config)) if build_config else None
    publish(layout(victim), REPO, version, "evil", config=config, manifest=edit_manifest)
    before = observable(victim, snapshot)
    refused = victim.run("pull", "evil")
    assert refused.exit_code != 0, refused
    assert message in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert observable(victim, snapshot) == before


def test_tampered_layer_bytes_are_refused(victim: BundleProject, snapshot: Callable[[Path], Any]) -> None:
    files = {**sample_files(), "README.md": b"# changed upstream\n"}
    publish(layout(victim), REPO, upstream_version(files), "v011")
    blob = Path(victim.env["MODELOPS_HOME"]) / "registry" / REPO / "blobs/sha256" / sha(files["README.md"])[7:]
    blob.chmod(0o644)
    blob.write_bytes(b"# CHANGED upstream\n")  # same size, other bytes
    before = observable(victim, snapshot)
    refused = victim.run("pull", "v011")
    assert refused.exit_code != 0 and "does not match" in refused.stderr, refused.stderr
    assert observable(victim, snapshot) == before
