"""Time limits for a whole operation (``status``'s registry check), honoured by the network code under it.

:func:`time_limit` sets a limit for the current thread's context; the HTTP client (``core/oci_http``)
clamps every connect and read timeout to what is left of it and starts no retry past it, and the Azure
CLI login waits no longer. :func:`call_within` runs an operation on a worker thread under such a limit
and stops waiting for it at the limit (plus a short grace): even a call that honours no limit -- a DNS
lookup, a third-party backend -- cannot hold the command longer. The worker thread is a daemon; it is
left to finish (or time out) on its own.

Settings in seconds come from environment variables through :func:`seconds_setting` (a bad value is a
usage error naming the variable).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from modelops_bundle.core.errors import ConfigError

T = TypeVar("T")

#: ``status``: how long the registry check may take in total, and its default (issue 16: at most 10 s).
STATUS_TIMEOUT_ENV = "MOPS_STATUS_TIMEOUT"
DEFAULT_STATUS_TIMEOUT = 8.0


class TimeLimit:
    """An absolute end (``time.monotonic()``) and the setting that chose it, for messages."""

    __slots__ = ("ends", "reason", "seconds")

    def __init__(self, seconds: float, reason: str) -> None:
        self.seconds = seconds
        self.reason = reason
        self.ends = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    def describe(self) -> str:
        return f"{self.seconds:g} s ({self.reason})"


_current: ContextVar[TimeLimit | None] = ContextVar("modelops_bundle_time_limit", default=None)


def current() -> TimeLimit | None:
    """The limit in force in this context (the tightest one set), or ``None``."""
    return _current.get()


@contextmanager
def time_limit(seconds: float, reason: str) -> Iterator[TimeLimit]:
    """Limit everything under this block to ``seconds`` (an enclosing tighter limit still wins)."""
    wanted = TimeLimit(seconds, reason)
    outer = _current.get()
    token = _current.set(outer if outer is not None and outer.ends <= wanted.ends else wanted)
    try:
        yield wanted
    finally:
        _current.reset(token)


def call_within(
    seconds: float,
    reason: str,
    function: Callable[[], T],
    *,
    grace: float = 1.0,
    waiting: Callable[[], AbstractContextManager[Any]] | None = None,
    quiet_for: float = 0.25,
) -> tuple[bool, T | None]:
    """Run ``function`` under a ``seconds`` limit on a worker thread; ``(True, result)`` when it finished
    in time (its exception, if any, is raised here), ``(False, None)`` when it did not.

    ``waiting`` is entered while the caller waits, once the call has taken ``quiet_for`` seconds (a
    spinner: a quick answer shows nothing).
    """
    import threading

    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            with time_limit(seconds, reason):
                outcome["result"] = function()
        except BaseException as exc:  # handed to the waiting thread, which raises it
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="mops-time-limited", daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(min(quiet_for, seconds + grace))
    if worker.is_alive() and waiting is not None:
        with waiting():
            worker.join(max(0.0, started + seconds + grace - time.monotonic()))
    else:
        worker.join(max(0.0, started + seconds + grace - time.monotonic()))
    if worker.is_alive():
        return False, None
    if "error" in outcome:
        raise outcome["error"]
    return True, outcome.get("result")


def seconds_setting(
    environ: Mapping[str, str], variable: str, default: float, *, value: Any = None, key: str | None = None
) -> float:
    """A duration in seconds: ``$variable`` if set, else ``value`` (an environment file's ``key``), else
    ``default``. Anything that is not a positive number is a :class:`ConfigError` naming where it came from."""
    raw: Any = environ.get(variable, "").strip() or None
    where = variable
    if raw is None and value is not None:
        raw, where = value, key or variable
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{where} must be a number of seconds greater than 0, not {raw!r}")
    return seconds
