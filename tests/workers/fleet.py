"""A fleet on one machine: a real Dask cluster whose workers form "nodes" -- each node a cache folder of
its own (``MODELOPS_BUNDLE_CACHE``) shared by several worker processes, as the workers of one machine
share its local disk. Used by ``tests/workers/test_fleet.py`` and ``bench/bench_fleet.py``."""

from __future__ import annotations

import collections
import hashlib
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.oci.registries import FaultProxy


@contextmanager
def node_cluster(
    nodes: int, workers_per_node: int, base: Path, env: Mapping[str, str], *, timeout: float = 300.0
) -> Iterator[tuple[Any, dict[str, Path]]]:
    """A ``SpecCluster`` of ``nodes`` x ``workers_per_node`` one-thread worker processes (Nannies) on
    127.0.0.1; the workers of node ``n`` get ``MODELOPS_BUNDLE_CACHE=base/node-n`` besides ``env``.
    Yields the client and ``{worker name: cache folder}``; closes everything on exit."""
    import logging

    from distributed import Client, Nanny, Scheduler, SpecCluster

    caches = {f"node-{n}": base / f"node-{n}" for n in range(nodes)}
    workers = {
        f"{node}-w{w}": {
            "cls": Nanny,
            "options": {
                "nthreads": 1,
                "host": "127.0.0.1",
                "env": {**env, "MODELOPS_BUNDLE_CACHE": str(cache)},
                "memory_limit": 0,
            },
        }
        for node, cache in caches.items()
        for w in range(workers_per_node)
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": None, "host": "127.0.0.1"}}
    with (
        SpecCluster(workers=workers, scheduler=scheduler, name="fleet", silence_logs=logging.ERROR) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(nodes * workers_per_node, timeout=timeout)
        yield client, {name: caches[name.rpartition("-w")[0]] for name in workers}


def materialise_at(at: float, ref: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """On a worker: wait until the wall clock reaches ``at`` (so every worker starts together), then
    materialise ``ref`` into this worker's cache; what happened, or the error, as plain data."""
    from modelops_bundle import api

    time.sleep(max(0.0, at - time.time()))
    started = time.time()
    try:
        report = api.materialize_report(ref, environ={**os.environ, **environ})
    except Exception as exc:  # reported, and counted as a failed worker by the caller
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "started": started, "ended": time.time()}
    return {
        "ok": True,
        "started": started,
        "ended": time.time(),
        "path": str(report.path),
        "files": report.files,
        "cache": os.environ.get("MODELOPS_BUNDLE_CACHE", ""),
        "stats": report.to_json()["stats"],
    }


def run_at_once(client: Any, ref: str, environ: Mapping[str, str], delay: float = 2.0) -> dict[str, dict[str, Any]]:
    """Every worker materialises ``ref`` starting at the same moment (one task pinned to each worker)."""
    at = time.time() + delay
    addresses = sorted(client.scheduler_info()["workers"])
    futures = [
        client.submit(materialise_at, at, ref, dict(environ), workers=[address], allow_other_workers=False, pure=False)
        for address in addresses
    ]
    return dict(zip(addresses, client.gather(futures), strict=True))


def tree_digests(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file below ``root``."""
    found = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                while piece := handle.read(1 << 20):
                    digest.update(piece)
            found[path.relative_to(root).as_posix()] = digest.hexdigest()
    return found


@dataclass
class BlobTraffic:
    """Blob GETs through a counting proxy: how many times each blob digest was fetched."""

    gets: collections.Counter[str]

    @classmethod
    def of(cls, proxy: FaultProxy) -> BlobTraffic:
        with proxy.lock:
            paths = [path for method, path, status in proxy.requests if method == "GET" and "/blobs/sha256:" in path]
        return cls(collections.Counter(path.rpartition("/")[2].partition("?")[0] for path in paths))

    @property
    def per_blob(self) -> set[int]:
        return set(self.gets.values())
