"""Hostile versions: every one refused with a clear message, the working tree and state untouched."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle.core.index import INDEX_MEDIA_TYPE
from modelops_bundle.core.packaging import (
    ARTIFACT_TYPE,
    Descriptor,
    PackInfo,
    build_manifest,
    pack_descriptor,
    raw_layer_descriptor,
)
from modelops_bundle.core.registry import OCI_MANIFEST, BlobSource
from modelops_bundle.plugins.registry_layout import OciLayoutRegistry
from modelops_bundle.testing import BundleProject
from tests.bundle.conftest import ok, read_tree, state_of
from tests.support.indexes import file_entry, sha

REPO = "model"


def layout(project: BundleProject) -> OciLayoutRegistry:
    return OciLayoutRegistry({"path": project.env["MODELOPS_HOME"] + "/registry"})


def put(registry: OciLayoutRegistry, *blobs: bytes) -> None:
    sources = [BlobSource(sha(b), len(b), lambda b=b: io.BytesIO(b)) for b in blobs]  # type: ignore[misc]
    registry.put_blobs(REPO, sources, jobs=1, progress=None)


def publish(
    registry: OciLayoutRegistry,
    files: list[dict[str, Any]],
    layers: list[tuple[Descriptor, bytes]],
    *,
    tag: str = "evil",
    artifact_type: str = ARTIFACT_TYPE,
) -> None:
    index = json.dumps({"mediaType": INDEX_MEDIA_TYPE, "schemaVersion": 1, "files": files}).encode()
    put(registry, index, *(data for _, data in layers))
    config = Descriptor(INDEX_MEDIA_TYPE, sha(index), len(index))
    manifest = json.loads(build_manifest(config, [d for d, _ in layers], {}))
    manifest["artifactType"] = artifact_type
    registry.put_manifest(REPO, json.dumps(manifest).encode(), OCI_MANIFEST, tag)


def raw_version(path: str, data: bytes, **changes: Any) -> tuple[list[dict[str, Any]], list[tuple[Descriptor, bytes]]]:
    return [file_entry(path, data, sha(data), **changes)], [(raw_layer_descriptor(path, sha(data), len(data)), data)]


def pack_of(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> tuple[PackInfo, bytes]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    tar_bytes = raw.getvalue()
    blob = gzip.compress(tar_bytes, mtime=0)
    return PackInfo(sha(tar_bytes), len(tar_bytes), sha(blob), len(blob)), blob


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname, info.mode = len(data), kind, link, 0o644
    return info


@pytest.fixture
def victim(project: BundleProject, clone: Callable[[str], BundleProject]) -> BundleProject:
    """A clone that pulled the project's first version: the working tree a hostile pull must not harm."""
    ok(project.run("push", "--json"))
    other = clone("victim")
    ok(other.run("pull", "--json"))
    return other


def observable(victim: BundleProject, snapshot: Callable[[Path], Any]) -> Any:
    """The working tree (with mtimes) and the project's metadata files; caches and staging are not state."""
    tree = {
        rel: entry
        for rel, entry in snapshot(victim.root).items()
        if rel != ".modelops-bundle" and not rel.startswith((".modelops-bundle/cache", ".modelops-bundle/staging"))
    }
    return tree, state_of(victim), victim.tracked()


def refused(victim: BundleProject, snapshot: Callable[[Path], Any], *args: str) -> str:
    before = observable(victim, snapshot)
    result = victim.run("pull", "--ref", "evil", *args)
    assert result.exit_code != 0, result
    assert observable(victim, snapshot) == before
    assert not list((victim.meta / "staging").glob("*")) if (victim.meta / "staging").exists() else True
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../escape.txt", "'..'"),
        ("/tmp/abs.txt", "absolute path"),
        ("data/a\x1b.csv", "control character"),
        (".git/hooks/post-checkout", ".git"),
        (".modelops-bundle/state.json", "project metadata"),
    ],
)
def test_hostile_paths(victim: BundleProject, snapshot: Callable[[Path], Any], path: str, message: str) -> None:
    files, layers = raw_version(path, b"evil\n")
    publish(layout(victim), files, layers)
    assert message in refused(victim, snapshot)


