"""Push: turn the working tree into a version (index, layers, manifest) and move a tag to it.

Order of writes, so that a crash at any point leaves the old tag valid: every layer blob and the index
blob first, then the manifest (by digest), then the tag. The tag is checked again just before it moves.

"Same content, same version" rule: the index is canonical and time-free, so its digest identifies the
content. Before building a manifest, push compares the index digest with the config digest of the
version the tag points at -- equal means "everything up to date" and that manifest (bytes and digest) is
kept; nothing is uploaded and the tag does not move. Otherwise, when the last pushed or pulled version
holds the same index (pushing unchanged content to a new tag), its manifest is reused, so one content
has one digest under every tag. Only a genuinely new index gets a new manifest with a new
``org.opencontainers.image.created`` (taken from ``SOURCE_DATE_EPOCH`` when set, for reproducible builds).

Conflicts: when the tag points at a version this project has neither pushed nor pulled (someone else
pushed), push refuses, naming the files whose remote changes would be dropped, unless ``force``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from modelops_bundle.core.bundle_files import bundle_paths
from modelops_bundle.core.diff import VersionDiff, diff_indexes, diff_maps
from modelops_bundle.core.errors import (
    BundleError,
    ConflictError,
    IntegrityError,
    RegistryError,
    StorageError,
)
from modelops_bundle.core.fsutil import describe_os_error
from modelops_bundle.core.hashing import ProgressFactory, resolve_hasher
from modelops_bundle.core.index import (
    BlobRef,
    BundleIndex,
    IndexEntry,
    bytes_digest,
    canonical_bytes,
    make_index,
)
from modelops_bundle.core.packaging import (
    ANNOTATION_CREATED,
    ANNOTATION_FILES,
    ANNOTATION_SIZE,
    BlobUploader,
    Descriptor,
    LayerPlan,
    PackCache,
    PackInfo,
    PlannedLayer,
    build_manifest,
    check_plan,
    index_descriptor,
    pack_descriptor,
    pack_key,
    parse_manifest,
    plan_layers,
    raw_layer_descriptor,
    tiered_entries,
    write_packs,
)
from modelops_bundle.core.reference import Reference
from modelops_bundle.core.registry import OCI_MANIFEST, BlobSource, RegistryBackend, TransferStats
from modelops_bundle.core.versions import RemoteVersion, fetch_version, resolve_digest
from modelops_bundle.core.workspace import SyncState, Workspace

if TYPE_CHECKING:
    from modelops_bundle.core.hashing import Hasher
    from modelops_bundle.core.model_registry import Registry
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.provenance import ReferrerUpload
    from modelops_bundle.core.session import Session
    from modelops_bundle.core.settings import StoragePolicy
    from modelops_bundle.core.workspace import Scan

DEFAULT_JOBS = 5


@dataclass
class PushOptions:
    tag: str | None = None  # defaults to the reference's tag
    force: bool = False
    dry_run: bool = False
    jobs: int = DEFAULT_JOBS
    annotations: dict[str, str] = field(default_factory=dict)  # ``--annotation KEY=VALUE``
    provenance: bool = True  # attach the provenance document as a referrer


@dataclass
class PushResult:
    reference: Reference
    registry: str
    digest: str | None  # the version the tag points at afterwards (would, for a dry run)
    previous_digest: str | None
    up_to_date: bool = False
    dry_run: bool = False
    forced: bool = False
    reused_manifest: bool = False
    files: int = 0
    total_bytes: int = 0
    layers: int = 0
    uploaded_blobs: int = 0
    uploaded_bytes: int = 0
    skipped_blobs: int = 0
    changes: VersionDiff = field(default_factory=VersionDiff)
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, Any] | None = None  # {"digest": referrer, "method": "referrers-api" | "tag-schema"}
    #: Untracked dependencies of registered models this push tracked (a dry run: would track).
    tracked: list[str] = field(default_factory=list)
    #: What went to blob storage (:func:`_blob_report`), or ``None`` when no file is blob-stored.
    blob_store: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": str(self.reference),
            "registry": self.registry,
            "digest": self.digest,
            "previous_digest": self.previous_digest,
            "up_to_date": self.up_to_date,
            "dry_run": self.dry_run,
            "forced": self.forced,
            "reused_manifest": self.reused_manifest,
            "files": self.files,
            "bytes": self.total_bytes,
            "layers": self.layers,
            "uploaded_blobs": self.uploaded_blobs,
            "uploaded_bytes": self.uploaded_bytes,
            "skipped_blobs": self.skipped_blobs,
            "changes": self.changes.to_json(),
            "provenance": self.provenance,
            "tracked": self.tracked,
            "blob_store": self.blob_store,
            "warnings": self.warnings,
        }


@dataclass
class _Layer:
    """A planned layer made concrete: its descriptor, and how to get its bytes."""

    planned: PlannedLayer
    members: list[IndexEntry]
    descriptor: Descriptor
    source: BlobSource | None  # None: a cached pack not built in this run (built if the registry lacks it)


def created_timestamp(environ: Mapping[str, str]) -> str:
    """RFC 3339 UTC creation time; ``SOURCE_DATE_EPOCH`` pins it (reproducible builds)."""
    epoch = environ.get("SOURCE_DATE_EPOCH", "").strip()
    moment = datetime.fromtimestamp(int(epoch), tz=timezone.utc) if epoch.isdigit() else datetime.now(tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_source(path: Path, digest: str, size: int, rel: str) -> BlobSource:
    def opener() -> BinaryIO:
        return open(path, "rb")

    return BlobSource(digest=digest, size=size, open=opener, description=rel)


def _bytes_source(data: bytes, description: str) -> BlobSource:
    return BlobSource(digest=bytes_digest(data), size=len(data), open=lambda: io.BytesIO(data), description=description)


def _sha256_of(path: Path, rel: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
    except OSError as exc:
        raise BundleError(describe_os_error("read", rel, exc)) from exc
    return "sha256:" + digest.hexdigest()


class _Packer:
    """Builds packs into a staging folder, using and refreshing the pack cache."""

    def __init__(self, ws: Workspace) -> None:
        self.root = ws.project.root
        ws.project.cache_dir.mkdir(exist_ok=True)
        # Built under the project lock: a ``push-*`` folder here belongs to a push that was killed (found
        # by tests/reliability: each killed push left its packs behind for good). Remove them, and the
        # temp files of metadata writes it interrupted.
        for leftover in ws.project.cache_dir.glob("push-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        ws.sweep_leftovers()
        self.staging = Path(tempfile.mkdtemp(prefix="push-", dir=ws.project.cache_dir))
        self.cache = PackCache.load(ws.project.cache_dir / "packs.json")
        self.count = 0

    def build(self, entries: list[IndexEntry]) -> tuple[PackInfo, Path]:
        return self.build_many([entries])[0]

    def build_many(self, packs: list[list[IndexEntry]]) -> list[tuple[PackInfo, Path]]:
        paths = []
        for _members in packs:
            self.count += 1
            paths.append(self.staging / f"pack-{self.count}.tar.gz")
        infos = write_packs(self.root, list(zip(packs, paths, strict=True)))
        return list(zip(infos, paths, strict=True))

    def close(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _pack_source(info: PackInfo, path: Path, title: str | None) -> BlobSource:
    return _file_source(path, info.blob_digest, info.blob_size, f"pack {title or '(root)'}")


def push(
    session: Session,
    backend: RegistryBackend,
    reference: Reference,
    options: PushOptions,
    *,
    progress: ProgressFactory | None = None,
    blob_uploader: BlobUploader | None = None,
) -> PushResult:
    """Push the session's working tree to ``reference`` (its tag, or ``options.tag``). Holds the project
    lock. Phases, each a function: :func:`_scan_bundle`, :func:`_build_index`, then either
    :func:`_when_unchanged` or :func:`_prepare_manifest`, :func:`_upload`, :func:`_move_tag` and
    :func:`_commit`."""
    tag = options.tag or reference.tag
    if not tag:
        raise RegistryError("push needs a tag (--tag), not a digest")
    ws = session.ws
    with ws.lock():
        # Built under the lock: it reads the sync state and sweeps what killed pushes left behind.
        run = _PushRun(session, backend, reference.with_tag(tag), options, progress, blob_uploader)
        try:
            result = _push_locked(run)
        finally:
            run.packer.close()
        ws.save_caches()
    if not options.dry_run:
        for name, exc in session.host.hook.mops_push_finished(result=result.to_json()).failures:
            result.warnings.append(f"plugin {name!r} failed in mops_push_finished: {exc}")
    return result


class _PushRun:
    """What one push carries from phase to phase (a plain class: built once per push)."""

    def __init__(
        self,
        session: Session,
        backend: RegistryBackend,
        target: Reference,
        options: PushOptions,
        progress: ProgressFactory | None,
        blob_uploader: BlobUploader | None,
    ) -> None:
        self.session = session
        self.host = session.host
        self.ws = session.ws
        self.backend = backend
        self.target = target
        self.options = options
        self.progress = progress
        self.blob_uploader = blob_uploader
        self.state = session.ws.state()
        self.config = session.ws.config()
        self.packer = _Packer(session.ws)
        #: Why the provenance document's blobs could not be sent (then it is not attached; a warning).
        self.referrer_failure: str | None = None


class _Built(NamedTuple):
    """The version a push builds from the working tree, before anything is sent."""

    entries: list[IndexEntry]  # every file, with its tier
    blob_entries: list[IndexEntry]
    layers: list[_Layer]
    bundle_index: BundleIndex
    index_bytes: bytes
    config_descriptor: Descriptor


def _push_locked(run: _PushRun) -> PushResult:
    # Where the tag stands does not depend on the working tree: ask while the tree is scanned.
    remote_lookup = _Background(lambda: _tag_and_version(run.backend, run.target), name="mops-push-lookup")
    scan, registry_plan = _scan_bundle(run)
    built = _build_index(run, scan)
    result = PushResult(
        reference=run.target,
        registry=run.backend.describe(),
        digest=None,
        previous_digest=None,
        dry_run=run.options.dry_run,
        files=len(built.bundle_index.files),
        total_bytes=built.bundle_index.total_size,
        layers=len(built.layers),
        tracked=list(registry_plan.retrack) if registry_plan is not None else [],
    )
    if registry_plan is not None:
        from modelops_bundle.core.preflight import dependency_warnings

        result.warnings.extend(dependency_warnings(run.ws, registry_plan.registry))
    remote_digest, remote, foreign = remote_lookup.result()
    result.previous_digest = remote_digest
    result.changes = (
        diff_indexes(remote.index, built.bundle_index) if remote else diff_maps({}, built.bundle_index.digests())
    )
    if remote is not None and remote.manifest.config.digest == built.config_descriptor.digest:
        return _when_unchanged(run, built, remote, result)
    known = run.state.known()
    if remote_digest is not None and remote_digest not in known:
        if not run.options.force:
            raise ConflictError(_moved_message(run.target, remote_digest, remote, foreign, run.state), hint=_MOVED_HINT)
        result.forced = True
    manifest_bytes, referrer = _prepare_manifest(run, built, known - {remote_digest}, result)
    if not _upload(run, built, remote, referrer, result):
        return result  # a dry run: counted, nothing sent
    _move_tag(run, manifest_bytes, remote_digest)
    _commit(run, built, result, referrer)
    return result


def _scan_bundle(run: _PushRun) -> tuple[Scan, RegistryPlan | None]:
    """Hash what the version holds: the bundle's files, and the dependencies the model registry's plan
    re-tracks; refresh the registry's digests from that scan."""
    hasher = resolve_hasher(run.host.hook, run.config.hash_algorithm)
    registry_plan = plan_registry(run.host, run.ws)
    retrack = registry_plan.retrack if registry_plan is not None else []
    paths = sorted({*bundle_paths(run.host, run.ws), *retrack}) if retrack else bundle_paths(run.host, run.ws)
    progress = run.progress
    scan = run.ws.scan(hasher, paths=paths, progress=(lambda: progress("hashing")) if progress else None)
    problems = [f"{rel}: missing" for rel in scan.missing] + [f"{rel}: {why}" for rel, why in scan.skipped]
    if problems:
        shown = "; ".join(problems[:10]) + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
        raise BundleError(
            f"cannot push: {len(problems)} tracked file(s) cannot be read: {shown}",
            hint="restore them, or stop tracking them with 'mops bundle remove'",
        )
    if registry_plan is not None:
        scan = _refresh_registry(run.host, run.ws, registry_plan, scan, hasher, dry_run=run.options.dry_run)
    return scan, registry_plan


