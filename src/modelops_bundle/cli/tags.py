"""``tags [REF]``: the repository's versions with digest, tags, creation time, size and file count."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import complete_with, emit_names, open_session
from modelops_bundle.cli.console import human_bytes
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def configure(parser: argparse.ArgumentParser) -> None:
    complete_with(
        parser.add_argument(
            "ref", nargs="?", metavar="REF", help="only the version this tag or (short) digest names, with all its tags"
        ),
        "tags",
    )


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.versions import list_versions

    session = open_session(ctx)
    reference = session.reference()
    backend = session.open_registry(reference)
    try:
        versions = list_versions(backend, reference)
        if args.ref:
            from modelops_bundle.core.versions import require_digest

            wanted = require_digest(backend, session.reference(args.ref))
            versions = [version for version in versions if version.digest == wanted]
        registry = backend.describe()
    finally:
        backend.close()
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {"repository": reference.repository, "registry": registry, "versions": [v.to_json() for v in versions]}
        )
        return 0
    if emit_names(ctx, [tag for version in versions for tag in version.tags]):
        return 0
    if not versions:
        if args.ref:
            ctx.out.line(f"{args.ref} names a version of {reference.repository} that no tag points at ({registry})")
        else:
            ctx.out.line(f"No versions of {reference.repository} yet ({registry}); 'mops bundle push' creates one")
        return 0
    rows = [
        [
            ", ".join(v.tags),
            v.digest.partition(":")[0] + ":" + v.digest.partition(":")[2][:12],
            v.created or "-",
            str(v.files) if v.files is not None else "-",
            human_bytes(v.size) if v.size is not None else (f"({v.error})" if v.error else "-"),
        ]
        for v in versions
    ]
    ctx.out.table(f"{reference.repository}  ({registry})", ["Tags", "Digest", "Created", "Files", "Size"], rows)
    return 0


COMMAND = Command(
    name="tags",
    help="list versions: tags, digest, creation time, file count and size",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle tags\n  mops bundle tags --json\n"
    "  mops bundle tags sha256:96040c0        # the tags of one version (any unique digest prefix)\n"
    "  mops bundle tags -q                    # tag names only, one per line",
)
