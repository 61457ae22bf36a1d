"""``diff [--ref REF]`` (working tree vs a version) and ``diff REF1 REF2`` (between two versions)."""

from __future__ import annotations

import argparse
from typing import Any

from modelops_bundle.cli.common import complete_with, hasher_for, hashing_progress, open_session, plural
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext
from modelops_bundle.core.errors import UsageError

SECTIONS = (("added", "+"), ("modified", "~"), ("deleted", "-"))


def configure(parser: argparse.ArgumentParser) -> None:
    refs_help = "one version (vs the working tree) or two versions: tags, digests or digest prefixes"
    complete_with(parser.add_argument("refs", nargs="*", metavar="REF", help=refs_help), "tags")
    ref_help = "version to compare the working tree with"
    complete_with(parser.add_argument("--ref", "--tag", dest="ref", metavar="REF", help=ref_help), "tags")


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.bundle_files import bundle_paths
    from modelops_bundle.core.diff import VersionDiff, diff_indexes, diff_maps, diff_worktree, scan_keys
    from modelops_bundle.core.fetch import version_registry
    from modelops_bundle.core.model_registry import Registry, load_registry
    from modelops_bundle.core.model_status import impact
    from modelops_bundle.core.versions import fetch_version, resolve_digest

    refs: list[str] = list(args.refs)
    if args.ref:
        refs.insert(0, args.ref)
    if len(refs) > 2:
        raise UsageError("diff compares at most two versions")
    session = open_session(ctx)
    ws = session.ws
    base_ref = session.reference(refs[0] if refs else None)
    backend = session.open_registry(base_ref)
    try:
        payload: dict[str, Any]
        if len(refs) == 2:
            target_ref = session.reference(refs[1])
            base = fetch_version(backend, base_ref)
            target = fetch_version(backend, target_ref)
            changes: VersionDiff = diff_indexes(base.index, target.index)
            payload = {"base": str(base.pinned), "target": str(target.pinned)}
            registries: list[Registry | None] = [version_registry(backend, base), version_registry(backend, target)]
        else:
            digest = resolve_digest(backend, base_ref)
            scan = ws.scan(hasher_for(ctx, ws), paths=bundle_paths(ctx.plugins, ws), progress=hashing_progress(ctx))
            ws.save_caches()
            registries = [load_registry(ws)]
            if digest is None and not refs:
                changes = diff_maps({}, scan_keys(scan))  # never pushed: everything would be new
                payload = {"base": None, "target": "working tree"}
            else:
                version = fetch_version(backend, base_ref, digest)
                changes = diff_worktree(version.index, scan)
                payload = {"base": str(version.pinned), "target": "working tree"}
                registries.append(version_registry(backend, version))
        labels = {path: key for key, _ in SECTIONS for path in getattr(changes, key)}
        affected = impact(registries, labels)
    finally:
        backend.close()
    if ctx.out.json_mode:
        ctx.out.emit_json({**payload, **changes.to_json(), "impact": [item.to_json() for item in affected]})
        return 0
    base_name = payload["base"] or f"{base_ref} (not pushed yet)"
    ctx.out.line(f"{base_name} -> {payload['target']}", style="bold")
    if not changes.has_changes:
        ctx.out.line("No differences.", style="green")
        return 0
    for key, mark in SECTIONS:
        paths: list[str] = getattr(changes, key)
        for path in paths:
            ctx.out.line(f"  {mark} {path}", style={"+": "green", "~": "yellow", "-": "red"}[mark])
    counts = changes.counts()
    ctx.out.line(
        f"{plural(counts['added'], 'file')} added, {counts['modified']} modified, {counts['deleted']} deleted, "
        f"{counts['unchanged']} unchanged"
    )
    if affected:
        ctx.out.line("")
        ctx.out.line("Affected models and targets:", style="bold")
        for item in affected:
            for line in item.describe():
                ctx.out.line(f"  {line}")
    return 0


COMMAND = Command(
    name="diff",
    help="compare the working tree with a version, or two versions",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle diff\n  mops bundle diff --ref v1.0.0\n  mops bundle diff v1.0.0 v1.1.0 --json",
)