def _build_index(run: _PushRun, scan: Scan) -> _Built:
    """Tier per file, layers (packs built or found in the pack cache), and the index that names them."""
    policy = run.config.storage
    uploader = run.blob_uploader
    entries = tiered_entries(run.host, scan.files.values(), scan.algorithm, policy, blob_available=uploader is not None)
    blob_entries = [entry for entry in entries if entry.storage == "blob"]
    if blob_entries and uploader is None:
        raise StorageError(
            f"{len(blob_entries)} file(s) are assigned to blob storage (e.g. {blob_entries[0].path}), "
            "but this environment has no blob store",
            hint="configure storage in the environment, or set storage.mode: oci in config.yaml",
        )
    oci_entries = [entry for entry in entries if entry.storage == "oci"]
    plan = _layer_plan(run.host, oci_entries, policy)
    layers = _materialise(run.ws, plan, {entry.path: entry for entry in oci_entries}, run.packer)
    holder = {path: layer.descriptor for layer in layers for path in layer.planned.paths}
    final: list[IndexEntry] = []
    for entry in entries:
        if entry.storage == "oci":
            final.append(entry.replace(layer=holder[entry.path].content_digest))
        else:
            assert uploader is not None
            final.append(entry.replace(blobRef=BlobRef(uri=uploader.uri_for(entry))))
    index = make_index(final)
    index_bytes = canonical_bytes(index)
    return _Built(entries, blob_entries, layers, index, index_bytes, index_descriptor(index_bytes))


