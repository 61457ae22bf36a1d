"""What a CLI command is, independent of the argument parser that renders it.

Commands reach the CLI through the ``mops_add_commands`` hook, built-in ones included, so a third-party
plugin adds (or replaces) a command exactly the way the built-ins do.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from modelops_bundle.core.context import CommandContext

#: Adds the command's own options and positionals to its sub-parser.
Configure = Callable[[argparse.ArgumentParser], None]
#: Runs the command; returns the process exit code (0 on success).
Run = Callable[["CommandContext", argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    """One sub-command such as ``status``.

    ``run`` receives the shared :class:`~modelops_bundle.core.context.CommandContext` (plugin manager,
    output, global options) and the parsed arguments. Every command gets ``--json`` and ``-q`` for free.
    """

    name: str
    help: str
    run: Run
    configure: Configure | None = None
    description: str | None = None
    epilog: str | None = None  # shown under --help; put an example here
    aliases: tuple[str, ...] = field(default_factory=tuple)


class CommandRegistry(Protocol):
    """What ``mops_add_commands`` implementations receive."""

    def add(self, command: Command) -> bool:
        """Register ``command``; returns False when a command of that name was registered first."""
        ...
