"""The machine-wide, content-addressed cache that materialisation goes through.

Layout (``$MODELOPS_BUNDLE_CACHE``, else the project's ``cache_dir``, else ``$MODELOPS_HOME/cache``)::

    CACHEDIR.TAG                          backup tools skip the folder
    objects/<alg>/<ab>/<hex>              one read-only file per content digest (file digest, not layer)
    versions/<alg>/<hex>/manifest.json    exact manifest bytes of a version (verified against <hex>)
    versions/<alg>/<hex>/index.json       exact bundle-index bytes (verified against the manifest's config)
    versions/<alg>/<hex>/origin.json      where it came from: {"repository", "registry"}
    trees/<alg>/<hex>[+<selection>]/      checked-out trees (``materialize`` without a destination)
    trees/<alg>/<hex>[+<selection>].complete   completion marker, written last; its mtime = last use
    pins/<alg>-<hex>                      versions ``gc`` never removes
    locks/                                ``flock`` files: one per version, ``gc.lock`` for the whole cache
    tmp/<name>/ + tmp/<name>.lock         a fetch's staging folder, held by an ``flock`` while in use

Integrity without re-hashing on every use: an object is written only after its bytes were verified
against its digest, then made read-only and given the fixed mtime :data:`OBJECT_MTIME`. A checkout
trusts an object only when it is a regular file of the indexed size with that mtime, so a write through
any path (it bumps the mtime) or a truncation is caught and the object is fetched again; ``verify
--cache`` re-hashes everything for the rarer corruption that keeps size and mtime.

Checkouts link objects into trees: a reflink (copy-on-write clone) where the file system supports it,
else a hard link, else a copy. Hard-linked files share the object's inode, so they are read-only
(0444): a worker that writes into its tree gets ``EACCES`` instead of corrupting every other tree. Root
ignores file modes; the mtime signature then detects the damage at the next use and the file is
replaced. Executable files are never hard-linked (an inode has one mode): they are cloned or copied.

Concurrency: a version is fetched under its own ``flock``, so of many processes asking for one digest
one downloads each blob while the others wait, then find the completion marker. A killed process
leaves no marker (it is written last, atomically) and its staging folder is unlocked, so the next
process removes it and fetches again.

Trees hold exactly the version's files: a tree is checked before it is handed out -- each file by the
cheap test, and each folder listed, so that an entry the version does not have (a planted
``__pycache__/m.pyc``, a symlink, a file a run wrote) is removed first (:meth:`BundleCache.tree_problems`);
``verify --cache`` reports such entries. A process that was handed a tree holds a shared lease on it
(``locks/lease-<tree>.lock``) until it exits, and ``gc`` keeps leased versions whatever ``--keep-days``.

No symlinks: every folder of the cache the tool writes, renames or deletes in is checked with ``lstat``
right before use (the cache root itself is where the user or configuration put it).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat as stat_module
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops_bundle.core.errors import BundleError, ConfigError, IntegrityError
from modelops_bundle.core.fsutil import (
    SymlinkedFolderError,
    atomic_write_bytes,
    describe_os_error,
    real_folder_below,
    require_real_folder,
    symlink_on_the_way,
)

CACHE_ENV = "MODELOPS_BUNDLE_CACHE"
CACHE_FORMAT = 1
#: Every object (and every file of a checked-out tree) carries this mtime: a write changes it.
OBJECT_MTIME_NS = 1_000_000_000  # 1970-01-01T00:00:01Z
OBJECT_MODE = 0o444
EXEC_MODE = 0o555
_COPY_CHUNK = 1024 * 1024
_FICLONE = 0x40049409  # linux/fs.h: clone a whole file (reflink)
#: Per lock file: a re-entrant lock for the threads of this process, and each thread's depth.
_LOCKS_GUARD = threading.Lock()
_THREAD_LOCKS: dict[str, threading.RLock] = {}
_DEPTH = threading.local()
_CACHEDIR_TAG = b"Signature: 8a477f597d28d172789f06886806bc55\n# modelops-bundle cache: safe to delete\n"


def cache_root(environ: Mapping[str, str], configured: str | None = None) -> Path:
    """``$MODELOPS_BUNDLE_CACHE``, else ``configured`` (a project's ``cache_dir``), else ``$MODELOPS_HOME/cache``."""
    from modelops_bundle.core.envfiles import expand_path, modelops_home

    raw = environ.get(CACHE_ENV, "").strip() or (configured or "").strip()
    if raw:
        return expand_path(raw)
    # The default cache is a folder of $MODELOPS_HOME that the tool made: a symlink there was planted.
    return require_real_folder(modelops_home(environ) / "cache")


def split(digest: str) -> tuple[str, str]:
    algorithm, sep, hexdigest = digest.partition(":")
    if (
        not sep
        or algorithm not in ("sha256", "sha512")
        or not hexdigest
        or not all(ch in "0123456789abcdef" for ch in hexdigest)
    ):
        raise IntegrityError(f"malformed digest {digest!r}")
    return algorithm, hexdigest


@dataclass
class CacheStats:
    """What one process did to the cache (for reports, tests and benchmarks)."""

    fetched_objects: int = 0
    fetched_bytes: int = 0  # file bytes that arrived from a registry or blob store
    downloaded_blobs: int = 0  # registry blobs (layers) transferred
    downloaded_bytes: int = 0
    reused_objects: int = 0
    repaired_objects: int = 0  # present but damaged: removed and fetched again
    linked_files: int = 0
    checkout_method: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ObjectSpec:
    """What a checkout needs to know about one file: its digest, size and executable bit."""

    digest: str
    size: int
    executable: bool = False


@dataclass
class Problem:
    """One thing ``verify --cache`` found wrong, and what it did about it."""

    kind: str  # corrupt-object | damaged-tree | bad-version
    path: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "detail": self.detail}


