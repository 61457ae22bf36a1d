"""Local changes: the working tree against the last synced version (``state.json``).

The remote side of the 3-way comparison is added by the registry layer; this module knows only what
is on disk and what was last pushed or pulled.
"""

from __future__ import annotations

from modelops_bundle.core.workspace import Scan, SyncState


class LocalChanges:
    """Tracked files by how they differ from the last synced version. (A plain class: a dataclass costs
    about 0.3 ms to define, on every status -- decision 0017.)"""

    __slots__ = ("added", "deleted", "modified", "unchanged", "untracked_since_sync")

    def __init__(self) -> None:
        self.added: list[str] = []  # tracked, not in the last synced version
        self.modified: list[str] = []  # content differs from the last synced version
        self.deleted: list[str] = []  # tracked but missing from the working tree
        self.untracked_since_sync: list[str] = []  # synced, no longer tracked
        self.unchanged: list[str] = []

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
