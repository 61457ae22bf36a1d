"""Content digests of working-tree files: a stat cache, and streaming hashing on threads.

A digest is written ``<algorithm>:<hex>`` (``sha256:...``); the algorithm is stored next to every digest
and digests of different algorithms are never compared.

Speed comes from not hashing: a file whose (device, inode, size, mtime_ns) matches the stat cache keeps
its cached digest. Files modified within a margin of the scan that cached them are stored "smudged" (git's
racy-clean rule) and re-hashed next time, because a write in the same timestamp tick would not change the
signature. The margin is the file system's timestamp granularity with room to spare:
:data:`RACY_MARGIN_FINE_NS` where timestamps carry sub-second parts (ext4, xfs, btrfs, tmpfs: a tick of
the kernel's coarse clock, at most 10 ms), :data:`RACY_MARGIN_NS` where they do not (FAT: 2 s).
What does need hashing is streamed (bounded memory) on several threads;
``hashlib`` releases the GIL, so two cores hash about twice as fast as one.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, Protocol

from modelops_bundle.core.cache_delta import (
    CACHE_VERSION,
    Delta,
    delta_fits,
    delta_path,
    encode_delta,
    read_delta,
    rows_of,
)
from modelops_bundle.core.columns import all_strings, pack_rows, unpack_numbers
from modelops_bundle.core.errors import BundleError, ConfigError, IntegrityError
from modelops_bundle.core.fsutil import atomic_write_bytes, describe_os_error
from modelops_bundle.core.walk import ListingCache

if TYPE_CHECKING:
    from modelops_bundle.core.hooks import Hooks

RACY_MARGIN_NS = 2_000_000_000  # covers coarse file-system timestamps (FAT: 2 s)
RACY_MARGIN_FINE_NS = 50_000_000  # five times the coarsest kernel clock tick (HZ=100: 10 ms)
READ_CHUNK = 1024 * 1024
#: Below this, a file is hashed on the calling thread (see :func:`hash_files`).
SMALL_FILE_BYTES = 65536


class Hasher(Protocol):
    """A streaming content hasher, provided by the ``mops_file_hasher`` hook."""

    algorithm: str

    def digest_file(self, path: str) -> str:
        """The hex digest of the file's bytes; must stream (bounded memory)."""
        ...

    def digest_fileobj(self, handle: BinaryIO) -> str:
        """The hex digest of the rest of an open binary file; must stream (bounded memory)."""
        ...

    def digest_bytes(self, data: bytes) -> str:
        """The hex digest of ``data``."""
        ...


class ProgressSink(Protocol):
    """Receives progress; the CLI renders it, the core only reports."""

    def start(self, total_files: int, total_bytes: int) -> None: ...
    def advance(self, files: int = 0, nbytes: int = 0) -> None: ...
    def close(self) -> None: ...


class ProgressFactory(Protocol):
    """Makes the sink of one phase (``hashing``, ``uploading``): ``unit`` names what its counts count --
    ``files``, or ``blobs`` for registry transfers, where one blob may pack many files."""

    def __call__(self, description: str, unit: str = "files") -> ProgressSink: ...


def format_digest(algorithm: str, hexdigest: str) -> str:
    return f"{algorithm}:{hexdigest}"


def split_digest(digest: str) -> tuple[str, str]:
    algorithm, sep, hexdigest = digest.partition(":")
    if not sep or not algorithm or not hexdigest:
        raise IntegrityError(f"malformed digest {digest!r} (expected '<algorithm>:<hex>')")
    return algorithm, hexdigest