@dataclass
class GcReport:
    removed_versions: list[str] = field(default_factory=list)
    removed_trees: list[str] = field(default_factory=list)
    removed_objects: int = 0
    removed_tmp: int = 0
    freed_bytes: int = 0
    kept_versions: list[str] = field(default_factory=list)
    busy_versions: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class BundleCache:
    """One cache folder. Cheap to construct; folders are created on first write."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.stats = CacheStats()

    # ------------------------------------------------------------------------------------ paths

    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    def object_path(self, digest: str) -> Path:
        algorithm, hexdigest = split(digest)
        return self.objects_dir / algorithm / hexdigest[:2] / hexdigest

    def version_dir(self, digest: str) -> Path:
        algorithm, hexdigest = split(digest)
        return self.root / "versions" / algorithm / hexdigest

    def tree_path(self, digest: str, selection: str | None = None) -> Path:
        algorithm, hexdigest = split(digest)
        name = hexdigest if not selection else f"{hexdigest}+{selection}"
        return self.root / "trees" / algorithm / name

    @staticmethod
    def marker_path(tree: Path) -> Path:
        return tree.with_name(tree.name + ".complete")

    def pin_path(self, digest: str) -> Path:
        algorithm, hexdigest = split(digest)
        return self.root / "pins" / f"{algorithm}-{hexdigest}"

    def prepare(self) -> None:
        """Create the top folders (idempotent); a clear error when the cache cannot be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            for name in LAYOUT_FOLDERS:
                require_real_folder(self.root / name, create=True)
            tag = self.root / "CACHEDIR.TAG"
            if not tag.exists():
                atomic_write_bytes(tag, _CACHEDIR_TAG)
        except OSError as exc:
            raise ConfigError(
                describe_os_error("create the bundle cache at", self.root, exc),
                hint=f"set {CACHE_ENV} to a writable folder",
            ) from exc

    def check_layout(self) -> None:
        """The cache's top folders are real folders (those that exist): ``gc`` and ``verify`` delete in
        them, so a symlink planted in their place is refused instead of followed."""
        for name in LAYOUT_FOLDERS:
            require_real_folder(self.root / name)

    # ------------------------------------------------------------------------------------ locks

    @contextlib.contextmanager
    def lock(self, name: str, *, shared: bool = False, wait: bool = True) -> Iterator[bool]:
        """Hold ``locks/<name>.lock``; yields False (without the lock) when ``wait`` is False and it is busy.

        Exclusive locks are re-entrant within a thread and exclude other threads of the process too
        (an ``flock`` alone would deadlock on itself when taken twice through two descriptors)."""
        path = str(self.root / "locks" / f"{name}.lock")
        if shared:
            with self._flock(path, shared=True, wait=wait) as held:
                yield held
            return
        with _LOCKS_GUARD:
            rlock = _THREAD_LOCKS.setdefault(path, threading.RLock())
        if not rlock.acquire(blocking=wait):
            yield False
            return
        try:
            depth = _DEPTH.__dict__.get(path, 0)
            if depth:
                _DEPTH.__dict__[path] = depth + 1
                try:
                    yield True
                finally:
                    _DEPTH.__dict__[path] = depth
                return
            with self._flock(path, shared=False, wait=wait) as held:
                _DEPTH.__dict__[path] = 1 if held else 0
                try:
                    yield held
                finally:
                    _DEPTH.__dict__[path] = 0
        finally:
            rlock.release()

    @contextlib.contextmanager
    def _flock(self, path: str, *, shared: bool, wait: bool) -> Iterator[bool]:
        import fcntl

        require_real_folder(Path(path).parent)  # locks/ planted as a symlink: refused, not written through
        flags = os.O_RDWR | os.O_CREAT | _NOFOLLOW
        try:
            fd = os.open(path, flags, 0o666)
        except FileNotFoundError:
            self.prepare()
            fd = os.open(path, flags, 0o666)
        except OSError as exc:
            raise BundleError(describe_os_error("lock", path, exc)) from exc
        try:
            flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
            try:
                fcntl.flock(fd, flags)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def version_lock(self, digest: str, *, wait: bool = True) -> contextlib.AbstractContextManager[bool]:
        algorithm, hexdigest = split(digest)
        return self.lock(f"{algorithm}-{hexdigest}", wait=wait)

    def using(self) -> contextlib.AbstractContextManager[bool]:
        """Shared hold on the cache: ``gc`` (exclusive) never deletes under a running fetch or checkout."""
        return self.lock("gc", shared=True)

    # ---------------------------------------------------------------------------------- staging

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A private folder in ``tmp/`` (same file system as ``objects/``), locked while in use."""
        import fcntl

        self.prepare()
        self.clean_stale_tmp()
        folder = Path(tempfile.mkdtemp(prefix=f"fetch-{os.getpid()}-", dir=self.root / "tmp"))
        fd = os.open(str(folder) + ".lock", os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(str(folder) + ".lock")
            os.close(fd)

    def clean_stale_tmp(self) -> int:
        """Remove staging folders (and leftover tree builds) whose owner died; returns how many."""
        import fcntl

        removed = 0
        tmp = self.root / "tmp"
        try:
            names = os.listdir(tmp)
        except OSError:
            return 0
        for name in names:
            if name.endswith(".lock"):
                continue
            lock = tmp / f"{name}.lock"
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o666)
            except OSError:
                _unlink(lock)  # a symlink planted as a lock file: removed, never followed
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner is alive
                _force_rmtree(tmp / name)
                with contextlib.suppress(OSError):
                    os.unlink(lock)
                removed += 1
            finally:
                os.close(fd)
        return removed

    # ---------------------------------------------------------------------------------- objects

    def object_ok(self, spec: ObjectSpec) -> bool:
        """Present and undamaged by the cheap test: a regular file of the right size and fixed mtime."""
        try:
            st = os.lstat(self.object_path(spec.digest))
        except OSError:
            return False
        return _signature_ok(st, spec.size)

    def discard_damaged(self, spec: ObjectSpec) -> bool:
        """Remove an object that is present but fails the cheap test; True when one was removed."""
        path = self.object_path(spec.digest)
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if _signature_ok(st, spec.size):
            return False
        _unlink(path)
        self.stats.repaired_objects += 1
        return True

    def add_object(self, source: Path, digest: str) -> Path:
        """Move a verified file into ``objects/`` (read-only, fixed mtime). An object already there wins."""
        target = self.object_path(digest)
        algorithm, hexdigest = split(digest)
        real_folder_below(self.root, "objects", algorithm, hexdigest[:2], create=True)
        try:
            os.chmod(source, OBJECT_MODE)
            os.utime(source, ns=(OBJECT_MTIME_NS, OBJECT_MTIME_NS))
            os.replace(source, target)
        except OSError as exc:
            raise BundleError(describe_os_error("store", target, exc)) from exc
        return target

    def verify_object(self, path: Path, digest: str) -> bool:
        """Full check: the bytes hash to ``digest``."""
        from modelops_bundle.core.hashing import file_matches

        split(digest)  # a malformed digest is an error, not a mismatch
        return file_matches(path, digest)

    # -------------------------------------------------------------------------------- versions

    def load_version_bytes(self, digest: str) -> tuple[bytes, bytes, dict[str, Any]] | None:
        """Cached ``(manifest, index, origin)`` of a version, verified against ``digest``; None if absent."""
        from modelops_bundle.core.index import bytes_digest

        folder = self.version_dir(digest)
        try:
            manifest = (folder / "manifest.json").read_bytes()
            index = (folder / "index.json").read_bytes()
            origin = json.loads((folder / "origin.json").read_bytes())
        except (OSError, ValueError):
            return None
        if bytes_digest(manifest) != digest or not isinstance(origin, dict):
            return None
        try:
            config = json.loads(manifest)["config"]["digest"]
        except (ValueError, KeyError, TypeError):
            return None
        if bytes_digest(index) != config:
            return None
        return manifest, index, origin

    def save_version_bytes(self, digest: str, manifest: bytes, index: bytes, origin: Mapping[str, Any]) -> None:
        algorithm, hexdigest = split(digest)
        folder = real_folder_below(self.root, "versions", algorithm, hexdigest, create=True)
        atomic_write_bytes(folder / "manifest.json", manifest)
        atomic_write_bytes(folder / "index.json", index)
        atomic_write_bytes(folder / "origin.json", json.dumps(dict(origin), sort_keys=True).encode())

    def cached_versions(self) -> list[str]:
        found: list[str] = []
        base = require_real_folder(self.root / "versions")
        for algorithm in _real_subfolders(base):
            for hexdigest in _real_subfolders(base / algorithm):
                found.append(f"{algorithm}:{hexdigest}")
        return sorted(found)

    # -------------------------------------------------------------------------------- checkout

    def checkout(self, files: Mapping[str, ObjectSpec], dest: Path) -> None:
        """Place every object at its path below ``dest`` (replacing what is there), each atomically:
        a reflink where the file system clones, else a hard link (non-executables), else a copy."""
        method = ""
        swept: set[Path] = set()
        checked: dict[str, str | None] = {}
        for rel in sorted(files):
            spec = files[rel]
            target = dest / rel
            link = symlink_on_the_way(dest, rel.rpartition("/")[0], checked)
            if link is not None:
                raise SymlinkedFolderError(
                    f"cannot place {rel} in {dest}: {link} is a symlink or not a folder "
                    "(checkouts never write through symlinks)"
                )
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.parent not in swept:
                    swept.add(target.parent)
                    _sweep_dead_temps(target.parent)
                method = self._place(self.object_path(spec.digest), target, spec, method)
            except OSError as exc:
                raise BundleError(describe_os_error("write", target, exc)) from exc
            self.stats.linked_files += 1
        if method:
            self.stats.checkout_method = method

    @staticmethod
    def _place(source: Path, target: Path, spec: ObjectSpec, method: str) -> str:
        """Put one object at ``target``; ``method`` is what worked for the previous file (tried first)."""
        temp = target.with_name(f".{target.name}.mops-{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        try:
            if method in ("", "reflink"):
                if _reflink(source, temp):
                    _finish_copy(temp, EXEC_MODE if spec.executable else OBJECT_MODE)
                    os.replace(temp, target)
                    return "reflink"
                method = "hardlink"
            if method == "hardlink" and not spec.executable:
                try:
                    os.link(source, temp)
                    os.replace(temp, target)
                    # rename(2) between two links of one inode does nothing and leaves ``temp``: the
                    # target was already this object (found by tests/reliability: every re-materialise
                    # into a destination left a ``.NAME.mops-PID.tmp`` beside each unchanged file).
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(temp)
                    return method
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EMLINK, errno.EPERM, errno.ENOTSUP, errno.EACCES):
                        raise
                    method = "copy"
            shutil.copyfile(source, temp)
            _finish_copy(temp, EXEC_MODE if spec.executable else OBJECT_MODE)
            os.replace(temp, target)
            return method
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def tree_damage(self, tree: Path, files: Mapping[str, ObjectSpec]) -> list[str]:
        """Paths of a checked-out tree that fail the cheap test (missing, resized, written to)."""
        return self.tree_problems(tree, files)[0]

    def tree_problems(self, tree: Path, files: Mapping[str, ObjectSpec]) -> tuple[list[str], list[str]]:
        """``(damaged, extra)`` of a checked-out tree: the paths of ``files`` that fail the cheap test
        (missing, resized, written to, reached through a symlink), and the entries the version does not
        have -- a planted ``__pycache__/m.pyc``, a symlink, a file a run wrote. One ``scandir`` per folder
        and one ``lstat`` per file; nothing is followed."""
        children: dict[str, dict[str, ObjectSpec | None]] = {"": {}}
        for rel, spec in files.items():
            folder, _, name = rel.rpartition("/")
            children.setdefault(folder, {})[name] = spec
            while folder:
                parent, _, folder_name = folder.rpartition("/")
                siblings = children.setdefault(parent, {})
                if folder_name in siblings:
                    break
                siblings[folder_name] = None
                folder = parent
        good: set[str] = set()
        extra: list[str] = []
        pending = [""]
        while pending:
            folder = pending.pop()
            expected = children.get(folder, {})
            prefix = f"{folder}/" if folder else ""
            try:
                entries = list(os.scandir(tree / folder if folder else tree))
            except OSError:
                continue  # its files count as damaged below
            for entry in entries:
                rel = prefix + entry.name
                if entry.name not in expected:
                    extra.append(rel)
                    continue
                wanted = expected[entry.name]
                if wanted is None:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(rel)
                    else:
                        extra.append(rel)  # a file or symlink where the version has a folder
                    continue
                try:
                    if _signature_ok(entry.stat(follow_symlinks=False), wanted.size):
                        good.add(rel)
                except OSError:
                    pass
        return sorted(rel for rel in files if rel not in good), sorted(extra)

    def remove_extras(self, tree: Path, extras: Iterable[str]) -> None:
        """Remove entries :meth:`tree_problems` found that the version does not have (never following a
        symlink: a symlinked entry is unlinked itself)."""
        for rel in extras:
            _force_rmtree(tree / rel)

    # -------------------------------------------------------------------------------- leases

    def lease(self, tree: Path) -> None:
        """Hold a shared lease on ``tree`` until this process exits (``gc`` keeps leased versions): a
        worker handed a tree a moment before ``gc --keep-days 0`` keeps it. One descriptor per distinct
        tree per process."""
        import fcntl

        key = str(tree)
        if key in _LEASES:
            return
        if len(_LEASES) >= MAX_LEASES:  # a long-lived worker of many versions: the oldest lease goes
            os.close(_LEASES.pop(next(iter(_LEASES))))
        path = self._lease_path(tree)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o666)
        except OSError:
            return  # a cache whose locks cannot be written only loses this protection
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return
        _LEASES[key] = fd

    def leased(self, tree: Path) -> bool:
        """Whether another process holds a lease on ``tree`` (this process's own lease is given up: the
        process that asks, ``gc``, is not using the tree it may remove)."""
        import fcntl

        own = _LEASES.pop(str(tree), None)
        if own is not None:
            os.close(own)
        path = self._lease_path(tree)
        try:
            fd = os.open(path, os.O_RDWR | _NOFOLLOW)
        except OSError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False
        finally:
            os.close(fd)

    def _lease_path(self, tree: Path) -> Path:
        return self.root / "locks" / f"lease-{tree.parent.name}-{tree.name}.lock"

    # -------------------------------------------------------------------------------- pins

    def pin(self, digest: str, note: str = "") -> None:
        self.prepare()
        atomic_write_bytes(self.pin_path(digest), (note or digest).encode() + b"\n")

    def unpin(self, digest: str) -> bool:
        try:
            os.unlink(self.pin_path(digest))
        except FileNotFoundError:
            return False
        return True

    def pins(self) -> list[str]:
        result = []
        for name in _listdir(self.root / "pins"):
            algorithm, _, hexdigest = name.partition("-")
            if hexdigest:
                result.append(f"{algorithm}:{hexdigest}")
        return sorted(result)

    # -------------------------------------------------------------------------------- verify

    def verify(self) -> list[Problem]:
        """Re-hash every object; check every completed tree. Damaged objects are removed (they would be
        fetched again on next use) and damaged trees lose their marker (repaired on next use)."""
        problems: list[Problem] = []
        self.check_layout()
        with self.lock("gc"):
            for path, digest in self._all_objects():
                if not self.verify_object(path, digest):
                    problems.append(Problem("corrupt-object", str(path), f"bytes do not match {digest}; removed"))
                    _unlink(path)
            for digest in self.cached_versions():
                loaded = self.load_version_bytes(digest)
                if loaded is None:
                    problems.append(Problem("bad-version", str(self.version_dir(digest)), "unreadable; removed"))
                    _force_rmtree(self.version_dir(digest))
                    continue
                files = version_specs(loaded[1])
                for tree in self.trees_of(digest):
                    marker = self.marker_path(tree)
                    wanted = _marker_files(marker, files)
                    bad, extra = self.tree_problems(tree, wanted)
                    bad += [r for r in sorted(wanted) if r not in bad and not _same_bytes(tree / r, wanted[r])]
                    if bad:
                        problems.append(
                            Problem("damaged-tree", str(tree), f"{len(bad)} file(s) damaged, e.g. {bad[0]}; unmarked")
                        )
                        _unlink(marker)
                    if extra:
                        problems.append(
                            Problem(
                                "extra-files",
                                str(tree),
                                f"{len(extra)} entr(y/ies) the version does not have, e.g. {extra[0]}; removed",
                            )
                        )
                        self.remove_extras(tree, extra)
        return problems

    def trees_of(self, digest: str) -> list[Path]:
        """Completed trees (those with a marker) of one version, the full one and every selection."""
        algorithm, hexdigest = split(digest)
        folder = real_folder_below(self.root, "trees", algorithm)
        return sorted(
            folder / name[: -len(".complete")]
            for name in _listdir(folder)
            if name.endswith(".complete") and name.split("+", 1)[0].removesuffix(".complete") == hexdigest
        )

    def _all_objects(self) -> Iterator[tuple[Path, str]]:
        require_real_folder(self.objects_dir)
        for algorithm in _real_subfolders(self.objects_dir):
            for prefix in _real_subfolders(self.objects_dir / algorithm):
                for hexdigest in _listdir(self.objects_dir / algorithm / prefix):
                    if hexdigest.startswith("."):
                        continue
                    yield self.objects_dir / algorithm / prefix / hexdigest, f"{algorithm}:{hexdigest}"

    # -------------------------------------------------------------------------------- gc

    def gc(self, *, keep: Iterable[str] = (), keep_seconds: float = 7 * 86400, dry_run: bool = False) -> GcReport:
        """Remove versions neither pinned, nor in ``keep``, nor used within ``keep_seconds``; then every
        object no remaining version needs, and dead staging folders. Holds the cache exclusively."""
        report = GcReport(dry_run=dry_run)
        now = time.time()
        self.check_layout()
        protected = set(keep) | set(self.pins())
        doomed_paths: list[Path] = []
        with self.lock("gc"):
            if not dry_run:
                report.removed_tmp = self.clean_stale_tmp()
            needed: set[str] = set()
            for digest in self.cached_versions():
                last_used = self._last_used(digest)
                busy = any(self.leased(tree) for tree in self.trees_of(digest))
                if busy:
                    report.busy_versions.append(digest)
                if digest in protected or busy or now - last_used < keep_seconds:
                    report.kept_versions.append(digest)
                    loaded = self.load_version_bytes(digest)
                    if loaded is not None:
                        needed.update(spec.digest for spec in version_specs(loaded[1]).values())
                    continue
                report.removed_versions.append(digest)
                algorithm, hexdigest = split(digest)
                for name in _listdir(real_folder_below(self.root, "trees", algorithm)):
                    if name.split("+", 1)[0].removesuffix(".complete") == hexdigest:
                        path = self.root / "trees" / algorithm / name
                        if not name.endswith(".complete"):
                            report.removed_trees.append(str(path))
                        doomed_paths.append(path)
                doomed_paths.append(self.version_dir(digest))
            doomed_objects = [path for path, digest in self._all_objects() if digest not in needed]
            report.removed_objects = len(doomed_objects)
            report.freed_bytes = _freed_bytes(doomed_paths + doomed_objects)
            if not dry_run:
                for path in doomed_paths + doomed_objects:
                    _force_rmtree(path) if path.is_dir() and not path.is_symlink() else _unlink(path)
        return report

    def _last_used(self, digest: str) -> float:
        times = [_mtime(self.version_dir(digest))]
        times += [_mtime(self.marker_path(tree)) for tree in self.trees_of(digest)]
        return max(times)

    def touch(self, marker: Path) -> None:
        with contextlib.suppress(OSError):
            os.utime(marker)


# ------------------------------------------------------------------------------------------- helpers


def version_specs(index_bytes: bytes) -> dict[str, ObjectSpec]:
    """``{path: ObjectSpec}`` from raw index bytes (already verified by digest; parsed leniently)."""
    from modelops_bundle.core.upstream import index_file_items

    data = json.loads(index_bytes)
    return {
        entry["path"]: ObjectSpec(entry["digest"], int(entry["size"]), bool(int(entry.get("mode", 0o644)) & 0o111))
        for entry in index_file_items(data)  # a v0.1.1 index keys its files by path
    }


def specs_of(entries: Iterable[Any]) -> dict[str, ObjectSpec]:
    """``{path: ObjectSpec}`` from :class:`~modelops_bundle.core.index.IndexEntry` objects."""
    return {entry.path: ObjectSpec(entry.digest, entry.size, bool(entry.mode & 0o111)) for entry in entries}


def write_marker(marker: Path, digest: str, files: Sequence[str]) -> None:
    payload = {"format": CACHE_FORMAT, "digest": digest, "files": sorted(files)}
    atomic_write_bytes(marker, json.dumps(payload, separators=(",", ":")).encode())


def read_marker(marker: Path) -> list[str] | None:
    try:
        data = json.loads(marker.read_bytes())
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    return [f for f in files if isinstance(f, str)] if isinstance(files, list) else None


def _marker_files(marker: Path, files: Mapping[str, ObjectSpec]) -> dict[str, ObjectSpec]:
    listed = read_marker(marker)
    if listed is None:
        return dict(files)
    return {rel: files[rel] for rel in listed if rel in files}


def _same_bytes(path: Path, spec: ObjectSpec) -> bool:
    from modelops_bundle.core.hashing import file_matches

    split(spec.digest)  # a malformed digest is an error, not a mismatch
    return file_matches(path, spec.digest)


def _signature_ok(st: os.stat_result, size: int) -> bool:
    return stat_module.S_ISREG(st.st_mode) and st.st_size == size and st.st_mtime_ns == OBJECT_MTIME_NS


def _finish_copy(path: Path, mode: int) -> None:
    os.chmod(path, mode)
    os.utime(path, ns=(OBJECT_MTIME_NS, OBJECT_MTIME_NS))


def _reflink(source: Path, target: Path) -> bool:
    """Clone ``source`` to a new ``target`` (copy-on-write); False where the file system cannot."""
    import fcntl

    try:
        src = os.open(source, os.O_RDONLY)
    except OSError:
        return False
    try:
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        os.close(src)
        return False
    try:
        fcntl.ioctl(dst, _FICLONE, src)
        return True
    except OSError:
        os.close(dst)
        dst = -1
        with contextlib.suppress(OSError):
            os.unlink(target)
        return False
    finally:
        os.close(src)
        if dst >= 0:
            os.close(dst)


_TEMP_NAME = re.compile(r"^\..+\.mops-(\d+)\.tmp$")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: The cache's top folders (see the module docstring).
LAYOUT_FOLDERS = ("objects", "versions", "trees", "locks", "tmp", "pins")
#: Descriptors of the leases this process holds (tree path -> fd, oldest first), released when it exits;
#: at most :data:`MAX_LEASES` (the oldest is given up for a new one).
_LEASES: dict[str, int] = {}
MAX_LEASES = 128


def _sweep_dead_temps(folder: Path) -> None:
    """Remove ``.NAME.mops-PID.tmp`` files of processes that no longer run: a checkout killed between
    creating its temp file and renaming it left it there (tests/reliability kills materialise at every
    file-system call), and no later checkout (another pid) would ever remove it."""
    for name in _listdir(folder):
        match = _TEMP_NAME.match(name)
        if match is None or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        _unlink(folder / name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists (another user's process)
    return True


def _real_subfolders(path: Path) -> list[str]:
    """Names of the real folders in ``path`` (symlinks are not followed into: the cache's own layout
    never holds one, and ``gc`` or ``verify`` must not delete through one)."""
    try:
        with os.scandir(path) as entries:
            return sorted(entry.name for entry in entries if entry.is_dir(follow_symlinks=False))
    except OSError:
        return []


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _force_rmtree(path: Path) -> None:
    """``rm -rf`` that also works on read-only files in trees (their folders are writable)."""
    if path.is_symlink() or not path.exists():
        _unlink(path)
        return
    if path.is_file():
        _unlink(path)
        return
    shutil.rmtree(path, ignore_errors=True)


def _freed_bytes(paths: Iterable[Path]) -> int:
    """Bytes that removing ``paths`` (files and folders) releases: an inode counts once all of its links go."""
    removed: dict[tuple[int, int], int] = {}
    sizes: dict[tuple[int, int], tuple[int, int]] = {}

    def visit(path: Path) -> None:
        try:
            st = os.lstat(path)
        except OSError:
            return
        if stat_module.S_ISDIR(st.st_mode):
            for name in _listdir(path):
                visit(path / name)
            return
        key = (st.st_dev, st.st_ino)
        removed[key] = removed.get(key, 0) + 1
        sizes[key] = (st.st_size, st.st_nlink)

    for path in paths:
        visit(path)
    return sum(size for key, (size, links) in sizes.items() if removed[key] >= links)
