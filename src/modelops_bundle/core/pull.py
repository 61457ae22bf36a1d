"""Pull and ensure: bring a version's files onto disk, verified, without losing local work.

Planning is :mod:`.pull_plan`'s (the 3-way table), fetching and verifying :mod:`.fetch`'s.

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
import os
import shutil
import stat as stat_module
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.bundle_files import bundle_paths, extra_files
from modelops_bundle.core.errors import (
    BundleError,
    ConflictError,
    UsageError,
)
from modelops_bundle.core.fetch import (
    ALLOWED_META_FILES,
    check_destinations,
    check_version_paths,
    fetch_to_staging,
    place,
    verify_file,
)
from modelops_bundle.core.fsutil import describe_os_error, real_folder_below
from modelops_bundle.core.hashing import ProgressFactory, resolve_hasher
from modelops_bundle.core.index import IndexEntry
from modelops_bundle.core.packaging import BlobFetcher
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
from modelops_bundle.core.pull_plan import PullPlan, plan_pull
from modelops_bundle.core.reference import Reference
from modelops_bundle.core.registry import RegistryBackend
from modelops_bundle.core.trust import enforce_trust
from modelops_bundle.core.versions import RemoteVersion, fetch_version
from modelops_bundle.core.workspace import SyncState, Workspace, tracked_text

if TYPE_CHECKING:
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.session import Session
    from modelops_bundle.core.trust import TrustPolicy

DEFAULT_JOBS = 5

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
    session: Session,
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
    """Pull ``reference`` into the session's project (see the module docstring). Holds the project lock.

    Phases, each a function: :func:`_plan` (read the version, scan, 3-way plan, every check that needs no
    download: paths, names against the file system's limits, symlinks), :func:`_stage` (download and
    verify into a staging folder, check every folder can be written, stage the new metadata), then
    :func:`_apply_and_commit` (the journalled, all-or-nothing change of the working tree:
    :mod:`modelops_bundle.core.pull_apply`).

    ``models``: only the files those models (or targets) need. Such a partial pull updates the synced
    state of those files only and does not count as syncing the version (``last_pull_digest`` stays),
    so a later push of the partial tree is refused as a conflict instead of deleting the rest.
    """
    host, ws = session.host, session.ws
    with ws.lock():
        ws.sweep_leftovers()
        planned = _plan(
            session,
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
        ws.save_caches()
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
    session: Session,
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
    host, ws = session.host, session.ws
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
        new_state = state.replace(last_synced_files=merged)
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
    from modelops_bundle.core.fetch import version_registry
    from modelops_bundle.core.selection import select_paths

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
