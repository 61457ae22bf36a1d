"""``tags``: the repository's versions with digest, tags, creation time, size and file count."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import open_session
from modelops_bundle.cli.console import human_bytes
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.remote import list_versions

    session = open_session(ctx)
    reference = session.reference()
    backend = session.open_registry(reference)
    try:
        versions = list_versions(backend, reference)
        registry = backend.describe()
    finally:
        backend.close()
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {"repository": reference.repository, "registry": registry, "versions": [v.to_json() for v in versions]}
        )
        return 0
    if not versions:
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
    epilog="examples:\n  mops bundle tags\n  mops bundle tags --json",
)