def _when_unchanged(run: _PushRun, built: _Built, remote: RemoteVersion, result: PushResult) -> PushResult:
    """The tag's version already holds exactly these files: nothing new is made (damaged blobs of the
    embedded layout are repaired, the sync state recorded)."""
    result.up_to_date = True
    if run.options.annotations:
        result.warnings.append("annotations not recorded: the content is unchanged, so no new version was made")
    result.digest = remote.digest
    if run.options.dry_run:
        return result
    _repair_local_blobs(run.backend, run.target, remote, built.layers, built.index_bytes, run.packer, result)
    _track(run.ws, result.tracked)
    state = run.state
    if state.last_push_digest != remote.digest or state.last_synced_files != built.bundle_index.digests():
        _record_push(run.ws, state, run.target, remote.digest, built.bundle_index, built.config_descriptor.digest)
    run.packer.cache.save()
    return result


def _prepare_manifest(
    run: _PushRun, built: _Built, earlier: set[str], result: PushResult
) -> tuple[bytes, ReferrerUpload | None]:
    """The manifest bytes -- an identical earlier version's of this project, reused, or a new one with
    its annotations and missing packs built -- and the provenance referrer to attach (if any)."""
    manifest_bytes = _reusable_manifest(run.ws, run.backend, run.target, earlier, built.config_descriptor)
    document: dict[str, Any] | None = None
    if manifest_bytes is not None:
        result.reused_manifest = True
        if run.options.annotations:
            result.warnings.append("annotations not recorded: an identical version was reused")
    else:
        _build_missing_packs(run.backend, run.target, built.layers, run.packer, dry_run=run.options.dry_run)
        annotations, document = _annotations(
            run.host, run.ws, built.bundle_index, run.session.environ, run.options.annotations, result.warnings
        )
        descriptors = [layer.descriptor for layer in built.layers]
        manifest_bytes = build_manifest(built.config_descriptor, descriptors, annotations)
    result.digest = bytes_digest(manifest_bytes)
    referrer = None
    if document is not None and run.options.provenance:
        from modelops_bundle.core.provenance import prepare

        referrer = prepare(
            document, subject_digest=result.digest, subject_size=len(manifest_bytes), reference=str(run.target)
        )
    return manifest_bytes, referrer


