"""``unregister-model ID... [--all-missing]``: remove registered models (their files stay tracked)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Literal

from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def configure_for(kind: str) -> Callable[[argparse.ArgumentParser], None]:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "ids", nargs="*", metavar="ID", help=f"{kind} id to remove (as 'mops bundle list' shows it)"
        )
        parser.add_argument(
            "--all-missing",
            action="store_true",
            help=f"also remove every {kind} whose file, or whose class or function in it, no longer exists",
        )

    return configure


def run_for(kind: Literal["model", "target"]) -> Callable[[CommandContext, argparse.Namespace], int]:
    def run(ctx: CommandContext, args: argparse.Namespace) -> int:
        from modelops_bundle.cli.common import open_workspace
        from modelops_bundle.core.errors import UsageError
        from modelops_bundle.core.model_registry import unregister

        if not args.ids and not args.all_missing:
            raise UsageError(f"name the {kind}s to unregister, or pass --all-missing")
        ws = open_workspace(ctx)
        result = unregister(ws, kind, args.ids, all_missing=args.all_missing)
        ws.save_caches()
        for warning in result.warnings:
            ctx.out.warn(warning)
        if ctx.out.json_mode:
            ctx.out.emit_json(
                {
                    "removed": [{"id": key, "reason": why} for key, why in result.removed],
                    "target_sets": result.target_set_changes,
                    "warnings": result.warnings,
                }
            )
            return 0
        if not result.removed:
            ctx.out.line(f"No {kind}s to unregister: every registered {kind}'s file and definition exist.")
            return 0
        for key, why in result.removed:
            ctx.out.line(f"Unregistered {kind} {key}" + ("" if why == "named" else f" ({why})"))
        for change in result.target_set_changes:
            ctx.out.line(f"  {change}")
        return 0

    return run


COMMAND = Command(
    name="unregister-model",
    help="remove registered models from the model registry (their files stay tracked)",
    run=run_for("model"),
    configure=configure_for("model"),
    epilog="examples:\n  mops bundle unregister-model seir_oldseir\n  mops bundle unregister-model --all-missing",
)
