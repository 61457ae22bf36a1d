"""OCI-layout specifics: the on-disk format, concurrent tag moves, and damaged layouts."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from modelops_bundle.core.errors import RegistryError
from modelops_bundle.core.registry import OCI_INDEX, OCI_MANIFEST
from modelops_bundle.plugins.registry_layout import REF_NAME, OciLayoutRegistry
from tests.oci.conftest import blob
from tests.oci.test_conformance import manifest_for


@pytest.fixture
def layout(tmp_path: Path) -> OciLayoutRegistry:
    return OciLayoutRegistry({"path": str(tmp_path / "registry")})


def test_on_disk_format(layout: OciLayoutRegistry) -> None:
    config = blob(b'{"files": []}')
    layout.put_blobs("team/proj", [config], jobs=1, progress=None)
    first = layout.put_manifest("team/proj", manifest_for(config, note="1"), OCI_MANIFEST, "v1")
    second = layout.put_manifest("team/proj", manifest_for(config, note="2"), OCI_MANIFEST, "v1")
    layout.put_manifest("team/proj", manifest_for(config, note="2"), OCI_MANIFEST, "latest")
    folder = layout.root / "team" / "proj"
    assert json.loads((folder / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((folder / "index.json").read_text())
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    entries = [(d["digest"], (d.get("annotations") or {}).get(REF_NAME)) for d in index["manifests"]]
    assert sorted(entries, key=str) == sorted([(first, None), (second, "v1"), (second, "latest")], key=str)
    assert all(d["artifactType"] == "application/vnd.modelops.bundle.test.v1" for d in index["manifests"])
    assert (folder / "blobs" / "sha256" / second.split(":")[1]).is_file()
    assert not [p for p in folder.rglob("*.partial")]


def test_concurrent_pushes_keep_every_tag(layout: OciLayoutRegistry) -> None:
    config = blob(b'{"concurrent": true}')
    layout.put_blobs("race/repo", [config], jobs=1, progress=None)
    errors: list[BaseException] = []

    def push(worker: int) -> None:
        try:
            other = OciLayoutRegistry({"path": str(layout.root)})  # as if another process
            for i in range(4):
                data = manifest_for(config, note=f"{worker}-{i}")
                other.put_manifest("race/repo", data, OCI_MANIFEST, f"w{worker}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert layout.list_tags("race/repo") == sorted(f"w{w}-{i}" for w in range(8) for i in range(4))


def test_truncated_leftover_blob_is_rewritten(layout: OciLayoutRegistry) -> None:
    item = blob(os.urandom(10_000))
    path = layout.blob_path("fix/repo", item.digest)
    path.parent.mkdir(parents=True)
    path.write_bytes(item.open().read()[:5000])
    stats = layout.put_blobs("fix/repo", [item], jobs=1, progress=None)
    assert stats.uploaded_blobs == 1
    assert layout.get_blob_bytes("fix/repo", item.digest, item.size, limit=20_000) == item.open().read()


def test_damaged_layouts_are_clear_errors(layout: OciLayoutRegistry) -> None:
    config = blob(b'{"damaged": 1}')
    layout.put_blobs("bad/repo", [config], jobs=1, progress=None)
    digest = layout.put_manifest("bad/repo", manifest_for(config), OCI_MANIFEST, "v1")
    layout.blob_path("bad/repo", digest).unlink()
    with pytest.raises(RegistryError, match="manifest blob is missing"):
        layout.resolve("bad/repo", "v1")
    (layout.root / "bad" / "repo" / "index.json").write_text("{oops")
    with pytest.raises(RegistryError, match="not valid JSON"):
        layout.list_tags("bad/repo")
    with pytest.raises(RegistryError, match="invalid repository name"):
        layout.list_tags("../escape")


def test_missing_path_setting() -> None:
    with pytest.raises(RegistryError, match="needs a path"):
        OciLayoutRegistry({})