def _upload(
    run: _PushRun, built: _Built, remote: RemoteVersion | None, referrer: ReferrerUpload | None, result: PushResult
) -> bool:
    """Send what the blob store and the registry lack (a dry run counts it instead: ``False``)."""
    backend, target, options = run.backend, run.target, run.options
    uploads: list[BlobSource] = []
    if not result.reused_manifest:  # a reused manifest's blobs were all found in the registry
        uploads = [layer.source for layer in built.layers if layer.source is not None]
        uploads.append(_bytes_source(built.index_bytes, "bundle index"))
    # Blobs the tag's current manifest names are in this repository already (a registry refuses a
    # manifest whose blobs are missing): a one-file change then asks about one blob, not every layer.
    present = {blob.digest for blob in (remote.manifest.config, *remote.manifest.layers)} if remote else set()
    already = [blob for blob in _unique(uploads) if blob.digest in present]
    uploads = [blob for blob in uploads if blob.digest not in present]
    uploader, blob_entries = run.blob_uploader, built.blob_entries
    if options.dry_run:
        missing = [blob for blob in _unique(uploads) if not backend.blob_exists(target.repository, blob.digest)]
        result.uploaded_blobs = len(missing)
        result.uploaded_bytes = sum(blob.size for blob in missing)
        result.skipped_blobs = len(_unique(uploads)) - len(missing) + len(already)
        if uploader is not None and blob_entries:
            result.blob_store = _blob_report(uploader, blob_entries, None)
        return False
    if uploader is not None and blob_entries:
        hashed_at = run.ws.hashed_signatures({entry.path: entry.digest for entry in blob_entries})
        sent = uploader.upload(run.ws.project.root, blob_entries, jobs=options.jobs, hashed_at=hashed_at)
        result.blob_store = _blob_report(uploader, blob_entries, sent)
    unique = _unique(uploads)
    sink = run.progress("uploading", "blobs") if run.progress else None
    if sink is not None:
        sink.start(len(unique), sum(blob.size for blob in unique))
    # The provenance blobs go up beside the version's (on a thread of their own, so that their failure
    # stays a warning and the version's counts stay its own); only their manifest waits for the tag.
    referrer_blobs = None
    if referrer is not None:
        blobs = list(referrer.blobs)
        referrer_blobs = _Background(
            lambda: backend.put_blobs(target.repository, blobs, jobs=2, progress=None), name="mops-provenance-blobs"
        )
    try:
        stats = backend.put_blobs(target.repository, unique, jobs=options.jobs, progress=sink)
    finally:
        if sink is not None:
            sink.close()
        run.referrer_failure = _provenance_blobs_failure(referrer_blobs)
    stats.skipped_blobs += len(already)
    result.uploaded_blobs, result.uploaded_bytes, result.skipped_blobs = (
        stats.uploaded_blobs,
        stats.uploaded_bytes,
        stats.skipped_blobs,
    )
    return True


