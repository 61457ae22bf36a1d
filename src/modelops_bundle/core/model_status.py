"""Model and target status: Ready / Stale / Broken against the registry's recorded digests, and cloud state.

Cheap by construction: a status is a dictionary walk over the digests ``status`` already has from its
scan (stat cache, no re-hashing) and the registry (memoised, see :func:`~.model_registry.load_registry`).
No Python file is parsed -- a changed import graph shows up as a changed digest of the importing file.
Only with ``fingerprint: ast`` are the few *changed* Python files fingerprinted, to tell a comment-only
edit (``cosmetic``, still Ready) from a real one.

Dependency states (``DependencyStatus.state``):

=============  ====================================================================  ==========
``unchanged``  current digest equals the recorded one                                Ready
``cosmetic``   bytes changed, code fingerprint unchanged (``fingerprint: ast`` only)  Ready
``changed``    current digest differs from the recorded one                          Stale
``unrecorded`` no digest was recorded (a registry written by another tool)           Stale
``missing``    the file is gone from the working tree                                Broken
``untracked``  the file exists but is not tracked: it would not travel in the bundle  Broken
``unreadable`` the scan skipped it (a symlink leaving the project, a special file)   Broken
=============  ====================================================================  ==========

Cloud state compares, per dependency, the working tree (scan), the pushed version (its registry's
recorded digests, which a push refreshes from its own files -- or the version's index when given) and
the last synced version (``state.json``): ``synced``, ``ahead`` (only local changes), ``behind`` (only
remote changes), ``diverged`` (both, or differing with no common base) or ``not pushed``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.model_registry import DependentRecord, Fingerprinter, ModelRecord, Registry, stored_digest

if TYPE_CHECKING:
    from modelops_bundle.core.workspace import Scan

READY, STALE, BROKEN = "ready", "stale", "broken"
SYNCED, AHEAD, BEHIND, DIVERGED, NOT_PUSHED = "synced", "ahead", "behind", "diverged", "not pushed"
BREAKING = frozenset({"missing", "untracked", "unreadable"})
STALING = frozenset({"changed", "unrecorded"})


@dataclass(frozen=True)
class DependencyStatus:
    path: str
    kind: str  # "code" | "data"
    state: str
    recorded: str | None  # digest in the registry
    current: str | None  # digest on disk now (None when missing, untracked or unreadable)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "state": self.state,
            "recorded": self.recorded,
            "current": self.current,
        }


@dataclass
class RecordStatus:
    """The status of one registered model or target."""

    kind: str  # "model" | "target"
    id: str
    name: str  # the class name of a model, the id of a target
    entrypoint: str
    count: int  # dependencies, the definition file included
    issues: list[DependencyStatus]  # every dependency that is not ``unchanged``, in registry order
    digest: str | None  # recorded model_digest / target_digest
    cloud: str | None = None  # set by apply_cloud_states

    @property
    def readiness(self) -> str:
        states = {dep.state for dep in self.issues}
        if states & BREAKING:
            return BROKEN
        if states & STALING:
            return STALE
        return READY

    @property
    def changed(self) -> list[DependencyStatus]:
        return [dep for dep in self.issues if dep.state in STALING]

    @property
    def broken(self) -> list[DependencyStatus]:
        return [dep for dep in self.issues if dep.state in BREAKING]

    def label(self) -> str:
        """``Ready``, ``Stale (2 changed)``, ``Broken (1 missing)``: the status column."""
        if self.readiness == BROKEN:
            counts: dict[str, int] = {}
            for dep in self.broken:
                counts[dep.state] = counts.get(dep.state, 0) + 1
            return "Broken (" + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + ")"
        if self.readiness == STALE:
            return f"Stale ({len(self.changed)} changed)"
        return "Ready"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "entrypoint": self.entrypoint,
            "status": self.readiness,
            "dependencies": self.count,
            "changed": len(self.changed),
            "broken": len(self.broken),
            "digest": self.digest,
            "cloud": self.cloud,
            "files": [dep.to_json() for dep in self.issues],
        }


@dataclass
class RegistryStatus:
    """Every registered model and target, in registry order."""

    models: list[RecordStatus] = field(default_factory=list)
    targets: list[RecordStatus] = field(default_factory=list)

    def find(self, name: str) -> RecordStatus | None:
        """A model or target by id, or a model by class name (``status --explain SEIRModel``)."""
        for item in (*self.models, *self.targets):
            if item.id == name:
                return item
        matches = [model for model in self.models if model.name == name]
        return matches[0] if len(matches) == 1 else None

    def names(self) -> list[str]:
        return [item.id for item in (*self.models, *self.targets)]

    def to_json(self) -> dict[str, Any]:
        return {
            "models": [model.to_json() for model in self.models],
            "targets": [target.to_json() for target in self.targets],
        }


def compute_status(
    registry: Registry, scan: Scan, root: Path, *, fingerprinter: Fingerprinter | None = None
) -> RegistryStatus:
    """Status of every model and target from ``scan``'s digests (no hashing, no parsing).

    ``root`` is used only to tell a missing dependency from an untracked one, and only for dependencies
    the scan does not know. ``fingerprinter`` is consulted only with ``fingerprint: ast``, and only for
    changed Python files.
    """
    files = scan.files
    missing = set(scan.missing)
    skipped = {rel for rel, _ in scan.skipped}
    prefix = str(root) + os.sep
    use_fingerprints = registry.fingerprint == "ast" and fingerprinter is not None

    def judge(record: DependentRecord, rel: str, kind: str, recorded: str | None) -> DependencyStatus | None:
        info = files.get(rel)
        if info is not None:
            current: str | None = info.digest
            if recorded == current:
                return None
            if recorded is None:
                state = "unrecorded"
            elif use_fingerprints and kind == "code" and _same_fingerprint(record, rel, fingerprinter):
                state = "cosmetic"
            else:
                state = "changed"
        else:
            current = None
            if rel in skipped:
                state = "unreadable"
            elif rel in missing or not os.path.exists(prefix + rel):
                state = "missing"
            else:
                state = "untracked"
        return DependencyStatus(rel, kind, state, recorded, current)

    def issues(record: DependentRecord) -> tuple[int, list[DependencyStatus]]:
        # The hot loop of a status over many models: one dict lookup and one comparison per dependency.
        found = []
        dependencies = record.dependencies()
        code_digests, data_digests = record.code_digests, record.data_digests
        for rel, kind in dependencies:
            recorded = (data_digests if kind == "data" else code_digests).get(rel)
            info = files.get(rel)
            if info is None or info.digest != recorded:
                issue = judge(record, rel, kind, recorded)
                if issue is not None:
                    found.append(issue)
        return len(dependencies), found

    report = RegistryStatus()
    for key, model in registry.models.items():
        count, found = issues(model)
        report.models.append(
            RecordStatus("model", key, model.class_name, model.entrypoint, count, found, model.model_digest)
        )
    for key, target in registry.targets.items():
        count, found = issues(target)
        report.targets.append(RecordStatus("target", key, key, target.entrypoint, count, found, target.target_digest))
    return report


def _same_fingerprint(record: DependentRecord, rel: str, fingerprinter: Fingerprinter | None) -> bool:
    recorded = record.code_fingerprints.get(rel)
    return recorded is not None and fingerprinter is not None and fingerprinter(rel) == recorded


# ------------------------------------------------------------------------------------- cloud state


def cloud_state(
    local: DependentRecord,
    remote: DependentRecord | None,
    scan: Scan,
    synced_files: Mapping[str, str],
    *,
    remote_files: Mapping[str, str] | None = None,
) -> str:
    """Where one model or target stands against the pushed version (see the module docstring).

    ``remote`` is the same id in the remote version's registry (``None``: not pushed). The remote
    digest of a path comes from ``remote_files`` (the version's index, ``{path: digest}``) when given,
    else from ``remote``'s recorded digests.
    """
    if remote is None:
        return NOT_PUSHED
    remote_kinds = dict(remote.dependencies())
    paths = dict(local.dependencies())
    for rel, kind in remote_kinds.items():
        paths.setdefault(rel, kind)
    local_changed = remote_changed = False
    for rel in paths:
        info = scan.files.get(rel)
        here = info.digest if info is not None else None
        if remote_files is not None:
            there = remote_files.get(rel)
        else:
            there = remote.recorded_digest(rel, remote_kinds[rel]) if rel in remote_kinds else None
        if here == there:
            continue
        base = synced_files.get(rel)
        if base is None:
            if here is None:
                remote_changed = True
            elif there is None:
                local_changed = True
            else:
                return DIVERGED  # both have the file, differently, and there is no common version
            continue
        local_changed = local_changed or here != base
        remote_changed = remote_changed or there != base
    if local_changed and remote_changed:
        return DIVERGED
    if local_changed:
        return AHEAD
    if remote_changed:
        return BEHIND
    return SYNCED


def apply_cloud_states(
    report: RegistryStatus,
    local: Registry,
    remote: Registry | None,
    scan: Scan,
    synced_files: Mapping[str, str],
    *,
    remote_files: Mapping[str, str] | None = None,
) -> None:
    """Fill :attr:`RecordStatus.cloud` of every model and target (``remote=None``: nothing pushed)."""
    for item in (*report.models, *report.targets):
        record: DependentRecord = local.models[item.id] if item.kind == "model" else local.targets[item.id]
        other: DependentRecord | None = None
        if remote is not None:
            other = remote.models.get(item.id) if item.kind == "model" else remote.targets.get(item.id)
        item.cloud = cloud_state(record, other, scan, synced_files, remote_files=remote_files)


# ----------------------------------------------------------------------------------- presentation


def model_table(report: RegistryStatus) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of the model table (then targets), plain text. Models are named by id, as every
    other command (``list``, ``status --explain``, ``--model``) names them, with the class beside it."""
    columns = ["Model", "Class", "Status", "Dependencies", "Cloud"]
    rows = [[item.id, item.name, item.label(), _dependency_cell(item), _cloud(item)] for item in report.models]
    return columns, rows


def target_table(report: RegistryStatus) -> tuple[list[str], list[list[str]]]:
    columns = ["Target", "Status", "Dependencies", "Cloud"]
    rows = [[item.id, item.label(), _dependency_cell(item), _cloud(item)] for item in report.targets]
    return columns, rows


def _dependency_cell(item: RecordStatus) -> str:
    return f"{item.count} file" + ("" if item.count == 1 else "s")


def _cloud(item: RecordStatus) -> str:
    return (item.cloud or "-").capitalize() if item.cloud != NOT_PUSHED else "Not pushed"


def explain_lines(item: RecordStatus) -> list[str]:
    """``status --explain NAME``: every dependency that differs from its record, with old and new digest."""
    what = f"{item.kind} {item.id}" + (f" ({item.entrypoint})" if item.entrypoint else "")
    lines = [f"{what}: {item.label()}, {item.count} dependencies"]
    if not item.issues:
        lines.append("  every dependency matches its recorded digest")
    for dep in item.issues:
        lines.append(f"  {dep.state:<10} {dep.kind:<4} {dep.path}")
        lines.append(f"             recorded {dep.recorded or '(none)'}")
        lines.append(f"             now      {dep.current or '(' + dep.state + ')'}")
    return lines


# -------------------------------------------------------------------------------------- impact


@dataclass
class Impact:
    """One model or target touched by a set of file changes (for ``diff``)."""

    kind: str
    id: str
    name: str
    changes: list[tuple[str, str]]  # (path, change)

    def describe(self) -> list[str]:
        """One line per change, naming the model by id with its class (as ``status`` does)."""
        who = self.id if self.name == self.id else f"{self.id} ({self.name})"
        return [f"{who}: {path} {change}" for path, change in self.changes]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "changes": [{"path": path, "change": change} for path, change in self.changes],
        }


