"""``plugins``: every plugin with its distribution, version, hooks and load status."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import emit_names
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    infos = sorted(ctx.plugins.infos.values(), key=lambda info: (not info.builtin, info.name))
    if ctx.out.json_mode:
        ctx.out.emit_json(
            [
                {
                    "name": info.name,
                    "module": info.module,
                    "distribution": info.distribution,
                    "version": info.version,
                    "builtin": info.builtin,
                    "status": info.status,
                    "error": info.error,
                    "hooks": info.hooks,
                }
                for info in infos
            ]
        )
        return 1 if any(info.status == "error" for info in infos) else 0
    if emit_names(ctx, [info.name for info in infos]):
        return 1 if any(info.status == "error" for info in infos) else 0
    rows = [
        [
            info.name,
            f"{info.distribution} {info.version}".strip(),
            info.status if info.status != "error" else f"error: {info.error}",
            ", ".join(info.hooks) or "-",
        ]
        for info in infos
    ]
    ctx.out.table("Plugins", ["Name", "Distribution", "Status", "Hooks"], rows)
    return 1 if any(info.status == "error" for info in infos) else 0


COMMAND = Command(
    name="plugins",
    help="list plugins: distribution, version, hooks, load errors",
    run=run,
    epilog="examples:\n  mops bundle plugins\n  mops bundle plugins -q          # names only, one per line\n"
    "  MOPS_DISABLE_PLUGINS=myplugin mops bundle plugins --json",
)
