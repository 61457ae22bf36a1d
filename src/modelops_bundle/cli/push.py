"""``push [--tag T] [--dry-run] [--force] [--jobs N]``: publish the working tree as a version."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import (
    add_jobs_option,
    complete_with,
    emit_outcome,
    open_session,
    plural,
    report_notices,
)
from modelops_bundle.cli.console import human_bytes
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext
from modelops_bundle.core.errors import UsageError

LIST_LIMIT = 20


def configure(parser: argparse.ArgumentParser) -> None:
    tag_help = "tag to push to (default: default_tag)"
    complete_with(parser.add_argument("--tag", "--ref", dest="tag", metavar="TAG", help=tag_help), "tags")
    parser.add_argument("--dry-run", action="store_true", help="show the plan; upload nothing")
    parser.add_argument(
        "--force", action="store_true", help="move the tag even if it points at a version this project has not synced"
    )
    add_jobs_option(parser, what="parallel uploads", default=5)
    parser.add_argument(
        "--annotation",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="record KEY=VALUE in the manifest and the provenance document (repeatable)",
    )
    parser.add_argument("--sign", action="store_true", help="sign the pushed version (see 'mops bundle sign')")
    from modelops_bundle.cli.sign import add_key_option

    add_key_option(parser)


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.cli import sign as sign_command
    from modelops_bundle.core.provenance import parse_annotation
    from modelops_bundle.core.push import PushOptions, push

    annotations = dict(parse_annotation(text) for text in args.annotation)
    session = open_session(ctx)
    reference = session.reference(args.tag)
    if reference.digest or not reference.tag:
        raise UsageError(f"push needs a tag, not a digest: {args.tag}")
    reference = reference.with_tag(reference.tag)  # a hex tag is a tag here, never a short digest
    if args.key and not args.sign:
        raise UsageError("--key belongs to --sign")
    signing_key = sign_command.unlock(ctx, args.key) if args.sign else None  # a wrong passphrase stops it here
    backend = session.open_registry(reference)
    report_notices(ctx, session)
    blobs = session.open_blob_store(uploading=True, progress=ctx.out.progress("blob uploads"))
    signed = None
    try:
        result = push(
            session,
            backend,
            reference,
            PushOptions(force=args.force, dry_run=args.dry_run, jobs=args.jobs, annotations=annotations),
            progress=ctx.out.progress,
            blob_uploader=blobs,
        )
        if signing_key is not None and not result.dry_run and result.digest:
            signed = sign_command.sign(ctx, backend, reference.with_digest(result.digest), signing_key)
    finally:
        if blobs is not None:
            blobs.close()
        backend.close()
    if signed is not None and ctx.out.json_mode:
        for warning in result.warnings:
            ctx.out.warn(warning)
        ctx.out.emit_json({**result.to_json(), "signature": signed.attachment_json()})
        return 0
    if emit_outcome(ctx, result):
        return 0
    out = ctx.out
    if result.tracked:  # dependencies registered models gained since registration (same plan for --dry-run)
        verb = "Would track" if result.dry_run else "Tracked"
        out.line(f"{verb} {plural(len(result.tracked), 'file')} registered models now depend on:")
        for path in result.tracked:
            out.line(f"  {path}")
    if result.up_to_date:
        out.line(f"Everything up to date: {result.reference}", style="green")
        out.line(f"Digest: {result.digest}")
        if signed is not None:
            out.line(sign_command.describe(signed))
        return 0
    verb = "Would push" if result.dry_run else "Pushed"
    out.line(f"{verb} {result.reference}  ({result.registry})", style="bold")
    base = f"vs {_short(result.previous_digest)}" if result.previous_digest else "new tag"
    counts = result.changes.counts()
    out.line(
        f"  {plural(result.files, 'file')}, {human_bytes(result.total_bytes)} in {plural(result.layers, 'layer')}; "
        f"{counts['added']} added, {counts['modified']} modified, {counts['deleted']} deleted ({base})"
    )
    for label, paths in (
        ("added", result.changes.added),
        ("modified", result.changes.modified),
        ("deleted", result.changes.deleted),
    ):
        for path in paths[:LIST_LIMIT]:
            out.line(f"    {label}: {path}")
        if len(paths) > LIST_LIMIT:
            out.line(f"    ... and {len(paths) - LIST_LIMIT} more {label}")
    upload = "would upload" if result.dry_run else "uploaded"
    out.line(
        f"  {upload} {plural(result.uploaded_blobs, 'blob')} ({human_bytes(result.uploaded_bytes)}) to the registry, "
        f"{result.skipped_blobs} already present"
        + ("; reused the manifest of an identical version" if result.reused_manifest else "")
    )
    stored = result.blob_store
    if stored is not None:  # what went to blob storage, which the registry figures above do not count
        out.line(
            f"  {upload} {plural(stored['uploaded_files'], 'file')} ({human_bytes(stored['uploaded_bytes'])}) "
            f"to blob storage ({stored['store']}), {stored['already_present']} already present"
        )
    if result.forced:
        out.warn(f"moved {result.reference} away from {result.previous_digest} (--force)")
    out.line(f"Digest: {result.digest}")
    if result.provenance:
        out.line(f"Provenance: {result.provenance['digest']} ({result.provenance['method']})")
    if signed is not None:
        out.line(sign_command.describe(signed))
    return 0


def _short(digest: str | None) -> str:
    algorithm, _, hexdigest = (digest or "").partition(":")
    return f"{algorithm}:{hexdigest[:12]}"


COMMAND = Command(
    name="push",
    help="push the tracked files as a new version (uploads only what the registry lacks)",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle push\n  mops bundle push --tag v1.0.0\n  mops bundle push --dry-run --json\n"
    "  mops bundle push --tag v2 --annotation org.example.study=flu-2025\n  mops bundle push --sign --key ci",
)
