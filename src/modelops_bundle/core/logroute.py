"""Lets the command line choose how core's log records are shown, without importing ``logging`` early.

Most commands never log, and ``logging`` costs a warm ``status --offline`` about 2 ms to import. So the
CLI does not configure logging up front: it :func:`defer`\\ s an installer for the command it runs, and
code that is about to log -- the HTTP registry client, when it is constructed -- calls :func:`activate`,
which runs the installer once. Outside the CLI (the Python API, workers) nothing is deferred and the
host application's own logging configuration applies.
"""

from __future__ import annotations

from collections.abc import Callable

_installer: Callable[[], None] | None = None


def defer(installer: Callable[[], None] | None) -> None:
    """Run ``installer`` at the first :func:`activate` (``None`` forgets a pending one)."""
    global _installer
    _installer = installer


def activate() -> None:
    """Install the deferred log configuration, if any (once)."""
    global _installer
    installer, _installer = _installer, None
    if installer is not None:
        installer()
