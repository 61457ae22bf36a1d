"""``add PATH...``: start tracking files, folders (recursively) and glob patterns."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import add_jobs_option, hasher_for, hashing_progress, open_workspace, plural
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext
from modelops_bundle.core.paths import shown_path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="file, folder, glob pattern or '.'")
    parser.add_argument("-f", "--force", action="store_true", help="add files even if .modelopsignore ignores them")
    add_jobs_option(parser)


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.tracking import select_for_add

    ws = open_workspace(ctx)
    with ws.lock():
        selection = select_for_add(ws, ctx.cwd, args.paths, force=args.force)
        before = set(ws.tracked())
        # Hash before recording: an unreadable file fails the whole add and nothing changes.
        scan = ws.scan(hasher_for(ctx, ws), paths=selection.paths, threads=args.jobs, progress=hashing_progress(ctx))
        problems = scan.missing + [rel for rel, _ in scan.skipped]
        if problems:
            from modelops_bundle.core.errors import BundleError

            details = "; ".join(f"{rel}: {why}" for rel, why in scan.skipped) or ", ".join(scan.missing)
            raise BundleError(f"cannot add {plural(len(problems), 'file')}: {details}")
        new = [rel for rel in selection.paths if rel not in before]
        ws.save_tracked(before | set(selection.paths))
        ws.save_caches()
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {
                "added": new,
                "already_tracked": len(selection.paths) - len(new),
                "skipped": [{"path": rel, "reason": why} for rel, why in selection.skipped],
            }
        )
        return 0
    for rel, why in selection.skipped:
        ctx.out.warn(f"skipped {shown_path(rel)}: {why}")
    ctx.out.line(
        f"Added {plural(len(new), 'file')}"
        + (f" ({len(selection.paths) - len(new)} already tracked)" if len(selection.paths) > len(new) else "")
    )
    return 0


COMMAND = Command(
    name="add",
    help="track files, folders (recursively) or glob patterns",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle add src/utils.py config/settings.yaml\n  mops bundle add src/ data/\n"
    "  mops bundle add 'data/**/*.csv'\n  mops bundle add .",
)
