"""The remote half of ``status``: where the project's tag stands against the working tree and the last
synced version (synced / ahead / behind / diverged), what push and pull would do, and where a push
would put each file -- asked within a time limit, and never failing the command for registry trouble.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops_bundle.core.errors import BundleError
from modelops_bundle.core.reference import Reference
from modelops_bundle.core.versions import fetch_version, resolve_digest

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from modelops_bundle.core.registry import RegistryBackend
    from modelops_bundle.core.session import Session
    from modelops_bundle.core.workspace import Scan


class RemoteStatus:
    """The remote side of ``status``.

    ``state``: ``not-pushed`` (the tag does not exist), ``synced`` (tag at the last synced version, no
    local changes), ``ahead`` (local changes only), ``behind`` (the tag moved, no local changes),
    ``diverged`` (both), ``unknown`` (the registry could not be asked; ``error`` says why). (A plain
    class: a dataclass costs about 0.3 ms to define, on every status -- decision 0017.)
    """

    __slots__ = (
        "error",
        "local_changes",
        "pull",
        "push",
        "reference",
        "registry",
        "remote_digest",
        "remote_files",
        "state",
        "synced_digest",
    )

    def __init__(
        self,
        reference: str,
        registry: str,
        state: str,
        remote_digest: str | None = None,
        synced_digest: str | None = None,
        local_changes: bool = False,
    ) -> None:
        self.reference = reference
        self.registry = registry
        self.state = state
        self.remote_digest = remote_digest
        self.synced_digest = synced_digest
        self.local_changes = local_changes
        self.push: dict[str, Any] = {}  # what push would do
        self.pull: dict[str, Any] = {}  # what pull would do (3-way)
        self.error: str | None = None
        #: ``{path: digest}`` of the version the tag points at, when known (not part of the JSON).
        self.remote_files: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "registry": self.registry,
            "state": self.state,
            "remote_digest": self.remote_digest,
            "synced_digest": self.synced_digest,
            "local_changes": self.local_changes,
            "push": self.push,
            "pull": self.pull,
            "error": self.error,
        }


def remote_status(
    session: Session,
    scan: Scan,
    *,
    time_limit: float | None = None,
    waiting: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> RemoteStatus:
    """Compare the working tree (``scan`` of tracked and extra files), the last synced version and the
    project's tag. Never raises for registry trouble: ``state="unknown"`` with ``error`` instead.

    With ``time_limit`` (seconds), the registry is asked on a worker thread under that limit
    (``core/deadline.py``) and given up at it; ``waiting(registry)`` is entered while the caller waits
    longer than a moment (the CLI's spinner). Everything local is read before, on the calling thread."""
    reference = session.reference()
    state = session.ws.state()
    last_synced = state.last_synced_files
    local_changed = len(scan.files) != len(last_synced) or any(
        last_synced.get(rel) != info.digest for rel, info in scan.files.items()
    )
    synced = state.synced_digest
    described = session.describe(reference)
    status = RemoteStatus(described, "", "unknown", synced_digest=synced, local_changes=local_changed)
    try:
        backend = session.open_registry(reference)
    except BundleError as exc:
        status.error = exc.message
        return status
    status.registry = backend.describe()
    if time_limit is None:
        _ask_registry(status, backend, reference, state, scan)
        return status
    from modelops_bundle.core.deadline import STATUS_TIMEOUT_ENV, call_within

    answer = RemoteStatus(described, status.registry, "unknown", synced_digest=synced, local_changes=local_changed)
    finished, _ = call_within(
        time_limit,
        STATUS_TIMEOUT_ENV,
        lambda: _ask_registry(answer, backend, reference, state, scan),
        waiting=(lambda: waiting(status.registry)) if waiting is not None else None,
    )
    if finished:
        return answer
    # The worker still waits on something that honours no limit (a DNS lookup, a plugin's backend); it
    # closes the backend itself when it ends.
    status.error = f"no answer from {status.registry} within {time_limit:g} s ({STATUS_TIMEOUT_ENV})"
    return status


def _ask_registry(status: RemoteStatus, backend: RegistryBackend, reference: Reference, state: Any, scan: Scan) -> None:
    """The network half of :func:`remote_status`: fills in ``status``; closes ``backend``."""
    from modelops_bundle.core.diff import diff_maps

    known = state.known()
    synced = state.synced_digest
    local_changed = status.local_changes
    try:
        digest = resolve_digest(backend, reference)
        status.remote_digest = digest
        if digest is None:
            status.state = "not-pushed"
            status.push = {"action": "create", "files": len(scan.files)}
            return
        local = {rel: info.digest for rel, info in scan.files.items()}
        if digest == synced:
            # The tag is where this project left it: the last synced files *are* the remote side,
            # so no manifest or index needs fetching (a status stays one cheap tag lookup).
            changes = diff_maps(state.last_synced_files, local)
            status.state = "ahead" if local_changed else "synced"
            status.remote_files = dict(state.last_synced_files)
            status.push = {"action": "update" if changes.has_changes else "none", **changes.counts()}
            status.pull = {"action": "none"}
            return
        version = fetch_version(backend, reference, digest)
        remote_files = version.index.digests()
        status.remote_files = remote_files
        changes = diff_maps(remote_files, local)
        if digest in known:
            # Another version of this project's own (e.g. pushed to another tag, then this one): a push
            # moves the tag on and loses nothing; pull would bring that version back.
            status.state = "ahead" if local != remote_files else "synced"
            status.push = {"action": "update" if changes.has_changes else "none", **changes.counts()}
        else:
            status.state = "diverged" if local_changed else "behind"
            status.push = {"action": "refused (the tag was moved elsewhere; pull first or --force)", **changes.counts()}
        from modelops_bundle.core.pull_plan import plan_pull

        plan = plan_pull(local, remote_files, state.last_synced_files, overwrite=False, restore_deleted=False)
        status.pull = plan.summary()
    except BundleError as exc:
        status.state = "unknown"
        status.error = exc.message
    finally:
        backend.close()


def storage_tiers(session: Session, scan: Scan) -> dict[str, str]:
    """``{path: "oci" | "blob"}``: where a push would put each scanned file under the current policy
    (decided without opening the blob store)."""
    from modelops_bundle.core.packaging import tiered_entries

    policy = session.ws.config().storage
    available = session.blob_tier_available(uploading=True)
    entries = tiered_entries(session.host, scan.files.values(), scan.algorithm, policy, blob_available=available)
    return {entry.path: entry.storage for entry in entries}
