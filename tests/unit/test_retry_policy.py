"""The retry policy's waits: a Retry-After is honoured, plus jitter so that throttled clients spread out."""

from __future__ import annotations

from modelops_bundle.core.oci_http.client import RetryPolicy


def test_retry_after_is_a_floor_with_jitter_on_top() -> None:
    policy = RetryPolicy()
    waits = [policy.delay(0, retry_after=2.0) for _ in range(200)]
    assert all(2.0 <= wait <= 4.1 for wait in waits)
    assert max(waits) - min(waits) > 0.5  # spread: a hundred throttled nodes do not return together


def test_retry_after_is_capped_and_zero_waits_at_most_a_tenth_of_a_second() -> None:
    policy = RetryPolicy(retry_after_cap=5.0)
    assert all(5.0 <= policy.delay(0, retry_after=3600.0) <= 10.1 for _ in range(50))
    assert all(0.0 <= policy.delay(3, retry_after=0.0) <= 0.1 for _ in range(50))


def test_backoff_without_retry_after_is_full_jitter_within_the_cap() -> None:
    policy = RetryPolicy(base=0.5, cap=8.0)
    assert all(0.0 <= policy.delay(attempt) <= min(8.0, 0.5 * 2**attempt) for attempt in range(8) for _ in range(20))
