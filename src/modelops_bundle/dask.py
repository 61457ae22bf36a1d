"""Dask (``distributed``) integration: bundles on every worker, and registered models as tasks.

::

    from distributed import Client
    from modelops_bundle.dask import BundlePlugin, run_model

    client = Client(cluster)
    plugin = BundlePlugin("127.0.0.1:5000/flu:v3")      # the tag is resolved once, here
    client.register_plugin(plugin)                       # every worker, and workers that join later
    futures = [client.submit(run_model, plugin.digest, "seir_seirmodel", {"R0": r0}, seed=s, pure=False)
               for r0 in (1.5, 2.0) for s in range(10)]

Workers share the machine's cache (``MODELOPS_BUNDLE_CACHE`` or ``cache_dir=``): of many workers on a
machine asking for one digest at once, one downloads each blob and the others wait for it.
:func:`prefetch` fills every node's cache once *before* tasks start, a bounded number of nodes at a
time, so that a rollout to a large cluster stays under the registry's request budget::

    plugin = BundlePlugin("127.0.0.1:5000/flu:v3")
    prefetch(client, plugin, nodes_at_once=10)           # one materialisation per node, 10 nodes at a time
    client.register_plugin(plugin)                       # every worker now finds the tree in its cache

Trust: both go through :func:`modelops_bundle.api.materialize_report`, so a ``trust:`` policy in the
workers' environment file is enforced on every worker before anything is fetched or imported -- a
refused version makes ``client.register_plugin`` raise the workers' ``TrustError``, and a task's
``result()`` raise it.

Isolation of model code: every bundle's modules are imported from its own tree, under their own names
(``models.seir`` of bundle A and of bundle B are different module objects, swapped into ``sys.modules``
only while a model of that bundle is imported and run). A process-wide lock serialises those runs, so
within one worker process models run one at a time: use worker processes, one thread each, for
parallelism (the usual setting for CPU-bound Python).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed import WorkerPlugin

from modelops_bundle.api import run_model
from modelops_bundle.core.runner import ModelResult, call_in_tree

if TYPE_CHECKING:
    from modelops_bundle.core.materialize import Materialized

__all__ = [
    "WORKER_ATTRIBUTE",
    "BundlePlugin",
    "ModelResult",
    "Prefetched",
    "bundle_path",
    "call_in_tree",
    "prefetch",
    "run_model",
]

#: ``worker.modelops_bundles``: ``{digest: Path}`` of the bundles a worker's plugins materialised.
WORKER_ATTRIBUTE = "modelops_bundles"


class BundlePlugin(WorkerPlugin):
    """Materialise one bundle on every worker (``setup`` runs on each, including workers that join later).

    ``ref`` is any :mod:`modelops_bundle.api` ref; a tag is resolved to its digest when the plugin is
    made (on the client), so every worker gets the same version even if the tag moves meanwhile.
    ``models`` limits each worker to what those models need. ``environ`` adds variables (registry
    credentials, ``MOPS_ENV``) for the workers; ``cache_dir`` overrides ``MODELOPS_BUNDLE_CACHE``.
    """

    def __init__(
        self,
        ref: str,
        *,
        models: Sequence[str] | None = None,
        env: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        resolve: bool = True,
    ) -> None:
        from modelops_bundle import api
        from modelops_bundle.core.reference import is_digest

        self.ref = ref
        self.models = list(models) if models else None
        self.env = env
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        self.environ = dict(environ or {})
        merged = {**os.environ, **self.environ}
        self.digest = ref if is_digest(ref) or not resolve else api.resolve(ref, env=env, environ=merged)
        self.name = f"modelops-bundle-{self.digest}"  # one plugin per bundle: re-registering replaces it

    def materialize(self) -> Materialized:
        """This bundle in this machine's cache (fetched at most once per cache, whoever asks)."""
        from modelops_bundle import api

        ref = self.ref if self.digest == self.ref else _pin(self.ref, self.digest)
        return api.materialize_report(
            ref, models=self.models, env=self.env, cache_dir=self.cache_dir, environ={**os.environ, **self.environ}
        )

    def setup(self, worker: Any) -> None:
        report = self.materialize()
        bundles = getattr(worker, WORKER_ATTRIBUTE, None)
        if bundles is None:
            bundles = {}
            setattr(worker, WORKER_ATTRIBUTE, bundles)
        bundles[report.digest] = report.path
        stats = getattr(worker, "modelops_bundle_stats", None)
        if stats is None:
            stats = {}
            setattr(worker, "modelops_bundle_stats", stats)  # noqa: B010 - a dynamic attribute on the worker
        stats[report.digest] = report.to_json()


