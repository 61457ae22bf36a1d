"""``remove PATH... [--rm]``: stop tracking files (and with ``--rm`` delete them)."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import open_workspace, plural
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext
from modelops_bundle.core.errors import BundleError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="tracked file, folder or glob pattern")
    parser.add_argument("--rm", action="store_true", help="also delete the files from the working tree")


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.tracking import check_deletable, delete_files, select_for_remove

    ws = open_workspace(ctx)
    with ws.lock():
        chosen = select_for_remove(ws, ctx.cwd, args.paths)
        if args.rm:
            check_deletable(ws.project.root, chosen)
        remaining = set(ws.tracked()) - set(chosen)
        ws.save_tracked(remaining)
        failures = delete_files(ws.project.root, chosen) if args.rm else []
        ws.save_caches()
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {
                "removed": chosen,
                "deleted": args.rm,
                "failed": [{"path": rel, "reason": why} for rel, why in failures],
            }
        )
    else:
        verb = "Untracked and deleted" if args.rm else "Untracked"
        ctx.out.line(f"{verb} {plural(len(chosen), 'file')}")
    if failures:
        details = "; ".join(f"{rel}: {why}" for rel, why in failures)
        raise BundleError(f"untracked, but could not delete {plural(len(failures), 'file')}: {details}")
    return 0


COMMAND = Command(
    name="remove",
    help="stop tracking files (keeps them on disk unless --rm)",
    run=run,
    configure=configure,
    aliases=("rm",),
    epilog="examples:\n  mops bundle remove src/old_model.py\n  mops bundle remove --rm tmp/",
)
