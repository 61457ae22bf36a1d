"""A spinner while a command waits on something slow (``status`` asking the registry).

Only on a terminal (``Console.interactive``) and not with ``-q``; elsewhere it shows nothing. rich draws
it on the command's stdout, transient: the line disappears when the wait ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from modelops_bundle.cli.console import Console


@contextlib.contextmanager
def spinner(console: object, text: str) -> Iterator[None]:
    """Spin with ``text`` while the block runs, if ``console`` (the command's ``ctx.out``) is on a terminal."""
    if not isinstance(console, Console) or not console.interactive or console.quiet:
        yield
        return
    with console._rich_console().status(text, spinner="dots"):
        yield
