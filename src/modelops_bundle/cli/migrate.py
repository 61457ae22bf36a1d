"""``migrate [--dry-run]``: convert a project folder made by modelops-bundle v0.1.1, in place."""

from __future__ import annotations

import argparse

from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.project import find_project
    from modelops_bundle.core.project_migration import apply_migration, plan_migration
    from modelops_bundle.core.workspace import Workspace

    project = find_project(ctx.cwd)
    ws = Workspace(project)
    with ws.lock():
        plan = plan_migration(project)
        if plan.needed and not args.dry_run:
            apply_migration(plan)
    changes = [{"file": change.file, "change": change.what} for change in plan.changes]
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {
                "project": str(project.root),
                "migrated": plan.needed and not args.dry_run,
                "dry_run": args.dry_run,
                "changes": changes,
            }
        )
        return 0
    if not plan.needed:
        ctx.out.line(f"Nothing to migrate: {project.root} is a current project")
        return 0
    verb = "Would migrate" if args.dry_run else "Migrated"
    ctx.out.line(f"{verb} {project.root} (made by modelops-bundle 0.1.x):", style="bold")
    for change in plan.changes:
        ctx.out.line(f"  {change.file}: {change.what}")
    if not args.dry_run:
        ctx.out.line("Next: 'mops bundle status' (its first run also settles where versions go)")
    return 0


COMMAND = Command(
    name="migrate",
    help="convert a project made by modelops-bundle 0.1.x (config, state, tracked list) in place",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle migrate --dry-run\n  mops bundle migrate",
)
