"""``manifest [REF]``: one version's files with size, digest and storage tier, and its annotations."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import complete_with, open_session, plural
from modelops_bundle.cli.console import human_bytes
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def configure(parser: argparse.ArgumentParser) -> None:
    ref_help = "tag, digest or unique digest prefix (default: default_tag)"
    complete_with(parser.add_argument("ref", nargs="?", metavar="REF", help=ref_help), "tags")


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.versions import fetch_version

    session = open_session(ctx)
    reference = session.reference(args.ref)
    backend = session.open_registry(reference)
    try:
        version = fetch_version(backend, reference)
    finally:
        backend.close()
    manifest, index = version.manifest, version.index
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {
                "reference": str(version.pinned),
                "digest": version.digest,
                "artifactType": manifest.artifact_type,
                "annotations": dict(manifest.annotations),
                "config": manifest.config.to_json(),
                "layers": [layer.to_json() for layer in manifest.layers],
                "files": [entry.to_json() for entry in index.files],
            }
        )
        return 0
    out = ctx.out
    out.line(f"{version.pinned}", style="bold")
    for key, value in sorted(manifest.annotations.items()):
        out.line(f"  {key}: {value}")
    out.line(
        f"  {plural(len(index.files), 'file')}, {human_bytes(index.total_size)} in "
        f"{plural(len(manifest.layers), 'layer')}"
    )
    rows = [
        [entry.path, human_bytes(entry.size), entry.storage, f"{entry.mode:o}", entry.digest] for entry in index.files
    ]
    out.line("")
    out.table(None, ["Path", "Size", "Storage", "Mode", "Digest"], rows)
    return 0


COMMAND = Command(
    name="manifest",
    help="list one version's files (size, digest, storage tier) and annotations",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle manifest\n  mops bundle manifest v1.0.0 --json\n"
    "  mops bundle manifest sha256:abc...",
)
