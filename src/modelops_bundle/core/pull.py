"""Pull and ensure: bring a version's files onto disk, verified, without losing local work.

Pull is a 3-way merge per file -- local (working tree), remote (the version's index) and base (the last
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

A single conflict refuses the whole pull (nothing is written) and names every file in the way.

Safety: every path of the index is validated before anything is fetched (no absolute paths, ``..``,
control characters, duplicates, file/folder clashes, ``.git``, project metadata other than the model
registry, names longer than the file system holds) and every destination folder is checked so that no
write goes through a symlink. Files are downloaded into a staging folder inside ``.modelops-bundle/``
(same file system), packs are unpacked with strict member checks, every file's digest is verified against
the index, every folder is checked to be writable -- and only then does the working tree change, all or
nothing, through a journal (:mod:`modelops_bundle.core.pull_apply`): a file saved while the pull
downloaded is a conflict, kept; a failure rolls every change back; a killed apply is finished (or rolled
back) by the next command. ``state.json`` and the tracked list are written last, atomically.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import stat as stat_module
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from modelops_bundle.core.bundle_files import bundle_paths, extra_files
from modelops_bundle.core.errors import (
    BundleError,
    ConflictError,
    IntegrityError,
    StorageError,
    UsageError,
)
from modelops_bundle.core.fsutil import describe_os_error, real_folder_below
from modelops_bundle.core.hashing import ProgressFactory, file_matches, new_content_hash, resolve_hasher
from modelops_bundle.core.index import BundleIndex, IndexEntry
from modelops_bundle.core.packaging import PACK_MEDIA_TYPE, BlobFetcher, Descriptor
from modelops_bundle.core.paths import check_name_limits, shown_path
from modelops_bundle.core.project import META_DIR
from modelops_bundle.core.pull_apply import (
    Journal,
    RollbackIncomplete,
    Step,
    apply_steps,
    check_unchanged,
    check_writable,
    finish,
    folders_to_create,
    order_steps,
    prune_emptied_folders,
    roll_back,
    signature_of,
    stage_metadata,
    write_journal,
)
from modelops_bundle.core.reference import Reference
from modelops_bundle.core.registry import RegistryBackend, TransferStats
from modelops_bundle.core.remote import RemoteVersion, fetch_version
from modelops_bundle.core.trust import enforce_trust
from modelops_bundle.core.workspace import SyncState, Workspace, tracked_text

if TYPE_CHECKING:
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.trust import TrustPolicy

DEFAULT_JOBS = 5
#: The only project-metadata file a version may carry (the model registry travels with the bundle).
ALLOWED_META_FILES = frozenset({f"{META_DIR}/registry.yaml"})
_COPY_CHUNK = 1024 * 1024

# ------------------------------------------------------------------------------------------- planning


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


# ------------------------------------------------------------------------------------- path safety


def check_version_paths(index: BundleIndex, *, source: str, allow_meta: frozenset[str] = ALLOWED_META_FILES) -> None:
    """Refuse paths no version may write: into ``.git`` or into project metadata (except the registry).

    The index parser has already refused absolute paths, ``..``, control characters, duplicates and
    file/folder clashes.
    """
    for entry in index.files:
        parts = entry.path.split("/")
        if any(part.lower() == ".git" for part in parts):
            raise IntegrityError(f"{source}: refusing to write into a .git folder: {entry.path}")
        if parts[0] == META_DIR and entry.path not in allow_meta:
            raise IntegrityError(f"{source}: refusing to write project metadata: {entry.path}")


def check_destinations(root: Path, paths: Iterable[str], *, deleting: Iterable[str] = ()) -> None:
    """No write may pass through a symlink or a non-folder, nor replace a folder; raises ConflictError."""
    going = set(deleting)
    problems: list[str] = []
    checked: dict[str, str | None] = {}
    for rel in paths:
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in checked:
                checked[folder] = _folder_problem(root / folder, folder, going)
            if checked[folder]:
                problems.append(f"{rel}: {checked[folder]}")
                break
        else:
            with contextlib.suppress(FileNotFoundError):
                if stat_module.S_ISDIR(os.lstat(root / rel).st_mode):
                    problems.append(f"{rel}: a folder is in the way")
    if problems:
        shown = "; ".join(problems[:10]) + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
        raise ConflictError(f"cannot write {len(problems)} file(s) safely: {shown}")


def _folder_problem(path: Path, rel: str, going: set[str]) -> str | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return describe_os_error("inspect", rel, exc)
    if stat_module.S_ISLNK(st.st_mode):
        return f"{rel} is a symlink (writes never go through symlinks)"
    if not stat_module.S_ISDIR(st.st_mode) and rel not in going:
        return f"{rel} is a file, not a folder"
    return None


# -------------------------------------------------------------------------------------- fetching


class _LimitedHashingReader:
    """Reads a decompressed stream, hashing it and refusing more than ``limit`` bytes (gzip bombs)."""

    def __init__(self, stream: Any, limit: int, what: str) -> None:
        self.stream = stream
        self.limit = limit
        self.what = what
        self.hash = new_content_hash("sha256")  # a layer's content digest: sha256, as push makes it
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.stream.read(size if size >= 0 else self.limit + 1 - self.count)
        self.count += len(data)
        if self.count > self.limit:
            raise IntegrityError(f"{self.what}: unpacks to more bytes than its files account for")
        self.hash.update(data)
        return data


def _tar_bound(entries: Iterable[IndexEntry]) -> int:
    """Most bytes an honest pack of ``entries`` unpacks to: data and headers (PAX ones too), padding."""
    total = 20 * 512
    for entry in entries:
        total += -(-entry.size // 512) * 512 + 3 * 512 + 2 * (-(-(len(entry.path.encode()) + 64) // 512) * 512)
    return total


def unpack_pack(
    archive: Path,
    layer: Descriptor,
    members: Mapping[str, IndexEntry],
    wanted: Mapping[str, Path],
) -> None:
    """Unpack the ``wanted`` members of a pack to their staging paths, checking everything.

    Members must be regular files, each exactly once, named and sized as the index says; the files'
    digests and the uncompressed tar's digest (``layer``'s content digest) must match.
    """
    what = f"pack {layer.digest}"
    seen: set[str] = set()
    try:
        with gzip.open(archive, "rb") as stream:
            reader = _LimitedHashingReader(stream, _tar_bound(members.values()), what)
            # Stream mode ("r|") reads sequentially: tarfile needs only read().
            with tarfile.open(fileobj=cast(IO[bytes], reader), mode="r|") as tar:
                for member in tar:
                    name = member.name
                    if not member.isreg():
                        raise IntegrityError(f"{what}: member {name!r} is not a regular file")
                    entry = members.get(name)
                    if entry is None or name in seen:
                        raise IntegrityError(f"{what}: unexpected member {name!r}")
                    seen.add(name)
                    if member.size != entry.size:
                        raise IntegrityError(f"{what}: {name} has {member.size} bytes, the index says {entry.size}")
                    target = wanted.get(name)
                    if target is not None:
                        source = tar.extractfile(member)
                        assert source is not None
                        _write_verified(source, target, entry)
            while reader.read(_COPY_CHUNK):
                pass  # the tar's end padding counts towards its digest
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise IntegrityError(f"{what}: corrupt pack ({exc})") from exc
    missing = set(members) - seen
    if missing:
        raise IntegrityError(f"{what}: lacks {len(missing)} file(s) the index places in it, e.g. {min(missing)}")
    if "sha256:" + reader.hash.hexdigest() != layer.content_digest:
        raise IntegrityError(f"{what}: its tar does not match the content digest {layer.content_digest}")


def _write_verified(source: Any, target: Path, entry: IndexEntry) -> None:
    digest = new_content_hash(entry.algorithm)
    size = 0
    try:
        out = open(target, "wb")  # noqa: SIM115 - closed below; write errors are reported as such
    except OSError as exc:
        raise BundleError(describe_os_error("write", target, exc)) from exc
    with out:
        while chunk := source.read(_COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            try:
                out.write(chunk)
            except OSError as exc:
                raise BundleError(describe_os_error("write", target, exc)) from exc
    if size != entry.size or f"{entry.algorithm}:{digest.hexdigest()}" != entry.digest:
        raise IntegrityError(f"{entry.path}: bytes do not match the index digest {entry.digest}")


def verify_file(path: Path, entry: IndexEntry) -> bool:
    """True when ``path`` holds exactly ``entry``'s bytes."""
    return entry.algorithm == entry.digest.partition(":")[0] and file_matches(path, entry.digest, entry.size)