def _pin(ref: str, digest: str) -> str:
    """``repo:tag`` -> ``repo@digest`` (a project path stays a path: its digest is already resolved)."""
    from modelops_bundle.core.reference import parse_reference

    if os.path.isdir(ref):
        return ref
    reference = parse_reference(ref)
    return str(reference.with_tag(None).with_digest(digest))


def bundle_path(digest: str) -> Path | None:
    """On a worker: the tree a :class:`BundlePlugin` materialised for ``digest`` (``None`` elsewhere)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except ValueError:
        return None
    found: Path | None = getattr(worker, WORKER_ATTRIBUTE, {}).get(digest)
    return found


# ------------------------------------------------------------------------------------------ prefetch


@dataclass
class Prefetched:
    """What :func:`prefetch` did: per node (``host:cache folder``), the worker that materialised the
    bundle there and that materialisation's report (``Materialized.to_json()``: path, files, stats)."""

    digest: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``node -> [worker addresses]``: every worker of the cluster, grouped by the cache it uses.
    workers: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def downloaded_bytes(self) -> int:
        return sum(int(report["stats"].get("downloaded_bytes", 0)) for report in self.nodes.values())


def _node_of(cache_dir: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """On a worker: ``host:cache folder`` -- the workers that share one cache are one node to a rollout."""
    from modelops_bundle.core.cache import cache_root

    root = Path(cache_dir) if cache_dir is not None else cache_root({**os.environ, **(environ or {})})
    return f"{socket.gethostname()}:{os.path.realpath(root)}"


def _prefetch_one(plugin: BundlePlugin) -> dict[str, Any]:
    """On one worker of a node: materialise the plugin's bundle into that node's cache."""
    return plugin.materialize().to_json()


def prefetch(
    client: Any,
    bundle: BundlePlugin | str,
    *,
    nodes_at_once: int | None = None,
    workers: Sequence[str] | None = None,
) -> Prefetched:
    """Fill each node's cache with ``bundle`` once, before tasks start.

    Workers are grouped into nodes by the cache they use (host name and cache folder, asked of every
    worker), and one worker per node materialises the bundle -- ``nodes_at_once`` nodes at a time (all
    at once when ``None``), which bounds how many nodes talk to the registry together. Afterwards every
    worker of a node finds the tree complete in its cache (a :class:`BundlePlugin` registered next, or
    ``run_model``, only stats it). ``bundle`` is a :class:`BundlePlugin` or a ref (made into one, the tag
    resolved here on the client). A node whose materialisation fails raises its error here, before any
    task runs; nodes already filled stay filled.
    """
    plugin = bundle if isinstance(bundle, BundlePlugin) else BundlePlugin(bundle)
    if nodes_at_once is not None and nodes_at_once < 1:
        raise ValueError(f"nodes_at_once must be at least 1, not {nodes_at_once}")
    started = time.monotonic()
    found = client.run(_node_of, cache_dir=plugin.cache_dir, environ=plugin.environ, workers=workers)
    result = Prefetched(plugin.digest)
    for address, node in sorted(found.items()):
        result.workers.setdefault(node, []).append(address)
    chosen = {node: addresses[0] for node, addresses in result.workers.items()}
    order = sorted(chosen)
    wave = nodes_at_once or max(1, len(order))
    for start in range(0, len(order), wave):
        batch = order[start : start + wave]
        # Tasks pinned to one worker each (not ``client.run``, which would block the worker's event loop
        # for the whole download).
        futures = [
            client.submit(_prefetch_one, plugin, workers=[chosen[node]], allow_other_workers=False, pure=False)
            for node in batch
        ]
        for node, report in zip(batch, client.gather(futures), strict=True):
            result.nodes[node] = report
    result.seconds = time.monotonic() - started
    return result
