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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

from modelops_bundle.api import run_model
from modelops_bundle.core.runner import ModelResult, call_in_tree

__all__ = ["WORKER_ATTRIBUTE", "BundlePlugin", "ModelResult", "bundle_path", "call_in_tree", "run_model"]

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

    def setup(self, worker: Any) -> None:
        from modelops_bundle import api

        ref = self.ref if self.digest == self.ref else _pin(self.ref, self.digest)
        report = api.materialize_report(
            ref,
            models=self.models,
            env=self.env,
            cache_dir=self.cache_dir,
            environ={**os.environ, **self.environ},
        )
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