def fetch_to_staging(
    backend: RegistryBackend,
    version: RemoteVersion,
    entries: list[IndexEntry],
    staging: Path,
    *,
    jobs: int,
    progress: ProgressFactory | None,
    blob_fetcher: BlobFetcher | None,
    stats: TransferStats | None = None,
) -> dict[str, Path]:
    """Download, unpack and verify ``entries`` into ``staging``; returns ``{path: staged file}``.

    ``stats``, when given, accumulates what was transferred (registry blobs and blob-store files)."""
    repository = version.reference.repository
    layers = {layer.content_digest: layer for layer in version.manifest.layers}
    staged = {entry.path: staging / f"f{number}" for number, entry in enumerate(entries)}
    raw_downloads: dict[str, tuple[str, int, Path]] = {}
    raw_copies: list[tuple[Path, Path]] = []
    packs: dict[str, list[IndexEntry]] = {}
    blob_tier = [entry for entry in entries if entry.storage == "blob"]
    unverified: list[IndexEntry] = []
    for entry in entries:
        if entry.storage == "blob":
            continue
        layer = layers[entry.layer or ""]
        if layer.media_type == PACK_MEDIA_TYPE:
            packs.setdefault(layer.content_digest, []).append(entry)
            continue
        if layer.digest in raw_downloads:  # two files with the same bytes: one download, one copy
            raw_copies.append((raw_downloads[layer.digest][2], staged[entry.path]))
        else:
            raw_downloads[layer.digest] = (layer.digest, layer.size, staged[entry.path])
        if entry.algorithm != "sha256":
            unverified.append(entry)  # the backend verified the sha256 layer digest, not this one
    pack_files = {digest: staging / f"p{number}.tar.gz" for number, digest in enumerate(sorted(packs))}
    downloads = list(raw_downloads.values()) + [
        (layers[digest].digest, layers[digest].size, path) for digest, path in pack_files.items()
    ]
    if blob_tier and blob_fetcher is None:
        raise StorageError(
            f"this version keeps {len(blob_tier)} file(s) in blob storage (e.g. {blob_tier[0].path}), "
            "and no blob store is configured for this environment"
        )
    sink = progress("downloading", "blobs") if progress else None
    if sink is not None:
        sink.start(len(downloads), sum(size for _, size, _ in downloads))
    try:
        if downloads:
            got = backend.get_blobs_to_files(repository, downloads, jobs=jobs, progress=sink)
            if stats is not None:
                stats.downloaded_blobs += got.downloaded_blobs
                stats.downloaded_bytes += got.downloaded_bytes
    finally:
        if sink is not None:
            sink.close()
    for source, target in raw_copies:
        shutil.copyfile(source, target)
    all_members: dict[str, dict[str, IndexEntry]] = {}
    for entry in version.index.files:
        if entry.storage == "oci" and entry.layer in packs:
            all_members.setdefault(entry.layer, {})[entry.path] = entry
    for digest, path in pack_files.items():
        wanted = {entry.path: staged[entry.path] for entry in packs[digest]}
        unpack_pack(path, layers[digest], all_members[digest], wanted)
        path.unlink()
    if blob_tier:
        assert blob_fetcher is not None
        fetch_many = getattr(blob_fetcher, "fetch_many", None)
        if fetch_many is not None:  # concurrent, and the store verifies size and digest before placing
            fetch_many([(entry, staged[entry.path]) for entry in blob_tier], jobs=jobs)
        else:
            for entry in blob_tier:
                blob_fetcher(entry, staged[entry.path])
                unverified.append(entry)
        if stats is not None:
            stats.extra["blob_files"] = stats.extra.get("blob_files", 0) + len(blob_tier)
            stats.extra["blob_bytes"] = stats.extra.get("blob_bytes", 0) + sum(entry.size for entry in blob_tier)
    for entry in unverified:
        if not verify_file(staged[entry.path], entry):
            raise IntegrityError(f"{entry.path}: downloaded bytes do not match the index digest {entry.digest}")
    return staged


