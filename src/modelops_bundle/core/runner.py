"""Run a registered model from a materialised tree: find its runner, import it in isolation, run it.

:func:`modelops_bundle.api.run_model` materialises what the model needs and calls :func:`run_in_tree`; the
Dask integration (:mod:`modelops_bundle.dask`) runs it as a task. No Dask import here: a plain worker
process or a notebook runs models the same way.

How a model runs is its framework's business: the ``mops_model_runner`` hook gives a
:class:`ModelRunner` for the registered model (built-ins: ``plugins/runner_calabaria.py``,
``plugins/runner_starsim.py``); this module materialises the tree, imports the entrypoint, hands it to
the runner with a :class:`RunRequest`, and wraps the :class:`RunOutput` with provenance tags.

Isolation: each bundle's top-level modules are swapped into ``sys.modules`` (and its folder onto
``sys.path``) under a process-wide lock for the duration of one call, so two bundles with a
``models`` package never see each other's code. Within one process, models therefore run one at a time:
give each Dask worker one thread.

Bytecode: while a tree's code is imported, Python neither reads nor writes ``__pycache__`` files (its
``pycache_prefix`` points where no file can exist, and ``dont_write_bytecode`` is set): a ``.pyc``
planted in a cached tree -- compiled from other code, stamped with the source's size and time -- is
never executed, and runs leave the shared tree exactly as the version made it (issue 15).
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
from typing import TYPE_CHECKING, Any, Protocol

from modelops_bundle.core.errors import PluginError

if TYPE_CHECKING:
    from modelops_bundle.core.model_registry import ModelRecord, Registry
    from modelops_bundle.core.plugins import PluginHost

#: The framework of a registry entry that names none: upstream ModelOps tools register Calabaria models only.
DEFAULT_FRAMEWORK = "calabaria"
RUNNER_HOOK = "mops_model_runner"


# ------------------------------------------------------------------------------ the runner contract


@dataclass(frozen=True)
class RunnableModel:
    """A registered model of a materialised bundle, as the ``mops_model_runner`` hook sees it."""

    id: str
    framework: str
    entrypoint: str  # "package.module:Attribute"
    record: ModelRecord  # the model's entry in registry.yaml (outputs, parameters, dependencies)
    root: Path  # the materialised tree the model is imported from

    @property
    def module(self) -> str:
        return self.entrypoint.partition(":")[0]

    @property
    def attribute(self) -> str:
        return self.entrypoint.partition(":")[2] or self.record.class_name


@dataclass(frozen=True)
class RunRequest:
    """What one run asks of a runner: parameters (``{}``: the model's defaults), seed, constructor arguments."""

    model: RunnableModel
    params: Mapping[str, Any]
    seed: int
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RunOutput:
    """What a runner hands back: named outputs, and the parameters the run really used (defaults filled in).

    Outputs should be picklable (they cross process boundaries as Dask results): arrays, tables,
    numbers, mappings of those.
    """

    outputs: dict[str, Any]
    params: dict[str, Any]


class ModelRunner(Protocol):
    """Runs models of one framework; returned by ``mops_model_runner``."""

    def run(self, target: Any, request: RunRequest) -> RunOutput:
        """Build the model from ``target`` (the object the entrypoint names: a class, a function, ...),
        run it with ``request.params`` and ``request.seed``, and return its outputs.

        Called with the bundle's modules importable (isolated, see :func:`call_in_tree`), on the calling
        thread. Exceptions of the model itself propagate unchanged; a model this runner cannot run
        (wrong kind of object) should raise :class:`~modelops_bundle.core.errors.UsageError` saying why.
        """
        ...


class NoRunnerError(PluginError):
    """No ``mops_model_runner`` plugin runs models of this framework."""


# ------------------------------------------------------------------------------------------ running


@dataclass
class ModelResult:
    """What :func:`modelops_bundle.api.run_model` returns: the outputs, and the provenance a result should
    carry."""

    bundle_digest: str
    model_id: str
    seed: int
    params: dict[str, Any]
    outputs: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)


