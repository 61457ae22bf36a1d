"""Run transfers on a bounded number of worker threads, stopping at the first failure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(function: Callable[[T], R], items: Sequence[T], jobs: int, *, name: str = "mops-transfer") -> list[R]:
    """``function`` over ``items`` on up to ``jobs`` threads, results in order.

    On the first failure, work not yet started is cancelled, running work finishes (a half-sent blob is
    simply abandoned by the registry), and that first exception is raised.
    """
    if jobs <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    # Imported here: concurrent.futures (and the logging it loads) costs a status that reads one tag 5 ms.
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(max_workers=min(jobs, len(items)), thread_name_prefix=name) as pool:
        futures = [pool.submit(function, item) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        failures = [f.exception() for f in futures if f.done() and not f.cancelled()]
        error = next((e for e in failures if e is not None), None)
        if error is not None:
            for future in futures:
                future.cancel()
            raise error
        return [future.result() for future in futures]