def _move_tag(run: _PushRun, manifest_bytes: bytes, remote_digest: str | None) -> None:
    """Store the manifest and move the tag -- only if it is still where this push found it -- then make
    sure it stays there (:func:`_settled_tag`).

    The last check and the move happen under a machine-wide lock per registry and tag, and the tag is
    read back afterwards. tests/reliability/test_concurrency.py found two pushes racing to one tag both
    exiting 0 (the later PUT silently replaced the earlier version): the distribution API has no
    conditional tag update, so without the lock both could pass the check before either PUT."""
    backend, target, options = run.backend, run.target, run.options
    digest = bytes_digest(manifest_bytes)
    with _tag_lock(run.session.environ, backend, target):
        checked_at = time.monotonic()
        current = resolve_digest(backend, target)
        if current != remote_digest and not options.force:
            raise ConflictError(
                f"{target} moved to {current or 'nothing (deleted)'} while this push was uploading; "
                "the tag was left there",
                hint="run 'mops bundle push' again to see what changed",
            )
        stored = backend.put_manifest(target.repository, manifest_bytes, OCI_MANIFEST, target.tag)
        if stored != digest:
            raise IntegrityError(f"{backend.describe()} stored the manifest as {stored}, expected {digest}")
        landed = resolve_digest(backend, target)
    if not options.force:
        landed = _settled_tag(backend, target, digest, landed, time.monotonic() - checked_at)
        if landed != digest:
            raise ConflictError(_lost_tag_message(target, landed, digest), hint=_LOST_TAG_HINT)


def _commit(run: _PushRun, built: _Built, result: PushResult, referrer: ReferrerUpload | None) -> None:
    """The tag is ours: track what the push re-tracked, record the sync, attach the provenance."""
    assert result.digest is not None
    _track(run.ws, result.tracked)
    _record_push(run.ws, run.state, run.target, result.digest, built.bundle_index, built.config_descriptor.digest)
    if run.referrer_failure is not None:
        result.warnings.append(f"the provenance document could not be attached: {run.referrer_failure}")
    elif referrer is not None:
        result.provenance = _attach_provenance(run.backend, run.target, referrer, result.warnings)
    run.packer.cache.save()


def _blob_report(uploader: BlobUploader, entries: list[IndexEntry], sent: TransferStats | None) -> dict[str, Any]:
    """The blob-store part of a push report: the version's blob-stored files, and how many of them (one
    per distinct content) were sent -- or, for a dry run (``sent`` is ``None``), would be."""
    distinct = {entry.digest: entry.size for entry in entries}
    if sent is None:
        missing = uploader.missing(entries)
        uploaded, uploaded_bytes = len(missing), sum(entry.size for entry in missing)
    else:
        uploaded, uploaded_bytes = sent.uploaded_blobs, sent.uploaded_bytes
    return {
        "store": uploader.describe(),
        "files": len(entries),
        "bytes": sum(entry.size for entry in entries),
        "uploaded_files": uploaded,
        "uploaded_bytes": uploaded_bytes,
        "already_present": len(distinct) - uploaded,
    }


_MOVED_HINT = "pull first ('mops bundle pull'), or overwrite it with 'mops bundle push --force'"
#: How long a push waits before reading its tag once more (see :func:`_settled_tag`): at least this, at
#: most :data:`SETTLE_MAX_SECONDS`, otherwise twice its own check-move-read time.
SETTLE_MIN_SECONDS = 0.1
SETTLE_MAX_SECONDS = 2.0
#: Backends on this machine's file system: their tag moves are serialised by the tag lock alone.
LOCAL_BACKENDS = frozenset({"oci-layout"})
_LOST_TAG_HINT = (
    "your files are unchanged and your version is kept in the registry by digest; 'mops bundle pull' "
    "shows what the other version changed (then push again), or 'mops bundle push --force' moves the tag "
    "back to your version (dropping the other)"
)


def _settled_tag(
    backend: RegistryBackend, target: Reference, digest: str, landed: str | None, elapsed: float
) -> str | None:
    """Where the tag points once a competing push from another machine has had time to land.

    The distribution API has no compare-and-swap for tags. A push from another machine checks the tag,
    then moves it; if its check came just before our move, its move lands just after -- possibly after
    our read-back. So the tag is read once more after a pause longer than such a check-to-move gap (twice
    our own check, move and read, at least :data:`SETTLE_MIN_SECONDS`): a move that lands within it is
    seen, and this push fails instead of reporting a version that is no longer tagged. Pushes on one
    machine are serialised by the tag lock; the embedded layout needs no pause."""
    if landed != digest or backend.name in LOCAL_BACKENDS:
        return landed
    time.sleep(min(SETTLE_MAX_SECONDS, max(SETTLE_MIN_SECONDS, 2 * elapsed)))
    return resolve_digest(backend, target)