def impact(registries: Iterable[Registry | None], changes: Mapping[str, str]) -> list[Impact]:
    """Models and targets whose dependencies are among ``changes`` (``{path: "modified" | "added" | ...}``).

    Pass both sides' registries (working tree and version, or two versions): a dependency that exists
    on one side only still counts. Works from indexes and registries alone -- nothing is read from disk.
    """
    found: dict[tuple[str, str], Impact] = {}
    for registry in registries:
        if registry is None:
            continue
        for kind, key, record in registry.records():
            name = record.class_name if isinstance(record, ModelRecord) else key
            for rel, _dep_kind in record.dependencies():
                change = changes.get(rel)
                if change is None:
                    continue
                item = found.setdefault((kind, key), Impact(kind, key, name, []))
                if (rel, change) not in item.changes:
                    item.changes.append((rel, change))
    for item in found.values():
        item.changes.sort()
    return sorted(found.values(), key=lambda item: (item.kind != "model", item.id))


DigestChange = tuple[str, str, "str | None", "str | None"]


def registry_digest_changes(old: Registry | None, new: Registry | None) -> list[DigestChange]:
    """``(kind, id, old digest, new digest)`` for every model/target whose recorded digest differs."""
    result: list[DigestChange] = []
    olds = {(kind, key): record for kind, key, record in (old.records() if old else [])}
    news = {(kind, key): record for kind, key, record in (new.records() if new else [])}
    for kind, key in sorted(set(olds) | set(news)):
        before = stored_digest(olds[(kind, key)]) if (kind, key) in olds else None
        after = stored_digest(news[(kind, key)]) if (kind, key) in news else None
        if before != after:
            result.append((kind, key, before, after))
    return result


__all__ = [
    "AHEAD",
    "BEHIND",
    "BROKEN",
    "DIVERGED",
    "NOT_PUSHED",
    "READY",
    "STALE",
    "SYNCED",
    "DependencyStatus",
    "Impact",
    "RecordStatus",
    "RegistryStatus",
    "apply_cloud_states",
    "cloud_state",
    "compute_status",
    "explain_lines",
    "impact",
    "model_table",
    "registry_digest_changes",
    "target_table",
]