def signature(st: os.stat_result) -> tuple[int, int, int, int]:
    """What the stat cache compares: (device, inode, size, mtime_ns)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def holds(entry: Sequence[Any], st: os.stat_result) -> bool:
    """Whether a stat-cache entry ``(dev, ino, size, mtime_ns, digest)`` is for the file as ``st`` shows it
    (size and mtime first: the fields that differ when a file changed). The scan's loop and the stat
    probe inline this."""
    matched: bool = (
        entry[2] == st.st_size and entry[3] == st.st_mtime_ns and entry[1] == st.st_ino and entry[0] == st.st_dev
    )
    return matched


class StatCache:
    """``.modelops-bundle/cache/stat-cache.json``: machine-local, disposable, never pushed.

    Besides file digests it keeps the folder listings of the last walk (the untracked cache). A corrupt
    or foreign cache is discarded, never trusted. (Small data derived from metadata files lives in the
    settings memo, :mod:`.memo`.)
    """

    def __init__(self, path: Path, algorithm: str = "sha256") -> None:
        self.path = path
        self.algorithm = algorithm
        #: ``{rel: (st_dev, st_ino, st_size, st_mtime_ns, hexdigest)}``
        self.entries: dict[str, tuple[Any, ...]] = {}
        self.listings = ListingCache()
        self.scan_start_ns = time.time_ns()
        self.dirty = False
        #: The id of the base file these rows came from (``None``: no base of this version was read), and
        #: what differs from it -- rows a save writes as a delta (core/cache_delta.py) while they are few.
        self.base_id: str | None = None
        self.changed_entries: set[str] = set()
        self.rebase = False  # the next save writes a whole base (algorithm switched, base of an older version)

    @classmethod
    def load(cls, path: Path) -> StatCache:
        cache = cls(path)
        try:
            raw = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return cache
        if not isinstance(raw, dict) or not isinstance(raw.get("algorithm"), str):
            return cache
        version = raw.get("version")  # 4 (cache_delta.CACHE_VERSION); 3, 2 and 1 are read and rewritten as 4
        if version in (CACHE_VERSION, 3, 2):  # 3: with the memo (now memo.json); 2: without an id
            entries = _entries_from_columns(raw)
        elif version == 1 and isinstance(raw.get("entries"), dict):  # before the columns
            entries = {rel: tuple(e) for rel, e in raw["entries"].items() if type(e) is list and _valid_entry(e)}
        else:
            return cache
        if entries is None:
            return cache
        cache.algorithm = raw["algorithm"]
        cache.entries = entries
        cache.listings = ListingCache.from_json(raw.get("listings"))
        base_id = raw.get("id")
        if version == CACHE_VERSION and isinstance(base_id, str) and base_id:
            cache.base_id = base_id
            cache._apply_delta()
        else:
            cache.rebase = cache.dirty = True  # written back in the current version, with an id
        return cache

    def _apply_delta(self) -> None:
        """The delta beside the base, if it is this base's and well formed (else the base alone stands:
        an older state of the cache, and the next save's delta replaces the file)."""
        assert self.base_id is not None
        delta = read_delta(delta_path(self.path), self.base_id, self.algorithm)
        if delta is None:
            return
        for rel, row in delta.entries.items():
            if row is None:
                self.entries.pop(rel, None)
            else:
                self.entries[rel] = row
        self.listings.apply(delta.listings)
        self.changed_entries.update(delta.entries)

    def use_algorithm(self, algorithm: str) -> None:
        """Digests of another algorithm are never reused: switching drops them."""
        if algorithm != self.algorithm:
            self.algorithm = algorithm
            self.entries = {}
            self.rebase = self.dirty = True

    def lookup(self, rel: str, st: os.stat_result) -> str | None:
        entry = self.entries.get(rel)
        if entry is not None and len(entry) == 5 and holds(entry, st):
            hexdigest = entry[4]
            return hexdigest if isinstance(hexdigest, str) else None
        return None

    def store(self, rel: str, st: os.stat_result, hexdigest: str) -> None:
        entry = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, hexdigest)
        if self.entries.get(rel) != entry:
            self.entries[rel] = entry
            self.changed_entries.add(rel)
            self.dirty = True

    def forget(self, keep: Iterable[str]) -> None:
        keep_set = set(keep)
        stale = [rel for rel in self.entries if rel not in keep_set]
        for rel in stale:
            del self.entries[rel]
        self.changed_entries.update(stale)
        self.dirty = self.dirty or bool(stale)

    def save(self) -> None:
        """Write what changed -- as a delta beside the base while the changes are few, else a new base --
        smudging entries too recent to be trusted (racy-clean rule)."""
        if not (self.dirty or self.listings.dirty):
            return
        limit = self.scan_start_ns - racy_margin(self.entries.values())
        try:
            self.path.parent.mkdir(exist_ok=True)
            if self._delta_will_do():
                assert self.base_id is not None
                atomic_write_bytes(
                    delta_path(self.path), encode_delta(self.base_id, self.algorithm, self._delta(limit))
                )
            else:
                self._write_base(limit)
        except (BundleError, OSError):
            return  # a cache that cannot be written only costs speed next time
        self.dirty = False
        self.listings.dirty = False

    def _delta_will_do(self) -> bool:
        if self.base_id is None or self.rebase or self.listings.reset:
            return False
        changed = len(self.changed_entries) + len(self.listings.changed)
        return delta_fits(changed, len(self.entries) + len(self.listings.folders))

    def _delta(self, racy_limit: int) -> Delta:
        entries = rows_of(self.entries, self.changed_entries)
        for rel, row in entries.items():
            if row is not None and row[3] >= racy_limit:
                entries[rel] = (row[0], row[1], -1, row[3], row[4])  # smudged, as in the base
        return Delta(entries, rows_of(self.listings.folders, self.listings.changed))

    def _write_base(self, racy_limit: int) -> None:
        base_id = os.urandom(8).hex()
        payload = {
            "version": CACHE_VERSION,
            "id": base_id,
            "algorithm": self.algorithm,
            **_entries_to_columns(self.entries, racy_limit),
            "listings": self.listings.to_json(),
        }
        # The old delta goes first: a crash in between leaves the old base alone, an older valid state.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(delta_path(self.path))
        atomic_write_bytes(self.path, json.dumps(payload, separators=(",", ":")).encode())
        self.base_id = base_id
        self.rebase = False
        self.changed_entries.clear()
        self.listings.rebased()


