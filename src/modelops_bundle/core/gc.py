"""What ``gc`` keeps: versions pinned in the cache, the current project's last synced versions, and
anything used within ``--keep-days`` (a tree's completion marker is touched on every use)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from modelops_bundle.core.cache import BundleCache, GcReport, cache_root
from modelops_bundle.core.errors import NotInitializedError

DEFAULT_KEEP_DAYS = 14.0


def project_cache(cwd: Path, environ: Mapping[str, str]) -> tuple[BundleCache, list[str]]:
    """The cache a command in ``cwd`` uses, and the digests its project (if any) last pushed or pulled."""
    from modelops_bundle.core.project import find_project

    try:
        project = find_project(cwd)
    except NotInitializedError:
        return BundleCache(cache_root(environ)), []
    from modelops_bundle.core.workspace import Workspace

    ws = Workspace(project)
    state = ws.state()
    synced = [digest for digest in (state.last_push_digest, state.last_pull_digest) if digest]
    return BundleCache(cache_root(environ, ws.config().cache_dir)), synced


def collect_garbage(
    cwd: Path, environ: Mapping[str, str], *, keep_days: float = DEFAULT_KEEP_DAYS, dry_run: bool = False
) -> tuple[BundleCache, GcReport]:
    cache, synced = project_cache(cwd, environ)
    report = cache.gc(keep=synced, keep_seconds=keep_days * 86400, dry_run=dry_run)
    return cache, report
