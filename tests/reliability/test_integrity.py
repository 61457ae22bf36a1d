"""Integrity: corrupted bytes wherever they rest (registry storage, blob stores, the cache), indexes whose
digests do not match, manifests whose config is not a bundle index -- each detected, nothing placed."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from modelops_bundle import api
from modelops_bundle.core.index import INDEX_MEDIA_TYPE
from modelops_bundle.core.packaging import pack_descriptor
from modelops_bundle.core.storage import blob_key
from tests.oci.registries import RunningRegistry
from tests.reliability.conftest import Trial
from tests.reliability.refusal import Stage, make_stage
from tests.reliability.support import (
    file_entry,
    fill,
    member,
    new_project,
    ok,
    pack,
    publish,
    raw_files,
    sha,
    tree_files,
    write_env,
)
from tests.storage.services import Service, azure_connection_string


@pytest.fixture
def stage(reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path) -> Stage:
    return make_stage(reliability_registry, mops_env, tmp_path)


def _flip(path: Path) -> bytes:
    """Flip one byte in the middle of ``path`` (same size); returns the original bytes."""
    os.chmod(path, 0o644)
    original = path.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    return original


def test_corrupted_blobs_in_the_registry_storage(stage: Stage, tmp_path: Path, trial: Trial) -> None:
    author = new_project(stage.env, tmp_path / "author2", "hostile", ref=stage.repository)
    ok(author.run("pull", "--json"))
    author.write("data/f000.txt", "v2 small\n" * 10)
    author.write("big/blob0.bin", os.urandom(1_300_000))
    pushed = ok(author.run("push", "--tag", "evil", "--force", "--json"))
    manifest = json.loads(stage.backend().get_manifest(stage.repository, pushed["digest"]).data)
    for kind in ("pack", "raw layer", "index"):
        if kind == "index":
            digest = manifest["config"]["digest"]
        else:
            title = "data" if kind == "pack" else "big/blob0.bin"  # layers holding files the victim lacks
            digest = next(
                layer["digest"]
                for layer in manifest["layers"]
                if layer.get("annotations", {}).get("org.opencontainers.image.title") == title
            )
        path = stage.registry.blob_data_path(digest)
        original = _flip(path)
        try:
            stage.refused(needle=digest.split(":")[1][:12] if kind != "index" else "")
        finally:
            path.write_bytes(original)
        trial.record(
            "integrity",
            f"a {kind} blob corrupted (one byte, same size) in the registry's storage folder",
            "pull, ensure, materialize (cache and destination)",
            "exit 1 / IntegrityError naming the blob; nothing placed, project untouched",
        )
    ok(stage.victim.run("pull", "--ref", "evil", "--overwrite", "--json"))  # restored: the same version pulls


def _blob_project(environ: dict[str, str], tmp: Path, registry: RunningRegistry, storage: str, env_name: str):  # type: ignore[no-untyped-def]
    write_env(environ, env_name, registry.host, storage=storage)
    name = f"{env_name}-{uuid.uuid4().hex[:8]}"
    project = new_project(environ, tmp / name, env_name)
    ok(project.run("config", "storage.threshold_bytes", "400000", "--json"))
    fill(project, int(uuid.uuid4().int % 1000), small=4, large=2, large_size=500_000)
    ok(project.run("add", ".", "--json"))
    pushed = ok(project.run("push", "--json"))
    index = json.loads(
        _direct(registry).get_blob_bytes(
            name,
            json.loads(_direct(registry).get_manifest(name, pushed["digest"]).data)["config"]["digest"],
            None,
            limit=1 << 20,
        )
    )
    blob_entries = [entry for entry in index["files"] if entry["storage"] == "blob"]
    assert blob_entries
    return project, name, pushed["digest"], blob_entries


def _direct(registry: RunningRegistry):  # type: ignore[no-untyped-def]
    from tests.reliability.support import direct_backend

    return direct_backend(registry.host)


def _refused_everywhere(clone, digest: str, tmp: Path, environ: dict[str, str], needle: str) -> None:  # type: ignore[no-untyped-def]
    before = tree_files(clone.root)
    result = clone.run("pull", "--ref", digest)
    assert result.exit_code == 1 and needle in result.stderr and "Traceback" not in result.stderr, result
    assert tree_files(clone.root) == before
    dest = tmp / f"ensure-{uuid.uuid4().hex[:6]}"
    result = clone.run("ensure", "--dest", str(dest), "--ref", digest)
    assert result.exit_code == 1 and "Traceback" not in result.stderr, result
    assert not dest.exists() or not [rel for rel in tree_files(dest) if rel.startswith("big/")]


def test_corrupted_object_in_the_local_blob_store(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    store = tmp_path / "blob-folder"
    project, name, digest, entries = _blob_project(
        mops_env, tmp_path, reliability_registry, f"provider: local\npath: {store}", "localblobs"
    )
    target = store / blob_key("", entries[0]["digest"])
    assert target.is_file()
    original = _flip(target)
    clone = new_project(mops_env, tmp_path / "clone", "localblobs", ref=name)
    _refused_everywhere(clone, digest, tmp_path, mops_env, "does not match")
    target.write_bytes(original)
    ok(clone.run("pull", "--ref", digest, "--json"))
    assert tree_files(clone.root) == tree_files(project.root)
    trial.record(
        "integrity",
        "an object corrupted in the local-folder blob store",
        "pull, ensure",
        "exit 1 naming the digest mismatch; nothing placed; pulls once repaired",
    )


def test_corrupted_object_in_azurite(
    reliability_registry: RunningRegistry,
    mops_env: dict[str, str],
    tmp_path: Path,
    azurite_service: Service,
    trial: Trial,
) -> None:
    connection = azure_connection_string(azurite_service.url)
    storage = f'provider: azure\ncontainer: bundles\nconnection_string: "{connection}"'
    project, name, digest, entries = _blob_project(mops_env, tmp_path, reliability_registry, storage, "azblobs")
    from azure.storage.blob import BlobServiceClient

    key = entries[0]["blobRef"]["uri"].split("/", 3)[3]
    with BlobServiceClient.from_connection_string(connection) as client:
        blob = client.get_blob_client("bundles", key)
        original = blob.download_blob().readall()
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0xFF
        blob.upload_blob(bytes(damaged), overwrite=True)
        clone = new_project(mops_env, tmp_path / "clone", "azblobs", ref=name)
        _refused_everywhere(clone, digest, tmp_path, mops_env, "does not match")
        blob.upload_blob(original, overwrite=True)
    ok(clone.run("pull", "--ref", digest, "--json"))
    assert tree_files(clone.root) == tree_files(project.root)
    trial.record(
        "integrity",
        "an object overwritten with same-size wrong bytes in Azure Blob storage (Azurite)",
        "pull, ensure",
        "exit 1 naming the digest mismatch; nothing placed; pulls once repaired",
    )


def test_corrupted_cache(stage: Stage, tmp_path: Path, trial: Trial) -> None:
    ref = f"{stage.registry.host}/{stage.repository}:latest"
    environ = {**stage.env, "MODELOPS_BUNDLE_CACHE": str(tmp_path / "cache")}
    tree = api.materialize(ref, environ=environ)
    expected = tree_files(tree)
    cache = api.open_cache(environ=environ)
    objects = [path for path, _ in cache._all_objects()]
    # 1. an object written through (its mtime changes): the cheap check catches it, the object is refetched
    path = objects[0]
    os.chmod(path, 0o644)
    path.write_bytes(b"x" * path.stat().st_size)
    report = api.materialize_report(ref, environ=environ)
    assert report.stats["repaired_objects"] == 1 and tree_files(report.path) == expected
    # 2. the cached index of the version rewritten: its digest no longer matches, it is read again
    digest = report.digest
    index_file = cache.version_dir(digest) / "index.json"
    index_file.write_bytes(index_file.read_bytes().replace(b'"size"', b'"size" ', 1))
    assert cache.load_version_bytes(digest) is None
    assert tree_files(api.materialize(ref, environ=environ)) == expected
    assert cache.load_version_bytes(digest) is not None
    # 3. a sly corruption keeping size and mtime: `verify --cache` finds it (exit 1) and removes it
    victim_object = next(p for p, _ in cache._all_objects())
    st = victim_object.stat()
    os.chmod(victim_object, 0o644)
    data = bytearray(victim_object.read_bytes())
    data[0] ^= 0xFF
    victim_object.write_bytes(bytes(data))
    os.utime(victim_object, ns=(st.st_atime_ns, st.st_mtime_ns))
    result = stage.victim.run(
        "verify", "--cache", "--json", input_env={"MODELOPS_BUNDLE_CACHE": environ["MODELOPS_BUNDLE_CACHE"]}
    )
    assert result.exit_code == 1 and "corrupt-object" in {f["kind"] for f in result.json()["findings"]}
    assert tree_files(api.materialize(ref, environ=environ)) == expected
    trial.record(
        "integrity",
        "cache: object overwritten (mtime changes); cached index edited; object corrupted keeping size and mtime",
        "3 corruptions",
        "first two detected and refetched on use; the third found by `verify --cache` (exit 1), removed, refetched",
    )


def test_index_digests_that_do_not_match(stage: Stage, trial: Trial) -> None:
    backend = stage.backend()
    one, two = b"one\n" * 100, b"two\n" * 100
    cases = []
    # raw layer whose bytes are not the file the index names
    files, layers = raw_files(("data/x.txt", one))
    files[0]["digest"] = sha(two)
    cases.append(("raw file: index digest differs from the layer digest", files, layers, "does not match"))
    files, layers = raw_files(("data/x.txt", one))
    files[0]["size"] = len(one) + 1
    cases.append(("raw file: index size differs from the layer size", files, layers, "does not match"))
    info, blob = pack([(member("data/x.txt", two), two)])
    files = [file_entry("data/x.txt", one, info.tar_digest, size=len(two))]
    cases.append(
        (
            "packed file: member bytes differ from the index digest",
            files,
            [(pack_descriptor("data", info), blob)],
            "do not match",
        )
    )
    info, blob = pack([(member("data/x.txt", one), one)])
    wrong = pack_descriptor("data", info.__class__(sha(b"other tar"), info.tar_size, info.blob_digest, info.blob_size))
    files = [file_entry("data/x.txt", one, sha(b"other tar"))]
    cases.append(("pack: content digest annotation differs from the tar", files, [(wrong, blob)], "content digest"))
    files, layers = raw_files(("data/x.txt", one))
    files[0]["layer"] = sha(b"not a layer")
    cases.append(("index names a layer the manifest does not list", files, layers, "does not match manifest"))
    for title, files, layers, needle in cases:
        publish(backend, stage.repository, "evil", files, layers)
        stage.refused(needle=needle)
        trial.record(
            "integrity", title, "pull, ensure, materialize x2", "refused (exit 1 / IntegrityError); nothing placed"
        )


def test_manifest_config_that_is_not_a_bundle_index(stage: Stage, trial: Trial) -> None:
    backend = stage.backend()
    files, layers = raw_files(("data/x.txt", b"payload\n"))
    cases = [
        (
            "config is an OCI image config",
            {"config_media_type": "application/vnd.oci.image.config.v1+json"},
            "not a modelops bundle",
        ),
        ("artifactType of another tool", {"artifact_type": "application/vnd.example.other"}, "not a modelops bundle"),
        (
            "config bytes are another JSON document",
            {"index": b'{"architecture": "amd64", "os": "linux"}'},
            "unsupported index",
        ),
        ("config bytes are not JSON", {"index": b"\x1f\x8b\x08\x00garbage"}, "not valid JSON"),
        (
            "config is an index of a newer schema",
            {"index": json.dumps({"mediaType": INDEX_MEDIA_TYPE, "schemaVersion": 2, "files": files}).encode()},
            "unsupported index",
        ),
        ("config is a JSON array", {"index": b"[1, 2, 3]"}, "not a JSON object"),
    ]
    for title, overrides, needle in cases:
        publish(backend, stage.repository, "evil", files, layers, **overrides)  # type: ignore[arg-type]
        stage.refused(needle=needle)
        trial.record("integrity", f"manifest whose {title}", "pull, ensure, materialize x2", f"refused: '{needle}'")
