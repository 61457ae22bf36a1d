"""``ensure --dest DIR [--ref REF] [--mirror]``: materialise a version in another folder."""

from __future__ import annotations

import argparse
from pathlib import Path

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
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dest", required=True, metavar="DIR", help="folder to fill (created if missing)")
    add_ref_arguments(parser)
    parser.add_argument("--mirror", action="store_true", help="also delete files in DIR that the version lacks")
    add_jobs_option(parser, what="parallel downloads", default=5)
    add_model_option(parser)


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.pull import ensure
    from modelops_bundle.core.trust import trust_policy

    session = open_session(ctx)
    with fetch_session(ctx, session, chosen_ref(args)) as fetch:
        result = ensure(
            ctx.plugins,
            fetch.backend,
            fetch.reference,
            ctx.cwd / Path(args.dest),
            mirror=args.mirror,
            jobs=args.jobs,
            progress=ctx.out.progress,
            blob_fetcher=fetch.fetcher,
            models=args.models,
            trust=trust_policy(session.env_name, ctx.environ),
        )
    if emit_outcome(ctx, result):
        return 0
    ctx.out.line(f"{result.destination} holds {result.reference}", style="bold")
    ctx.out.line(
        f"  {plural(result.files, 'file')}: {len(result.fetched)} fetched, {result.unchanged} already present"
        + (f", {len(result.deleted)} deleted (--mirror)" if args.mirror else "")
    )
    return 0


COMMAND = Command(
    name="ensure",
    help="materialise a version into another folder (project state untouched)",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle ensure --dest /tmp/run1\n  mops bundle ensure --dest build --ref v1.0.0 --mirror",
)