def test_duplicate_paths(victim: BundleProject, snapshot: Callable[[Path], Any]) -> None:
    files, layers = raw_version("data/x.txt", b"one")
    publish(layout(victim), files + files, layers)
    assert "duplicate path" in refused(victim, snapshot)


def test_symlink_escape_in_the_destination(
    victim: BundleProject, snapshot: Callable[[Path], Any], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, victim.root / "linked")
    files, layers = raw_version("linked/payload.sh", b"#!/bin/sh\n")
    publish(layout(victim), files, layers)
    assert "symlink" in refused(victim, snapshot)
    assert list(outside.iterdir()) == []


def test_not_our_artifact(victim: BundleProject, snapshot: Callable[[Path], Any]) -> None:
    files, layers = raw_version("data/x.txt", b"one")
    publish(layout(victim), files, layers, artifact_type="application/vnd.example.other")
    assert "not a modelops bundle" in refused(victim, snapshot)


def test_index_not_matching_manifest(victim: BundleProject, snapshot: Callable[[Path], Any]) -> None:
    files, layers = raw_version("data/x.txt", b"one")
    files[0]["layer"] = sha(b"another layer")
    publish(layout(victim), files, layers)
    assert "does not match manifest" in refused(victim, snapshot)
    files, layers = raw_version("data/x.txt", b"one", size=4)
    publish(layout(victim), files, layers)
    assert "does not match manifest" in refused(victim, snapshot)


def test_corrupted_blob(project: BundleProject, victim: BundleProject, snapshot: Callable[[Path], Any]) -> None:
    project.write("data/a.csv", "new content\n")
    pushed = ok(project.run("push", "--tag", "evil", "--json"))
    registry = layout(victim)
    manifest = json.loads(registry.get_manifest(REPO, pushed["digest"]).data)
    pack = next(
        layer for layer in manifest["layers"] if layer["annotations"].get("org.opencontainers.image.title") == "data"
    )
    path = registry.blob_path(REPO, pack["digest"])
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    message = refused(victim, snapshot)
    assert pack["digest"] in message


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([(member("data/x.txt", b"one"), b"one"), (member("data/extra.txt", b"2"), b"2")], "unexpected member"),
        ([(member("data/x.txt", kind=tarfile.SYMTYPE, link="/etc/passwd"), None)], "not a regular file"),
        ([(member("data/x.txt", b"one"), b"one"), (member("data/x.txt", b"one"), b"one")], "unexpected member"),
        ([(member("data/x.txt", b"two"), b"two")], "do not match"),
    ],
)
def test_hostile_pack_members(
    victim: BundleProject,
    snapshot: Callable[[Path], Any],
    members: list[tuple[tarfile.TarInfo, bytes | None]],
    message: str,
) -> None:
    info, blob = pack_of(members)
    files = [file_entry("data/x.txt", b"one", info.tar_digest)]
    publish(layout(victim), files, [(pack_descriptor("data", info), blob)])
    assert message in refused(victim, snapshot)


def test_hostile_version_through_ensure(victim: BundleProject, tmp_path: Path) -> None:
    files, layers = raw_version("../escape.txt", b"evil\n")
    publish(layout(victim), files, layers)
    result = victim.run("ensure", "--dest", str(tmp_path / "dest"), "--ref", "evil")
    assert result.exit_code == 1 and "'..'" in result.stderr
    assert not (tmp_path / "escape.txt").exists()


def test_unknown_tag_and_digest(victim: BundleProject, snapshot: Callable[[Path], Any]) -> None:
    before = observable(victim, snapshot)
    for ref in ("nope", "sha256:" + "0" * 64):
        result = victim.run("pull", "--ref", ref)
        assert result.exit_code == 1 and "not found" in result.stderr
    assert observable(victim, snapshot) == before
    assert read_tree(victim.root)
