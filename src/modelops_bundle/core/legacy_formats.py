"""Files written by the previous public release (modelops-bundle v0.1.1), recognised where they are read.

Reading ``config.yaml`` or ``state.json`` asks :func:`config_markers` / :func:`state_markers`; what they find
is refused with :func:`refuse` -- the error names the file and ``mops bundle migrate``
(:mod:`.project_migration`), which converts the folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelops_bundle.core.errors import ConfigError

#: Keys of a v0.1.1 ``config.yaml`` that this release does not read.
DROPPED_CONFIG_KEYS = ("cache_link_mode", "auto_code", "artifact_type")
#: v0.1.1's words for ``storage.mode``.
MODE_WORDS = {"oci-only": "oci", "blob-only": "blob"}
#: v0.1.1's folder store.
FOLDER_PROVIDER = "fs"
MIGRATE_HINT = "run 'mops bundle migrate' to convert it (it prints what changes; --dry-run changes nothing)"


class LegacyProjectError(ConfigError):
    """A project folder of modelops-bundle v0.1.1: every command but ``migrate`` refuses it (exit 2)."""


def config_markers(data: Any) -> list[str]:
    """What in parsed ``config.yaml`` data only v0.1.1 wrote (empty for a current or 0.2.0 file)."""
    if not isinstance(data, Mapping):
        return []
    found = [key for key in DROPPED_CONFIG_KEYS if key in data]
    storage = data.get("storage")
    if isinstance(storage, Mapping):
        if storage.get("mode") in MODE_WORDS:
            found.append(f"storage.mode: {storage['mode']}")
        for key in ("provider", "container"):
            if storage.get(key) == "":
                found.append(f"storage.{key}: ''")
        if storage.get("provider") == FOLDER_PROVIDER:
            found.append(f"storage.provider: {FOLDER_PROVIDER}")
    return found


def state_markers(data: Any) -> list[str]:
    return ["timestamp"] if isinstance(data, Mapping) and "timestamp" in data else []


def refuse(path: Path, markers: list[str]) -> LegacyProjectError:
    return LegacyProjectError(
        f"{path}: written by modelops-bundle 0.1.x ({', '.join(markers)}); this project must be migrated first",
        hint=MIGRATE_HINT,
    )
