"""``gc [--dry-run] [--keep-days N]``: clean the shared cache, keeping pinned and recently used versions."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import number_at_least, plural
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")
    parser.add_argument(
        "--keep-days",
        type=number_at_least(float, 0.0, "a number of days"),
        default=14.0,
        metavar="N",
        help="keep versions used within N days (default 14)",
    )


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.cli.console import human_bytes
    from modelops_bundle.core.gc import collect_garbage

    cache, report = collect_garbage(ctx.cwd, ctx.environ, keep_days=args.keep_days, dry_run=args.dry_run)
    if ctx.out.json_mode:
        ctx.out.emit_json({"cache": str(cache.root), **report.to_json()})
        return 0
    verb = "Would free" if args.dry_run else "Freed"
    ctx.out.line(f"{verb} {human_bytes(report.freed_bytes)} in {cache.root}", style="bold")
    ctx.out.line(
        f"  {plural(len(report.removed_versions), 'version')} and {plural(report.removed_objects, 'object')} "
        f"{'would be ' if args.dry_run else ''}removed; {plural(len(report.kept_versions), 'version')} kept"
    )
    for digest in report.removed_versions[:20]:
        ctx.out.line(f"  removed: {digest}")
    return 0


COMMAND = Command(
    name="gc",
    help="clean the shared bundle cache (keeps pinned, recently used and this project's versions)",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle gc --dry-run\n  mops bundle gc --keep-days 3 --json",
)