def racy_margin(entries: Iterable[Sequence[Any]]) -> int:
    """The racy-clean margin for files whose signatures are ``entries``: fine when any modification time
    has a sub-second part (the file system keeps them), else the coarse 2 s of FAT-like file systems."""
    fine = any(isinstance(entry[3], int) and entry[3] % 1_000_000_000 for entry in entries)
    return RACY_MARGIN_FINE_NS if fine else RACY_MARGIN_NS


def _valid_entry(entry: Any) -> bool:
    # Shape only: a signature field of the wrong type simply never equals a stat value, so it cannot match.
    return len(entry) == 5 and type(entry[4]) is str


def _entries_to_columns(entries: Mapping[str, Sequence[Any]], racy_limit: int) -> dict[str, Any]:
    """Entries as columns (:mod:`.columns`); a signature too recent to trust (mtime at or after
    ``racy_limit``) is smudged (size -1, which no file has), so the next run hashes that file again."""
    items = list(entries.items())
    rows = ((dev, ino, size if mtime < racy_limit else -1, mtime) for _, (dev, ino, size, mtime, _hex) in items)
    signatures, kept = pack_rows(rows, 4)
    return {
        "paths": [items[i][0] for i in kept],
        "digests": [items[i][1][4] for i in kept],
        "signatures": signatures,
    }


def _entries_from_columns(raw: Mapping[str, Any]) -> dict[str, tuple[Any, ...]] | None:
    """The entries of a columnar cache, or ``None`` when the columns do not fit together."""
    paths, digests = raw.get("paths"), raw.get("digests")
    if not (all_strings(paths) and all_strings(digests) and len(paths) == len(digests)):
        return None
    numbers = unpack_numbers(raw.get("signatures"), 4 * len(paths))
    if numbers is None:
        return None
    signatures = iter(numbers)
    return dict(zip(paths, zip(signatures, signatures, signatures, signatures, digests, strict=True), strict=True))


class HashJob(NamedTuple):
    """One file to hash (a NamedTuple: cheaper to define and to make than a frozen dataclass)."""

    rel: str
    path: str
    size: int
    #: ``(st_ino, st_mtime_ns, st_ctime_ns)`` of the scan's ``lstat``, when it made one: a small file then
    #: needs no ``fstat`` before it is read (the one after the read must match this).
    seen: tuple[int, int, int] | None = None
    #: The path is a symlink the scan judged (its target lies inside the project). Otherwise it is opened
    #: with ``O_NOFOLLOW``: a symlink swapped in after the scan is refused, never followed.
    follow_symlink: bool = False