def _lost_tag_message(target: Reference, landed: str | None, digest: str) -> str:
    where = landed or "nothing (it was deleted)"
    return (
        f"the tag {target} moved to {where} while pushing (another push at the same moment); "
        f"your version is {digest}, untagged ({target.repository}@{digest})"
    )


@dataclass
class RegistryPlan:
    """What a push does with the model registry -- the same for ``push`` and ``push --dry-run``.

    ``registry``: the registry with every model's and target's import closure re-read (imports added
    since registration join its code). ``retrack``: dependencies that exist but are not tracked; the push
    bundles them, preflight counts them as tracked, and they are added to ``tracked.txt`` only when the
    push succeeds (a dry run, or a push that fails, leaves the tracked list as it was).
    """

    registry: Registry
    retrack: list[str]


def plan_registry(host: PluginHost, ws: Workspace) -> RegistryPlan | None:
    """The :class:`RegistryPlan` of a push, or ``None`` when the project registers nothing."""
    from modelops_bundle.core.model_registry import load_registry, refresh_dependencies

    registry = load_registry(ws)
    if registry.is_empty:
        return None
    return RegistryPlan(registry, refresh_dependencies(ws, host, registry))


def _track(ws: Workspace, paths: list[str]) -> None:
    """Track the dependencies the push re-tracked, now that it succeeded."""
    if paths:
        ws.save_tracked(set(ws.tracked()) | set(paths))


def _refresh_registry(
    host: PluginHost, ws: Workspace, plan: RegistryPlan, scan: Scan, hasher: Hasher, *, dry_run: bool
) -> Scan:
    """Preflight, then record the digests of this very scan in ``registry.yaml`` -- before the index is
    built, so the registry inside the version always matches the version's files."""
    from modelops_bundle.core.model_registry import code_fingerprinter, refresh_digests, save_registry
    from modelops_bundle.core.preflight import check_before_push

    registry = plan.registry
    tracked = set(ws.tracked()) | set(plan.retrack)
    check_before_push(ws, host, registry=registry, scan=scan, tracked=tracked)  # models that cannot run: refused
    fingerprinter = code_fingerprinter(host, ws.project.root) if registry.fingerprint == "ast" else None
    refresh_digests(registry, scan, fingerprinter=fingerprinter)
    if dry_run or not save_registry(ws, registry):
        return scan
    rel = ws.project.registry_path.relative_to(ws.project.root).as_posix()
    rescanned = ws.scan(hasher, paths=[rel])
    scan.files[rel] = rescanned.files[rel]
    return scan


def _layer_plan(host: PluginHost, entries: list[IndexEntry], policy: StoragePolicy) -> LayerPlan:
    plan: LayerPlan | None = host.hook.mops_plan_layers(entries=entries, policy=policy)
    if plan is None:
        plan = plan_layers(entries)
    check_plan(plan, entries, source="layer plan (mops_plan_layers)")
    return plan


def _materialise(ws: Workspace, plan: LayerPlan, entries: Mapping[str, IndexEntry], packer: _Packer) -> list[_Layer]:
    """Descriptors for every planned layer: raw files as they are, packs from the cache or built (on
    several threads: see :func:`write_packs`)."""
    root = ws.project.root
    layers: list[_Layer] = []
    to_build: list[tuple[int, list[IndexEntry], str]] = []  # (position in layers, members, pack key)
    for planned in plan.layers:
        members = [entries[path] for path in planned.paths]
        if planned.kind == "raw":
            entry = members[0]
            absolute = root / entry.path
            digest = entry.digest if entry.algorithm == "sha256" else _sha256_of(absolute, entry.path)
            source = _file_source(absolute, digest, entry.size, entry.path)
            layers.append(_Layer(planned, members, raw_layer_descriptor(entry.path, digest, entry.size), source))
            continue
        members.sort(key=lambda member: member.path)
        key = pack_key(members)
        cached = packer.cache.get(key)
        if cached is not None:
            layers.append(_Layer(planned, members, pack_descriptor(planned.title, cached), None))
            continue
        to_build.append((len(layers), members, key))
        layers.append(_Layer(planned, members, _UNBUILT, None))
    built = packer.build_many([members for _position, members, _key in to_build])
    for (position, members, key), (info, path) in zip(to_build, built, strict=True):
        planned = layers[position].planned
        packer.cache.put(key, info)
        layers[position] = _Layer(
            planned, members, pack_descriptor(planned.title, info), _pack_source(info, path, planned.title)
        )
    return layers


#: Stands in for the descriptor of a pack until it is built.
_UNBUILT = Descriptor("", "", 0)


