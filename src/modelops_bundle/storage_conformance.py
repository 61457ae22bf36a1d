"""A conformance suite every storage provider must pass, reusable by third-party providers.

Subclass :class:`StorageProviderConformance` in a test module (its name must start with ``Test`` so that
pytest collects it) and provide a ``provider`` fixture: a ready :class:`StorageProvider` whose
container/bucket exists and is writable. The failure checks come as mixins, one per failure a provider
can meet; add each that applies to your store and provide its fixture (a check is never skipped: a
store that cannot meet a failure simply does not include its mixin):

:class:`PermissionDeniedChecks` -- fixture ``denied_provider``
    the same store with credentials it refuses (wrong key, no permission);
:class:`ServerGoneChecks` -- fixture ``dead_provider``
    the same provider pointed at an endpoint where nothing listens;
:class:`MissingContainerChecks` -- fixture ``missing_container_provider``
    the same store with a container/bucket that does not exist.

:class:`FullConformance` combines all four, for a provider that talks to a service.

Example -- a provider ``mystore`` from a plugin, against a server the test session starts::

    import pytest

    from modelops_bundle.plugin import StorageProvider
    from modelops_bundle.testing import FullConformance, open_provider
    from mops_mystore import plugin


    def make(url: str, bucket: str, key: str = "right") -> StorageProvider:
        # as a push opens it: by name among the plugins, from an environment's storage: section
        return open_provider("mystore", plugins=[("mystore", plugin)], endpoint=url, container=bucket,
                             access_key=key)


    class TestMyStore(FullConformance):
        big_file_bytes = 96 * 1024 * 1024  # keep the suite quick; the default is 256 MiB

        @pytest.fixture
        def provider(self, mystore_server):
            return make(mystore_server.url, "bundles")

        @pytest.fixture
        def denied_provider(self, mystore_server):
            return make(mystore_server.url, "bundles", key="wrong")

        @pytest.fixture
        def dead_provider(self):
            return make("http://127.0.0.1:9", "bundles")

        @pytest.fixture
        def missing_container_provider(self, mystore_server):
            return make(mystore_server.url, "no-such-bucket")

The big-file check streams a sparse file of :attr:`big_file_bytes` (``MOPS_STORAGE_BIG_FILE_MB``
overrides it) up and down and fails when the process's peak resident memory grows by more than
:attr:`max_memory_growth_bytes` -- a provider that reads whole files into memory fails it.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from modelops_bundle.core.errors import IntegrityError, StorageError
from modelops_bundle.core.storage import BlobDownload, BlobPointer, BlobUpload, StorageProvider, blob_key

MIB = 1024 * 1024

__all__ = ["MemoryPeak", "StorageProviderConformance", "measure_peak_memory", "write_random_file", "write_sparse_file"]


# ------------------------------------------------------------------------------------------ helpers


def write_random_file(path: Path, size: int) -> str:
    """A file of ``size`` random bytes; returns its ``sha256:`` digest."""
    data = os.urandom(size)
    path.write_bytes(data)
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_sparse_file(path: Path, size: int, *, every: int = 16 * MIB) -> str:
    """A ``size``-byte file that is mostly a hole, with 64 KiB of random bytes every ``every`` bytes and at
    both ends (so its digest is unique); returns its ``sha256:`` digest. Cheap to create at any size."""
    marks = sorted({0, max(0, size - 65536), *range(every, size, every)})
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset in marks:
            handle.seek(offset)
            handle.write(os.urandom(min(65536, size - offset)))
    return file_digest(path)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


@dataclass
class MemoryPeak:
    """Peak memory growth seen during a :func:`measure_peak_memory` block, and how it was measured."""

    growth: int = 0
    rss_growth: int | None = None
    python_growth: int = 0

    @property
    def method(self) -> str:
        rss = "n/a" if self.rss_growth is None else f"{self.rss_growth >> 20} MiB"
        return f"resident {rss}, Python allocations {self.python_growth >> 20} MiB"


def _status_kib(field_name: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.M)
    if match is None:
        raise OSError(f"no {field_name} in /proc/self/status")
    return int(match.group(1))


def _reset_rss_peak() -> int | None:
    """Reset the kernel's high-water mark of resident memory (Linux); the current RSS in KiB, or None."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kib("VmRSS")
    except OSError:
        return None


