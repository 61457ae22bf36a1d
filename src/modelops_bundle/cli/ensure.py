"""``ensure --dest DIR [--ref REF] [--mirror]``: materialise a version in another folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelops_bundle.cli.common import open_workspace, plural, positive_int
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dest", required=True, metavar="DIR", help="folder to fill (created if missing)")
    parser.add_argument("--ref", "--tag", dest="ref", metavar="REF", help="tag or digest (default: default_tag)")
    parser.add_argument("--mirror", action="store_true", help="also delete files in DIR that the version lacks")
    parser.add_argument(
        "-j", "--jobs", type=positive_int, default=5, metavar="N", help="parallel downloads (default 5)"
    )
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        default=None,
        metavar="ID",
        help="only what this model (or target) needs: its code, data, the registry, project metadata (repeatable)",
    )


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.pull import ensure
    from modelops_bundle.core.remote import LazyBlobFetcher, open_backend, reference_for

    ws = open_workspace(ctx)
    reference = reference_for(ws, args.ref)
    backend = open_backend(ctx.plugins, ws, reference, ctx.environ)
    fetcher = LazyBlobFetcher(ctx.plugins, ws, ctx.environ, ctx.out.progress("blob downloads"))
    try:
        result = ensure(
            ctx.plugins,
            backend,
            reference,
            ctx.cwd / Path(args.dest),
            mirror=args.mirror,
            jobs=args.jobs,
            progress=ctx.out.progress,
            blob_fetcher=fetcher,
            models=args.models,
        )
    finally:
        fetcher.close()
        backend.close()
    for warning in result.warnings:
        ctx.out.warn(warning)
    if ctx.out.json_mode:
        ctx.out.emit_json(result.to_json())
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
