"""Building blocks for hand-made (often hostile) bundle indexes in tests."""

from __future__ import annotations

import hashlib
from typing import Any


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_entry(path: str, data: bytes, layer: str, **changes: Any) -> dict[str, Any]:
    """One index entry for ``data`` stored in the registry layer ``layer``; ``changes`` override fields."""
    entry: dict[str, Any] = {
        "path": path,
        "size": len(data),
        "digest": sha(data),
        "algorithm": "sha256",
        "storage": "oci",
        "mode": 0o644,
        "layer": layer,
    }
    entry.update(changes)
    return entry