def hash_files(
    jobs: list[HashJob],
    hasher: Hasher,
    *,
    threads: int,
    on_done: Callable[[HashJob, os.stat_result, str], None],
    progress: ProgressSink | None = None,
) -> None:
    """Hash ``jobs``: large files on ``threads`` worker threads (largest first), small files on the calling
    thread meanwhile; calls ``on_done`` under a lock.

    Why the split: hashing a large file releases the GIL for most of its time, so threads overlap; a small
    file is mostly Python overhead under the GIL, where a second thread only adds hand-offs (measured: 10,000
    1 KiB files take twice as long on two threads as on one). Each file is fstat-ed before and after hashing
    on the same descriptor; a file that changes while it is read is hashed again (once), else reported.
    """
    if not jobs:
        return
    check_hasher(hasher)
    large = sorted((job for job in jobs if job.size >= SMALL_FILE_BYTES), key=lambda job: job.size, reverse=True)
    small = [job for job in jobs if job.size < SMALL_FILE_BYTES]
    lock = threading.Lock()
    failures: list[str] = []
    if progress is not None:
        progress.start(len(jobs), sum(job.size for job in jobs))

    def hash_one(job: HashJob) -> None:
        try:
            st, hexdigest = _hash_one(job, hasher)
        except BundleError as exc:
            with lock:
                failures.append(exc.message)
            return
        with lock:
            on_done(job, st, hexdigest)
            if progress is not None:
                progress.advance(1, job.size)

    counter = itertools.count()

    def work_large() -> None:
        while True:
            index = next(counter)  # atomic under the GIL: dynamic load balancing
            if index >= len(large):
                return
            hash_one(large[index])

    workers = [threading.Thread(target=work_large, daemon=True) for _ in range(max(1, min(threads, len(large))))]
    try:
        if large:
            for worker in workers:
                worker.start()
        for job in small:
            hash_one(job)
        if large:
            for worker in workers:
                worker.join()
    finally:
        if progress is not None:
            progress.close()
    if failures:
        shown = "\n  ".join(sorted(failures)[:10])
        more = f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else ""
        raise BundleError(f"could not hash {len(failures)} file(s):\n  {shown}{more}")


# O_NONBLOCK: a FIFO swapped in after the scan must be refused, not block the open forever. It has no
# effect on regular files (POSIX), so it never needs clearing before the read.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN_FLAGS_NOFOLLOW = _OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0)


