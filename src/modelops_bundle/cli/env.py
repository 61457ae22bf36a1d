"""``env [list | show [NAME] | switch NAME]``: the environments a project can push to."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from modelops_bundle.cli.common import complete_with, emit_names, open_session
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext
from modelops_bundle.core.errors import NotInitializedError, UsageError

if TYPE_CHECKING:
    from modelops_bundle.core.session import Session


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "show", "switch"), default="list")
    name_help = "environment name (show: default the pinned one; switch: required)"
    complete_with(parser.add_argument("name", nargs="?", help=name_help), "environments")


def _project(ctx: CommandContext) -> Session | None:
    try:
        return open_session(ctx)
    except NotInitializedError:
        return None


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(ctx)
    if args.action == "show":
        return _show(ctx, args.name)
    return _switch(ctx, args.name)


def _list(ctx: CommandContext) -> int:
    from modelops_bundle.core.envfiles import environments_dir, list_environments

    project = _project(ctx)
    pinned = project.env_name if project is not None else None
    names = list_environments(ctx.environ)
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {
                "pinned": pinned,
                "directory": str(environments_dir(ctx.environ)),
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


def _show(ctx: CommandContext, name: str | None) -> int:
    from modelops_bundle.core.envfiles import check_env_name
    from modelops_bundle.core.secrecy import masked
    from modelops_bundle.core.settings import to_plain
    from modelops_bundle.core.settings_files import load_environment

    project = _project(ctx)
    shown = name or (project.env_name if project is not None else None)
    if not shown:
        raise UsageError("no environment named and no project here", hint="mops bundle env show NAME")
    environment = load_environment(check_env_name(shown), ctx.environ)
    settings = masked(to_plain(environment, defaults=True))
    resolved = _resolved(ctx, project, shown) if project is not None else None
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {"name": shown, "file": _file_or_none(shown, ctx), "settings": settings, "resolved": resolved}
        )
        return 0
    from modelops_bundle.core.validation import dump_yaml

    ctx.out.line(f"# {shown}: {_file_or_none(shown, ctx) or 'embedded default'}")
    ctx.out.line(dump_yaml(settings).rstrip())
    if resolved is not None:
        ctx.out.line("")
        ctx.out.line(f"A push from this project ({resolved['project']}) goes to:")
        ctx.out.line(f"  version:    {resolved['reference']}")
        ctx.out.line(f"  registry:   {resolved['registry']}  (from {resolved['registry_source']})")
        ctx.out.line(f"  blob store: {resolved['blob_store']}  (from {resolved['blob_store_source']})")
    return 0


def _resolved(ctx: CommandContext, project: Session, env_name: str) -> dict[str, Any]:
    """Where a push from ``project`` would go with environment ``env_name``, and which setting decided it."""
    from modelops_bundle.core.session import Session

    session = (
        project if env_name == project.env_name else Session(project.host, project.ws, ctx.environ, env_name=env_name)
    )
    target = session.target
    store, store_source = session.blob_store_summary()
    return {
        "project": str(session.ws.project.root),
        "reference": session.describe(session.reference()),
        "registry": target.display(),
        "registry_source": target.source,
        "blob_store": store,
        "blob_store_source": store_source,
    }


def _switch(ctx: CommandContext, name: str | None) -> int:
    from modelops_bundle.core.envfiles import check_env_name
    from modelops_bundle.core.fsutil import atomic_write_text
    from modelops_bundle.core.session import Session
    from modelops_bundle.core.settings_files import load_environment

    if not name:
        raise UsageError("env switch needs an environment name", hint="mops bundle env list")
    name = check_env_name(name)
    session = open_session(ctx)
    ws = session.ws
    load_environment(name, ctx.environ, ws.memo)  # must exist and be valid before it is pinned
    with ws.lock():
        previous = ws.env_name()
        config = session.config  # migrates an earlier release's registry_ref against the old environment
        atomic_write_text(ws.project.env_path, name + "\n")
        ws.save_caches()
    switched = Session(ctx.plugins, ws, ctx.environ)
    switched.use_config(config)
    target = switched.target
    reference = switched.describe(switched.reference())
    for notice in session.notices:
        ctx.out.warn(notice)
    if config.registry:
        ctx.out.warn(
            f"this project pins its registry to {config.registry}; 'env switch' does not change it "
            "('mops bundle config --unset registry' makes it follow the environment)"
        )
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {
                "previous": previous,
                "pinned": name,
                "reference": reference,
                "registry": target.display(),
                "source": target.source,
            }
        )
        return 0
    ctx.out.line(f"Switched environment: {previous} -> {name}")
    ctx.out.line(f"  next push goes to {reference}  ({target.display()}, from {target.source})")
    return 0


def _file_or_none(name: str, ctx: CommandContext) -> str | None:
    from modelops_bundle.core.envfiles import environment_file

    path = environment_file(name, ctx.environ)
    return str(path) if path.is_file() else None


COMMAND = Command(
    name="env",
    help="list, show (secrets masked, and where a push goes) or switch the project's environment",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle env list\n  mops bundle env list -q         # names only, one per line\n"
    "  mops bundle env show dev\n  mops bundle env switch dev",
)
