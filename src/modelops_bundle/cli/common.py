"""Small helpers shared by the command modules."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from modelops_bundle.core.context import CommandContext
from modelops_bundle.core.hashing import Hasher, ProgressSink, resolve_hasher
from modelops_bundle.core.project import find_project
from modelops_bundle.core.workspace import Workspace


def open_workspace(ctx: CommandContext) -> Workspace:
    """The project containing the current directory (walking up), or a usage error."""
    return Workspace(find_project(ctx.cwd))


def hasher_for(ctx: CommandContext, ws: Workspace) -> Hasher:
    return resolve_hasher(ctx.plugins.hook, ws.config_summary().hash_algorithm)


def hashing_progress(ctx: CommandContext) -> Callable[[], ProgressSink]:
    return lambda: ctx.out.progress("hashing")


def add_jobs_option(parser: argparse.ArgumentParser, *, what: str = "hashing threads") -> None:
    parser.add_argument("-j", "--jobs", type=positive_int, default=None, metavar="N", help=f"{what} (default: auto)")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
