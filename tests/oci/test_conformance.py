"""The registry contract, run against both backends: the OCI layout and a real CNCF distribution."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from modelops_bundle.core.errors import IntegrityError, RegistryError
from modelops_bundle.core.registry import OCI_EMPTY, OCI_MANIFEST, BlobSource, RegistryBackend
from tests.oci.conftest import blob

Case = tuple[RegistryBackend, Callable[[str, str], Path]]


def manifest_for(config: BlobSource, *layers: BlobSource, note: str = "") -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.modelops.bundle.test.v1",
        "config": {
            "mediaType": "application/vnd.modelops.bundle.index.v1+json",
            "digest": config.digest,
            "size": config.size,
        },
        "layers": [
            {
                "mediaType": "application/octet-stream",
                "digest": layer.digest,
                "size": layer.size,
                "annotations": {"org.opencontainers.image.title": f"file{i}.bin"},
            }
            for i, layer in enumerate(layers)
        ],
        "annotations": {"org.example.note": note},
    }
    return json.dumps(document, sort_keys=True).encode()


class Progress:
    def __init__(self) -> None:
        self.files = 0
        self.nbytes = 0

    def start(self, total_files: int, total_bytes: int) -> None:
        pass

    def advance(self, files: int = 0, nbytes: int = 0) -> None:
        self.files += files
        self.nbytes += nbytes

    def close(self) -> None:
        pass


def test_put_blobs_skips_what_exists(backend_case: Case, repo: str) -> None:
    backend, _ = backend_case
    blobs = [blob(os.urandom(1000 + i)) for i in range(3)] + [blob(b"")]
    assert not backend.blob_exists(repo, blobs[0].digest)
    progress = Progress()
    first = backend.put_blobs(repo, blobs + blobs[:1], jobs=3, progress=progress)
    assert (first.uploaded_blobs, first.skipped_blobs) == (4, 0)
    assert progress.files == 4 and progress.nbytes == sum(b.size for b in blobs)
    assert all(backend.blob_exists(repo, b.digest) for b in blobs)
    second = backend.put_blobs(repo, blobs, jobs=3, progress=None)
    assert (second.uploaded_blobs, second.skipped_blobs, second.uploaded_bytes) == (0, 4, 0)
    assert backend.get_blob_bytes(repo, blobs[1].digest, blobs[1].size, limit=10_000) == blobs[1].open().read()


def test_large_blob_streams_both_ways_in_bounded_memory(backend_case: Case, repo: str, tmp_path: Path) -> None:
    backend, _ = backend_case
    source = tmp_path / "large.bin"
    hasher = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(source, "wb") as handle:
        for i in range(65):  # 65 MiB: above the 64 MiB chunking threshold
            piece = i.to_bytes(4, "big") + block[4:]
            hasher.update(piece)
            handle.write(piece)
    digest, size = "sha256:" + hasher.hexdigest(), 65 << 20
    large = BlobSource(digest, size, functools.partial(open, source, "rb"), "large.bin")

    tracemalloc.start()
    try:
        stats = backend.put_blobs(repo, [large], jobs=2, progress=None)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        target = tmp_path / "out" / "large.bin"
        pulled = backend.get_blobs_to_files(repo, [(digest, size, target)], jobs=2, progress=None)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.uploaded_bytes == size and pulled.downloaded_bytes == size
    if backend.name == "oci-distribution":
        assert stats.extra["chunked_blobs"] == 1
    assert upload_peak < 50 << 20, f"upload peaked at {upload_peak >> 20} MiB"
    assert download_peak < 50 << 20, f"download peaked at {download_peak >> 20} MiB"
    assert target.stat().st_size == size
    with open(target, "rb") as handle:
        assert hashlib.file_digest(handle, "sha256").hexdigest() == digest.split(":")[1]


def test_corrupt_blob_is_refused(backend_case: Case, repo: str, tmp_path: Path) -> None:
    backend, blob_file = backend_case
    good = blob(os.urandom(4096))
    backend.put_blobs(repo, [good], jobs=1, progress=None)
    stored = blob_file(repo, good.digest)
    data = bytearray(stored.read_bytes())
    data[100] ^= 0xFF
    stored.write_bytes(bytes(data))
    target = tmp_path / "pulled" / "file.bin"
    with pytest.raises(IntegrityError, match="does not match"):
        backend.get_blobs_to_files(repo, [(good.digest, good.size, target)], jobs=1, progress=None)
    assert not target.parent.exists() or not any(target.parent.iterdir()), "no partial file may remain"
    with pytest.raises(IntegrityError):
        backend.get_blob_bytes(repo, good.digest, good.size, limit=1 << 20)


def test_wrong_size_and_limits(backend_case: Case, repo: str, tmp_path: Path) -> None:
    backend, _ = backend_case
    item = blob(os.urandom(2048))
    backend.put_blobs(repo, [item], jobs=1, progress=None)
    with pytest.raises(IntegrityError):
        backend.get_blobs_to_files(repo, [(item.digest, item.size + 1, tmp_path / "x")], jobs=1, progress=None)
    with pytest.raises(RegistryError, match="limit"):
        backend.get_blob_bytes(repo, item.digest, None, limit=1000)
    missing = "sha256:" + "0" * 64
    with pytest.raises(RegistryError, match="not found"):
        backend.get_blob_bytes(repo, missing, None, limit=1000)
    with pytest.raises(IntegrityError, match="malformed digest"):
        backend.get_blob_bytes(repo, "sha256:../../etc/passwd", None, limit=1000)


def test_manifests_tags_and_resolution(backend_case: Case, repo: str) -> None:
    backend, _ = backend_case
    config, layer = blob(b'{"files": []}'), blob(os.urandom(512))
    backend.put_blobs(repo, [config, layer], jobs=2, progress=None)
    first = manifest_for(config, layer, note="one")
    digest = backend.put_manifest(repo, first, OCI_MANIFEST, "v1")
    assert digest == "sha256:" + hashlib.sha256(first).hexdigest()
    assert backend.resolve(repo, "v1") == digest
    assert backend.resolve(repo, digest) == digest
    record = backend.get_manifest(repo, "v1")
    assert (record.data, record.digest, record.media_type) == (first, digest, OCI_MANIFEST)
    assert backend.get_manifest(repo, digest).data == first

    second = manifest_for(config, layer, note="two")
    moved = backend.put_manifest(repo, second, OCI_MANIFEST, "v1")
    backend.put_manifest(repo, second, OCI_MANIFEST, "latest")
    assert backend.resolve(repo, "v1") == moved != digest
    assert backend.get_manifest(repo, digest).data == first, "an old version stays reachable by digest"
    untagged = backend.put_manifest(repo, manifest_for(config, note="three"), OCI_MANIFEST, None)
    assert backend.resolve(repo, untagged) == untagged
    assert backend.list_tags(repo) == ["latest", "v1"]


def test_unknown_names(backend_case: Case, repo: str) -> None:
    backend, _ = backend_case
    assert backend.resolve(repo, "nope") is None
    assert backend.resolve(repo, "sha256:" + "1" * 64) is None
    assert backend.list_tags(repo) == []
    with pytest.raises(RegistryError, match=r"manifest .*:nope not found"):
        backend.get_manifest(repo, "nope")
    with pytest.raises(RegistryError, match="invalid"):
        backend.resolve(repo, "bad tag!")


def test_manifest_size_limit(backend_case: Case, repo: str) -> None:
    backend, _ = backend_case
    with pytest.raises(RegistryError, match="limit"):
        backend.put_manifest(repo, b" " * (4 * 1024 * 1024 + 1), OCI_MANIFEST, "huge")


def test_empty_config_manifest(backend_case: Case, repo: str) -> None:
    backend, _ = backend_case
    empty = blob(b"{}")
    assert empty.digest == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    backend.put_blobs(repo, [empty], jobs=1, progress=None)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.modelops.bundle.test.v1",
        "config": {"mediaType": OCI_EMPTY, "digest": empty.digest, "size": 2, "data": "e30="},
        "layers": [{"mediaType": OCI_EMPTY, "digest": empty.digest, "size": 2}],
    }
    data = json.dumps(document).encode()
    digest = backend.put_manifest(repo, data, OCI_MANIFEST, "empty")
    assert backend.get_manifest(repo, "empty").digest == digest