@contextmanager
def measure_peak_memory() -> Iterator[MemoryPeak]:
    """Peak memory growth of this process during the block, by two measures; ``growth`` is the larger.

    Resident memory (Linux: the kernel's high-water mark, reset first) sees buffers SDKs allocate
    outside Python, but not memory the allocator had already taken and reuses; :mod:`tracemalloc` sees
    every Python allocation, however the heap was used before -- a whole file read into a ``bytes``
    cannot hide from it.
    """
    peak = MemoryPeak()
    already_tracing = tracemalloc.is_tracing()
    if not already_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        rss_before = _reset_rss_peak()
        yield peak
        if rss_before is not None:
            peak.rss_growth = max(0, _status_kib("VmHWM") - rss_before) * 1024
        peak.python_growth = max(0, tracemalloc.get_traced_memory()[1] - base)
        peak.growth = max(peak.python_growth, peak.rss_growth or 0)
    finally:
        if not already_tracing:
            tracemalloc.stop()


@dataclass
class RecordingProgress:
    """A transfer progress sink that remembers what it was told."""

    started: list[tuple[int, int]] = field(default_factory=list)
    files: int = 0
    nbytes: int = 0
    closed: bool = False

    def start(self, total_files: int, total_bytes: int) -> None:
        self.started.append((total_files, total_bytes))

    def advance(self, files: int = 0, nbytes: int = 0) -> None:
        self.files += files
        self.nbytes += nbytes

    def close(self) -> None:
        self.closed = True


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    """Names in ``folder`` other than ``keep``: partial files a failed download must not leave."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def _timed_failure(action: Callable[[], object]) -> tuple[BaseException, float]:
    """The :class:`StorageError` ``action`` raises, and how long it took to come."""
    start = time.monotonic()
    try:
        action()
    except StorageError as exc:
        return exc, time.monotonic() - start
    raise AssertionError(f"expected a StorageError, {action} succeeded")


# ---------------------------------------------------------------------------------------------- suite


class StorageProviderConformance:
    """The checks. Subclass it and provide the ``provider`` fixture (see the module docstring)."""

    #: Size of the streamed file. Moderate sizes keep the suite quick; the point is "bigger than the
    #: memory budget", not "big".
    big_file_bytes: ClassVar[int] = int(os.environ.get("MOPS_STORAGE_BIG_FILE_MB", "256")) * MIB
    #: Largest acceptable growth of peak memory while streaming it (``None`` disables the check, e.g.
    #: for an in-memory store, where holding the bytes is the point).
    max_memory_growth_bytes: ClassVar[int | None] = 64 * MIB

    # --------------------------------------------------------------------------------- basics

    def test_put_exists_get(self, provider: StorageProvider, tmp_path: Path) -> None:
        source = tmp_path / "source.bin"
        digest = write_random_file(source, 300_000)
        key = blob_key(provider.prefix, digest)
        assert not provider.exists(key)
        assert provider.put_file(key, source, 300_000) is True
        assert provider.exists(key)
        out = tmp_path / "out"
        out.mkdir()
        provider.get_to_file(key, out / "copy.bin", 300_000, digest)
        assert (out / "copy.bin").read_bytes() == source.read_bytes()
        assert leftovers(out, {"copy.bin"}) == []

    def test_empty_file(self, provider: StorageProvider, tmp_path: Path) -> None:
        source = tmp_path / "empty"
        source.write_bytes(b"")
        digest = "sha256:" + hashlib.sha256(b"").hexdigest()
        key = blob_key(provider.prefix, digest)
        provider.put_file(key, source, 0)
        assert provider.exists(key)
        provider.get_to_file(key, tmp_path / "copy", 0, digest)
        assert (tmp_path / "copy").read_bytes() == b""

    def test_skips_existing_object(self, provider: StorageProvider, tmp_path: Path) -> None:
        source = tmp_path / "once.bin"
        digest = write_random_file(source, 50_000)
        key = blob_key(provider.prefix, digest)
        assert provider.put_file(key, source, 50_000) is True
        assert provider.put_file(key, source, 50_000) is False
        stats = provider.upload_many([BlobUpload(source, digest, 50_000), BlobUpload(source, digest, 50_000)])
        assert (stats.uploaded_blobs, stats.skipped_blobs) == (0, 1)

    def test_pointer_round_trip(self, provider: StorageProvider) -> None:
        digest = "sha256:" + hashlib.sha256(b"pointer").hexdigest()
        pointer = provider.pointer(digest, 7)
        assert pointer == BlobPointer.from_dict(pointer.to_dict())
        assert provider.parse_uri(pointer.uri) == blob_key(provider.prefix, digest)
        assert pointer.uri.endswith(blob_key("", digest))
        with pytest.raises(StorageError):
            provider.parse_uri("nosuchscheme://elsewhere/" + blob_key("", digest))

    def test_many_concurrent_transfers(self, provider: StorageProvider, tmp_path: Path) -> None:
        sizes = [1, 1000, 70_000, 300_000, 1_200_000, 2 * MIB + 3]
        uploads = []
        for index, size in enumerate(sizes):
            path = tmp_path / f"in-{index}.bin"
            uploads.append(BlobUpload(path, write_random_file(path, size), size, label=path.name))
        progress = RecordingProgress()
        stats = provider.upload_many(uploads, jobs=3, progress=progress)
        assert stats.uploaded_blobs == len(sizes) and stats.uploaded_bytes == sum(sizes)
        assert progress.started == [(len(sizes), sum(sizes))]
        assert (progress.files, progress.nbytes, progress.closed) == (len(sizes), sum(sizes), True)

        out = tmp_path / "out"
        downloads = [BlobDownload(provider.pointer(u.digest, u.size), out / u.path.name) for u in uploads]
        progress = RecordingProgress()
        stats = provider.download_many(downloads, jobs=3, progress=progress)
        assert stats.downloaded_blobs == len(sizes) and stats.downloaded_bytes == sum(sizes)
        assert (progress.files, progress.nbytes) == (len(sizes), sum(sizes))
        for upload in uploads:
            assert (out / upload.path.name).read_bytes() == upload.path.read_bytes()
        assert leftovers(out, {u.path.name for u in uploads}) == []

    # ------------------------------------------------------------------------------ streaming

    def test_large_file_streams_with_bounded_memory(self, provider: StorageProvider, tmp_path: Path) -> None:
        # Warm up first: SDK imports, clients and connection pools are a one-off cost, not streaming.
        warm = tmp_path / "warm.bin"
        warm_digest = write_random_file(warm, 1000)
        warm_key = blob_key(provider.prefix, warm_digest)
        provider.put_file(warm_key, warm, 1000)
        provider.get_to_file(warm_key, tmp_path / "warm.out", 1000, warm_digest)

        size = self.big_file_bytes
        source = tmp_path / "big.bin"
        digest = write_sparse_file(source, size)
        key = blob_key(provider.prefix, digest)
        with measure_peak_memory() as upload:
            assert provider.put_file(key, source, size) is True
        dest = tmp_path / "big.out"
        with measure_peak_memory() as download:
            provider.get_to_file(key, dest, size, digest)
        assert dest.stat().st_size == size
        assert file_digest(dest) == digest
        limit = self.max_memory_growth_bytes
        if limit is not None:
            assert upload.growth < limit, f"upload of {size >> 20} MiB grew memory: {upload.method}"
            assert download.growth < limit, f"download of {size >> 20} MiB grew memory: {download.method}"

    # ---------------------------------------------------------------------------- verification

    def test_corrupt_object_is_rejected(self, provider: StorageProvider, tmp_path: Path) -> None:
        good = tmp_path / "good.bin"
        digest = write_random_file(good, 40_000)
        bad = tmp_path / "bad.bin"
        write_random_file(bad, 40_000)
        key = blob_key(provider.prefix, digest)
        provider.put_file(key, bad, 40_000)  # other bytes of the same size under good's key

        out = tmp_path / "out"
        out.mkdir()
        (out / "data.bin").write_bytes(b"previous content")
        with pytest.raises(IntegrityError) as caught:
            provider.get_to_file(key, out / "data.bin", 40_000, digest)
        message = str(caught.value)
        assert provider.name in message and key in message
        assert (out / "data.bin").read_bytes() == b"previous content"
        assert leftovers(out, {"data.bin"}) == []

    def test_wrong_size_is_rejected(self, provider: StorageProvider, tmp_path: Path) -> None:
        good = tmp_path / "good.bin"
        digest = write_random_file(good, 20_000)
        short = tmp_path / "short.bin"
        write_random_file(short, 19_999)
        key = blob_key(provider.prefix, digest)
        provider.put_file(key, short, 19_999)
        with pytest.raises(IntegrityError) as caught:
            provider.get_to_file(key, tmp_path / "out.bin", 20_000, digest)
        assert key in str(caught.value)
        assert not (tmp_path / "out.bin").exists()
        assert provider.put_file(key, good, 20_000) is True  # a wrong-size object is replaced, not skipped

    def test_missing_object(self, provider: StorageProvider, tmp_path: Path) -> None:
        digest = "sha256:" + hashlib.sha256(os.urandom(32)).hexdigest()
        key = blob_key(provider.prefix, digest)
        assert provider.exists(key) is False
        with pytest.raises(StorageError) as caught:
            provider.get_to_file(key, tmp_path / "missing.bin", 10, digest)
        assert not isinstance(caught.value, IntegrityError)
        assert key in str(caught.value) and provider.name in str(caught.value)
        assert leftovers(tmp_path, set()) == []


class PermissionDeniedChecks:
    """Failure check for a store that can refuse access; provide the ``denied_provider`` fixture."""

    def test_permission_denied(self, denied_provider: StorageProvider, tmp_path: Path) -> None:
        source = tmp_path / "denied.bin"
        digest = write_random_file(source, 1000)
        key = blob_key(denied_provider.prefix, digest)
        with pytest.raises(StorageError) as caught:
            denied_provider.put_file(key, source, 1000)
        message = str(caught.value)
        assert denied_provider.name in message
        assert re.search(r"denied|forbidden|permission", message, re.I), message
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(StorageError):
            denied_provider.get_to_file(key, out / "x.bin", 1000, digest)
        assert leftovers(out, set()) == []


class ServerGoneChecks:
    """Failure check for a provider that talks to a service; provide the ``dead_provider`` fixture."""

    #: How long a failure against a dead endpoint may take, retries included.
    dead_endpoint_seconds: ClassVar[float] = 20.0

    def test_server_gone_fails_quickly(self, dead_provider: StorageProvider, tmp_path: Path) -> None:
        digest = "sha256:" + hashlib.sha256(b"gone").hexdigest()
        key = blob_key(dead_provider.prefix, digest)
        checks: dict[str, Callable[[], object]] = {
            "exists": lambda: dead_provider.exists(key),
            "download": lambda: dead_provider.get_to_file(key, tmp_path / "x.bin", 4, digest),
        }
        # Both at once: each is timed on its own, the test waits only for the slower one.
        with ThreadPoolExecutor(max_workers=len(checks)) as pool:
            futures = {name: pool.submit(_timed_failure, check) for name, check in checks.items()}
            results = {name: future.result() for name, future in futures.items()}
        for name, (error, elapsed) in results.items():
            assert elapsed < self.dead_endpoint_seconds, f"{name} took {elapsed:.1f}s against a dead endpoint"
            assert dead_provider.name in str(error) and not isinstance(error, IntegrityError), str(error)
        assert leftovers(tmp_path, set()) == []


class MissingContainerChecks:
    """Failure check for a store whose container/bucket must exist; provide ``missing_container_provider``."""

    def test_missing_container(self, missing_container_provider: StorageProvider, tmp_path: Path) -> None:
        provider = missing_container_provider
        source = tmp_path / "orphan.bin"
        digest = write_random_file(source, 1000)
        with pytest.raises(StorageError) as caught:
            provider.put_file(blob_key(provider.prefix, digest), source, 1000)
        message = str(caught.value)
        assert provider.name in message and str(provider.settings.container) in message
        assert "does not exist" in message or "not found" in message


class FullConformance(StorageProviderConformance, PermissionDeniedChecks, ServerGoneChecks, MissingContainerChecks):
    """Every check: for a provider backed by a service (object stores)."""
