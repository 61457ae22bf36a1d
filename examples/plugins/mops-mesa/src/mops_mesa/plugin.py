"""Mesa models for modelops-bundle: discovery (read from source) and a runner (``mops_model_runner``).

Discovery reads the source with ``ast`` (Mesa need not be installed to register a model).

A model is a class deriving -- directly, or through other classes of the project -- from ``mesa.Model``,
however it is imported (``import mesa``, ``from mesa import Model``, ``from mesa.model import Model as M``).
Mesa models take their parameters as ``__init__`` arguments and name their outputs as the keys of the
``model_reporters`` mapping given to a ``DataCollector``; both are read from the class body when they are
literals, so ``mops bundle list`` shows them without running the model.

The runner (Mesa installed where models run) builds the model with the run's parameters as keyword
arguments and the run's seed as ``seed=`` (Mesa's convention: ``super().__init__(seed=seed)``), calls
``step()`` until ``model.running`` turns false or ``max_steps`` steps have run (a parameter of the run;
else the model class's ``max_steps`` attribute; else 100), and returns the ``DataCollector``'s model
variables -- one list per reporter, one value per collection -- as the outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops_bundle.plugin import hookimpl

if TYPE_CHECKING:  # loaded on first use: the CLI imports this module on every command
    import ast

    from modelops_bundle.plugin import ClassMatch, DiscoveredModel, RunnableModel, RunOutput, RunRequest, SourceFile

#: The plugin API this plugin is written against (docs/plugins.md#compatibility).
MOPS_PLUGIN_API = "1.0"

FRAMEWORK = "mesa"
MESA = "mesa"
#: ``Model.__init__(seed=..., rng=...)`` (Mesa 2 and 3): forwarded by models, not model parameters.
RANDOM_STATE = frozenset({"seed", "rng"})
#: Steps a run takes when neither the run's parameters nor the model class say (``max_steps``).
DEFAULT_MAX_STEPS = 100


def is_mesa_model(qualified: str) -> bool:
    """``mesa.Model`` and deeper spellings of it (``mesa.model.Model``)."""
    return qualified.split(".", 1)[0] == MESA and qualified.rsplit(".", 1)[-1] == "Model"


@hookimpl
def mops_discover_models(source: SourceFile) -> list[DiscoveredModel]:
    from modelops_bundle.plugin import find_subclasses

    return [_model(match) for match in find_subclasses(source, is_mesa_model)]


def _model(match: ClassMatch) -> DiscoveredModel:
    from modelops_bundle.plugin import DiscoveredModel, import_table

    table = import_table(match.source)
    outputs: list[str] = []
    parameters: list[str] = []
    # Nearest class first, as Python resolves attributes: a subclass's own __init__ defines the parameters.
    for _, node in ((match.source, match.node), *match.ancestors):
        for name in model_reporters(node):
            if name not in outputs:
                outputs.append(name)
        if not parameters:
            parameters = init_parameters(node)
    return DiscoveredModel(
        class_name=match.node.name,
        rel=match.source.rel,
        framework=FRAMEWORK,
        line=match.node.lineno,
        outputs=tuple(outputs),
        bases=tuple(filter(None, (table.qualified(base) for base in match.node.bases))),
        parameters=tuple(parameters),
        source=match.source,
    )


def init_parameters(node: ast.ClassDef) -> list[str]:
    """Argument names of the class's own ``__init__`` (without ``self``, ``*args``, ``**kwargs``, and without
    the random-state arguments every Mesa model passes on to ``Model.__init__``, which are not parameters)."""
    import ast

    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            arguments = item.args
            names = [arg.arg for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
            return [name for name in names[1:] if name not in RANDOM_STATE]
    return []


def model_reporters(node: ast.ClassDef) -> list[str]:
    """Literal keys of ``model_reporters={...}`` passed to a ``DataCollector(...)`` anywhere in the class."""
    import ast

    names: list[str] = []
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        spelt = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if spelt != "DataCollector":
            continue
        for keyword in call.keywords:
            if keyword.arg == "model_reporters" and isinstance(keyword.value, ast.Dict):
                for key in keyword.value.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value not in names:
                        names.append(key.value)
    return names


# ------------------------------------------------------------------------------------------ running


class MesaRunner:
    """Build the model with the parameters and ``seed=``, step it, return the model reporters' values."""

    def run(self, target: Any, request: RunRequest) -> RunOutput:
        import inspect

        import mesa
        from modelops_bundle.plugin import RunOutput, UsageError

        where = f"model {request.model.id} ({request.model.entrypoint})"
        if not (isinstance(target, type) and issubclass(target, mesa.Model)):
            raise UsageError(f"{where} is not a mesa.Model subclass")
        accepted = inspect.signature(target).parameters
        if "seed" not in accepted and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            raise UsageError(
                f"{where} takes no seed argument",
                hint="add seed=None to __init__ and pass it on: super().__init__(seed=seed)",
            )
        params = dict(request.params)
        max_steps = int(params.pop("max_steps", getattr(target, "max_steps", DEFAULT_MAX_STEPS)))
        model = target(**{**dict(request.model_kwargs), **params}, seed=request.seed)
        for _ in range(max_steps):
            if not model.running:
                break
            model.step()
        collector = getattr(model, "datacollector", None)
        variables = getattr(collector, "model_vars", None) or {}
        defaults = {
            name: parameter.default
            for name, parameter in accepted.items()
            if parameter.default is not parameter.empty and name not in RANDOM_STATE
        }
        return RunOutput(
            outputs={str(name): list(values) for name, values in variables.items()},
            params={**defaults, **params, "max_steps": max_steps},
        )


@hookimpl
def mops_model_runner(model: RunnableModel) -> MesaRunner | None:
    return MesaRunner() if model.framework == FRAMEWORK else None
