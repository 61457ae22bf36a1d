"""``provenance [REF]``: what made a version -- tool, Python, platform, git, lock file, annotations, plugins."""

from __future__ import annotations

import argparse
from typing import Any

from modelops_bundle.cli.common import complete_with, open_version
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def configure(parser: argparse.ArgumentParser) -> None:
    ref = parser.add_argument(
        "ref", nargs="?", metavar="REF", help="tag, (short) digest or full reference (default: the project's tag)"
    )
    complete_with(ref, "tags")
    env_help = "environment outside a project (default: $MOPS_ENV or local)"
    complete_with(parser.add_argument("--env", metavar="NAME", help=env_help), "environments")


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.provenance import fetch
    from modelops_bundle.core.versions import fetch_version

    backend, reference = open_version(ctx, args.ref, args.env)
    try:
        version = fetch_version(backend, reference)
        found = fetch(backend, reference.repository, version.digest)
    finally:
        backend.close()
    payload: dict[str, Any] = {
        "reference": str(version.pinned),
        "digest": version.digest,
        "annotations": dict(version.manifest.annotations),
        "referrer": found[1] if found else None,
        "provenance": found[0] if found else None,
    }
    if ctx.out.json_mode:
        ctx.out.emit_json(payload)
        return 0
    out = ctx.out
    out.line(f"{version.pinned}", style="bold")
    document = found[0] if found else None
    if document is None:
        out.line("  no provenance document (pushed by another tool or an older modelops-bundle)")
    else:
        git = document.get("git") or {}
        out.line(f"  created:   {document.get('created')}")
        out.line(f"  tool:      {document['tool']['name']} {document['tool']['version']}")
        out.line(f"  python:    {document['python']['implementation']} {document['python']['version']}")
        out.line(f"  platform:  {document['platform']['platform']}")
        if git:
            dirty = " (dirty)" if git.get("dirty") else ""
            out.line(f"  git:       {git.get('source') or '(no remote)'} @ {git.get('revision')}{dirty}")
        for lock in document.get("lockfiles") or []:
            out.line(f"  lock file: {lock['path']} {lock['digest']}")
        for key, value in sorted((document.get("annotations") or {}).items()):
            out.line(f"  {key} = {value}")
        plugins = ", ".join(f"{p['name']} {p['version']}".strip() for p in document.get("plugins") or [])
        out.line(f"  plugins:   {plugins}")
        out.line(f"  document:  {payload['referrer']}")
    return 0


COMMAND = Command(
    name="provenance",
    help="show what made a version: tool, Python, platform, git, lock file, annotations, plugins",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle provenance\n  mops bundle provenance v1.0.0 --json\n"
    "  mops bundle provenance 127.0.0.1:5000/flu@sha256:...",
)
