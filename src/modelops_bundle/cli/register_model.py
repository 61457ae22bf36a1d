"""``register-model PATH [--class C]... [--data PATH]... [--code PATH]... [--id ID]``: record models."""

from __future__ import annotations

import argparse
from typing import Any

from modelops_bundle.cli.common import open_workspace, plural, report_dropped, report_newly_tracked
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="the Python file that defines the model")
    parser.add_argument(
        "--class",
        dest="classes",
        action="append",
        default=[],
        metavar="NAME",
        help="model class to register (repeatable; default: every model class discovered in PATH)",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="PATH",
        help="data file or folder the model reads (repeatable; a folder means its files)",
    )
    parser.add_argument(
        "--code",
        action="append",
        default=[],
        metavar="PATH",
        help="extra code file or folder not reached through imports (repeatable)",
    )
    parser.add_argument("--id", dest="model_id", metavar="ID", help="model id (default: <file stem>_<class>)")


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.model_registry import ModelRecord, register_models
    from modelops_bundle.core.paths import user_path_to_relpath

    ws = open_workspace(ctx)
    root = ws.project.root
    result = register_models(
        ws,
        ctx.plugins,
        rel=user_path_to_relpath(root, ctx.cwd, args.path),
        classes=args.classes,
        data=[user_path_to_relpath(root, ctx.cwd, spec) for spec in args.data],
        code=[user_path_to_relpath(root, ctx.cwd, spec) for spec in args.code],
        model_id=args.model_id,
    )
    ws.save_caches()
    models: list[tuple[str, ModelRecord, bool]] = [
        (key, record, updated) for key, record, updated in result.registered if isinstance(record, ModelRecord)
    ]
    for warning in result.warnings:
        ctx.out.warn(warning)
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {
                "models": [_model_json(key, record, updated) for key, record, updated in models],
                "newly_tracked": result.newly_tracked,
                "dropped": [{"id": key, "reason": why} for key, why in result.dropped],
                "warnings": result.warnings,
            }
        )
        return 0
    report_dropped(ctx, "model", result.dropped, [])
    for key, record, updated in models:
        verb = "Updated" if updated else "Registered"
        ctx.out.line(f"{verb} model {key} ({record.entrypoint}, {record.framework})", style="green")
        ctx.out.line(f"  code: {plural(len(record.code), 'file')}, data: {plural(len(record.data), 'file')}")
        if record.outputs:
            ctx.out.line(f"  outputs: {', '.join(record.outputs)}")
        if record.components:
            ctx.out.line(f"  components: {', '.join(record.components)}")
    report_newly_tracked(ctx, result.newly_tracked)
    return 0


def _model_json(key: str, record: Any, updated: bool) -> dict[str, Any]:
    return {
        "id": key,
        "updated": updated,
        "entrypoint": record.entrypoint,
        "path": record.path,
        "class_name": record.class_name,
        "framework": record.framework,
        "outputs": record.outputs,
        "parameters": record.parameters,
        "components": record.components,
        "code": record.code,
        "data": record.data,
        "model_digest": record.model_digest,
    }


COMMAND = Command(
    name="register-model",
    help="register simulation models with their code and data dependencies",
    run=run,
    configure=configure,
    epilog="examples:\n"
    "  mops bundle register-model models/seir.py --data data/demographics.csv --data data/contact_patterns.csv\n"
    "  mops bundle register-model models/sir.py --class StarsimSIR --data data/\n"
    "  mops bundle register-model models/network.py --class NetworkSEIR --id network --code lib/kernels.c",
)
