"""What a CLI command is, independent of the argument parser that renders it.

Commands reach the CLI through the ``mops_add_commands`` hook, built-in ones included, so a third-party
plugin adds (or replaces) a command exactly the way the built-ins do.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from modelops_bundle.core.context import CommandContext

#: Adds the command's own options and positionals to its sub-parser.
Configure = Callable[[argparse.ArgumentParser], None]
#: Runs the command; returns the process exit code (0 on success).
Run = Callable[["CommandContext", argparse.Namespace], int]


class Command(NamedTuple):
    """One sub-command such as ``status``.

    ``run`` receives the shared :class:`~modelops_bundle.core.context.CommandContext` (plugin manager,
    output, global options) and the parsed arguments. Every command gets ``--json`` and ``-q`` for free.
    Immutable; built with keywords, changed with ``_replace`` (a record on the start-up path: decision 0017).
    """

    name: str
    help: str
    run: Run
    configure: Configure | None = None
    description: str | None = None
    epilog: str | None = None  # shown under --help; put an example here
    aliases: tuple[str, ...] = ()


class LazyCommand(NamedTuple):
    """A command known by name (and aliases) whose module is imported only when it is chosen, or when
    every command must be shown (``--help``, completion). A run builds the parser of its own command
    alone, so ``mops bundle status`` does not import twenty command modules to run one.

    ``load`` returns the real :class:`Command`; its name and aliases must match these.
    """

    name: str
    load: Callable[[], Command]
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def lazy_command(module: str, name: str, *aliases: str) -> LazyCommand:
    """A :class:`LazyCommand` for the ``COMMAND`` of ``module`` (imported on first use)."""

    def load() -> Command:
        from modelops_bundle.core.entrypoints import load_object

        command: Command = load_object(f"{module}:COMMAND")
        return command

    return LazyCommand(name, load, tuple(aliases))


class CommandRegistry(Protocol):
    """What ``mops_add_commands`` implementations receive."""

    def add(self, command: Command | LazyCommand) -> bool:
        """Register ``command``; returns False when a command of that name was registered first."""
        ...
