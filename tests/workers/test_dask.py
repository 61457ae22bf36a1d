"""A real ``distributed.LocalCluster`` (3 worker processes, 1 thread each) sharing one cache: the plugin
materialises one digest on every worker at once, each blob crosses the wire once, all workers see the
same verified tree, a worker that joins later gets it too, and the SEIR model runs as tasks."""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle.dask import WORKER_ATTRIBUTE, BundlePlugin, run_model
from tests.workers.conftest import MODEL_ID, Pushed

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=3, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as local:
        yield local


def _tree_listing(dask_worker: Any, digest: str) -> dict[str, Any]:
    from modelops_bundle.core.cache import BundleCache

    path = Path(getattr(dask_worker, WORKER_ATTRIBUTE)[digest])
    files = {}
    for folder, _dirs, names in os.walk(path):
        for name in names:
            full = Path(folder) / name
            files[full.relative_to(path).as_posix()] = full.read_bytes()
    del BundleCache
    return {"path": str(path), "files": files, "stats": dask_worker.modelops_bundle_stats[digest]["stats"]}


def test_cluster_materialises_once_and_runs_the_model(cluster: Any, http_bundle: Pushed) -> None:
    environ = {key: http_bundle.env[key] for key in ("MODELOPS_BUNDLE_CACHE", "MOPS_ENV", "MODELOPS_HOME", "HOME")}
    with distributed.Client(cluster) as client:
        plugin = BundlePlugin(http_bundle.ref, environ=environ)
        assert plugin.digest == http_bundle.digest
        client.register_plugin(plugin)
        listings = client.run(_tree_listing, digest=http_bundle.digest)
        assert len(listings) == 3
        trees = [listing["files"] for listing in listings.values()]
        assert all(tree == trees[0] for tree in trees) and len({v["path"] for v in listings.values()}) == 1
        assert sum(listing["stats"]["downloaded_blobs"] > 0 for listing in listings.values()) == 1
        gets = collections.Counter(http_bundle.blob_gets())
        assert gets and max(gets.values()) == 1, gets

        cluster.scale(4)  # a worker joining later runs the plugin too, from the cache
        client.wait_for_workers(4, timeout=60)
        late = client.run(_tree_listing, digest=http_bundle.digest)
        assert len(late) == 4 and all(listing["files"] == trees[0] for listing in late.values())
        assert max(collections.Counter(http_bundle.blob_gets()).values()) == 1

        futures = [
            client.submit(
                run_model,
                http_bundle.digest,
                MODEL_ID,
                {"R0": r0},
                seed=seed,
                model_kwargs={"days": 40, "stochastic": True},
                environ=environ,
                pure=False,
            )
            for r0 in (1.5, 2.5)
            for seed in (0, 1)
        ]
        results = client.gather(futures)
    assert [r.params["R0"] for r in results] == [1.5, 1.5, 2.5, 2.5]
    assert all(r.bundle_digest == http_bundle.digest and r.tags["model.id"] == MODEL_ID for r in results)
    assert all(r.tags["bundle.digest"] == http_bundle.digest for r in results)
    attack = [sum(r.outputs["attack_rate"]["infected"]) for r in results]
    assert attack[2] > attack[0] > 0  # a higher R0 infects more people
    assert results[0].outputs != results[1].outputs  # another seed, another stochastic run
