"""What core's log records look like on the command line (``core/logroute.py`` says when they start).

* always: warnings (``warning: registry ... is throttling requests``), once each as core emits them;
* ``-v``: also every retry and restart with its reason, and which credentials a registry gets;
* ``MOPS_DEBUG=1``: also debug records, with the traceback of the failure behind each retry.

Records go to the command's stderr as ``warning: ...`` / ``info: ...`` / ``debug: ...`` lines; the
handler is removed when the command ends (commands run in-process in tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

LOGGER = "modelops_bundle"


@contextmanager
def command_logging(stderr: IO[str], *, verbose: bool, tracebacks: bool) -> Iterator[None]:
    """Show core's log records on ``stderr`` while the command runs (see the module docstring)."""
    from modelops_bundle.core import logroute

    installed: list[Any] = []

    def install() -> None:
        import logging

        class LineFormat(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                text = f"{record.levelname.lower()}: {record.getMessage()}"
                if tracebacks and record.exc_info:
                    text += "\n" + self.formatException(record.exc_info)
                return text

        handler = logging.StreamHandler(stderr)
        handler.setFormatter(LineFormat())
        logger = logging.getLogger(LOGGER)
        previous = logger.level
        logger.setLevel(logging.DEBUG if tracebacks else logging.INFO if verbose else logging.WARNING)
        logger.addHandler(handler)
        installed.append((logger, handler, previous))

    if verbose or tracebacks:
        install()
    else:
        logroute.defer(install)
    try:
        yield
    finally:
        logroute.defer(None)
        for logger, handler, previous in installed:
            logger.removeHandler(handler)
            logger.setLevel(previous)
