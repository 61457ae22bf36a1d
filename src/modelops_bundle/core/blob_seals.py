"""Seals: remembered verifications of a local blob store's objects (decision 0016).

A local store is a folder; copying one of its objects is a kernel copy from the page cache, and hashing
the copy costs more than the copy itself. Like git's index and the workspace stat cache, a seal trusts a
file whose stat signature has not changed since its bytes were hashed: ``(device, inode, size,
mtime_ns, ctime_ns)``. The ctime is what makes this safe for a folder others can write: no call sets it,
and every write, truncation, ``chmod`` or rename bumps it; a replaced object has a new inode.

A seal is made only from evidence:

* after a download whose bytes were hashed and matched, for the object as it stood before *and* after
  the copy (so the bytes hashed are the bytes of that object);
* after an upload this process made from a workspace file whose signature equals the one its digest was
  computed at (the stat cache's rule), before and after the copy.

The seals live per user (``$MODELOPS_HOME/blob-seals/<folder hash>.json``), never in the store: a writer
of the store must not be able to vouch for its own objects. A seal file that cannot be read is ignored
and one that cannot be written costs only speed. ``storage: {verify: always}`` in the environment turns
seals off: every download is hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_module
import threading
from collections.abc import Callable
from pathlib import Path

from modelops_bundle.core.errors import BundleError
from modelops_bundle.core.fsutil import atomic_write_bytes

SEALS_FORMAT = 1
#: Seals kept per store (most recent first out of the file when over): 64 bytes each on disk, about.
SEAL_LIMIT = 50_000

Signature = tuple[int, int, int, int, int]
"""``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)`` of a regular file."""


def object_signature(path: str) -> Signature | None:
    """The signature of the regular file at ``path`` (never followed through a symlink), or ``None``."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat_module.S_ISREG(st.st_mode):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def seals_path(home: Path, store_root: Path) -> Path:
    """Where the seals of the store folder ``store_root`` live (one file per folder)."""
    name = hashlib.sha256(os.fsencode(str(store_root))).hexdigest()[:24]
    return home / "blob-seals" / f"{name}.json"


class BlobSeals:
    """The seals of one store folder; ``locate(key)`` is an object's path. Thread-safe."""

    def __init__(self, path: Path, locate: Callable[[str], str], *, limit: int = SEAL_LIMIT) -> None:
        self.path = path
        self.locate = locate
        self.limit = limit
        self._lock = threading.Lock()
        self._seals: dict[str, tuple[str, Signature]] | None = None  # key -> (digest, signature)
        self._changed: dict[str, tuple[str, Signature]] = {}  # what this process learnt

    def signature(self, key: str) -> Signature | None:
        return object_signature(self.locate(key))

    def vouches(self, key: str, digest: str, signature: Signature) -> bool:
        """Whether the object at ``key``, now at ``signature``, was verified to hold ``digest``."""
        with self._lock:
            seal = self._loaded().get(key)
        return seal is not None and seal[0] == digest and seal[1] == signature

    def record(self, key: str, digest: str, signature: Signature) -> None:
        """Seal ``key``: its bytes at ``signature`` were verified to be ``digest``."""
        seal = (digest, signature)
        with self._lock:
            seals = self._loaded()
            if seals.get(key) != seal:
                seals.pop(key, None)  # re-inserted last: the most recent seals survive the limit
                seals[key] = seal
                self._changed[key] = seal

    def save(self) -> None:
        """Merge what this process learnt into the seal file (best effort, atomic)."""
        with self._lock:
            if not self._changed:
                return
            merged = self._read()
            for key, seal in self._changed.items():
                merged.pop(key, None)
                merged[key] = seal
            if len(merged) > self.limit:
                merged = dict(list(merged.items())[-self.limit :])
            payload = {
                "format": SEALS_FORMAT,
                "seals": [[key, digest, *signature] for key, (digest, signature) in merged.items()],
            }
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(self.path, json.dumps(payload, separators=(",", ":")).encode(), mode=0o600)
            except (BundleError, OSError):
                return  # seals only save time; the next pull hashes again
            self._changed.clear()
            self._seals = merged

    def _loaded(self) -> dict[str, tuple[str, Signature]]:
        if self._seals is None:
            self._seals = self._read()
        return self._seals

    def _read(self) -> dict[str, tuple[str, Signature]]:
        try:
            raw = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict) or raw.get("format") != SEALS_FORMAT or not isinstance(raw.get("seals"), list):
            return {}
        seals: dict[str, tuple[str, Signature]] = {}
        for row in raw["seals"]:
            if (
                isinstance(row, list)
                and len(row) == 7
                and isinstance(row[0], str)
                and isinstance(row[1], str)
                and all(type(value) is int for value in row[2:])
            ):
                seals[row[0]] = (row[1], (row[2], row[3], row[4], row[5], row[6]))
        return seals
