"""``pull [--ref REF] [--overwrite] [--restore-deleted] [--dry-run] [--jobs N]``: update the working tree."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import (
    add_jobs_option,
    add_model_option,
    add_ref_arguments,
    chosen_ref,
    emit_outcome,
    fetch_session,
    open_session,
    plural,
)
from modelops_bundle.cli.console import human_bytes
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext

LIST_LIMIT = 20


def configure(parser: argparse.ArgumentParser) -> None:
    add_ref_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace or delete files changed locally")
    parser.add_argument("--restore-deleted", action="store_true", help="bring back files deleted locally")
    parser.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    add_jobs_option(parser, what="parallel downloads", default=5)
    add_model_option(parser)


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.pull import pull
    from modelops_bundle.core.trust import trust_policy

    project = open_session(ctx)
    with fetch_session(ctx, project, chosen_ref(args)) as fetch:
        result = pull(
            project,
            fetch.backend,
            fetch.reference,
            overwrite=args.overwrite,
            restore_deleted=args.restore_deleted,
            dry_run=args.dry_run,
            jobs=args.jobs,
            progress=ctx.out.progress,
            blob_fetcher=fetch.fetcher,
            models=args.models,
            trust=trust_policy(project.env_name, ctx.environ),
        )
    if emit_outcome(ctx, result):
        return 0
    out, plan = ctx.out, result.plan
    if not plan.has_changes:
        out.line(f"Already up to date with {result.reference}", style="green")
    else:
        verb = "Would update" if result.dry_run else "Updated"
        out.line(f"{verb} from {result.reference}", style="bold")
        for label, paths in (
            ("added", plan.add),
            ("updated", plan.update),
            ("restored", plan.restore),
            ("overwritten", plan.overwrite),
            ("deleted", plan.delete),
        ):
            for path in paths[:LIST_LIMIT]:
                out.line(f"  {label}: {path}")
            if len(paths) > LIST_LIMIT:
                out.line(f"  ... and {len(paths) - LIST_LIMIT} more {label}")
        if not result.dry_run:
            out.line(f"Downloaded {plural(result.downloaded_files, 'file')} ({human_bytes(result.downloaded_bytes)})")
    if plan.kept_deleted:
        out.line(f"Kept {plural(len(plan.kept_deleted), 'file')} deleted locally (--restore-deleted brings them back)")
    return 0


COMMAND = Command(
    name="pull",
    help="update the working tree from a version (never overwrites local changes without --overwrite)",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle pull\n  mops bundle pull --ref v1.0.0\n  mops bundle pull --ref sha256:abc... "
    "--dry-run\n  mops bundle pull --overwrite",
)
