"""Turns the commands contributed through ``mops_add_commands`` into an argparse parser."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from modelops_bundle.core.commands import Command

if TYPE_CHECKING:
    from modelops_bundle.core.plugins import PluginHost

#: Built-in commands appear in --help in this order; others follow alphabetically.
PREFERRED_ORDER = (
    "init",
    "add",
    "remove",
    "status",
    "diff",
    "push",
    "pull",
    "register-model",
    "register-target",
    "target-set",
    "list",
    "manifest",
    "tags",
    "ensure",
    "env",
    "plugins",
    "plugin",
    "completion",
)

EPILOG = """examples:
  {prog} init . && {prog} add . && {prog} status
  {prog} push --tag v1.0.0
  {prog} COMMAND --help        options and examples of one command
  {prog} completion bash       shell completion (bash, zsh, fish)"""


class CommandApp:
    """Collects commands (first registration of a name wins), then builds the parser."""

    def __init__(self, prog: str, description: str) -> None:
        self.prog = prog
        self.description = description
        self.commands: dict[str, Command] = {}

    def add(self, command: Command) -> bool:
        if command.name in self.commands:
            return False
        self.commands[command.name] = command
        return True

    def ordered(self) -> list[Command]:
        rank = {name: index for index, name in enumerate(PREFERRED_ORDER)}
        return sorted(self.commands.values(), key=lambda c: (rank.get(c.name, len(rank)), c.name))

    def build(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(
            prog=self.prog,
            description=self.description,
            epilog=EPILOG.format(prog=self.prog),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_global_options(parser, suppress_defaults=False)
        subparsers = parser.add_subparsers(dest="command_name", metavar="COMMAND", title="commands")
        for command in self.ordered():
            sub = subparsers.add_parser(
                command.name,
                help=command.help,
                description=command.description or command.help,
                epilog=command.epilog,
                aliases=list(command.aliases),
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
            add_global_options(sub, suppress_defaults=True)
            if command.configure is not None:
                command.configure(sub)
            sub.set_defaults(_command=command)
        return parser


def build_app(host: PluginHost, prog: str, description: str) -> tuple[CommandApp, list[tuple[str, BaseException]]]:
    """Every plugin's commands (built-ins included, through ``mops_add_commands``) in one app, and the
    plugins whose hook raised -- reported, never fatal, so one broken plugin cannot brick the CLI."""
    from modelops_bundle.core.plugins import call_each

    app = CommandApp(prog, description)
    failures = [
        (name, failure)
        for name, _, failure in call_each(host, "mops_add_commands", registry=app)
        if failure is not None
    ]
    return app, failures


def add_global_options(parser: argparse.ArgumentParser, *, suppress_defaults: bool) -> None:
    """Options every command accepts, before or after its name."""
    default = argparse.SUPPRESS if suppress_defaults else None
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--json",
        action="store_true",
        default=default if suppress_defaults else False,
        help="print one JSON document (stable shape, see docs/cli.md)",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default if suppress_defaults else False,
        help="print only errors and warnings",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default if suppress_defaults else 0,
        help="more detail; shows tracebacks of errors",
    )
    group.add_argument(
        "-C",
        dest="directory",
        metavar="DIR",
        default=default,
        help="run as if started in DIR",
    )
