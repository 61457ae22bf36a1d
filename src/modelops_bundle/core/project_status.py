"""``status`` as one call: what changed locally, where the tag stands, which models went stale, and
where a push would put each file -- the orchestration the command prints (``cli/status.py``).

Each part costs only what it needs: the scan uses the stat cache; the registry is asked (within a time
limit) only when not ``offline``; the model registry is read only when the project has one; tiers are
decided only for ``files``, without opening a blob store.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.bundle_files import bundle_paths
from modelops_bundle.core.status import LocalChanges, local_changes

if TYPE_CHECKING:
    from modelops_bundle.core.hashing import ProgressSink
    from modelops_bundle.core.model_status import RegistryStatus
    from modelops_bundle.core.remote_status import RemoteStatus
    from modelops_bundle.core.session import Session
    from modelops_bundle.core.workspace import Scan, SyncState, Workspace


class ProjectStatus:
    """Everything ``status`` reports (a plain class: every status makes one, decision 0017)."""

    __slots__ = ("bundle", "changes", "environment", "models", "remote", "scan", "state", "tiers", "tracked")

    def __init__(
        self,
        bundle: str,
        environment: str,
        state: SyncState,
        scan: Scan,
        tracked: list[str],
        changes: LocalChanges,
    ) -> None:
        self.bundle = bundle  # where the version goes: [host[/namespace]/]repository:tag
        self.environment = environment
        self.state = state
        self.scan = scan
        self.tracked = tracked
        self.changes = changes
        self.remote: RemoteStatus | None = None  # None when offline
        self.models: RegistryStatus | None = None  # None when the project registers nothing
        self.tiers: dict[str, str] = {}  # {path: "oci" | "blob"}, when asked for


def project_status(
    session: Session,
    *,
    offline: bool,
    tiers: bool,
    threads: int | None = None,
    progress: Callable[[], ProgressSink] | None = None,
    time_limit: float | None = None,
    waiting: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> ProjectStatus:
    """The status of the session's project. ``time_limit`` bounds the registry question (its ``waiting``
    context shows a spinner meanwhile); a registry that cannot be asked makes the remote side
    ``unknown``, never an error. A pinned environment that does not exist is one, ``offline`` too."""
    ws = session.ws
    session.environment  # noqa: B018 -- the pinned environment must exist
    bundle = session.describe(session.reference())
    state = ws.state()
    paths = bundle_paths(session.host, ws)  # tracked files plus what travels anyway (registry.yaml)
    scan = ws.scan(session.hasher(), paths=paths, include_untracked=True, threads=threads, progress=progress)
    status = ProjectStatus(bundle, session.env_name, state, scan, ws.tracked(), local_changes(scan, paths, state))
    ws.save_caches()
    if not offline:
        from modelops_bundle.core.remote_status import remote_status

        status.remote = remote_status(session, scan, time_limit=time_limit, waiting=waiting)
        session.save_caches()  # keeps what the registry check learnt (the environment file read) for next time
    status.models = model_report(session, ws, scan, state, status.remote)
    if tiers:
        from modelops_bundle.core.remote_status import storage_tiers

        status.tiers = storage_tiers(session, scan)
    return status


def untracked(ws: Workspace) -> list[str]:
    """The files the ignore rules let through that are not tracked (``status --untracked-only``)."""
    tracked = set(ws.tracked())
    found = [rel for rel in ws.walk().files if rel not in tracked]
    ws.save_caches()
    return found


def model_report(
    session: Session, ws: Workspace, scan: Scan, state: SyncState, remote: RemoteStatus | None
) -> RegistryStatus | None:
    """Ready / Stale / Broken per registered model and target, with cloud state when the remote is known.

    Uses the scan's digests only (nothing is re-hashed or parsed). The remote side is judged from the
    files of the version the tag points at; the local registry stands in for the remote one's records.
    """
    path = ws.project.registry_path
    if not (path.exists() or path.is_symlink()):
        return None  # no models: the model code (5 ms of imports) is not needed

    from modelops_bundle.core.model_registry import code_fingerprinter, load_registry
    from modelops_bundle.core.model_status import apply_cloud_states, compute_status

    registry = load_registry(ws)
    if registry.is_empty:
        return None
    fingerprinter = code_fingerprinter(session.host, ws.project.root) if registry.fingerprint == "ast" else None
    report = compute_status(registry, scan, ws.project.root, fingerprinter=fingerprinter)
    if remote is not None and remote.state != "unknown":
        pushed = remote.remote_files is not None
        apply_cloud_states(
            report,
            registry,
            registry if pushed else None,
            scan,
            state.last_synced_files,
            remote_files=remote.remote_files,
        )
    return report
