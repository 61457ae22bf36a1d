"""Run a registered model of a bundle: materialise what it needs, import it in isolation, simulate.

Used by :func:`modelops_bundle.api.run_model`, by the Dask integration (:mod:`modelops_bundle.dask`) and
by anything else that runs models from bundles. No Dask import here: a plain worker process or a
notebook runs models the same way.

Isolation: each bundle's top-level modules are swapped into ``sys.modules`` (and its folder onto
``sys.path``) under a process-wide lock for the duration of one call, so two bundles with a
``models`` package never see each other's code. Within one process, models therefore run one at a time:
give each Dask worker one thread.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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

    The bundle is materialised (only what the model needs) through the shared cache: after a Dask
    ``BundlePlugin`` or an earlier run, that is a check of the completion marker and nothing is fetched.
    The model class is imported from the tree in isolation (see the module docstring) and constructed with
    ``model_kwargs``; ``params`` (a mapping; ``None`` for the defaults) fills in the model's defaults through
    ``default_parameters(**params)`` when the model has it; ``simulate(params, seed)`` runs it.
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
