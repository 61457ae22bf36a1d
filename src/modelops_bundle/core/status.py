"""Local changes: the working tree against the last synced version (``state.json``).

The remote side of the 3-way comparison is added by the registry layer; this module knows only what
is on disk and what was last pushed or pulled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelops_bundle.core.workspace import Scan, SyncState


@dataclass
class LocalChanges:
    """Tracked files by how they differ from the last synced version."""

    added: list[str] = field(default_factory=list)  # tracked, not in the last synced version
    modified: list[str] = field(default_factory=list)  # content differs from the last synced version
    deleted: list[str] = field(default_factory=list)  # tracked but missing from the working tree
    untracked_since_sync: list[str] = field(default_factory=list)  # synced, no longer tracked
    unchanged: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.modified or self.deleted or self.untracked_since_sync)

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "modified": len(self.modified),
            "deleted": len(self.deleted),
            "removed": len(self.untracked_since_sync),
            "unchanged": len(self.unchanged),
        }

    def status_of(self) -> dict[str, str]:
        labels: dict[str, str] = {}
        for name, paths in (
            ("added", self.added),
            ("modified", self.modified),
            ("deleted", self.deleted),
            ("removed", self.untracked_since_sync),
            ("unchanged", self.unchanged),
        ):
            for path in paths:
                labels[path] = name
        return labels


def local_changes(scan: Scan, tracked: list[str], state: SyncState) -> LocalChanges:
    synced = state.last_synced_files
    changes = LocalChanges()
    missing = set(scan.missing)
    for rel in tracked:
        if rel in missing:
            changes.deleted.append(rel)
            continue
        info = scan.files.get(rel)
        if info is None:
            continue  # skipped (reported separately)
        previous = synced.get(rel)
        if previous is None:
            changes.added.append(rel)
        elif previous != info.digest:
            changes.modified.append(rel)  # includes a digest of another algorithm: never equal
        else:
            changes.unchanged.append(rel)
    tracked_set = set(tracked)
    changes.untracked_since_sync = sorted(rel for rel in synced if rel not in tracked_set)
    return changes