def _open_for_hashing(job: HashJob) -> int:
    try:
        return os.open(job.path, _OPEN_FLAGS if job.follow_symlink else _OPEN_FLAGS_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not job.follow_symlink:
            raise BundleError(f"{job.rel}: replaced by a symlink since it was checked; run the command again") from exc
        raise BundleError(describe_os_error("read", job.rel, exc)) from exc


def _hash_small_as_seen(job: HashJob, hasher: Hasher) -> tuple[os.stat_result, str] | None:
    """One open, one read and one ``fstat`` for a small file the scan has just ``lstat``-ed: the digest
    stands when the descriptor shows a regular file with the scan's inode, size, mtime and ctime (then
    nothing changed between the ``lstat`` and the read). ``None`` sends the file the careful way."""
    assert job.seen is not None
    fd = _open_for_hashing(job)
    try:
        data = os.read(fd, job.size + 1)  # +1: a file that grew shows as a long read
        after = os.fstat(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    if (
        stat_module.S_ISREG(after.st_mode)
        and len(data) == job.size == after.st_size
        and (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == job.seen
    ):
        return after, hasher.digest_bytes(data)
    return None


def _hash_one(job: HashJob, hasher: Hasher) -> tuple[os.stat_result, str]:
    if job.seen is not None and job.size < SMALL_FILE_BYTES:
        quick = _hash_small_as_seen(job, hasher)
        if quick is not None:
            return quick
    for _attempt in range(2):
        fd = _open_for_hashing(job)
        try:
            before = os.fstat(fd)
            if not stat_module.S_ISREG(before.st_mode):
                raise BundleError(f"{job.rel}: not a regular file")
            if before.st_size < READ_CHUNK:
                # Small files (most of a project): one read, no file object; a short or long read means
                # the file changed under us, and the signature check below catches it.
                data = os.read(fd, before.st_size + 1)  # +1: a file that grew shows as a long read
                hexdigest = hasher.digest_bytes(data)
            else:
                with open(fd, "rb", buffering=0, closefd=False) as handle:
                    hexdigest = hasher.digest_fileobj(handle)
            after = os.fstat(fd)
        except OSError as exc:
            raise BundleError(describe_os_error("read", job.rel, exc)) from exc
        finally:
            os.close(fd)
        if (
            before.st_mtime_ns == after.st_mtime_ns
            and before.st_size == after.st_size
            and before.st_ctime_ns == after.st_ctime_ns
            and (before.st_size >= READ_CHUNK or len(data) == after.st_size)
        ):
            return after, hexdigest
    raise BundleError(f"{job.rel}: file keeps changing while it is being read")


def resolve_hasher(hook: Hooks, algorithm: str) -> Hasher:
    """The hasher the plugins provide for ``algorithm``, or a configuration error.

    ``algorithm`` must be one of :data:`CONTENT_ALGORITHMS`: a bundle index records nothing else, and
    every check of a file's bytes recomputes the digest with :func:`new_content_hash`. A hasher made for
    another algorithm than asked is a plugin bug, refused here; one whose digests differ from the
    standard algorithm's is refused the first time it hashes (:func:`check_hasher`).
    """
    if algorithm not in CONTENT_ALGORITHMS:
        raise ConfigError(
            f"hash_algorithm {algorithm!r} is not supported: file digests are {' or '.join(CONTENT_ALGORITHMS)}",
            hint="set hash_algorithm: sha256 in .modelops-bundle/config.yaml",
        )
    hasher: Hasher | None = hook.mops_file_hasher(algorithm=algorithm)
    if hasher is None:
        raise ConfigError(f"no plugin provides the hash algorithm {algorithm!r}")
    made_for = getattr(hasher, "algorithm", None)
    if made_for != algorithm:
        from modelops_bundle.core.errors import PluginError

        raise PluginError(f"mops_file_hasher returned a hasher for {made_for!r} when asked for {algorithm!r}")
    return hasher


# ------------------------------------------------------------------------------ checking digests
#
# Every check of bytes against a digest that names them -- pull, ensure, the shared cache, verify, blob
# downloads, packs, registry blobs -- recomputes it through new_content_hash: one place that says which
# algorithms exist. A hashing plugin (mops_file_hasher) may compute the same digests faster; it may not
# define other ones, because nothing downstream could check them.

#: The algorithms of file digests (the bundle index's ``algorithm``; ``core/index.KNOWN_ALGORITHMS``).
CONTENT_ALGORITHMS: tuple[str, ...] = ("sha256", "sha512")
_PROBE = b"modelops-bundle: does this hasher compute the standard digest?\n"
_CHECKED_HASHERS: set[tuple[type, str]] = set()


class _HashObject(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...


def new_content_hash(algorithm: str) -> _HashObject:
    """A fresh hash object for one of :data:`CONTENT_ALGORITHMS` (anything else: :class:`IntegrityError`).

    ``hashlib`` (OpenSSL: 2-3 ms to load) is imported here, on first use, not by every command.
    """
    if algorithm not in CONTENT_ALGORITHMS:
        raise IntegrityError(f"cannot check a {algorithm!r} digest: file digests are sha256 or sha512")
    import hashlib

    return hashlib.new(algorithm)


def file_digest(path: str | os.PathLike[str], algorithm: str, *, chunk: int = READ_CHUNK) -> str:
    """``<algorithm>:<hex>`` of a file's bytes, streamed (raises ``OSError`` as ``open`` does)."""
    digest = new_content_hash(algorithm)
    view = memoryview(bytearray(chunk))
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(view)
            if not count:
                break
            digest.update(view[:count])
    return format_digest(algorithm, digest.hexdigest())


def file_matches(path: str | os.PathLike[str], digest: str, size: int | None = None) -> bool:
    """True when the file holds exactly the bytes ``digest`` (and ``size``) name; False when it does not,
    cannot be read, or ``digest`` is of no known algorithm."""
    algorithm, _ = split_digest(digest)
    try:
        if size is not None and os.stat(path).st_size != size:
            return False
        return file_digest(path, algorithm) == digest
    except (OSError, IntegrityError):
        return False


def check_hasher(hasher: Hasher) -> None:
    """Refuse a hasher whose digests are not the standard ones of its algorithm (once per class and
    algorithm in a process): digests it made could never be verified after a pull."""
    key = (type(hasher), hasher.algorithm)
    if key in _CHECKED_HASHERS:
        return
    import io

    expected = new_content_hash(hasher.algorithm)
    expected.update(_PROBE)
    if hasher.digest_fileobj(io.BytesIO(_PROBE)) != expected.hexdigest():
        from modelops_bundle.core.errors import PluginError

        kind = type(hasher)
        raise PluginError(
            f"the {hasher.algorithm} hasher {kind.__module__}.{kind.__qualname__} (mops_file_hasher) computes "
            f"digests that differ from {hasher.algorithm}'s; a hashing plugin may compute the standard "
            "digests faster, not other ones"
        )
    _CHECKED_HASHERS.add(key)
