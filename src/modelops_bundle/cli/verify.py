"""``verify [REF] [--cache] [--remote]``: check files against the digests that name them (exit 1 on problems)."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import complete_with, plural
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext
from modelops_bundle.core.errors import UsageError

LIST_LIMIT = 50


def configure(parser: argparse.ArgumentParser) -> None:
    complete_with(
        parser.add_argument(
            "ref", nargs="?", metavar="REF", help="tag, (short) digest or reference (default: last synced)"
        ),
        "tags",
    )
    parser.add_argument("--cache", action="store_true", help="re-hash every object of the shared cache")
    parser.add_argument("--remote", action="store_true", help="download and verify every blob of the version")


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.gc import project_cache
    from modelops_bundle.core.verify import VerifyReport, verify_cache

    report = VerifyReport()
    if args.cache:
        verify_cache(project_cache(ctx.cwd, ctx.environ)[0], report)
    if args.remote:
        _remote(ctx, args.ref, report)
    if not args.cache and not args.remote:
        _worktree(ctx, args.ref, report)
    if ctx.out.json_mode:
        ctx.out.emit_json(report.to_json())
        return 0 if report.ok else 1
    for scope, count in report.checked.items():
        ctx.out.line(f"{scope}: checked {plural(count, 'item')} against {report.sources.get(scope, '?')}")
    for finding in report.findings[:LIST_LIMIT]:
        detail = f" ({finding.detail})" if finding.detail else ""
        ctx.out.line(f"  {finding.scope} {finding.kind}: {finding.path}{detail}", style="red")
    if len(report.findings) > LIST_LIMIT:
        ctx.out.line(f"  ... and {len(report.findings) - LIST_LIMIT} more")
    ctx.out.line("OK" if report.ok else f"{plural(len(report.findings), 'problem')} found", style=None)
    return 0 if report.ok else 1


def _worktree(ctx: CommandContext, ref: str | None, report: object) -> None:
    from modelops_bundle.cli.common import open_session
    from modelops_bundle.core.remote import fetch_version
    from modelops_bundle.core.verify import VerifyReport, verify_tree

    assert isinstance(report, VerifyReport)
    session = open_session(ctx)
    ws = session.ws
    if ref:
        reference = session.reference(ref)
        backend = session.open_registry(reference)
        try:
            version = fetch_version(backend, reference)
        finally:
            backend.close()
        verify_tree(ws.project.root, version.index.digests(), report, source=str(version.pinned))
        return
    state = ws.state()
    if not state.last_synced_files:
        raise UsageError("nothing to verify against: this project has never been pushed or pulled", hint="give a REF")
    verify_tree(ws.project.root, dict(state.last_synced_files), report, source=f"last synced {state.last_synced_ref}")


def _remote(ctx: CommandContext, ref: str | None, report: object) -> None:
    from modelops_bundle.cli.common import open_session
    from modelops_bundle.core.remote import fetch_version
    from modelops_bundle.core.verify import VerifyReport, verify_remote

    assert isinstance(report, VerifyReport)
    session = open_session(ctx)
    reference = session.reference(ref)
    backend = session.open_registry(reference)
    fetcher = session.blob_fetcher()
    try:
        version = fetch_version(backend, reference)
        verify_remote(backend, version, report, blob_fetcher=fetcher)
    finally:
        fetcher.close()
        backend.close()


COMMAND = Command(
    name="verify",
    help="check the working tree, the cache or a remote version against its digests (exit 1 if anything is wrong)",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle verify\n  mops bundle verify v1.0.0\n  mops bundle verify --cache\n"
    "  mops bundle verify --remote --json",
)