def place(
    root: Path, staged: Mapping[str, Path], entries: Mapping[str, IndexEntry]
) -> list[tuple[str, os.stat_result]]:
    """Rename each staged file onto its path (folders created as needed), with the index's mode."""
    placed: list[tuple[str, os.stat_result]] = []
    for rel in sorted(staged):
        target = root / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(staged[rel], entries[rel].mode)
            os.replace(staged[rel], target)
            placed.append((rel, os.stat(target)))
        except OSError as exc:
            raise BundleError(describe_os_error("write", target, exc)) from exc
    return placed


# ------------------------------------------------------------------------------------------- pull


@dataclass
class PullResult:
    reference: Reference
    digest: str
    plan: PullPlan
    files: int = 0  # in the version
    dry_run: bool = False
    downloaded_files: int = 0
    downloaded_bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    models: list[str] | None = None  # a partial pull of these models' files

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": str(self.reference),
            "digest": self.digest,
            "files": self.files,
            "models": self.models,
            "dry_run": self.dry_run,
            "downloaded_files": self.downloaded_files,
            "downloaded_bytes": self.downloaded_bytes,
            **self.plan.summary(),
            "warnings": self.warnings,
        }


def pull(
    host: PluginHost,
    ws: Workspace,
    backend: RegistryBackend,
    reference: Reference,
    *,
    overwrite: bool = False,
    restore_deleted: bool = False,
    dry_run: bool = False,
    jobs: int = DEFAULT_JOBS,
    progress: ProgressFactory | None = None,
    blob_fetcher: BlobFetcher | None = None,
    models: Sequence[str] | None = None,
    trust: TrustPolicy | None = None,
) -> PullResult:
    """Pull ``reference`` into the project (see the module docstring). Holds the project lock.

    Phases, each a function: :func:`_plan` (read the version, scan, 3-way plan, every check that needs no
    download: paths, names against the file system's limits, symlinks), :func:`_stage` (download and
    verify into a staging folder, check every folder can be written, stage the new metadata), then
    :func:`_apply_and_commit` (the journalled, all-or-nothing change of the working tree:
    :mod:`modelops_bundle.core.pull_apply`).

    ``models``: only the files those models (or targets) need. Such a partial pull updates the synced
    state of those files only and does not count as syncing the version (``last_pull_digest`` stays),
    so a later push of the partial tree is refused as a conflict instead of deleting the rest.
    """
    with ws.lock():
        ws.sweep_leftovers()
        planned = _plan(
            host,
            ws,
            backend,
            reference,
            overwrite=overwrite,
            restore_deleted=restore_deleted,
            models=models,
            progress=progress,
            trust=trust,
        )
        result = planned.result
        result.dry_run = dry_run
        if dry_run:
            return result
        root = ws.project.root
        staging = _new_staging(ws)
        keep_staging = False
        try:
            staged = _stage(backend, planned, staging, jobs=jobs, progress=progress, blob_fetcher=blob_fetcher)
            new_tracked, new_state = _next_metadata(host, ws, planned)
            journal = _journal(root, planned, staged, staging)
            check_writable(root, journal.steps, staging)
            stage_metadata(staging, tracked_text(new_tracked), new_state.to_json())
            check_unchanged(root, journal.steps)
            _apply_and_commit(ws, planned, journal, staging, new_tracked, new_state)
        except RollbackIncomplete:
            keep_staging = True  # the journal and the old bytes stay for the next command to finish
            raise
        finally:
            if not keep_staging:
                finish(ws.project.meta, staging)
        fetched = [planned.remote[path] for path in planned.plan.fetch]
        result.downloaded_files = len(fetched)
        result.downloaded_bytes = sum(entry.size for entry in fetched)
        ws.close()
    _notify(host, result, root, result.warnings)
    return result


