"""``register-target PATH [--target NAME]...``: record calibration targets."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import open_workspace, plural, report_dropped, report_newly_tracked
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="the Python file that defines the targets")
    parser.add_argument(
        "--target",
        dest="targets",
        action="append",
        default=[],
        metavar="NAME",
        help="target (name or function) to register (repeatable; default: every target in PATH)",
    )


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.model_registry import TargetRecord, register_targets
    from modelops_bundle.core.paths import user_path_to_relpath

    ws = open_workspace(ctx)
    rel = user_path_to_relpath(ws.project.root, ctx.cwd, args.path)
    result = register_targets(ws, ctx.plugins, rel=rel, names=args.targets)
    ws.save_caches()
    targets = [(key, record, updated) for key, record, updated in result.registered if isinstance(record, TargetRecord)]
    for warning in result.warnings:
        ctx.out.warn(warning)
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {
                "targets": [
                    {
                        "id": key,
                        "updated": updated,
                        "entrypoint": record.entrypoint,
                        "path": record.path,
                        "model_output": record.model_output,
                        "data": record.data,
                        "code": record.code,
                        "target_digest": record.target_digest,
                    }
                    for key, record, updated in targets
                ],
                "newly_tracked": result.newly_tracked,
                "dropped": [{"id": key, "reason": why} for key, why in result.dropped],
                "target_sets": result.target_set_changes,
                "warnings": result.warnings,
            }
        )
        return 0
    report_dropped(ctx, "target", result.dropped, result.target_set_changes)
    for key, record, updated in targets:
        verb = "Updated" if updated else "Registered"
        ctx.out.line(f"{verb} target {key} ({record.entrypoint}), model output '{record.model_output}'", style="green")
        ctx.out.line(f"  code: {plural(len(record.code), 'file')}, data: {', '.join(record.data) or 'none'}")
    report_newly_tracked(ctx, result.newly_tracked)
    return 0


COMMAND = Command(
    name="register-target",
    help="register calibration targets (@calibration_target functions) with their data",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle register-target targets/incidence.py\n"
    "  mops bundle register-target targets/all.py --target incidence --target prevalence",
)
