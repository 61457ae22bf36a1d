"""``config [KEY [VALUE]] [--unset KEY] [--list]``: see and change the project's settings (``config.yaml``)."""

from __future__ import annotations

import argparse
from typing import Any

from modelops_bundle.cli.common import open_session, report_notices
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext
from modelops_bundle.core.errors import ExitCode, UsageError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", nargs="?", metavar="KEY", help="a setting, e.g. registry or storage.threshold_bytes")
    parser.add_argument("value", nargs="?", metavar="VALUE", help="the new value (lists: comma-separated)")
    parser.add_argument("--unset", metavar="KEY", help="remove a setting from config.yaml (back to its default)")
    parser.add_argument("--list", action="store_true", help="every setting with its value (the default)")


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core import config_keys

    session = open_session(ctx)
    if args.unset and (args.key or args.list):
        raise UsageError("--unset takes one KEY and no other arguments")
    if args.list and args.key:
        raise UsageError("--list takes no KEY")
    config = session.config
    report_notices(ctx, session)
    if args.unset or args.value is not None:
        key = config_keys.check_key(args.unset or args.key)
        value = None if args.unset else config_keys.parse_value(key, args.value)
        return _change(ctx, session, key, value)
    if args.key:
        key = config_keys.check_key(args.key)
        value = config_keys.get_value(config, key)
        if ctx.out.json_mode:
            ctx.out.emit_json({"key": key, "value": value})
            return int(ExitCode.OK if value is not None else ExitCode.FAILED)
        if value is None:
            ctx.out.warn(f"{key} is not set{_unset_meaning(session, key)}")
            return int(ExitCode.FAILED)
        ctx.out.line(_text(value))
        return 0
    items = config_keys.entries(config)
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {
                "file": str(session.ws.project.config_path),
                "settings": {item.key: item.value for item in items},
                "set": [item.key for item in items if item.is_set],
            }
        )
        return 0
    if ctx.out.quiet:  # KEY=VALUE lines for scripts (`line` is silent under -q)
        for item in items:
            ctx.out.emit_text(f"{item.key}={_text(item.value)}")
        return 0
    rows = [[item.key, _text(item.value), "" if item.is_set else "(default)"] for item in items]
    ctx.out.table(f"Settings  ({session.ws.project.config_path})", ["Key", "Value", ""], rows)
    return 0


def _change(ctx: CommandContext, session: Any, key: str, value: Any) -> int:
    from modelops_bundle.core import config_keys
    from modelops_bundle.core.settings_files import save_config

    ws = session.ws
    with ws.lock():
        before = session.config
        after = config_keys.with_value(before, key, value)  # validated whole before anything is written
        if after != before:
            save_config(ws.project.config_path, after, ws.memo)
        ws.save_caches()
    old, new = config_keys.get_value(before, key), config_keys.get_value(after, key)
    if ctx.out.json_mode:
        ctx.out.emit_json({"key": key, "previous": old, "value": new})
        return 0
    ctx.out.line(
        f"{key} = {_text(new) if new is not None else '(unset)'}  (was: {_text(old) if old is not None else 'unset'})"
    )
    if key in ("registry", "repository"):
        session.use_config(after)
        ctx.out.line(f"Versions now go to {session.describe(session.reference())}  ({session.target.display()})")
    return 0


def _unset_meaning(session: Any, key: str) -> str:
    if key == "registry":
        try:
            return f": versions go to the environment's registry, {session.target.display()}"
        except Exception:
            return ": versions go to the environment's registry"
    if key == "repository":
        return f": the repository is named after the folder, {session.repository}"
    return ""


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


COMMAND = Command(
    name="config",
    help="see or change the project's settings (registry, repository, default tag, storage policy)",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle config --list\n  mops bundle config registry ghcr.io/lab\n"
    "  mops bundle config storage.threshold_bytes 100MiB\n  mops bundle config --unset registry",
)
