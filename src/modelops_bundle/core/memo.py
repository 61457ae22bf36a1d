"""The settings memo: what was read from small files, keyed by the state each file was in.

``.modelops-bundle/cache/memo.json`` remembers, per key, a fingerprint of a source file (size, mtime,
inode, ctime) and data derived from it -- the parsed settings of ``config.yaml`` and of environment
files, "``tracked.txt`` in this state passed validation", the compiled ignore rules. A warm ``status``
then parses no YAML at all. A file that changes gets a new fingerprint, so its entry simply stops
matching. The memo is machine-local and disposable: a missing, corrupt or foreign file is an empty
memo, and an unwritable one only costs speed. It never holds a credential (:mod:`.secrets`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Bump when what a key's data means changes (older memos are then ignored as a whole).
MEMO_VERSION = 1
MEMO_FILE = "memo.json"


def file_fingerprint(path: Path | str) -> list[int] | None:
    """Identity of a small file's state: size, mtime_ns, inode, ctime_ns (``None`` when it cannot be
    stat-ed). ctime changes with every write, and no system call sets it back."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


class Memo:
    """``{key: {"fp": fingerprint, "data": data}}``, loaded once per command and saved when it changed."""

    def __init__(self, path: Path | None, entries: dict[str, Any] | None = None) -> None:
        self.path = path
        self._entries: dict[str, Any] = entries or {}
        self.dirty = False

    @classmethod
    def load(cls, path: Path) -> Memo:
        try:
            raw = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return cls(path)
        if not isinstance(raw, dict) or raw.get("version") != MEMO_VERSION or not isinstance(raw.get("memo"), dict):
            return cls(path)
        return cls(path, raw["memo"])

    def get(self, key: str, fingerprint: Any) -> Any:
        """The data remembered under ``key`` for ``fingerprint``, or ``None``."""
        item = self._entries.get(key)
        if fingerprint is not None and isinstance(item, dict) and item.get("fp") == fingerprint:
            return item.get("data")
        return None

    def put(self, key: str, fingerprint: Any, data: Any) -> None:
        item = {"fp": fingerprint, "data": data}
        if self._entries.get(key) != item:
            self._entries[key] = item
            self.dirty = True

    def drop(self, key: str) -> None:
        if self._entries.pop(key, None) is not None:
            self.dirty = True

    def remember(self, key: str, path: Path, data: Any) -> None:
        """Remember ``data`` for ``path`` as it is on disk now (after this command wrote it)."""
        fingerprint = file_fingerprint(path)
        if fingerprint is not None:
            self.put(key, fingerprint, data)

    def cached(
        self, key: str, path: Path, compute: Callable[[], Any], *, keep: Callable[[Any], bool] | None = None
    ) -> Any:
        """``compute()`` for ``path`` in its current state, remembered: computed again only when the file
        changed. The result is remembered only if the file did not change while it was computed, and
        only when ``keep(result)`` allows (a result holding a secret must not be written to disk)."""
        fingerprint = file_fingerprint(path)
        remembered = self.get(key, fingerprint)
        if remembered is not None:
            return remembered
        data = compute()
        if fingerprint is not None and (keep is None or keep(data)) and file_fingerprint(path) == fingerprint:
            self.put(key, fingerprint, data)
        return data

    def save(self) -> None:
        """Write the memo if it changed (temp file and rename; no fsync: it is only a cache)."""
        if not self.dirty or self.path is None:
            return
        payload = json.dumps({"version": MEMO_VERSION, "memo": self._entries}, separators=(",", ":")).encode()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return
        self.dirty = False
