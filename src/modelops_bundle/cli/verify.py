"""``verify [REF] [--cache] [--remote] [--signature]``: check files against the digests that name them, and
who signed the version (exit 1 on problems)."""

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
    parser.add_argument(
        "--signature",
        action="store_true",
        help="also check who signed the version (REF, else the last synced): each signature, and the trust policy",
    )


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
    signers = _signatures(ctx, args.ref, report) if args.signature else []
    if ctx.out.json_mode:
        ctx.out.emit_json(report.to_json())
        return 0 if report.ok else 1
    for scope, count in report.checked.items():
        ctx.out.line(f"{scope}: checked {plural(count, 'item')} against {report.sources.get(scope, '?')}")
        if scope == "signature":
            for line in signers:
                ctx.out.line(f"  {line}")
    for finding in report.findings[:LIST_LIMIT]:
        detail = f" ({finding.detail})" if finding.detail else ""
        ctx.out.line(f"  {finding.scope} {finding.kind}: {finding.path}{detail}", style="red")
    if len(report.findings) > LIST_LIMIT:
        ctx.out.line(f"  ... and {len(report.findings) - LIST_LIMIT} more")
    ctx.out.line("OK" if report.ok else f"{plural(len(report.findings), 'problem')} found", style=None)
    return 0 if report.ok else 1


def _worktree(ctx: CommandContext, ref: str | None, report: object) -> None:
    from modelops_bundle.cli.common import open_session
    from modelops_bundle.core.verify import VerifyReport, verify_tree
    from modelops_bundle.core.versions import fetch_version

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
    from modelops_bundle.core.verify import VerifyReport, verify_remote
    from modelops_bundle.core.versions import fetch_version

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


def _signatures(ctx: CommandContext, ref: str | None, report: object) -> list[str]:
    """Check every signature of ``ref`` (else the last synced version) into ``report``; the lines that
    name each valid signer."""
    from modelops_bundle.cli.common import open_session
    from modelops_bundle.core.keys import list_keys, short_key_id
    from modelops_bundle.core.trust import check_version_signatures, trust_policy
    from modelops_bundle.core.verify import Finding, VerifyReport
    from modelops_bundle.core.versions import require_digest

    assert isinstance(report, VerifyReport)
    session = open_session(ctx)
    try:
        reference = session.reference(ref)
        if not ref:
            synced = session.ws.state().synced_digest
            if synced is None:
                hint = "give a REF"
                raise UsageError("no version to check: this project has never been pushed or pulled", hint=hint)
            reference = reference.with_digest(synced)
        policy = trust_policy(session.env_name, ctx.environ)
        backend = session.open_registry(reference)
        try:
            digest = require_digest(backend, reference)
            checked = check_version_signatures(backend, reference.repository, digest, policy)
        finally:
            backend.close()
    finally:
        session.save_caches()  # saves the memo: the next run reads the environment file without re-validating
    report.sources["signature"] = f"{reference.repository}@{digest}"
    report.checked["signature"] = len(checked.checks)
    report.signatures = checked.to_json()
    report.findings += [Finding("signature", kind, what, detail) for kind, what, detail in checked.problems()]
    names = {info.public.key_id: info.name for info in list_keys(ctx.environ) if info.public is not None}
    lines = []
    for check in checked.checks:
        if not check.valid or check.key_id is None:
            continue
        name = f", key {names[check.key_id]!r}" if check.key_id in names else ""
        if check.trusted_by is not None:
            verdict = f"trusted ({check.trusted_by.source})"
        elif policy is None:
            verdict = "no trust policy to check it against"
        else:
            verdict = "not a key the trust policy trusts"
        lines.append(
            f"signed by {short_key_id(check.key_id)} ({check.algorithm}{name}) at {check.signed_at}: valid, {verdict}"
        )
    return lines


COMMAND = Command(
    name="verify",
    help="check the working tree, the cache or a remote version against its digests (exit 1 if anything is wrong)",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle verify\n  mops bundle verify v1.0.0\n  mops bundle verify --cache\n"
    "  mops bundle verify --remote --json\n  mops bundle verify --signature v1.0.0",
)
