"""``target-set list | set NAME --target T... [--weight T=W]... | delete NAME``: named groups of targets."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import complete_with, open_workspace
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext
from modelops_bundle.core.errors import UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "set", "delete"), default="list")
    parser.add_argument("name", nargs="?", help="target set name (set, delete)")
    target = parser.add_argument(
        "--target", dest="targets", action="append", default=[], metavar="T", help="target id (repeatable)"
    )
    complete_with(target, "targets")
    parser.add_argument(
        "--weight", dest="weights", action="append", default=[], metavar="T=W", help="weight of a target (default 1)"
    )


def _weights(specs: list[str]) -> dict[str, float]:
    weights: dict[str, float] = {}
    for spec in specs:
        target, sep, value = spec.partition("=")
        try:
            if not sep or not target:
                raise ValueError
            weights[target] = float(value)
        except ValueError:
            raise UsageError(f"--weight {spec!r}: expected TARGET=NUMBER, e.g. incidence=0.5") from None
    return weights


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.model_registry import delete_target_set, load_registry, set_target_set

    ws = open_workspace(ctx)
    if args.action != "list" and not args.name:
        raise UsageError(f"target-set {args.action} needs a NAME")
    if args.action != "set" and (args.targets or args.weights):
        raise UsageError("--target and --weight belong to 'target-set set'")
    if args.action == "set":
        record = set_target_set(ws, args.name, args.targets, _weights(args.weights))
        ws.save_caches()
        if ctx.out.json_mode:
            ctx.out.emit_json({"name": args.name, "targets": record.targets, "weights": record.weights})
        else:
            ctx.out.line(
                f"Target set {args.name}: " + ", ".join(f"{t} ({record.weights[t]:g})" for t in record.targets)
            )
        return 0
    if args.action == "delete":
        delete_target_set(ws, args.name)
        ws.save_caches()
        if ctx.out.json_mode:
            ctx.out.emit_json({"deleted": args.name})
        else:
            ctx.out.line(f"Deleted target set {args.name}")
        return 0
    registry = load_registry(ws)
    ws.save_caches()
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {
                "target_sets": [
                    {"name": name, "targets": s.targets, "weights": s.weights}
                    for name, s in registry.target_sets.items()
                ]
            }
        )
        return 0
    if not registry.target_sets:
        ctx.out.line("No target sets ('mops bundle target-set set NAME --target T' to make one).")
        return 0
    rows = [
        [name, ", ".join(f"{t} ({s.weights.get(t, 1.0):g})" for t in s.targets)]
        for name, s in registry.target_sets.items()
    ]
    ctx.out.table("Target sets", ["Name", "Targets (weight)"], rows)
    return 0


COMMAND = Command(
    name="target-set",
    help="list, set or delete named sets of calibration targets",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle target-set list\n"
    "  mops bundle target-set set main --target incidence --target prevalence --weight prevalence=0.5\n"
    "  mops bundle target-set delete main",
)
