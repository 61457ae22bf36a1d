"""Built-in runner of Calabaria models (``BaseModel`` subclasses, framework ``calabaria``).

The class named by the entrypoint is constructed with the run's ``model_kwargs``; the run's parameters
fill in the model's defaults through ``default_parameters(**params)`` when the model has it (Calabaria's
``ParameterSet``), and ``simulate(params, seed)`` runs it. Its return value -- a mapping of output name
to table -- is the run's outputs; the parameters used are ``params.to_dict()`` (or the mapping itself).

Registry entries that name no framework (written by upstream ModelOps tools, which register Calabaria
models only) run here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelops_bundle import hookimpl

if TYPE_CHECKING:
    from modelops_bundle.plugin import RunnableModel, RunOutput, RunRequest

MOPS_PLUGIN_API = "1.0"

FRAMEWORK = "calabaria"


class CalabariaRunner:
    """Construct, fill in default parameters, ``simulate(params, seed)``."""

    def run(self, target: Any, request: RunRequest) -> RunOutput:
        from modelops_bundle.plugin import RunOutput, UsageError

        if not isinstance(target, type):
            raise UsageError(
                f"model {request.model.id}: {request.model.entrypoint} is {type(target).__name__}, "
                "not a class; a Calabaria model is a BaseModel subclass"
            )
        model = target(**dict(request.model_kwargs))
        if not callable(getattr(model, "simulate", None)):
            raise UsageError(
                f"model {request.model.id}: {request.model.entrypoint} has no simulate(params, seed) method, "
                "so it is not a Calabaria model",
                hint="register it again ('mops bundle register-model') so its framework is recorded, "
                "or install the plugin of its framework",
            )
        chosen: Any = dict(request.params)
        if callable(getattr(model, "default_parameters", None)):
            chosen = model.default_parameters(**chosen)
        outputs = model.simulate(chosen, request.seed)
        if not isinstance(outputs, Mapping):
            raise UsageError(
                f"model {request.model.id}: simulate() returned {type(outputs).__name__}, "
                "not a mapping of output names to results"
            )
        used = chosen.to_dict() if callable(getattr(chosen, "to_dict", None)) else dict(chosen)
        return RunOutput(outputs=dict(outputs), params=dict(used))


@hookimpl(trylast=True)
def mops_model_runner(model: RunnableModel) -> CalabariaRunner | None:
    return CalabariaRunner() if model.framework == FRAMEWORK else None