@dataclass
class _Planned:
    """What the plan phase decided: the version, the plan, and what the apply must find on disk."""

    version: RemoteVersion
    plan: PullPlan
    result: PullResult
    remote: dict[str, IndexEntry]  # the version's files (of the selection)
    selected: set[str] | None
    state: SyncState
    expect: dict[str, list[int] | None]  # signature of each file the plan replaces or deletes


def _plan(
    host: PluginHost,
    ws: Workspace,
    backend: RegistryBackend,
    reference: Reference,
    *,
    overwrite: bool,
    restore_deleted: bool,
    models: Sequence[str] | None,
    progress: ProgressFactory | None,
    trust: TrustPolicy | None,
) -> _Planned:
    """Phase 1: read the version, scan the working tree, make the 3-way plan, and refuse -- before any
    download -- a conflict, a path no version may write, a name the file system cannot hold, or a write
    through a symlink."""
    version = fetch_version(backend, reference)
    enforce_trust(trust, version.reference.repository, version.digest, backend=backend)  # before anything lands
    source = str(version.pinned)
    check_version_paths(version.index, source=source)
    selected = _selection(backend, version, models)
    algorithm = ws.config().hash_algorithm
    foreign = version.index.algorithms - {algorithm}
    if foreign:
        raise UsageError(
            f"{source} uses {', '.join(sorted(foreign))} digests; this project uses {algorithm}",
            hint="set hash_algorithm in .modelops-bundle/config.yaml to match",
        )
    state = ws.state()
    remote = version.index.by_path()
    synced_files = dict(state.last_synced_files)
    if selected is not None:
        remote = {rel: entry for rel, entry in remote.items() if rel in selected}
        synced_files = {rel: digest for rel, digest in synced_files.items() if rel in selected}
    remote_digests = {rel: entry.digest for rel, entry in remote.items()}
    check_name_limits(ws.project.root, sorted(remote), source=source)  # before the scan stats them
    hasher = resolve_hasher(host.hook, algorithm)
    if selected is not None:
        paths = sorted(selected)
    else:
        paths = sorted(set(bundle_paths(host, ws)) | set(remote) | set(state.last_synced_files))
    scan = ws.scan(hasher, paths=paths, progress=(lambda: progress("hashing")) if progress else None)
    blocked = [f"{shown_path(rel)}: {why}" for rel, why in scan.skipped if rel in remote or rel in synced_files]
    if blocked:
        raise ConflictError(f"cannot pull over {len(blocked)} path(s): " + "; ".join(blocked[:10]))
    local = {rel: info.digest for rel, info in scan.files.items()}
    plan = plan_pull(local, remote_digests, synced_files, overwrite=overwrite, restore_deleted=restore_deleted)
    result = PullResult(version.pinned, version.digest, plan, files=len(remote))
    result.models = sorted(set(models)) if selected is not None and models else None
    if plan.conflicts:
        shown = "; ".join(f"{shown_path(path)} ({why})" for path, why in plan.conflicts[:10])
        more = f" and {len(plan.conflicts) - 10} more" if len(plan.conflicts) > 10 else ""
        raise ConflictError(
            f"pull would overwrite or delete local changes in {len(plan.conflicts)} file(s): {shown}{more}",
            hint="push or move them first, or pull with --overwrite to replace them",
        )
    root = ws.project.root
    check_destinations(root, plan.fetch, deleting=plan.delete)
    check_destinations(root, plan.delete)
    entries = ws.cache.entries
    expect: dict[str, list[int] | None] = {rel: None for rel in plan.add + plan.restore}
    for rel in plan.update + plan.overwrite + plan.delete:
        entry = entries.get(rel)
        expect[rel] = list(entry[:4]) if entry is not None else signature_of(root / rel)
    return _Planned(version, plan, result, remote, selected, state, expect)


