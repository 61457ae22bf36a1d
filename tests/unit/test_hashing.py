"""core/hashing.py and the built-in sha256 plugin: digests, the stat cache, hashing on threads."""

from __future__ import annotations

import array
import base64
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from modelops_bundle.core.errors import BundleError, ConfigError, IntegrityError
from modelops_bundle.core.hashing import (
    CACHE_VERSION,
    RACY_MARGIN_NS,
    HashJob,
    StatCache,
    format_digest,
    hash_files,
    resolve_hasher,
    signature,
    split_digest,
)
from modelops_bundle.core.memo import Memo, file_fingerprint
from modelops_bundle.core.plugins import build_plugin_host
from modelops_bundle.plugins.hashing_sha256 import Sha256Hasher, mops_file_hasher


def _old(path: Path, seconds: float = 10) -> os.stat_result:
    past = time.time() - seconds
    os.utime(path, (past, past))
    return os.stat(path)


# ------------------------------------------------------------------------------------ digests


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024 - 1, 1024 * 1024, 3 * 1024 * 1024 + 17])
def test_sha256_digest_equals_hashlib(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    hasher = Sha256Hasher()
    assert hasher.digest_file(str(path)) == hashlib.sha256(data).hexdigest()
    assert hasher.digest_bytes(data) == hashlib.sha256(data).hexdigest()


def test_builtin_plugin_answers_only_for_sha256() -> None:
    assert isinstance(mops_file_hasher(algorithm="sha256"), Sha256Hasher)
    assert mops_file_hasher(algorithm="md5") is None


def test_resolve_hasher_through_the_plugin_manager() -> None:
    host = build_plugin_host({"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert resolve_hasher(host.hook, "sha256").algorithm == "sha256"
    with pytest.raises(ConfigError, match="'blake3'"):
        resolve_hasher(host.hook, "blake3")


def test_digest_format_round_trip() -> None:
    digest = format_digest("sha256", "ab" * 32)
    assert digest == "sha256:" + "ab" * 32
    assert split_digest(digest) == ("sha256", "ab" * 32)
    for bad in ("nocolon", ":abc", "sha256:"):
        with pytest.raises(IntegrityError):
            split_digest(bad)


# ---------------------------------------------------------------------------------- stat cache


def test_stat_cache_hit_after_save_and_load(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("hello")
    st = _old(path)
    cache_path = tmp_path / "cache" / "stat-cache.json"
    cache = StatCache(cache_path)
    cache.store("f.txt", st, "deadbeef")
    cache.save()
    reloaded = StatCache.load(cache_path)
    assert reloaded.lookup("f.txt", os.stat(path)) == "deadbeef"
    assert reloaded.lookup("other.txt", os.stat(path)) is None


def test_stat_cache_miss_on_size_change(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("hello")
    st = _old(path)
    cache = StatCache(tmp_path / "c.json")
    cache.store("f.txt", st, "d")
    path.write_text("hello world")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime, other size
    assert cache.lookup("f.txt", os.stat(path)) is None


def test_stat_cache_miss_on_mtime_change(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("hello")
    st = _old(path)
    cache = StatCache(tmp_path / "c.json")
    cache.store("f.txt", st, "d")
    path.write_text("HELLO")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert cache.lookup("f.txt", os.stat(path)) is None


def test_stat_cache_miss_on_inode_change(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("hello")
    st = _old(path)
    cache = StatCache(tmp_path / "c.json")
    cache.store("f.txt", st, "d")
    replacement = tmp_path / "g.txt"
    replacement.write_text("HELLO")
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, path)  # same size and mtime, new inode
    new = os.stat(path)
    assert (new.st_size, new.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert new.st_ino != st.st_ino
    assert cache.lookup("f.txt", new) is None


def test_racy_clean_entries_are_smudged_on_save(tmp_path: Path) -> None:
    """A file modified within the racy window of the scan is re-hashed next time (git's rule)."""
    fresh, old = tmp_path / "fresh.txt", tmp_path / "old.txt"
    fresh.write_text("new")
    old.write_text("old")
    old_st = _old(old, seconds=(RACY_MARGIN_NS / 1e9) + 5)
    cache_path = tmp_path / "c.json"
    cache = StatCache(cache_path)
    cache.store("fresh.txt", os.stat(fresh), "f")
    cache.store("old.txt", old_st, "o")
    assert cache.lookup("fresh.txt", os.stat(fresh)) == "f"  # in memory it is still trusted
    cache.save()
    reloaded = StatCache.load(cache_path)
    assert reloaded.lookup("fresh.txt", os.stat(fresh)) is None
    assert reloaded.lookup("old.txt", os.stat(old)) == "o"
    raw = json.loads(cache_path.read_text())
    sizes = array.array("q", base64.b64decode(raw["signatures"]))[2::4]
    stored = dict(zip(raw["paths"], sizes, strict=True))
    assert stored["fresh.txt"] == -1
    assert stored["old.txt"] == old_st.st_size


def test_a_cache_of_the_earlier_format_is_still_read(tmp_path: Path) -> None:
    """Version 1 kept entries as an object of lists; reading it spares a full re-hash after an upgrade."""
    path = tmp_path / "a.txt"
    path.write_text("a")
    st = _old(path, seconds=10)
    cache_path = tmp_path / "c.json"
    entry = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, "ab" * 32]
    cache_path.write_text(json.dumps({"version": 1, "algorithm": "sha256", "entries": {"a.txt": entry, "b": [1]}}))
    loaded = StatCache.load(cache_path)
    assert loaded.lookup("a.txt", os.stat(path)) == "ab" * 32
    assert set(loaded.entries) == {"a.txt"}


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw.update(paths=raw["paths"][1:]),
        lambda raw: raw.update(signatures="!!"),
        lambda raw: raw["digests"].__setitem__(0, 12),
        lambda raw: raw.pop("digests"),
    ],
)
def test_a_damaged_columnar_cache_is_discarded(tmp_path: Path, damage: Any) -> None:
    path = tmp_path / "a.txt"
    path.write_text("a")
    cache_path = tmp_path / "c.json"
    cache = StatCache(cache_path)
    cache.store("a.txt", _old(path, seconds=10), "ab" * 32)
    cache.save()
    raw = json.loads(cache_path.read_text())
    damage(raw)
    cache_path.write_text(json.dumps(raw))
    assert StatCache.load(cache_path).entries == {}


@pytest.mark.parametrize(
    "content",
    [
        b"not json at all",
        b"",
        b"[]",
        json.dumps({"version": CACHE_VERSION + 1, "algorithm": "sha256", "entries": {"f.txt": []}}).encode(),
        json.dumps({"version": CACHE_VERSION, "algorithm": 5, "entries": {}}).encode(),
        json.dumps({"version": CACHE_VERSION, "algorithm": "sha256", "entries": []}).encode(),
    ],
)
def test_corrupt_or_foreign_cache_is_discarded(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "stat-cache.json"
    path.write_bytes(content)
    cache = StatCache.load(path)
    assert cache.entries == {}
    assert cache.algorithm == "sha256"


def test_missing_cache_is_empty(tmp_path: Path) -> None:
    cache = StatCache.load(tmp_path / "nope.json")
    assert cache.entries == {} and not cache.dirty


def test_cache_entries_of_the_wrong_shape_are_never_trusted(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("x")
    st = _old(path)
    cache = StatCache(tmp_path / "c.json")
    cache.entries = {"f.txt": [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, 12345]}
    assert cache.lookup("f.txt", st) is None  # digest is not a string
    cache.entries = {"f.txt": [st.st_dev, st.st_ino, st.st_size]}
    assert cache.lookup("f.txt", st) is None


def test_cache_entry_that_is_not_a_list_is_discarded_not_a_crash(tmp_path: Path) -> None:
    """A hand-broken cache (``"entries": {"f.txt": 5}``) must be discarded, never crash a command.

    Today ``StatCache.lookup`` calls ``len(5)`` and raises ``TypeError``.
    """
    path = tmp_path / "f.txt"
    path.write_text("x")
    st = _old(path)
    cache_path = tmp_path / "c.json"
    cache_path.write_text(json.dumps({"version": CACHE_VERSION, "algorithm": "sha256", "entries": {"f.txt": 5}}))
    cache = StatCache.load(cache_path)
    assert cache.lookup("f.txt", st) is None


def test_algorithm_switch_drops_every_digest(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("x")
    st = _old(path)
    cache_path = tmp_path / "c.json"
    cache = StatCache(cache_path)
    cache.store("f.txt", st, "d")
    cache.save()
    reloaded = StatCache.load(cache_path)
    reloaded.use_algorithm("sha256")
    assert reloaded.lookup("f.txt", st) == "d" and not reloaded.dirty
    reloaded.use_algorithm("sha512")
    assert reloaded.lookup("f.txt", st) is None
    assert reloaded.dirty
    reloaded.save()
    assert json.loads(cache_path.read_text())["algorithm"] == "sha512"
    assert StatCache.load(cache_path).entries == {}


def test_forget_drops_untracked_entries(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("x")
    st = os.stat(path)
    cache = StatCache(tmp_path / "c.json")
    cache.store("a", st, "1")
    cache.store("b", st, "2")
    cache.dirty = False
    cache.forget(["a"])
    assert set(cache.entries) == {"a"} and cache.dirty


def test_save_without_changes_writes_nothing(tmp_path: Path) -> None:
    cache_path = tmp_path / "c.json"
    StatCache(cache_path).save()
    assert not cache_path.exists()


def test_memo_is_keyed_by_fingerprint(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "memo.json")
    memo.put("k", [1, 2], {"v": 1})
    assert memo.get("k", [1, 2]) == {"v": 1}
    assert memo.get("k", [1, 3]) is None
    assert memo.get("other", [1, 2]) is None


def test_file_fingerprint_changes_on_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert file_fingerprint(path) is None
    path.write_text("a")
    first = file_fingerprint(path)
    path.write_text("bb")
    assert file_fingerprint(path) != first


def test_signature_is_dev_ino_size_mtime(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("abc")
    st = os.stat(path)
    assert signature(st) == (st.st_dev, st.st_ino, 3, st.st_mtime_ns)


# ------------------------------------------------------------------------------ hash_files


def _jobs(tmp_path: Path, count: int, size: int = 1000) -> tuple[list[HashJob], dict[str, bytes]]:
    jobs, data = [], {}
    for index in range(count):
        rel = f"f{index}.bin"
        content = os.urandom(size + index)
        (tmp_path / rel).write_bytes(content)
        jobs.append(HashJob(rel, str(tmp_path / rel), len(content)))
        data[rel] = content
    return jobs, data


class RecordingProgress:
    def __init__(self) -> None:
        self.started: tuple[int, int] | None = None
        self.files = 0
        self.bytes = 0
        self.closed = False

    def start(self, total_files: int, total_bytes: int) -> None:
        self.started = (total_files, total_bytes)

    def advance(self, files: int = 0, nbytes: int = 0) -> None:
        self.files += files
        self.bytes += nbytes

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("threads", [1, 4])
def test_hash_files_digests_every_job(tmp_path: Path, threads: int) -> None:
    jobs, data = _jobs(tmp_path, 12)
    results: dict[str, str] = {}
    progress = RecordingProgress()

    def done(job: HashJob, st: os.stat_result, hexdigest: str) -> None:
        assert st.st_size == job.size
        results[job.rel] = hexdigest

    hash_files(jobs, Sha256Hasher(), threads=threads, on_done=done, progress=progress)
    assert results == {rel: hashlib.sha256(content).hexdigest() for rel, content in data.items()}
    total = sum(len(c) for c in data.values())
    assert progress.started == (12, total) and progress.files == 12 and progress.bytes == total
    assert progress.closed


def test_hash_files_uses_several_threads_for_large_files(tmp_path: Path) -> None:
    from modelops_bundle.core.hashing import SMALL_FILE_BYTES

    jobs, _ = _jobs(tmp_path, 6, size=SMALL_FILE_BYTES)
    seen: set[int] = set()

    class SlowHasher(Sha256Hasher):
        def digest_bytes(self, data: bytes) -> str:  # under 1 MiB a file is read in one go
            seen.add(threading.get_ident())
            time.sleep(0.05)
            return super().digest_bytes(data)

    hash_files(jobs, SlowHasher(), threads=3, on_done=lambda *a: None)
    assert len(seen) >= 2
    assert threading.get_ident() not in seen  # the work ran on worker threads


def test_small_files_are_hashed_on_the_calling_thread_while_large_ones_use_workers(tmp_path: Path) -> None:
    """Small files are Python overhead under the GIL: a second thread would only add hand-offs."""
    from modelops_bundle.core.hashing import SMALL_FILE_BYTES

    small, small_data = _jobs(tmp_path, 20, size=100)
    (tmp_path / "big").mkdir()
    large, large_data = _jobs(tmp_path / "big", 2, size=SMALL_FILE_BYTES)
    threads_of: dict[str, int] = {}

    class Recording(Sha256Hasher):
        def digest_bytes(self, data: bytes) -> str:
            threads_of[hashlib.sha256(data).hexdigest()] = threading.get_ident()
            return super().digest_bytes(data)

        def digest_fileobj(self, handle: BinaryIO) -> str:
            result = super().digest_fileobj(handle)
            threads_of[result] = threading.get_ident()
            return result

    out: dict[str, str] = {}
    hash_files([*small, *large], Recording(), threads=2, on_done=lambda j, st, h: out.update({j.path: h}))
    me = threading.get_ident()
    assert all(threads_of[hashlib.sha256(c).hexdigest()] == me for c in small_data.values())
    assert all(threads_of[hashlib.sha256(c).hexdigest()] != me for c in large_data.values())
    assert len(out) == 22


def test_hash_files_with_nothing_to_do_never_calls_progress() -> None:
    progress = RecordingProgress()
    hash_files([], Sha256Hasher(), threads=4, on_done=lambda *a: None, progress=progress)
    assert progress.started is None


def test_unreadable_files_are_reported_together(tmp_path: Path) -> None:
    jobs, _ = _jobs(tmp_path, 3)
    jobs.append(HashJob("gone.bin", str(tmp_path / "gone.bin"), 1))
    (tmp_path / "folder").mkdir()
    jobs.append(HashJob("folder", str(tmp_path / "folder"), 0))
    done: list[str] = []
    with pytest.raises(BundleError) as info:
        hash_files(jobs, Sha256Hasher(), threads=2, on_done=lambda job, st, h: done.append(job.rel))
    assert "could not hash 2 file(s)" in info.value.message
    assert "gone.bin" in info.value.message
    assert "folder" in info.value.message
    assert sorted(done) == ["f0.bin", "f1.bin", "f2.bin"]


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A path that became a FIFO after the scan's lstat must be refused, not block the command forever.

    Today ``_hash_one`` opens the path with a blocking ``open()``, which waits for a writer; the
    ``S_ISREG`` check that follows never runs.
    """
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            hash_files([HashJob("pipe", str(fifo), 0)], Sha256Hasher(), threads=1, on_done=lambda *a: None)
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout=2)
    blocked = worker.is_alive()
    if blocked:  # release the reader so that the thread ends
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(writer)
        worker.join(timeout=5)
    assert not blocked, "hashing a FIFO blocked waiting for a writer"
    assert isinstance(outcome[0], BundleError)
    assert "not a regular file" in str(outcome[0])


def test_file_changed_while_hashed_once_is_hashed_again(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("first")
    calls: list[str] = []

    class ChangingOnce(Sha256Hasher):
        def digest_bytes(self, data: bytes) -> str:  # a small file is read in one go
            result = super().digest_bytes(data)
            if not calls:
                path.write_text("second version")
            calls.append(result)
            return result

    out: dict[str, str] = {}
    hash_files(
        [HashJob("f.txt", str(path), 5)], ChangingOnce(), threads=1, on_done=lambda j, st, h: out.update({j.rel: h})
    )
    assert len(calls) == 2
    assert out["f.txt"] == hashlib.sha256(b"second version").hexdigest()


def test_file_that_keeps_changing_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("v")

    class AlwaysChanging(Sha256Hasher):
        def digest_bytes(self, data: bytes) -> str:  # a small file is read in one go
            result = super().digest_bytes(data)
            with open(path, "a") as handle:
                handle.write("more")
            return result

    with pytest.raises(BundleError, match="keeps changing"):
        hash_files([HashJob("f.txt", str(path), 1)], AlwaysChanging(), threads=1, on_done=lambda *a: None)


def test_racy_margin_follows_the_file_system_timestamp_granularity() -> None:
    """Sub-second modification times (ext4, xfs, tmpfs): a margin of a clock tick with room to spare;
    whole-second times (FAT-like file systems): 2 s, or a write in the same second could go unseen."""
    from modelops_bundle.core.hashing import RACY_MARGIN_FINE_NS, racy_margin

    fine = [[1, 2, 3, 1_700_000_000_123_456_789, "h"], [1, 3, 3, 1_700_000_000_000_000_000, "h"]]
    coarse = [[1, 2, 3, 1_700_000_000_000_000_000, "h"], [1, 3, 3, 1_700_000_002_000_000_000, "h"]]
    assert racy_margin(fine) == RACY_MARGIN_FINE_NS < 100_000_000
    assert racy_margin(coarse) == RACY_MARGIN_NS
    assert racy_margin([]) == RACY_MARGIN_NS  # nothing known: stay on the safe side


def test_a_file_written_just_before_a_scan_is_trusted_after_the_fine_margin(tmp_path: Path) -> None:
    """On a file system with fine timestamps, a file modified 0.2 s before the scan is not racy."""
    path = tmp_path / "f.txt"
    path.write_text("content")
    time.sleep(0.2)
    cache_path = tmp_path / "c.json"
    cache = StatCache(cache_path)
    st = os.stat(path)
    fine = st.st_mtime_ns % 1_000_000_000 != 0  # (a coarse file system keeps the 2 s margin: smudged)
    cache.store("f.txt", st, "h")
    cache.save()
    assert StatCache.load(cache_path).lookup("f.txt", os.stat(path)) == ("h" if fine else None)


def test_a_small_file_changed_after_the_scan_saw_it_is_hashed_as_it_now_is(tmp_path: Path) -> None:
    """The quick path trusts the scan's lstat only when the descriptor shows the very same file."""
    hasher = resolve_hasher(build_plugin_host({}).hook, "sha256")
    path = tmp_path / "f.txt"
    path.write_bytes(b"before")
    seen = os.stat(path)
    path.write_bytes(b"after!")  # same size, new content (and new mtime/ctime)
    results: dict[str, tuple[os.stat_result, str]] = {}
    stale = HashJob("f.txt", str(path), seen.st_size, (seen.st_ino, seen.st_mtime_ns - 1, seen.st_ctime_ns - 1))
    hash_files(
        [stale], hasher, threads=1, on_done=lambda job, st, hexdigest: results.update({job.rel: (st, hexdigest)})
    )
    st, hexdigest = results["f.txt"]
    assert hexdigest == hashlib.sha256(b"after!").hexdigest()
    assert st.st_mtime_ns == os.stat(path).st_mtime_ns


def test_a_small_file_as_the_scan_saw_it_takes_the_quick_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = resolve_hasher(build_plugin_host({}).hook, "sha256")
    path = tmp_path / "f.txt"
    path.write_bytes(b"content")
    st = os.stat(path)
    fstats: list[int] = []
    real_fstat = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: fstats.append(fd) or real_fstat(fd))
    results: dict[str, str] = {}
    job = HashJob("f.txt", str(path), st.st_size, (st.st_ino, st.st_mtime_ns, st.st_ctime_ns))
    hash_files([job], hasher, threads=1, on_done=lambda job, st, hexdigest: results.update({job.rel: hexdigest}))
    assert results["f.txt"] == hashlib.sha256(b"content").hexdigest()
    assert len(fstats) == 1  # after the read only


@pytest.mark.parametrize("size", [5, 2 * 1024 * 1024])  # the quick path of small files, and the careful one
def test_a_symlink_swapped_in_after_the_scan_is_refused_not_followed(tmp_path: Path, size: int) -> None:
    """The scan saw a regular file; a symlink put in its place before hashing (to a file outside the
    project, say) must not be read through."""
    hasher = resolve_hasher(build_plugin_host({}).hook, "sha256")
    path, outside = tmp_path / "f.bin", tmp_path / "outside.bin"
    path.write_bytes(b"x" * size)
    outside.write_bytes(b"secret" * size)
    st = os.stat(path)
    path.unlink()
    path.symlink_to(outside)
    job = HashJob("f.bin", str(path), st.st_size, (st.st_ino, st.st_mtime_ns, st.st_ctime_ns))
    with pytest.raises(BundleError, match=r"f\.bin: replaced by a symlink since it was checked"):
        hash_files([job], hasher, threads=1, on_done=lambda *args: None)
    followed: dict[str, str] = {}  # a symlink the scan judged (inside the project) is followed
    judged = HashJob("f.bin", str(path), outside.stat().st_size, None, True)
    hash_files([judged], hasher, threads=1, on_done=lambda job, st, hexdigest: followed.update({job.rel: hexdigest}))
    assert followed["f.bin"] == hashlib.sha256(outside.read_bytes()).hexdigest()


# ------------------------------------------------------------------ which algorithms, checked where


class _Hook:
    """Stands in for ``host.hook``: answers ``mops_file_hasher`` with ``hasher`` (and counts the calls)."""

    def __init__(self, hasher: object) -> None:
        self.hasher = hasher
        self.asked: list[str] = []

    def mops_file_hasher(self, algorithm: str) -> object:
        self.asked.append(algorithm)
        return self.hasher


class _Sha512Hasher(Sha256Hasher):
    algorithm = "sha512"

    def digest_fileobj(self, handle: BinaryIO) -> str:
        return hashlib.sha512(handle.read()).hexdigest()

    def digest_bytes(self, data: bytes) -> str:
        return hashlib.sha512(data).hexdigest()


class _Wrong(Sha256Hasher):
    """Claims sha256, computes something else."""

    def digest_fileobj(self, handle: BinaryIO) -> str:
        return hashlib.sha256(b"salt" + handle.read()).hexdigest()


def test_the_algorithms_are_the_ones_the_index_accepts() -> None:
    from modelops_bundle.core.hashing import CONTENT_ALGORITHMS
    from modelops_bundle.core.index import KNOWN_ALGORITHMS

    assert set(CONTENT_ALGORITHMS) == set(KNOWN_ALGORITHMS)


def test_an_algorithm_the_index_cannot_record_is_refused_before_plugins_are_asked() -> None:
    from modelops_bundle.core.errors import ConfigError
    from modelops_bundle.core.hashing import resolve_hasher

    hook = _Hook(Sha256Hasher())
    with pytest.raises(
        ConfigError, match="hash_algorithm 'blake3' is not supported: file digests are sha256 or sha512"
    ):
        resolve_hasher(hook, "blake3")
    assert hook.asked == []
    assert isinstance(resolve_hasher(_Hook(_Sha512Hasher()), "sha512"), _Sha512Hasher)


def test_a_hasher_for_another_algorithm_than_asked_is_refused() -> None:
    from modelops_bundle.core.errors import PluginError
    from modelops_bundle.core.hashing import resolve_hasher

    with pytest.raises(PluginError, match="returned a hasher for 'sha256' when asked for 'sha512'"):
        resolve_hasher(_Hook(Sha256Hasher()), "sha512")


def test_a_hasher_with_non_standard_digests_is_refused_when_it_first_hashes(tmp_path: Path) -> None:
    from modelops_bundle.core.errors import PluginError

    jobs, _ = _jobs(tmp_path, 2, size=100)
    with pytest.raises(PluginError, match=r"test_hashing\._Wrong \(mops_file_hasher\) computes digests that differ"):
        hash_files(jobs, _Wrong(), threads=2, on_done=lambda *a: None)


def test_every_check_goes_through_one_routine(tmp_path: Path) -> None:
    from modelops_bundle.core.errors import IntegrityError
    from modelops_bundle.core.hashing import file_digest, file_matches, new_content_hash

    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 3_000_000)
    expected = "sha512:" + hashlib.sha512(path.read_bytes()).hexdigest()
    assert file_digest(path, "sha512") == expected
    assert file_matches(path, expected) and file_matches(path, expected, 3_000_000)
    assert not file_matches(path, expected, 5) and not file_matches(tmp_path / "absent", expected)
    with pytest.raises(IntegrityError, match="cannot check a 'md5' digest"):
        new_content_hash("md5")
    assert not file_matches(path, "md5:" + hashlib.md5(b"").hexdigest())