def _build_missing_packs(
    backend: RegistryBackend, target: Reference, layers: list[_Layer], packer: _Packer, *, dry_run: bool
) -> None:
    """Cached packs the registry lacks are built now; their bytes must match what the cache promised."""
    for layer in layers:
        if layer.source is not None:
            continue
        if backend.blob_exists(target.repository, layer.descriptor.digest):
            continue
        if dry_run:
            layer.source = BlobSource(layer.descriptor.digest, layer.descriptor.size, lambda: io.BytesIO(b""))
            continue
        info, path = packer.build(layer.members)
        if info.tar_digest != layer.descriptor.content_digest or info.blob_digest != layer.descriptor.digest:
            packer.cache.entries.clear()
            packer.cache.used.clear()
            packer.cache.save()
            raise IntegrityError(
                "the pack cache does not match the files (cleared it)", hint="run 'mops bundle push' again"
            )
        layer.source = _pack_source(info, path, layer.planned.title)


class _Background:
    """Runs ``work`` on a daemon thread (a hung registry must not keep the process alive after an
    error elsewhere); :meth:`result` waits and returns its value or raises its exception."""

    def __init__(self, work: Callable[[], Any], *, name: str) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            self._value = work()
        except BaseException as exc:  # re-raised on the calling thread by result()
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def failure(self) -> BaseException | None:
        """Waits; the exception the work raised, or ``None``."""
        self._thread.join()
        return self._error


def _repair_local_blobs(
    backend: RegistryBackend,
    target: Reference,
    remote: RemoteVersion,
    layers: list[_Layer],
    index_bytes: bytes,
    packer: _Packer,
    result: PushResult,
) -> None:
    """An up-to-date push to a backend on this machine (the embedded layout) checks the version's blobs
    -- a ``stat`` each while their seal holds -- and writes damaged ones again from the working tree, so
    re-pushing repairs a damaged blob instead of saying "everything up to date" over it. Registries over
    HTTP are not asked (``verify --remote`` downloads and checks everything)."""
    check = getattr(backend, "damaged_blobs", None)
    if check is None:
        return
    wanted = [(blob.digest, blob.size) for blob in (remote.manifest.config, *remote.manifest.layers)]
    damaged = set(check(target.repository, wanted))
    if not damaged:
        return
    broken = [layer for layer in layers if layer.descriptor.digest in damaged]
    _build_missing_packs(backend, target, broken, packer, dry_run=False)
    sources = [layer.source for layer in layers if layer.descriptor.digest in damaged and layer.source is not None]
    if remote.manifest.config.digest in damaged:
        sources.append(_bytes_source(index_bytes, "bundle index"))
    stats = backend.put_blobs(target.repository, _unique(sources), jobs=2, progress=None)
    result.uploaded_blobs, result.uploaded_bytes = stats.uploaded_blobs, stats.uploaded_bytes
    result.warnings.append(f"repaired {len(damaged)} damaged blob(s) in {backend.describe()} (written again)")


def _tag_and_version(
    backend: RegistryBackend, target: Reference
) -> tuple[str | None, RemoteVersion | None, str | None]:
    """The digest the tag points at, that version (``None`` when missing or not a bundle), and why not."""
    digest = resolve_digest(backend, target)
    remote, foreign = _remote_version(backend, target, digest)
    return digest, remote, foreign


def _remote_version(
    backend: RegistryBackend, target: Reference, digest: str | None
) -> tuple[RemoteVersion | None, str | None]:
    """The version the tag points at, or ``(None, why)`` when it is missing or not a bundle."""
    if digest is None:
        return None, None
    try:
        return fetch_version(backend, target, digest), None
    except (RegistryError, IntegrityError) as exc:
        return None, exc.message


def _moved_message(
    target: Reference, remote_digest: str, remote: RemoteVersion | None, foreign: str | None, state: SyncState
) -> str:
    head = (
        f"{target} points at {remote_digest}, a version this project has not pushed or fully pulled "
        "(it was pushed from elsewhere, or only part of it was pulled here)"
    )
    if remote is None:
        return f"{head}; it is not a readable modelops bundle ({foreign}), and pushing would replace it"
    theirs = diff_maps(state.last_synced_files, remote.index.digests())
    lost = [*theirs.added, *theirs.modified, *theirs.deleted]
    if not lost:
        return f"{head}; pushing would replace it"
    shown = ", ".join(lost[:10]) + (f" and {len(lost) - 10} more" if len(lost) > 10 else "")
    return f"{head}; pushing would drop their changes to {len(lost)} file(s): {shown}"


