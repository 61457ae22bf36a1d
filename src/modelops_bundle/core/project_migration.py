"""Project folders made by the previous public release (modelops-bundle v0.1.1): recognised, refused with
the command that fixes them, and converted in place by ``mops bundle migrate``.

v0.1.1 wrote ``config.yaml`` with ``registry_ref``, its own storage-mode words (``oci-only``,
``blob-only``), empty strings for unset providers and containers, ``fs`` for a folder store, and keys this
release has no use for (``cache_link_mode``: the shared cache picks reflink, hard link or copy by itself;
``auto_code``: code dependencies come from the import graph; ``artifact_type``); ``state.json`` with a
``timestamp``; and it tracked ``.modelops-bundle/registry.yaml``, which now travels in every version
without being tracked. Release 0.2.0's ``registry_ref`` alone is migrated silently on first use
(:mod:`.config_migration`); anything in the list above needs the user's go-ahead, because the meaning of
a setting changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from modelops_bundle.core.legacy_formats import (
    DROPPED_CONFIG_KEYS,
    FOLDER_PROVIDER,
    MODE_WORDS,
    config_markers,
    state_markers,
)
from modelops_bundle.core.project import META_DIR, Project


class Change(NamedTuple):
    """One change ``migrate`` makes: the file and what happens to it."""

    file: str
    what: str


class MigrationPlan(NamedTuple):
    """Every file's new content (``None``: unchanged) and the changes, in the order they are written."""

    writes: dict[Path, bytes]
    changes: list[Change]

    @property
    def needed(self) -> bool:
        return bool(self.writes)


def plan_migration(project: Project) -> MigrationPlan:
    """What ``migrate`` would do to ``project``, computed from the files alone; nothing is written. Every
    file is read and checked first, so a plan that exists can be applied whole."""
    from modelops_bundle.core.validation import dump_yaml, parse_json, parse_yaml, read_text

    writes: dict[Path, bytes] = {}
    changes: list[Change] = []

    state_path = project.state_path
    if state_path.exists():
        state = parse_json(read_text(state_path, what="sync state"), state_path)
        if state_markers(state):
            kept = {key: value for key, value in state.items() if key != "timestamp"}
            writes[state_path] = (json.dumps(kept, indent=2) + "\n").encode()
            changes.append(Change("state.json", "dropped 'timestamp' (the time of the last sync is not kept)"))

    tracked_path = project.tracked_path
    if tracked_path.exists():
        lines = read_text(tracked_path, what="tracked list").splitlines()
        meta = [line for line in lines if line == META_DIR or line.startswith(f"{META_DIR}/")]
        if meta:
            from modelops_bundle.core.workspace import tracked_text  # an empty list is one empty line

            kept_lines = sorted({line for line in lines if line and line not in meta})
            writes[tracked_path] = tracked_text(kept_lines).encode()
            for line in meta:
                changes.append(
                    Change("tracked.txt", f"stopped tracking {line} (the model registry travels in every version)")
                )

    config_path = project.config_path
    raw = parse_yaml(read_text(config_path, what="bundle configuration"), config_path)
    if config_markers(raw):
        converted, config_changes = _converted_config(raw, config_path)
        from modelops_bundle.core.settings_files import CONFIG_HEADER

        writes[config_path] = (CONFIG_HEADER + dump_yaml(converted)).encode()
        changes.extend(Change("config.yaml", what) for what in config_changes)

    registry_path = project.registry_path
    if registry_path.exists():
        from modelops_bundle.core.model_registry import parse_registry

        parse_registry(read_text(registry_path, what="model registry"), registry_path)  # must read as it is
    return MigrationPlan(writes, changes)


def _converted_config(raw: Mapping[str, Any], path: Path) -> tuple[dict[str, Any], list[str]]:
    """v0.1.1 ``config.yaml`` data as this release's keys (``registry_ref`` stays: the session migrates it
    against the environment, :mod:`.config_migration`), checked by the settings validator."""
    from modelops_bundle.core.settings import ProjectConfig
    from modelops_bundle.core.settings_files import LEGACY_REGISTRY_REF, build_from_file, split_legacy_ref

    data = dict(raw)
    changes: list[str] = []
    for key in DROPPED_CONFIG_KEYS:
        if key in data:
            del data[key]
            changes.append(f"dropped '{key}' ({_DROPPED_WHY[key]})")
    storage = dict(data.get("storage") or {})
    mode = storage.get("mode")
    if mode in MODE_WORDS:
        storage["mode"] = MODE_WORDS[mode]
        changes.append(f"storage.mode: {mode} -> {MODE_WORDS[mode]}")
    for key in ("provider", "container"):
        if storage.get(key) == "":
            del storage[key]
            changes.append(f"storage.{key}: '' -> unset (the environment's)")
    if storage.get("provider") == FOLDER_PROVIDER:
        storage["provider"] = "local"
        folder = storage.pop("container", None)
        where = f"; its folder {folder} belongs in the environment file's storage.path" if folder else ""
        changes.append(f"storage.provider: {FOLDER_PROVIDER} -> local{where}")
    if storage:
        data["storage"] = storage
    else:
        data.pop("storage", None)
    legacy = data.get(LEGACY_REGISTRY_REF)
    checked = dict(data)
    if isinstance(legacy, str) and legacy.strip():
        del checked[LEGACY_REGISTRY_REF]
        checked.update(split_legacy_ref(legacy.strip(), path))
    build_from_file(ProjectConfig, checked, path)  # the converted file must be valid before it is written
    return data, changes


_DROPPED_WHY = {
    "cache_link_mode": "the shared cache picks reflink, hard link or copy by itself",
    "auto_code": "code dependencies come from the import graph, at register-model and before each push",
    "artifact_type": "every version carries application/vnd.modelops.bundle.v1",
}


def apply_migration(plan: MigrationPlan) -> None:
    """Write the plan's files atomically, ``config.yaml`` last: an interrupted migration leaves a folder
    that is still recognised as v0.1.1, and running ``migrate`` again finishes it."""
    from modelops_bundle.core.fsutil import atomic_write_bytes

    for path in sorted(plan.writes, key=lambda p: p.name == "config.yaml"):
        atomic_write_bytes(path, plan.writes[path])