def _new_staging(ws: Workspace) -> Path:
    """A fresh ``.modelops-bundle/staging/pull-*`` folder; every folder on the way checked to be real."""
    parent = real_folder_below(ws.project.root, META_DIR, "staging", create=True)
    return Path(tempfile.mkdtemp(prefix="pull-", dir=parent))


def _stage(
    backend: RegistryBackend,
    planned: _Planned,
    staging: Path,
    *,
    jobs: int,
    progress: ProgressFactory | None,
    blob_fetcher: BlobFetcher | None,
) -> dict[str, Path]:
    """Phase 2: download, unpack and verify every file to fetch into ``staging`` (nothing in the working
    tree changes; running out of space, a cut connection or a bad digest stop the pull here)."""
    entries = [planned.remote[path] for path in planned.plan.fetch]
    if not entries:
        return {}
    return fetch_to_staging(
        backend, planned.version, entries, staging, jobs=jobs, progress=progress, blob_fetcher=blob_fetcher
    )


def _next_metadata(host: PluginHost, ws: Workspace, planned: _Planned) -> tuple[list[str], SyncState]:
    """The tracked list and sync state the commit writes."""
    plan, remote, state, version = planned.plan, planned.remote, planned.state, planned.version
    extras = set(extra_files(host, ws.project)) | ALLOWED_META_FILES
    tracked = (set(ws.tracked()) | {path for path in remote if path not in extras}) - set(plan.delete)
    if planned.selected is None:
        new_state = state.after_sync(
            digest=version.digest, ref=str(version.reference), files=version.index.digests(), pushed=False
        )
    else:
        merged = {rel: digest for rel, digest in state.last_synced_files.items() if rel not in planned.selected}
        merged.update({rel: entry.digest for rel, entry in remote.items()})
        new_state = replace(state, last_synced_files=merged)
    return sorted(tracked), new_state