def _reusable_manifest(
    ws: Workspace, backend: RegistryBackend, target: Reference, candidates: set[str], config: Descriptor
) -> bytes | None:
    """Bytes of a version this project synced whose index equals ``config`` and whose blobs all exist.

    Only candidates whose index is unknown here or equal to ``config`` are fetched: the project may
    know dozens of versions, and a one-file push should not read every one of their manifests."""
    configs = ws.version_configs()
    for digest in sorted(d for d in candidates if configs.get(d, config.digest) == config.digest):
        with contextlib.suppress(BundleError):
            record = backend.get_manifest(target.repository, digest)
            manifest = parse_manifest(record.data, digest, record.media_type, source=digest)
            if record.digest == digest:
                ws.remember_version_config(ws.state(), digest, manifest.config.digest)
            if manifest.config.digest != config.digest or record.digest != digest:
                continue
            blobs = [manifest.config, *manifest.layers]
            if all(backend.blob_exists(target.repository, blob.digest) for blob in blobs):
                return record.data
    return None


def _provenance_blobs_failure(upload: _Background | None) -> str | None:
    """Waits for the provenance blobs; why they could not be uploaded, or ``None``."""
    failure = upload.failure() if upload is not None else None
    if failure is None:
        return None
    if isinstance(failure, BundleError):
        return failure.message
    if isinstance(failure, Exception):
        return f"{failure.__class__.__name__}: {failure}"
    raise failure  # KeyboardInterrupt and the like are not provenance problems


def _attach_provenance(
    backend: RegistryBackend, target: Reference, referrer: ReferrerUpload, warnings: list[str]
) -> dict[str, Any] | None:
    """The version is pushed either way: a provenance failure is a warning, not a failed push."""
    from modelops_bundle.core.provenance import attach

    try:
        return attach(backend, target.repository, referrer, blobs_uploaded=True)
    except BundleError as exc:
        warnings.append(f"the provenance document could not be attached: {exc.message}")
        return None


def _annotations(
    host: PluginHost,
    ws: Workspace,
    index: BundleIndex,
    environ: Mapping[str, str],
    user: Mapping[str, str],
    warnings: list[str],
) -> tuple[dict[str, str], dict[str, Any]]:
    """Plugin annotations (earlier -- third-party -- win), then provenance and the user's ``--annotation``
    pairs (they win over plugins), then ours: created time, file count, size. Also returns the
    provenance document."""
    from modelops_bundle.core.gitinfo import ANNOTATION_GIT_DIRTY, ANNOTATION_REVISION, ANNOTATION_SOURCE
    from modelops_bundle.core.plugins import describe_plugin
    from modelops_bundle.core.provenance import collect, manifest_annotations

    merged: dict[str, str] = {}
    answers = host.hook.mops_manifest_annotations(index=index, project=ws.project)
    for name, exc in answers.failures:
        warnings.append(f"plugin {describe_plugin(host, name)} failed in mops_manifest_annotations: {exc}")
    for plugin, result in answers:
        for key, value in (result or {}).items():
            if isinstance(key, str) and isinstance(value, str):
                merged.setdefault(key, value)
            else:
                who = f"plugin {describe_plugin(host, plugin)}" if plugin else "a hook wrapper"
                warnings.append(f"{who} returned a non-string annotation {key!r}")
    merged.setdefault(ANNOTATION_CREATED, created_timestamp(environ))
    git = {key: merged[key] for key in (ANNOTATION_SOURCE, ANNOTATION_REVISION, ANNOTATION_GIT_DIRTY) if key in merged}
    document = collect(
        host, ws.project.root, index, created=merged[ANNOTATION_CREATED], git=git, annotations=dict(user)
    )
    merged.update(manifest_annotations(document))
    merged[ANNOTATION_FILES] = str(len(index.files))
    merged[ANNOTATION_SIZE] = str(index.total_size)
    return merged, document


def _record_push(
    ws: Workspace, state: SyncState, target: Reference, digest: str, index: BundleIndex, config_digest: str
) -> None:
    new_state = state.after_sync(digest=digest, ref=str(target), files=index.digests(), pushed=True)
    ws.save_state(new_state)
    ws.remember_version_config(new_state, digest, config_digest)


def _tag_lock(environ: Mapping[str, str], backend: RegistryBackend, target: Reference) -> Any:
    """An ``flock`` in ``$MODELOPS_HOME/locks/`` for one tag of one registry (pushes on this machine
    move a tag one at a time); a home that cannot hold it only costs this protection."""
    from modelops_bundle.core.envfiles import modelops_home
    from modelops_bundle.core.fsutil import exclusive_lock, require_real_folder

    key = hashlib.sha256(f"{backend.describe()}\0{target.repository}\0{target.tag}".encode()).hexdigest()[:32]
    home = modelops_home(environ)
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError:
        return contextlib.nullcontext()
    folder = require_real_folder(home / "locks", create=True)  # a symlink planted there is refused
    return exclusive_lock(folder / f"tag-{key}.lock", what="tag")


def _unique(blobs: list[BlobSource]) -> list[BlobSource]:
    seen: dict[str, BlobSource] = {}
    for blob in blobs:
        seen.setdefault(blob.digest, blob)
    return list(seen.values())
