"""Turns the commands contributed through ``mops_add_commands`` into an argparse parser."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from modelops_bundle.core.commands import Command, LazyCommand

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
    "config",
    "plugins",
    "plugin",
    "completion",
)

EPILOG = """examples:
  {prog} init . && {prog} add . && {prog} status
  {prog} push --tag v1.0.0
  {prog} COMMAND --help        options and examples of one command
  {prog} completion bash       shell completion (bash, zsh, fish)"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter (descriptions and epilogs kept as written), sized like the terminal without
    importing :mod:`shutil` for it: argparse makes one per option it adds, and a command that prints no
    help should not pay for that import."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24) -> None:
        super().__init__(prog, indent_increment, max_help_position, width=terminal_width() - 2)


def terminal_width() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS``, else the terminal of stdout, else 80."""
    import os
    import sys

    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class UsageProblem(Exception):
    """A command line the parser refused: ``message`` (with a suggestion when a name looks mistyped) and
    the ``parser`` whose usage to show -- the sub-command's, not the top-level one."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message

    @property
    def hint(self) -> str:
        if self.message.startswith("unknown command"):
            return f"'{self.parser.prog} --help' lists the commands"
        return f"'{self.parser.prog} --help' shows every option, with examples"


class Parser(argparse.ArgumentParser):
    """argparse's parser that raises :class:`UsageProblem` instead of printing and exiting, so that the
    error boundary (``cli/main.py``) reports it like any other error (``--json`` included), and that
    names a close match for a mistyped command or choice."""

    def error(self, message: str) -> NoReturn:
        raise UsageProblem(self, message)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        from modelops_bundle.core.suggest import did_you_mean

        names = [str(choice) for choice in choices]
        if isinstance(action, argparse._SubParsersAction):
            message = f"unknown command {value!r}{did_you_mean(str(value), names)}"
            raise argparse.ArgumentError(None, message)
        message = f"invalid choice: {value!r} (choose from {', '.join(names)}){did_you_mean(str(value), names)}"
        raise argparse.ArgumentError(action, message)

    def unknown_arguments(self, extras: Sequence[str]) -> UsageProblem:
        """What to say about arguments no option or positional took (``push --tga v2``)."""
        from modelops_bundle.core.suggest import did_you_mean

        options = [flag for flag in self._option_string_actions if flag.startswith("--")]
        for token in extras:
            if token.startswith("-") and token != "-":
                name = token.split("=", 1)[0]
                return UsageProblem(self, f"unknown option {name!r}{did_you_mean(name, options)}")
        return UsageProblem(self, f"unexpected argument{'s' if len(extras) > 1 else ''}: {' '.join(extras)}")


class CommandApp:
    """Collects commands (first registration of a name wins), then builds the parser."""

    def __init__(self, prog: str, description: str) -> None:
        self.prog = prog
        self.description = description
        self.commands: dict[str, Command | LazyCommand] = {}
        #: The sub-parser of each command the last :meth:`build` made, by command name.
        self.parsers: dict[str, Parser] = {}

    def add(self, command: Command | LazyCommand) -> bool:
        if command.name in self.commands:
            return False
        self.commands[command.name] = command
        return True

    def ordered(self) -> list[Command | LazyCommand]:
        rank = {name: index for index, name in enumerate(PREFERRED_ORDER)}
        return sorted(self.commands.values(), key=lambda c: (rank.get(c.name, len(rank)), c.name))

    def resolve(self, name: str) -> Command:
        """The loaded command registered as ``name``."""
        command = self.commands[name]
        if isinstance(command, LazyCommand):
            loaded = command.load()
            if loaded.name != command.name or tuple(loaded.aliases) != command.aliases:
                raise RuntimeError(f"command {command.name!r} loaded as {loaded.name!r} {loaded.aliases!r}")
            self.commands[name] = command = loaded
        return command

    def build(self, argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
        """The parser. Given the ``argv`` it will parse, only the command ``argv`` names is loaded and
        given a sub-parser (argparse needs no other to route it: 20 sub-parsers cost 2-3 ms of start-up);
        without ``argv``, or when ``argv`` asks for the top-level help or names no command, every command is."""
        chosen = chosen_command(argv, self.commands.values()) if argv is not None else None
        parser = Parser(
            prog=self.prog,
            description=self.description,
            epilog=EPILOG.format(prog=self.prog),
            formatter_class=HelpFormatter,
        )
        add_global_options(parser, suppress_defaults=False)
        subparsers = parser.add_subparsers(dest="command_name", metavar="COMMAND", title="commands")
        for entry in self.ordered():
            if chosen is not None and entry.name != chosen:
                continue
            command = self.resolve(entry.name)
            sub = subparsers.add_parser(
                command.name,
                help=command.help,
                description=command.description or command.help,
                epilog=command.epilog,
                aliases=list(command.aliases),
                formatter_class=HelpFormatter,
            )
            assert isinstance(sub, Parser)
            self.parsers[command.name] = sub
            add_global_options(sub, suppress_defaults=True)
            if command.configure is not None:
                command.configure(sub)
            sub.set_defaults(_command=command)
        return parser


def chosen_command(argv: Sequence[str], commands: Iterable[Command | LazyCommand]) -> str | None:
    """The name of the command ``argv`` runs, or ``None`` when it asks for the top-level help, names no
    known command, or is too unusual to read without argparse (then every command is loaded)."""
    names = {alias: command.name for command in commands for alias in (command.name, *command.aliases)}
    skip_value = False
    for token in argv:
        if skip_value:
            skip_value = False
            continue
        if token in ("-h", "--help", "--"):
            return None
        if token == "-C":  # the only global option that takes a value
            skip_value = True
            continue
        if token.startswith("-"):
            continue
        return names.get(token)
    return None


def build_app(host: PluginHost, prog: str, description: str) -> tuple[CommandApp, list[tuple[str, BaseException]]]:
    """Every plugin's commands (built-ins included, through ``mops_add_commands``) in one app, and the
    plugins whose hook raised -- reported, never fatal, so one broken plugin cannot brick the CLI."""
    app = CommandApp(prog, description)
    failures: list[tuple[str, BaseException]] = list(host.hook.mops_add_commands(registry=app).failures)
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