def _journal(root: Path, planned: _Planned, staged: Mapping[str, Path], staging: Path) -> Journal:
    """The steps of the apply: each staged file to its path, each delete; placements first."""
    plan, remote, expect = planned.plan, planned.remote, planned.expect
    placements = [Step(rel, staged[rel].name, remote[rel].mode, expect[rel]) for rel in plan.fetch]
    deletes = [Step(rel, None, 0, expect[rel]) for rel in plan.delete]
    steps = order_steps(placements, deletes)
    return Journal(staging.name, steps, folders_to_create(root, steps))


def _apply_and_commit(
    ws: Workspace, planned: _Planned, journal: Journal, staging: Path, tracked: list[str], state: SyncState
) -> None:
    """Phases 3 and 4: the journalled apply, then the tracked list and sync state. A failure anywhere
    rolls the working tree back (:func:`modelops_bundle.core.pull_apply.apply_steps`)."""
    root, meta = ws.project.root, ws.project.meta
    tracked_before = list(ws.tracked())
    if journal.steps:
        write_journal(meta, journal)
    apply_steps(root, staging, journal)
    try:
        ws.save_tracked(tracked)
        if planned.selected is None:
            ws.remember_version_config(state, planned.version.digest, planned.version.manifest.config.digest)
        ws.save_state(state)
    except BaseException:
        failed = roll_back(root, staging, journal)
        with contextlib.suppress(BundleError):
            ws.save_tracked(tracked_before)
        if failed:
            raise RollbackIncomplete(meta, staging, failed) from None
        raise
    for rel in planned.plan.fetch:
        with contextlib.suppress(OSError):
            ws.cache.store(rel, os.stat(root / rel), planned.remote[rel].digest.partition(":")[2])
    prune_emptied_folders(root, planned.plan.delete)


def _notify(host: PluginHost, result: PullResult | EnsureResult, destination: Path, warnings: list[str]) -> None:
    payload = {**result.to_json(), "destination": str(destination)}
    for name, exc in host.hook.mops_pull_finished(result=payload).failures:
        warnings.append(f"plugin {name!r} failed in mops_pull_finished: {exc}")


# ----------------------------------------------------------------------------------------- ensure


@dataclass
class EnsureResult:
    reference: Reference
    digest: str
    destination: Path
    fetched: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    files: int = 0
    warnings: list[str] = field(default_factory=list)
    models: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": str(self.reference),
            "digest": self.digest,
            "models": self.models,
            "destination": str(self.destination),
            "files": self.files,
            "fetched": self.fetched,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "warnings": self.warnings,
        }


def ensure(
    host: PluginHost,
    backend: RegistryBackend,
    reference: Reference,
    destination: Path,
    *,
    mirror: bool = False,
    jobs: int = DEFAULT_JOBS,
    progress: ProgressFactory | None = None,
    blob_fetcher: BlobFetcher | None = None,
    models: Sequence[str] | None = None,
    trust: TrustPolicy | None = None,
) -> EnsureResult:
    """Make ``destination`` hold the version's files (verified); ``mirror`` also deletes other files.

    Touches no project state. Files already present with the right bytes are left alone. ``models``:
    only the files those models (or targets) need.
    """
    destination = Path(os.path.abspath(destination))
    if destination.exists() and not destination.is_dir():
        raise UsageError(f"--dest {destination} is a file, not a folder")
    if mirror and (destination / META_DIR / "config.yaml").exists():
        raise UsageError(f"{destination} is a modelops-bundle project; --mirror would delete its files")
    version = fetch_version(backend, reference)
    enforce_trust(trust, version.reference.repository, version.digest, backend=backend)  # before anything lands
    source = str(version.pinned)
    check_version_paths(version.index, source=source)
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(describe_os_error("create", destination, exc)) from exc
    with _destination_lock(destination):
        result = _ensure_locked(backend, version, destination, mirror, jobs, progress, blob_fetcher, models)
    _notify(host, result, destination, result.warnings)
    return result


