"""Reading versions from a registry, and the remote half of ``status`` (ahead / behind / diverged, what
push and pull would do). Which registry a project talks to is the session's (:mod:`.session`).

A version is always read by digest: a tag is resolved once (:func:`resolve_digest`) and everything after
that -- manifest, index, layers -- names the digest, so a tag moved by someone else mid-command cannot
mix two versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.errors import BundleError, IntegrityError, RegistryError, UsageError
from modelops_bundle.core.reference import Reference

# Index and manifest parsing (pydantic) are imported where a version is fetched: a status whose tag is
# where the project left it never needs them.
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from modelops_bundle.core.index import BundleIndex
    from modelops_bundle.core.model_registry import Registry
    from modelops_bundle.core.packaging import BundleManifest
    from modelops_bundle.core.registry import RegistryBackend
    from modelops_bundle.core.session import Session
    from modelops_bundle.core.workspace import Scan


# -------------------------------------------------------------------------------------- version files


def fetch_version_file(backend: RegistryBackend, version: RemoteVersion, rel: str) -> bytes | None:
    """One registry-stored file of a version, verified (``None`` when the version does not hold it)."""
    import tempfile
    from pathlib import Path

    from modelops_bundle.core.pull import fetch_to_staging

    entry = next((item for item in version.index.files if item.path == rel), None)
    if entry is None or entry.storage != "oci":
        return None
    with tempfile.TemporaryDirectory(prefix="mops-file-") as tmp:
        staged = fetch_to_staging(backend, version, [entry], Path(tmp), jobs=1, progress=None, blob_fetcher=None)
        return staged[rel].read_bytes()


def version_registry(backend: RegistryBackend, version: RemoteVersion) -> Registry | None:
    """The model registry a version carries, or ``None`` when it has none."""
    from modelops_bundle.core.model_registry import parse_registry_bytes
    from modelops_bundle.core.project import META_DIR

    rel = f"{META_DIR}/registry.yaml"
    data = fetch_version_file(backend, version, rel)
    return None if data is None else parse_registry_bytes(data, f"{version.pinned}:{rel}")


def storage_tiers(session: Session, scan: Scan) -> dict[str, str]:
    """``{path: "oci" | "blob"}``: where a push would put each scanned file under the current policy
    (decided without opening the blob store)."""
    from modelops_bundle.core.push import tiered_entries

    policy = session.ws.config().storage
    available = session.blob_tier_available(uploading=True)
    entries = tiered_entries(session.host, scan.files.values(), scan.algorithm, policy, blob_available=available)
    return {entry.path: entry.storage for entry in entries}


def describe(backend: RegistryBackend, reference: Reference) -> str:
    return f"{reference} ({backend.describe()})"


# ------------------------------------------------------------------------------------------ fetching


@dataclass(frozen=True)
class RemoteVersion:
    """One version, read by digest: its manifest and its validated index."""

    reference: Reference
    digest: str
    manifest: BundleManifest
    index: BundleIndex

    @property
    def pinned(self) -> Reference:
        return self.reference.with_digest(self.digest)


def resolve_digest(backend: RegistryBackend, reference: Reference) -> str | None:
    """The manifest digest a tag, digest or short-digest reference names now; ``None`` when it does not
    exist (an ambiguous short digest is a :class:`UsageError` listing the candidates)."""
    if reference.prefix is not None and reference.digest is None:
        from modelops_bundle.core import short_digest

        return short_digest.resolve(backend, reference)
    identifier = reference.identifier
    if identifier is None:
        raise UsageError(f"reference {reference} names neither a tag nor a digest")
    return backend.resolve(reference.repository, identifier)


def require_digest(backend: RegistryBackend, reference: Reference) -> str:
    digest = resolve_digest(backend, reference)
    if digest is None:
        where = f"{reference.repository} ({backend.describe()})"
        if reference.digest:
            message = f"digest {reference.digest} not found in {where}"
        elif reference.prefix is not None and reference.tag is None:
            message = f"no version in {where} has a digest starting with {reference.prefix.text}"
        else:
            also = ", nor a version whose digest starts with it" if reference.prefix is not None else ""
            message = f"tag {reference.tag} not found in {where}{also}"
            message += _similar_tag(backend, reference)
        raise RegistryError(message, hint="'mops bundle tags' lists the versions")
    return digest


def _similar_tag(backend: RegistryBackend, reference: Reference) -> str:
    """``"; did you mean 'v1.0.0'?"`` for a mistyped tag (asked of the registry only once it failed)."""
    from modelops_bundle.core.provenance import is_fallback_tag
    from modelops_bundle.core.suggest import did_you_mean

    try:
        tags = [tag for tag in backend.list_tags(reference.repository) if not is_fallback_tag(tag)]
    except BundleError:
        return ""
    return did_you_mean(reference.tag or "", tags)


def fetch_manifest(backend: RegistryBackend, reference: Reference, digest: str) -> BundleManifest:
    from modelops_bundle.core.packaging import parse_manifest

    record = backend.get_manifest(reference.repository, digest)
    if record.digest != digest:
        raise IntegrityError(f"{reference.repository}@{digest}: the registry returned manifest {record.digest}")
    source = f"{reference.repository}@{digest}"
    return parse_manifest(record.data, digest, record.media_type, source=source)


def fetch_index(backend: RegistryBackend, reference: Reference, manifest: BundleManifest) -> BundleIndex:
    from modelops_bundle.core.index import MAX_INDEX_BYTES
    from modelops_bundle.core.index_reading import parse_index
    from modelops_bundle.core.packaging import check_index_against_manifest

    """The manifest's index blob, verified, parsed and checked against the manifest."""
    source = f"{reference.repository}@{manifest.digest}"
    if manifest.config.size > MAX_INDEX_BYTES:
        raise IntegrityError(f"{source}: index of {manifest.config.size} bytes exceeds the {MAX_INDEX_BYTES} limit")
    data = backend.get_blob_bytes(
        reference.repository, manifest.config.digest, manifest.config.size, limit=MAX_INDEX_BYTES
    )
    index = parse_index(data, source=source)
    check_index_against_manifest(index, manifest, source=source)
    return index


