"""``list``: the registered models, calibration targets and target sets."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import emit_names, open_workspace
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.model_registry import load_registry

    ws = open_workspace(ctx)
    registry = load_registry(ws)
    ws.save_caches()
    if ctx.out.json_mode:
        data = registry.to_json()
        ctx.out.emit_json(
            {
                "models": [{"id": key, **value} for key, value in data["models"].items()],
                "targets": [{"id": key, **value} for key, value in data["targets"].items()],
                "target_sets": [{"name": key, **value} for key, value in data["target_sets"].items()],
            }
        )
        return 0
    if emit_names(ctx, [*registry.models, *registry.targets]):
        return 0
    if registry.is_empty:
        ctx.out.line("No models or targets registered ('mops bundle register-model PATH' to add one).")
        return 0
    if registry.models:
        rows = [
            [
                key,
                model.entrypoint,
                model.framework or "-",
                ", ".join(model.outputs) or "-",
                f"{len(model.dependencies())} files",
            ]
            for key, model in registry.models.items()
        ]
        ctx.out.table(f"Models ({len(rows)})", ["Id", "Entrypoint", "Framework", "Outputs", "Dependencies"], rows)
    if registry.targets:
        if registry.models:
            ctx.out.line("")
        rows = [
            [key, target.entrypoint, target.model_output, ", ".join(target.data) or "-"]
            for key, target in registry.targets.items()
        ]
        ctx.out.table(f"Targets ({len(rows)})", ["Id", "Entrypoint", "Model output", "Data"], rows)
    if registry.target_sets:
        ctx.out.line("")
        rows = [[name, ", ".join(s.targets)] for name, s in registry.target_sets.items()]
        ctx.out.table(f"Target sets ({len(rows)})", ["Name", "Targets"], rows)
    return 0


COMMAND = Command(
    name="list",
    help="list registered models, calibration targets and target sets",
    run=run,
    epilog="examples:\n  mops bundle list\n  mops bundle list --json\n"
    "  mops bundle list -q             # model and target ids only, one per line",
)