ENSURE_STAGING_PREFIX = ".mops-ensure-"


@contextlib.contextmanager
def _destination_lock(destination: Path) -> Iterator[None]:
    """An ``flock`` on the destination folder itself (no file added to it): two ``ensure`` runs into one
    folder take turns instead of deleting each other's staging. Then the staging folders that earlier
    runs, killed, left there are removed -- nothing else can be using them."""
    import fcntl

    try:
        fd = os.open(destination, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise UsageError(describe_os_error("open", destination, exc)) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for name in os.listdir(destination):
            if name.startswith(ENSURE_STAGING_PREFIX):
                leftover = destination / name
                shutil.rmtree(leftover, ignore_errors=True) if not leftover.is_symlink() else leftover.unlink()
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _ensure_locked(
    backend: RegistryBackend,
    version: RemoteVersion,
    destination: Path,
    mirror: bool,
    jobs: int,
    progress: ProgressFactory | None,
    blob_fetcher: BlobFetcher | None,
    models: Sequence[str] | None,
) -> EnsureResult:
    remote = version.index.by_path()
    selected = _selection(backend, version, models)
    if selected is not None:
        remote = {rel: entry for rel, entry in remote.items() if rel in selected}
    check_name_limits(destination, sorted(remote), source=str(version.pinned))
    check_destinations(destination, remote)
    result = EnsureResult(version.pinned, version.digest, destination, files=len(remote))
    result.models = sorted(set(models)) if selected is not None and models else None
    needed = [entry for rel, entry in sorted(remote.items()) if not _present(destination / rel, entry)]
    result.unchanged = len(remote) - len(needed)
    staging = Path(tempfile.mkdtemp(prefix=ENSURE_STAGING_PREFIX, dir=destination))
    try:
        if needed:
            staged = fetch_to_staging(
                backend, version, needed, staging, jobs=jobs, progress=progress, blob_fetcher=blob_fetcher
            )
            place(destination, staged, remote)
        result.fetched = [entry.path for entry in needed]
        if mirror:
            result.deleted = _mirror(destination, set(remote), keep=staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _selection(backend: RegistryBackend, version: RemoteVersion, models: Sequence[str] | None) -> set[str] | None:
    """The paths ``models`` need (from the version's own registry), or ``None`` for the whole version."""
    if not models:
        return None
    from modelops_bundle.core.materialize import select_paths
    from modelops_bundle.core.remote import version_registry

    registry = version_registry(backend, version)
    paths = [entry.path for entry in version.index.files]
    return set(select_paths(paths, registry, models, source=str(version.pinned)))


def _present(path: Path, entry: IndexEntry) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat_module.S_ISREG(st.st_mode) or not verify_file(path, entry):
        return False
    if stat_module.S_IMODE(st.st_mode) != entry.mode:
        with contextlib.suppress(OSError):
            os.chmod(path, entry.mode)
    return True


def _mirror(root: Path, keep_files: set[str], *, keep: Path) -> list[str]:
    """Delete every file (and symlink) under ``root`` the version does not hold; then empty folders."""
    deleted: list[str] = []
    for folder, dirnames, filenames in os.walk(root, topdown=True, followlinks=False):
        here = Path(folder)
        dirnames[:] = [name for name in dirnames if here / name != keep]
        for name in list(dirnames):
            if (here / name).is_symlink():
                dirnames.remove(name)
                filenames.append(name)
        for name in filenames:
            rel = (here / name).relative_to(root).as_posix()
            if rel not in keep_files:
                try:
                    (here / name).unlink()
                except OSError as exc:
                    raise BundleError(describe_os_error("delete", here / name, exc)) from exc
                deleted.append(rel)
    for folder, _dirnames, _filenames in os.walk(root, topdown=False):
        if Path(folder) not in (root, keep):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
    return sorted(deleted)
