"""A fleet: a real Dask cluster of 2 "nodes" x 3 worker processes, each node with a cache of its own,
materialising one version at the same moment -- each blob crosses the wire once per node (counted by the
proxy in front of CNCF distribution), no worker fails, every node's tree holds the pushed bytes -- and
``prefetch`` filling each node's cache once, one node at a time, before the plugin runs on every worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bundle.conftest import ok
from tests.workers.conftest import Pushed
from tests.workers.fleet import BlobTraffic, node_cluster, run_at_once, tree_digests

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.timeout(300)

NODES, WORKERS_PER_NODE = 2, 3


def _pushed_files(project_root: Path, listing: dict[str, str]) -> dict[str, str]:
    """The digests of the project's own files that a tree lists (the tree holds exactly the version)."""
    return {rel: digest for rel, digest in tree_digests(project_root).items() if rel in listing}


def _worker_bundle(dask_worker: object, digest: str) -> str:
    from modelops_bundle.dask import WORKER_ATTRIBUTE

    return str(getattr(dask_worker, WORKER_ATTRIBUTE)[digest])


def test_nodes_fetch_each_blob_once_and_prefetch_fills_each_node(http_bundle: Pushed, tmp_path: Path) -> None:
    from modelops_bundle.dask import BundlePlugin, prefetch

    assert http_bundle.proxy is not None
    environ = {key: http_bundle.env[key] for key in ("MOPS_ENV", "MODELOPS_HOME", "HOME")}
    with node_cluster(NODES, WORKERS_PER_NODE, tmp_path / "caches", environ) as (client, caches):
        # every worker of every node asks for the version at the same moment
        outcomes = run_at_once(client, http_bundle.ref, environ)
        assert len(outcomes) == NODES * WORKERS_PER_NODE
        failed = {address: o["error"] for address, o in outcomes.items() if not o["ok"]}
        assert not failed
        trees = {o["path"] for o in outcomes.values()}
        assert len(trees) == NODES and {Path(t).parents[2] for t in trees} == set(caches.values())
        downloaders = [o for o in outcomes.values() if o["stats"]["downloaded_blobs"] > 0]
        assert len(downloaders) == NODES  # one worker per node fetched; the others waited for it
        traffic = BlobTraffic.of(http_bundle.proxy)
        assert traffic.gets and traffic.per_blob == {NODES}, traffic.gets
        for tree in trees:
            listing = tree_digests(Path(tree))
            assert listing == _pushed_files(http_bundle.project.root, listing)
            assert len(listing) == outcomes[next(iter(outcomes))]["files"]

        # a new version: prefetch fills each node once (one node at a time), then the plugin only stats
        http_bundle.project.write("data/extra/notes.txt", "a second version\n")
        ok(http_bundle.project.run("add", "data/extra/notes.txt", "--json"))
        digest = ok(http_bundle.project.run("push", "--json"))["digest"]
        ref = http_bundle.ref.rpartition("@")[0] + "@" + digest
        http_bundle.proxy.clear()
        plugin = BundlePlugin(ref, environ=environ)
        done = prefetch(client, plugin, nodes_at_once=1)
        assert sorted(done.workers) == sorted(done.nodes) and len(done.nodes) == NODES
        assert sum(len(addresses) for addresses in done.workers.values()) == NODES * WORKERS_PER_NODE
        assert all(report["stats"]["downloaded_blobs"] > 0 for report in done.nodes.values()), [
            r["stats"] for r in done.nodes.values()
        ]
        # only what the second version added crosses the wire: its new pack and index, once per node
        after_prefetch = BlobTraffic.of(http_bundle.proxy)
        assert after_prefetch.gets and after_prefetch.per_blob == {NODES}, after_prefetch.gets
        client.register_plugin(plugin)
        paths = client.run(_worker_bundle, digest=digest)
        assert len(paths) == NODES * WORKERS_PER_NODE and len(set(paths.values())) == NODES
        assert BlobTraffic.of(http_bundle.proxy).gets == after_prefetch.gets  # the plugin fetched nothing
        with pytest.raises(ValueError, match="nodes_at_once"):
            prefetch(client, plugin, nodes_at_once=0)