def fetch_version(backend: RegistryBackend, reference: Reference, digest: str | None = None) -> RemoteVersion:
    """Resolve ``reference`` once (unless ``digest`` is given) and read that version."""
    resolved = digest or require_digest(backend, reference)
    if reference.prefix is not None:  # a short digest: from here on, the full digest it named
        from modelops_bundle.core.short_digest import settled

        reference = settled(reference, resolved)
    manifest = fetch_manifest(backend, reference, resolved)
    return RemoteVersion(reference, resolved, manifest, fetch_index(backend, reference, manifest))


# -------------------------------------------------------------------------------------- remote status


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
        from modelops_bundle.core.pull import plan_pull

        plan = plan_pull(local, remote_files, state.last_synced_files, overwrite=False, restore_deleted=False)
        status.pull = plan.summary()
    except BundleError as exc:
        status.state = "unknown"
        status.error = exc.message
    finally:
        backend.close()


# ---------------------------------------------------------------------------------------------- tags


class VersionSummary:
    """One version in a repository, with every tag that points at it (a plain class, see
    :class:`RemoteStatus`)."""

    __slots__ = ("created", "digest", "error", "files", "size", "tags")

    def __init__(self, digest: str, tags: list[str]) -> None:
        self.digest = digest
        self.tags = tags
        self.created: str | None = None
        self.files: int | None = None
        self.size: int | None = None
        self.error: str | None = None  # why the version could not be read (e.g. not a modelops bundle)

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "tags": self.tags,
            "created": self.created,
            "files": self.files,
            "size": self.size,
            "error": self.error,
        }


def list_versions(backend: RegistryBackend, reference: Reference) -> list[VersionSummary]:
    """Tagged versions, newest first. File count and size come from the manifest's annotations (one
    request per version); the index is read only for manifests that lack them. The tag-schema
    fallback tags (``sha256-<hex>``, referrers of a version) are not versions and are left out."""
    from modelops_bundle.core.packaging import ANNOTATION_FILES, ANNOTATION_SIZE
    from modelops_bundle.core.provenance import is_fallback_tag

    by_digest: dict[str, list[str]] = {}
    for tag in backend.list_tags(reference.repository):
        if is_fallback_tag(tag):
            continue  # a referrers index (tag-schema fallback), not a version
        digest = backend.resolve(reference.repository, tag)
        if digest is not None:
            by_digest.setdefault(digest, []).append(tag)
    versions: list[VersionSummary] = []
    for digest, tags in by_digest.items():
        summary = VersionSummary(digest, sorted(tags))
        try:
            manifest = fetch_manifest(backend, reference, digest)
            summary.created = manifest.created
            files, size = manifest.annotations.get(ANNOTATION_FILES), manifest.annotations.get(ANNOTATION_SIZE)
            if files is not None and files.isdigit() and size is not None and size.isdigit():
                summary.files, summary.size = int(files), int(size)
            else:
                index = fetch_index(backend, reference, manifest)
                summary.files, summary.size = len(index.files), index.total_size
        except BundleError as exc:
            summary.error = exc.message
        versions.append(summary)
    # Newest first; versions created within the same second (pushes in a script or CI) by their highest
    # tag in version order (v1.10.0 after v1.9.0), so that the listing does not depend on digests.
    versions.sort(key=lambda v: (v.created or "", max(map(_natural, v.tags), default=()), v.digest), reverse=True)
    return versions


def _natural(tag: str) -> tuple[tuple[int, int | str], ...]:
    """A tag as a sort key that orders runs of digits by value: ``v1.10.0`` after ``v1.9.0``."""
    import re

    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", tag) if part)
