"""The stat cache's delta file: the few rows that changed since its base was written (git's split index).

A command that changed a handful of files used to rewrite the whole stat cache -- about 20 ms for
10,000 files (rows to columns, JSON, fsync) -- on top of a warm ``status``'s 100 ms. Now the base
(``stat-cache.json``) carries a random ``id`` and the changes since go to ``stat-cache.delta.json``:

```json
{"version": 3, "base": "<id of the base>", "algorithm": "sha256",
 "entries": {"data/a.csv": [dev, ino, size, mtime_ns, "hex"], "gone.txt": null},
 "listings": {"data": [ctime_ns, inode, "a.csv/b.csv", "sub"], "old": null}}
```

``null`` removes a row. A delta applies only to the base whose id it names and only when every row
has its shape -- else it is ignored as a whole, which is always safe: the base alone is an older
state of the cache, and a stat-cache row is a fact about a file signature, not about "now".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

#: Version of the base and delta documents (4: no memo, now its own file; 3: the base carries ``id``;
#: 2: no id, never has a delta).
CACHE_VERSION = 4
#: A delta may hold this many changed rows, or a 32nd of the base's rows if more, before the next save
#: writes a new base instead: every command reads the delta (about 1 ms per 500 rows), while a new base
#: costs a write of the whole cache (about 20 ms for 10,000 files) once.
DELTA_MIN_ROWS = 256
DELTA_SHARE = 32


class Delta(NamedTuple):
    """The rows a delta changes: a ``None`` value removes the row."""

    entries: dict[str, tuple[Any, ...] | None]
    listings: dict[str, tuple[int, int, str, str] | None]


def delta_path(base: Path) -> Path:
    """``stat-cache.delta.json`` beside ``stat-cache.json``."""
    return base.with_name(f"{base.stem}.delta{base.suffix}")


def delta_fits(changed_rows: int, base_rows: int) -> bool:
    """Whether ``changed_rows`` since the base are few enough to be written as a delta."""
    return changed_rows <= max(DELTA_MIN_ROWS, base_rows // DELTA_SHARE)


def encode_delta(base_id: str, algorithm: str, delta: Delta) -> bytes:
    document = {
        "version": CACHE_VERSION,
        "base": base_id,
        "algorithm": algorithm,
        "entries": {rel: list(row) if row is not None else None for rel, row in delta.entries.items()},
        "listings": {rel: list(row) if row is not None else None for rel, row in delta.listings.items()},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def read_delta(path: Path, base_id: str, algorithm: str) -> Delta | None:
    """The delta at ``path`` for base ``base_id`` of ``algorithm``; ``None`` when there is none, it is
    for another base, or any part of it is malformed (all or nothing)."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not (
        isinstance(raw, dict)
        and raw.get("version") == CACHE_VERSION
        and raw.get("base") == base_id
        and raw.get("algorithm") == algorithm
    ):
        return None
    entries, listings = raw.get("entries"), raw.get("listings")
    if not (isinstance(entries, dict) and isinstance(listings, dict)):
        return None
    if not all(row is None or _entry_row(row) for row in entries.values()):
        return None
    if not all(row is None or _listing_row(row) for row in listings.values()):
        return None
    return Delta(
        {rel: tuple(row) if row is not None else None for rel, row in entries.items()},
        {rel: (row[0], row[1], row[2], row[3]) if row is not None else None for rel, row in listings.items()},
    )


def _entry_row(row: Any) -> bool:
    """``[dev, ino, size, mtime_ns, hexdigest]``: four integers (not booleans) and a string."""
    return (
        type(row) is list and len(row) == 5 and all(type(number) is int for number in row[:4]) and type(row[4]) is str
    )


def _listing_row(row: Any) -> bool:
    """``[ctime_ns, inode, files, folders]``."""
    return (
        type(row) is list
        and len(row) == 4
        and type(row[0]) is int
        and type(row[1]) is int
        and type(row[2]) is str
        and type(row[3]) is str
    )


def rows_of(source: Mapping[str, Any], keys: set[str]) -> dict[str, Any]:
    """``{key: source[key] or None}`` for every key in ``keys``, sorted (a stable file for a stable state)."""
    return {key: source.get(key) for key in sorted(keys)}
