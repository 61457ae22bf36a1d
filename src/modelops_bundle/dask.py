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

Isolation of model code: every bundle's modules are imported from its own tree, under their own names
(``models.seir`` of bundle A and of bundle B are different module objects, swapped into ``sys.modules``
only while a model of that bundle is imported and run). A process-wide lock serialises those runs, so
within one worker process models run one at a time: use worker processes, one thread each, for
parallelism (the usual setting for CPU-bound Python).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

__all__ = ["BundlePlugin", "ModelResult", "bundle_path", "run_model"]

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


@dataclass
class ModelResult:
    """What :func:`run_model` returns: the outputs, and the provenance a result should carry."""

    bundle_digest: str
    model_id: str
    seed: int
    params: dict[str, Any]
    outputs: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)


def run_model(
    digest_or_ref: str,
    model_id: str,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    *,
    model_kwargs: Mapping[str, Any] | None = None,
    env: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ModelResult:
    """Run the registered model ``model_id`` of a bundle once (as a Dask task, or anywhere).

    The bundle is materialised (only what the model needs) unless a :class:`BundlePlugin` already did;
    the model class is imported from the tree in isolation (see the module docstring) and constructed
    with ``model_kwargs``; ``params`` (a mapping; ``None`` for the defaults) fills in the model's
    defaults through ``default_parameters(**params)`` when the model has it; ``simulate(params, seed)``
    runs it.
    """
    from modelops_bundle import api
    from modelops_bundle.core.errors import UsageError

    merged = {**os.environ, **dict(environ or {})}
    report = api.materialize_report(digest_or_ref, models=[model_id], env=env, cache_dir=cache_dir, environ=merged)
    registry = api.load_registry(report.path)
    record = registry.models.get(model_id)
    if record is None:
        raise UsageError(f"bundle {report.digest} has no model {model_id!r}", hint=f"models: {sorted(registry.models)}")
    module_name, _, class_name = record.entrypoint.partition(":")

    def simulate(cls: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        model = cls(**dict(model_kwargs or {}))
        chosen: Any = dict(params or {})
        if hasattr(model, "default_parameters"):
            chosen = model.default_parameters(**chosen)
        outputs = model.simulate(chosen, seed)
        values = chosen.to_dict() if hasattr(chosen, "to_dict") else dict(chosen)
        return dict(outputs), values

    outputs, used = call_in_tree(report.path, module_name, class_name or record.class_name, simulate)
    tags = api.provenance_tags(report.digest, env=env, cache_dir=cache_dir, environ=merged)
    tags.update({"model.id": model_id, "model.digest": record.model_digest or ""})
    return ModelResult(report.digest, model_id, seed, used, outputs, tags)


# --------------------------------------------------------------------------------------- isolation

_IMPORT_LOCK = threading.RLock()
#: Per tree: the modules imported from it, restored into ``sys.modules`` for its next run.
_TREE_MODULES: dict[str, dict[str, types.ModuleType]] = {}


def _top_level_names(root: Path) -> set[str]:
    """Importable top-level names a tree provides (modules and packages at its root and in ``src/``)."""
    names: set[str] = set()
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    for folder in (root, root / "src"):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if entry.is_file() and name.endswith(".py"):
                names.add(name[:-3])
            elif (
                entry.is_dir()
                and name.isidentifier()
                and any(child.endswith(".py") for child in os.listdir(entry.path))
            ):
                names.add(name)
    return {name for name in names if name.isidentifier() and name not in stdlib}


@contextmanager
def _bundle_imports(root: Path) -> Iterator[None]:
    """While held: ``sys.path`` starts with the tree, and ``sys.modules`` holds this tree's modules
    (and none of another tree's modules of the same names)."""
    key = str(root)
    with _IMPORT_LOCK:
        names = _top_level_names(root)
        paths = [key, str(root / "src")]
        saved_path = list(sys.path)

        def ours(name: str) -> bool:
            return name.partition(".")[0] in names

        saved = {name: module for name, module in sys.modules.items() if ours(name)}
        for name in saved:
            del sys.modules[name]
        sys.modules.update(_TREE_MODULES.get(key, {}))
        sys.path[:0] = paths
        importlib.invalidate_caches()
        try:
            yield
        finally:
            _TREE_MODULES[key] = {name: module for name, module in sys.modules.items() if ours(name)}
            for name in list(sys.modules):
                if ours(name):
                    del sys.modules[name]
            sys.modules.update(saved)
            sys.path[:] = saved_path


def call_in_tree(root: Path, module_name: str, attribute: str, fn: Callable[[Any], Any]) -> Any:
    """Import ``module_name:attribute`` from the tree at ``root`` (isolated) and call ``fn`` with it."""
    with _bundle_imports(Path(root)):
        module = importlib.import_module(module_name)
        return fn(getattr(module, attribute))