def run_in_tree(
    host: PluginHost,
    tree: Path,
    registry: Registry,
    model_id: str,
    params: Mapping[str, Any] | None,
    seed: int,
    model_kwargs: Mapping[str, Any] | None = None,
    *,
    bundle: str,
) -> tuple[ModelRecord, dict[str, Any], dict[str, Any]]:
    """Run the registered model ``model_id`` from the materialised ``tree`` of ``bundle`` (its digest, for
    messages) once: ``(its registry record, outputs, the parameters used)``. Its runner comes from the
    ``mops_model_runner`` hook and is found before any of the model's code is imported; ``params``
    (``None``: the defaults) and ``seed`` go to it."""
    from modelops_bundle.core.errors import UsageError

    record = registry.models.get(model_id)
    if record is None:
        raise UsageError(f"bundle {bundle} has no model {model_id!r}", hint=f"models: {sorted(registry.models)}")
    model = RunnableModel(model_id, record.framework or DEFAULT_FRAMEWORK, record.entrypoint, record, tree)
    runner = find_runner(host, model)
    request = RunRequest(model, dict(params or {}), seed, dict(model_kwargs or {}))
    output = call_in_tree(tree, model.module, model.attribute, lambda target: runner.run(target, request))
    outputs, used = checked_output(output, runner, model)
    return record, outputs, used


def find_runner(host: PluginHost, model: RunnableModel) -> ModelRunner:
    """The runner the ``mops_model_runner`` plugins give for ``model``, or :class:`NoRunnerError`."""
    runner: ModelRunner | None = host.hook.mops_model_runner(model=model)
    if runner is None:
        raise NoRunnerError(
            f"no plugin runs {model.framework} models: model {model.id} ({model.entrypoint}) "
            f"is registered with framework {model.framework!r}",
            hint=f"install the modelops-bundle plugin for {model.framework}, or write one implementing the "
            f"{RUNNER_HOOK} hook (docs/plugins.md#{RUNNER_HOOK}); 'mops bundle plugins' lists what is loaded",
        )
    if not callable(getattr(runner, "run", None)):
        raise PluginError(
            f"{RUNNER_HOOK} returned {_describe_object(runner)} for {model.framework} model {model.id}, "
            "which has no run(target, request) method"
        )
    return runner


def checked_output(output: Any, runner: ModelRunner, model: RunnableModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(outputs, params)`` of a runner's :class:`RunOutput`; anything else is the runner's bug, named."""
    outputs = getattr(output, "outputs", None)
    used = getattr(output, "params", None)
    if not isinstance(outputs, Mapping) or not isinstance(used, Mapping):
        raise PluginError(
            f"the {model.framework} runner {_describe_object(runner)} returned {_describe_object(output)} "
            f"for model {model.id}; a runner returns RunOutput(outputs={{name: value}}, params={{name: value}})"
        )
    bad = [repr(name) for name in outputs if not isinstance(name, str)]
    if bad:
        raise PluginError(
            f"the {model.framework} runner {_describe_object(runner)} returned outputs named by non-strings "
            f"for model {model.id}: {', '.join(bad[:5])}"
        )
    return dict(outputs), dict(used)


def _describe_object(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}" if value is not None else "None"


# --------------------------------------------------------------------------------------- isolation

_IMPORT_LOCK = threading.RLock()
#: Where Python looks for (and would write) bytecode while a tree is imported: below ``/dev/null``, where
#: no file can ever exist -- so every module of a tree is compiled from its verified source.
NO_BYTECODE_PREFIX = os.path.join(os.devnull, "modelops-bundle-no-bytecode")
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
        saved_bytecode = (sys.dont_write_bytecode, sys.pycache_prefix)
        sys.dont_write_bytecode, sys.pycache_prefix = True, NO_BYTECODE_PREFIX
        importlib.invalidate_caches()
        try:
            yield
        finally:
            sys.dont_write_bytecode, sys.pycache_prefix = saved_bytecode
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
