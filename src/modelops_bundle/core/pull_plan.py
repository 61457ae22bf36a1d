"""The 3-way plan of a pull: what happens to each file, from ``{path: digest}`` maps alone.

A pull is a 3-way merge per file -- local (working tree), remote (the version's index) and base (the last
synced version, ``state.json``):

========================  ===========================  =====================================
remote vs base            local vs base                action
========================  ===========================  =====================================
unchanged                 changed                      keep local (replaced with --overwrite)
changed / added           unchanged                    fetch
changed / added           changed (or unknown)         conflict: refused unless --overwrite
deleted                   unchanged                    delete
deleted                   changed                      conflict: refused unless --overwrite
unchanged                 deleted                      stay deleted unless --restore-deleted
========================  ===========================  =====================================

A single conflict refuses the whole pull. Pure: no file system, no registry -- ``status`` uses it to say
what a pull would do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PullPlan:
    """What a pull does to each file (paths sorted within each list)."""

    add: list[str] = field(default_factory=list)  # new in the version
    update: list[str] = field(default_factory=list)  # changed remotely, unchanged locally
    restore: list[str] = field(default_factory=list)  # deleted locally, brought back
    overwrite: list[str] = field(default_factory=list)  # local change replaced (--overwrite)
    delete: list[str] = field(default_factory=list)  # deleted remotely, unchanged locally
    kept_deleted: list[str] = field(default_factory=list)  # deleted locally and left deleted
    local_only: list[str] = field(default_factory=list)  # local files the version does not have
    kept_local: list[str] = field(default_factory=list)  # changed locally only (kept; --overwrite replaces)
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (path, why) refused
    unchanged: int = 0

    @property
    def fetch(self) -> list[str]:
        return sorted(self.add + self.update + self.restore + self.overwrite)

    @property
    def has_changes(self) -> bool:
        return bool(self.fetch or self.delete)

    def summary(self) -> dict[str, Any]:
        return {
            "add": self.add,
            "update": self.update,
            "restore": self.restore,
            "overwrite": self.overwrite,
            "delete": self.delete,
            "kept_deleted": self.kept_deleted,
            "local_only": self.local_only,
            "kept_local": self.kept_local,
            "conflicts": [{"path": path, "reason": why} for path, why in self.conflicts],
            "unchanged": self.unchanged,
        }


def plan_pull(
    local: Mapping[str, str],
    remote: Mapping[str, str],
    synced: Mapping[str, str],
    *,
    overwrite: bool,
    restore_deleted: bool,
) -> PullPlan:
    """The 3-way plan from ``{path: digest}`` maps (see the module docstring's table)."""
    plan = PullPlan()
    for path in sorted(set(local) | set(remote) | set(synced)):
        ours, theirs, base = local.get(path), remote.get(path), synced.get(path)
        if theirs is not None:
            if ours == theirs:
                plan.unchanged += 1
            elif ours is None:
                if base is None:
                    plan.add.append(path)
                elif base == theirs and not (restore_deleted or overwrite):
                    plan.kept_deleted.append(path)
                elif base == theirs or restore_deleted or overwrite:
                    plan.restore.append(path)
                else:
                    plan.conflicts.append((path, "deleted locally, changed in the version"))
            elif ours == base:
                plan.update.append(path)
            elif base == theirs and not overwrite:
                plan.kept_local.append(path)  # changed only here: nothing to bring in
            elif overwrite:
                plan.overwrite.append(path)
            else:
                why = "changed locally and in the version" if base else "exists locally with other content"
                plan.conflicts.append((path, why))
        elif base is not None and ours is not None:
            if ours == base or overwrite:
                plan.delete.append(path)
            else:
                plan.conflicts.append((path, "changed locally, deleted in the version"))
        elif ours is not None:
            plan.local_only.append(path)
    return plan
