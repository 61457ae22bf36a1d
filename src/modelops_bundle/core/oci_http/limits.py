"""How long registry traffic may wait: the timeouts, where they are set, and one request's time budget.

Three numbers bound every request (issue 16: a registry that accepts connections and never answers
stalled ``status`` for ten minutes):

* ``connect`` -- opening the connection (TCP and TLS), and the registry's first answer (``GET /v2/``, the
  connection check: a hung registry is recognised in two short attempts);
* ``read`` -- the longest silence on an open connection: no byte received (or sent) for this long fails
  the attempt, however large the transfer; a transfer that keeps moving is never cut;
* ``deadline`` -- one request with all its retries and waits (``Retry-After`` included): no retry starts
  after it. A blob transfer that restarts counts it from the last byte that moved.

Each comes from an environment variable, else the environment file's ``registry:`` key, else its default
(``docs/cli.md``, "Timeouts"). An operation may set a tighter limit of its own (``core/deadline.py``:
``status`` gives its registry check a few seconds in total); a :class:`Budget` honours both.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelops_bundle.core import deadline

CONNECT_ENV = "MOPS_REGISTRY_CONNECT_TIMEOUT"
READ_ENV = "MOPS_REGISTRY_READ_TIMEOUT"
DEADLINE_ENV = "MOPS_REGISTRY_DEADLINE"
#: The longest wait a ``Retry-After`` answer is granted (longer asks wait this long, then try again).
RETRY_AFTER_CAP = 30.0


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 30.0
    deadline: float = 120.0

    def describe(self) -> str:
        return f"connect {self.connect:g} s, read {self.read:g} s, deadline {self.deadline:g} s"


def timeouts_from(settings: Mapping[str, Any], environ: Mapping[str, str]) -> Timeouts:
    """The registry's timeouts: environment variables, then the environment file's ``registry:`` keys
    (``connect_timeout``, ``read_timeout``, ``deadline``, or the older ``timeout: [connect, read]``)."""
    legacy = settings.get("timeout")
    pair = legacy if isinstance(legacy, (list, tuple)) and len(legacy) == 2 else (None, None)
    defaults = Timeouts()
    return Timeouts(
        connect=deadline.seconds_setting(
            environ,
            CONNECT_ENV,
            defaults.connect,
            value=settings.get("connect_timeout", pair[0]),
            key="registry.connect_timeout",
        ),
        read=deadline.seconds_setting(
            environ, READ_ENV, defaults.read, value=settings.get("read_timeout", pair[1]), key="registry.read_timeout"
        ),
        deadline=deadline.seconds_setting(
            environ, DEADLINE_ENV, defaults.deadline, value=settings.get("deadline"), key="registry.deadline"
        ),
    )


class Budget:
    """The time one logical request (or one blob transfer) may still spend: its own ``deadline`` from
    when it started (or last made progress), cut short by the operation's limit if that ends sooner."""

    __slots__ = ("ends", "limit", "seconds", "timeouts")

    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        self.seconds = timeouts.deadline
        self.ends = time.monotonic() + timeouts.deadline
        self.limit: deadline.TimeLimit | None = None
        outer = deadline.current()
        if outer is not None and outer.ends < self.ends:
            self.limit, self.ends = outer, outer.ends

    def progressed(self, at: float | None = None) -> None:
        """Bytes moved (at ``at``, a ``time.monotonic()``, default now): a transfer's own deadline counts
        from then (an operation's limit does not move)."""
        own = (time.monotonic() if at is None else at) + self.seconds
        self.ends = min(own, self.limit.ends) if self.limit is not None else own

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    def spent(self) -> bool:
        return self.remaining() <= 0

    def allows(self, wait: float) -> bool:
        """Whether waiting ``wait`` seconds still leaves time for another attempt."""
        return time.monotonic() + wait < self.ends

    def request_timeout(self) -> tuple[float, float]:
        """``(connect, read)`` for the next attempt: the configured ones, clamped to what is left."""
        left = max(self.remaining(), 0.05)
        return min(self.timeouts.connect, left), min(self.timeouts.read, left)

    def describe(self) -> str:
        """Which limit ran out, for messages."""
        if self.limit is not None:
            return self.limit.describe()
        return f"{self.seconds:g} s (registry.deadline or {DEADLINE_ENV})"
