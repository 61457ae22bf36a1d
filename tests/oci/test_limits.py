"""Time limits, timeouts and retry waits (core logic, no server): where each setting comes from, how a
request's budget is clamped by an operation's limit, and ``call_within`` giving up on a call that hangs."""

from __future__ import annotations

import threading
import time

import pytest

from modelops_bundle.core import deadline
from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.oci_http.client import RetryPolicy, is_throttling, retry_after_seconds
from modelops_bundle.core.oci_http.limits import Budget, Timeouts, timeouts_from


def test_timeouts_come_from_variables_then_the_environment_file_then_defaults() -> None:
    assert timeouts_from({}, {}) == Timeouts(10.0, 30.0, 120.0)
    assert timeouts_from({"timeout": [3, 4]}, {}) == Timeouts(3.0, 4.0, 120.0)  # the older key
    settings = {"timeout": [3, 4], "connect_timeout": 5, "read_timeout": "6", "deadline": 7.5}
    assert timeouts_from(settings, {}) == Timeouts(5.0, 6.0, 7.5)
    environ = {"MOPS_REGISTRY_CONNECT_TIMEOUT": "1", "MOPS_REGISTRY_READ_TIMEOUT": "2", "MOPS_REGISTRY_DEADLINE": "3"}
    assert timeouts_from(settings, environ) == Timeouts(1.0, 2.0, 3.0)
    for bad in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(ConfigError, match="MOPS_REGISTRY_DEADLINE must be a number of seconds"):
            timeouts_from({}, {"MOPS_REGISTRY_DEADLINE": bad})
    with pytest.raises(ConfigError, match=r"registry\.read_timeout must be a number of seconds greater than 0"):
        timeouts_from({"read_timeout": [1]}, {})


def test_a_budget_is_clamped_by_the_operations_limit() -> None:
    timeouts = Timeouts(connect=10, read=30, deadline=120)
    free = Budget(timeouts)
    assert free.limit is None and free.request_timeout() == (10, 30)
    assert "registry.deadline or MOPS_REGISTRY_DEADLINE" in free.describe()
    # an inner, looser limit does not loosen the outer one
    with deadline.time_limit(2, "MOPS_STATUS_TIMEOUT"), deadline.time_limit(60, "a looser inner limit"):
        bounded = Budget(timeouts)
    connect, read = bounded.request_timeout()
    assert connect <= 2 and read <= 2 and bounded.describe() == "2 s (MOPS_STATUS_TIMEOUT)"
    assert not bounded.allows(5) and bounded.allows(0.5)
    bounded.progressed()  # progress does not move an operation's limit
    assert bounded.remaining() <= 2
    assert deadline.current() is None

    stalled = Budget(Timeouts(deadline=1))
    time.sleep(0.2)
    stalled.progressed()
    assert stalled.remaining() > 0.9  # a transfer's own deadline counts from its last progress


def test_retry_after_is_capped_and_jittered() -> None:
    policy = RetryPolicy()
    waits = [policy.delay(0, 2.0) for _ in range(200)]
    assert all(2.0 <= w <= 2.0 + 0.1 + 2.0 for w in waits) and len(set(waits)) > 1
    assert all(30.0 <= policy.delay(0, 3600) <= 60.1 for _ in range(50))  # capped at 30 s, plus jitter
    assert all(0 <= policy.delay(3) <= 4.0 for _ in range(50))  # backoff with full jitter otherwise
    assert retry_after_seconds("7") == 7.0 and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert is_throttling(429, None) and is_throttling(503, 1.0) and not is_throttling(503, None)


def test_call_within_returns_results_raises_errors_and_gives_up_on_hangs() -> None:
    assert deadline.call_within(1, "T", lambda: 42) == (True, 42)

    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        deadline.call_within(1, "T", fails)

    seen: list[deadline.TimeLimit | None] = []
    deadline.call_within(1, "SEEN", lambda: seen.append(deadline.current()))
    assert seen[0] is not None and seen[0].reason == "SEEN"  # the limit is set in the worker

    release = threading.Event()
    waited: list[str] = []

    class Waiting:
        def __enter__(self) -> None:
            waited.append("spinning")

        def __exit__(self, *exc: object) -> None:
            waited.append("stopped")

    started = time.monotonic()
    assert deadline.call_within(0.3, "T", lambda: release.wait(30), grace=0.2, waiting=Waiting) == (False, None)
    assert time.monotonic() - started < 1.5
    assert waited == ["spinning", "stopped"]
    release.set()

    quick: list[str] = []
    deadline.call_within(1, "T", lambda: None, waiting=lambda: quick.append("x"))  # type: ignore[arg-type,return-value]
    assert quick == []  # a quick answer shows no spinner


def test_seconds_setting() -> None:
    assert deadline.seconds_setting({}, "X", 8.0) == 8.0
    assert deadline.seconds_setting({"X": " 2.5 "}, "X", 8.0, value=3, key="k") == 2.5
    assert deadline.seconds_setting({"X": ""}, "X", 8.0, value=3, key="k") == 3.0
    with pytest.raises(ConfigError, match=r"^k must be a number of seconds greater than 0, not 'never'"):
        deadline.seconds_setting({}, "X", 8.0, value="never", key="k")
