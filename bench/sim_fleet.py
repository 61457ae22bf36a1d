"""A rollout of one version to a large Dask cluster, simulated from costs measured by bench_fleet.py.

What happens when ``N`` nodes of ``W`` workers each start a version at the same moment, against a
registry that answers ``429 Too Many Requests`` with ``Retry-After`` above a request budget? The model,
stepped every ``--step`` seconds:

* A *client* is a process that fetches the version: one per worker without a shared cache, one per
  node with the per-node cache (the others wait on the cache's lock and then only link), or one per node
  in waves of ``--wave`` nodes with ``prefetch``. It sends the manifest and index requests, then one
  ``GET`` per blob over ``--jobs`` connections (mops's default 5).
* Every request costs ``request_seconds`` of latency (measured: a small request through the proxy),
  then its bytes flow at a fair share of the registry's egress (``registry_bytes_per_second``,
  measured with every node of bench_fleet pulling at once) and at most a node's own rate
  (``node_bytes_per_second``, measured by a single cold materialisation).
* The registry admits ``--budget`` requests a second (a token bucket holding one second's worth); a
  request over budget is answered 429 with ``Retry-After: --retry-after`` and tried again after it --
  exactly after it, or after it plus a random share of it (``core/oci_http/client.RetryPolicy`` waits
  ``Retry-After`` plus up to as much again and 0.1 s) -- at most ``--attempts`` times; a client whose
  request runs out of attempts fails (its workers fail their tasks).

Run from the repository root (numbers from ``bench_fleet.py --json``, defaults built in)::

    .venv/bin/python bench/sim_fleet.py                                  # the table of docs/scaling.md
    .venv/bin/python bench/sim_fleet.py --costs /tmp/fleet.json --nodes 100 --workers 10 --budget 100
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Measured on the 2-CPU machine (bench_fleet.py, 4 nodes x 8 workers, 2026-12-07; docs/scaling.md).
DEFAULT_COSTS = {
    "request_seconds": 0.0021,
    "bundle_bytes": 541_439_688,
    "blobs": 72,
    "node_bytes_per_second": 383e6,
    "registry_bytes_per_second": 289e6,
}


@dataclass
class Scenario:
    name: str
    clients: int  # processes fetching at once (or in waves)
    wave: int | None = None  # clients started together; the next wave when one finishes
    budget: float | None = None  # requests per second the registry admits (None: unlimited)
    jitter: tuple[float, float] = (0.0, 0.0)  # a retry waits Retry-After + U(0, extra + share x Retry-After)


@dataclass(order=True)
class _Request:
    ready: float  # when it may be sent (after a back-off)
    client: int = field(compare=False)
    size: int = field(compare=False)
    attempt: int = field(compare=False, default=0)


@dataclass
class Outcome:
    scenario: Scenario
    requests: int = 0
    throttled: int = 0
    egress: int = 0
    failed_clients: int = 0
    seconds: float = 0.0
    peak_rate: float = 0.0


def simulate(scenario: Scenario, costs: dict[str, float], args: argparse.Namespace) -> Outcome:
    rng = random.Random(args.seed)
    blobs, total = int(costs["blobs"]), int(costs["bundle_bytes"])
    blob_sizes = [total // blobs] * blobs
    small = 4096  # the manifest, then the index: one after the other, before any blob
    latency = costs["request_seconds"]
    node_rate, egress = costs["node_bytes_per_second"], costs["registry_bytes_per_second"]
    out = Outcome(scenario)
    step = args.step
    waiting: list[_Request] = []  # heap by the time a request may be sent
    pending: dict[int, list[int]] = {}  # running client -> blob sizes not yet requested
    meta: dict[int, int] = {}  # running client -> small requests (manifest, index) still to finish
    slots: dict[int, int] = {}  # running client -> free connections
    outstanding: dict[int, int] = {}  # running client -> requests waiting or in flight
    active: list[list[float]] = []  # [client, latency left, bytes left, size]
    finished_clients = failed = 0
    wave = scenario.wave or scenario.clients
    next_client = 0
    tokens = scenario.budget or 0.0
    sent: list[float] = []

    def send(client: int, size: int, when: float, attempt: int = 0) -> None:
        outstanding[client] = outstanding.get(client, 0) + 1
        heapq.heappush(waiting, _Request(when, client, size, attempt))

    now = 0.0
    while finished_clients + failed < scenario.clients and now < args.horizon:
        while next_client < scenario.clients and len(pending) < wave:  # start clients (a wave's worth)
            client, next_client = next_client, next_client + 1
            pending[client], meta[client], slots[client] = [], 2, args.jobs
            send(client, small, now)
        if scenario.budget is not None:
            tokens = min(scenario.budget, tokens + scenario.budget * step)
        for client, sizes in pending.items():  # free connections take the next blobs
            while slots[client] > 0 and sizes:
                slots[client] -= 1
                send(client, sizes.pop(), now)
        while waiting and waiting[0].ready <= now:
            request = heapq.heappop(waiting)
            client = request.client
            if client not in pending:  # its client failed meanwhile
                continue
            out.requests += 1
            sent.append(now)
            if scenario.budget is not None:
                if tokens < 1:
                    out.throttled += 1
                    outstanding[client] -= 1
                    if request.attempt + 1 >= args.attempts:  # out of attempts: the client fails
                        failed += 1
                        del pending[client]
                        continue
                    share, extra = scenario.jitter
                    delay = args.retry_after + rng.uniform(0, extra + share * args.retry_after)
                    send(client, request.size, now + delay, request.attempt + 1)
                    continue
                tokens -= 1
            active.append([client, latency, request.size, request.size])
        flowing: dict[int, int] = {}
        for item in active:
            if item[1] <= 0:
                flowing[int(item[0])] = flowing.get(int(item[0]), 0) + 1
        share = egress / max(1, sum(flowing.values()))
        still: list[list[float]] = []
        for item in active:
            client = int(item[0])
            if item[1] > 0:
                item[1] -= step
            else:
                item[2] -= min(share, node_rate / flowing[client]) * step
            if item[2] > 0:
                still.append(item)
                continue
            out.egress += int(item[3])
            if client not in pending:
                continue
            outstanding[client] -= 1
            if item[3] == small and meta[client] > 0:
                meta[client] -= 1
                if meta[client] == 1:
                    send(client, small, now)  # the index, once the manifest is in
                else:
                    pending[client] = list(blob_sizes)
            else:
                slots[client] += 1
            if meta[client] == 0 and not pending[client] and outstanding[client] == 0:
                finished_clients += 1
                del pending[client]
        active = still
        while sent and sent[0] < now - 1.0:
            sent.pop(0)
        out.peak_rate = max(out.peak_rate, len(sent))
        now += step
    out.seconds = now
    out.failed_clients = scenario.clients - finished_clients
    return out


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    n, w, b = args.nodes, args.workers, args.budget
    now = (1.0, 0.1)  # RetryPolicy.delay: Retry-After + U(0, 0.1 s + Retry-After)
    return [
        Scenario(f"every worker fetches ({n * w} clients), no budget", n * w),
        Scenario(f"per-node cache ({n} clients), no budget", n),
        Scenario(f"every worker fetches, budget {b:g}/s", n * w, budget=b, jitter=now),
        Scenario(f"per-node cache, budget {b:g}/s, exact Retry-After", n, budget=b),
        Scenario(f"per-node cache, budget {b:g}/s, Retry-After + up to 10 % + 0.1 s", n, budget=b, jitter=(0.1, 0.1)),
        Scenario(f"per-node cache, budget {b:g}/s, Retry-After + up to 100 % + 0.1 s (now)", n, budget=b, jitter=now),
        Scenario(f"prefetch, {args.wave} nodes at a time, budget {b:g}/s", n, wave=args.wave, budget=b, jitter=now),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--costs", type=Path, help="bench_fleet.py --json output (default: built-in figures)")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--workers", type=int, default=10, help="workers per node (default 10)")
    parser.add_argument("--jobs", type=int, default=5, help="connections per client (mops: 5)")
    parser.add_argument("--budget", type=float, default=100.0, help="requests per second the registry admits")
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds a 429 asks to wait (default 1)")
    parser.add_argument("--attempts", type=int, default=5, help="tries per request (RetryPolicy.attempts: 5)")
    parser.add_argument("--wave", type=int, default=10, help="nodes at a time for the prefetch scenario")
    parser.add_argument("--step", type=float, default=0.05, help="simulation step, seconds (default 0.05)")
    parser.add_argument("--horizon", type=float, default=3600.0, help="give up after this many simulated seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    costs = dict(DEFAULT_COSTS)
    if args.costs:
        costs.update({k: v for k, v in json.loads(args.costs.read_text()).items() if k in DEFAULT_COSTS})
    rows = []
    for scenario in scenarios(args):
        o = simulate(scenario, costs, args)
        rows.append(
            f"| {scenario.name} | {o.requests:,} | {o.throttled:,} | {o.egress / 1e9:,.1f} GB | "
            f"{o.peak_rate:,.0f}/s | {o.seconds:,.1f} s | {o.failed_clients:,} |"
        )
    header = (
        f"{args.nodes} nodes x {args.workers} workers; version of {costs['bundle_bytes'] / 1e6:,.0f} MB in "
        f"{int(costs['blobs'])} blobs; request latency {costs['request_seconds'] * 1000:.1f} ms; a node takes "
        f"{costs['node_bytes_per_second'] / 1e6:,.0f} MB/s, the registry gives "
        f"{costs['registry_bytes_per_second'] / 1e6:,.0f} MB/s in all; {args.jobs} connections per client; "
        f"429 with Retry-After {args.retry_after:g} s, "
        f"{args.attempts} attempts"
    )
    table = "\n".join(
        [
            "| scenario | requests | answered 429 | egress | peak requests | rollout | failed clients |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )
    text = f"{header}\n\n{table}\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
