"""``env [list | show [NAME] | switch NAME]``: the environments a project can push to."""

from __future__ import annotations

import argparse

from modelops_bundle.cli.common import complete_with, emit_names, open_workspace
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext
from modelops_bundle.core.errors import UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "show", "switch"), default="list")
    name_help = "environment name (show: default the pinned one; switch: required)"
    complete_with(parser.add_argument("name", nargs="?", help=name_help), "environments")


def _pinned(ctx: CommandContext) -> str | None:
    from modelops_bundle.core.errors import NotInitializedError

    try:
        return open_workspace(ctx).env_name()
    except NotInitializedError:
        return None


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core import environment as envs

    if args.action == "list":
        pinned = _pinned(ctx)
        names = envs.list_environments(ctx.environ)
        if ctx.out.json_mode:
            ctx.out.emit_json(
                {
                    "pinned": pinned,
                    "directory": str(envs.environments_dir(ctx.environ)),
                    "environments": [
                        {"name": name, "pinned": name == pinned, "file": _file_or_none(name, ctx)} for name in names
                    ],
                }
            )
            return 0
        if emit_names(ctx, names):
            return 0
        for name in names:
            marker = "*" if name == pinned else " "
            source = _file_or_none(name, ctx) or "(embedded default)"
            ctx.out.line(f"{marker} {name:<16} {source}")
        return 0

    if args.action == "show":
        shown = args.name or _pinned(ctx)
        if not shown:
            raise UsageError("no environment named and no project here", hint="mops bundle env show NAME")
        data = envs.masked(envs.load_environment(envs.check_env_name(shown), ctx.environ))
        if ctx.out.json_mode:
            ctx.out.emit_json({"name": shown, "file": _file_or_none(shown, ctx), "settings": data})
            return 0
        from modelops_bundle.core.validation import dump_yaml

        ctx.out.line(f"# {shown}: {_file_or_none(shown, ctx) or 'embedded default'}")
        ctx.out.line(dump_yaml(data).rstrip())
        return 0

    if not args.name:
        raise UsageError("env switch needs an environment name", hint="mops bundle env list")
    name = envs.check_env_name(args.name)
    ws = open_workspace(ctx)
    # Must exist and be valid before it is pinned: validated with the full model, and remembered in the
    # project's stat cache as validated, so the next push or status starts without pydantic.
    from modelops_bundle.core.envfiles import registry_environment

    registry_environment(name, ctx.environ, ws.cache)
    from modelops_bundle.core.fsutil import atomic_write_text

    with ws.lock():
        previous = ws.env_name()
        atomic_write_text(ws.project.env_path, name + "\n")
        ws.close()
    if ctx.out.json_mode:
        ctx.out.emit_json({"previous": previous, "pinned": name})
    else:
        ctx.out.line(f"Switched environment: {previous} -> {name}")
    return 0


def _file_or_none(name: str, ctx: CommandContext) -> str | None:
    from modelops_bundle.core.envfiles import environment_file

    path = environment_file(name, ctx.environ)
    return str(path) if path.is_file() else None


COMMAND = Command(
    name="env",
    help="list, show (secrets masked) or switch the project's environment",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle env list\n  mops bundle env list -q         # names only, one per line\n"
    "  mops bundle env show dev\n  mops bundle env switch dev",
)
