"""Built-in runner of Starsim models (framework ``starsim``): sims and sim factories.

What the entrypoint may name, and how it becomes a sim:

* an ``ss.Sim`` subclass: constructed with the run's ``model_kwargs`` and parameters as keyword arguments;
* a function that builds a sim: called with them, it returns an ``ss.Sim``;
* a class that builds a sim (not itself a sim): constructed with ``model_kwargs``, then the instance is
  called with the parameters and returns an ``ss.Sim``.

The seed is the sim's ``rand_seed``: passed as the ``rand_seed`` (or ``seed``) argument when the sim
class or factory takes one, and set on the sim's parameters before it is initialised in any case. A
factory that hands back a sim already initialised with another seed is refused (its random streams are
fixed by then). The sim is run unless the factory ran it already.

Outputs are the sim's results as named arrays (``numpy.ndarray``): module results under
``<module>.<result>`` (``sir.new_infections``), the sim's own under their names (``n_alive``), and the
time axis as ``timevec`` (floats: days, or years for a calendar sim). The parameters recorded are the
sim class's or factory's own keyword defaults, overridden by the run's parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from modelops_bundle import hookimpl

if TYPE_CHECKING:
    from modelops_bundle.plugin import RunnableModel, RunOutput, RunRequest

MOPS_PLUGIN_API = "1.0"

FRAMEWORK = "starsim"
#: Argument names a sim class or factory takes the seed under, in order of preference.
SEED_ARGUMENTS = ("rand_seed", "seed")


class StarsimRunner:
    """Build the sim (from a class or a factory), seed it, run it, return its results as named arrays."""

    def run(self, target: Any, request: RunRequest) -> RunOutput:
        import starsim as ss

        from modelops_bundle.plugin import RunOutput

        params = dict(request.params)
        kwargs = {**dict(request.model_kwargs), **params}
        if isinstance(target, type) and issubclass(target, ss.Sim):
            build: Callable[..., Any] = target
            defaults_of: Callable[..., Any] = _constructor(target)
        elif isinstance(target, type):
            build = target(**dict(request.model_kwargs))
            kwargs = params
            defaults_of = build
            if not callable(build):
                raise _not_a_sim(request, f"{target.__name__} instances are not callable")
        elif callable(target):
            build = defaults_of = target
        else:
            raise _not_a_sim(request, f"it is {type(target).__name__}")
        seed_argument = _seed_argument(defaults_of)
        if seed_argument is not None and seed_argument not in kwargs:
            kwargs[seed_argument] = request.seed
        sim = build(**kwargs)
        if not isinstance(sim, ss.Sim):
            raise _not_a_sim(request, f"calling it returned {type(sim).__name__}")
        if getattr(sim, "initialized", False):
            if sim.pars.rand_seed != request.seed:
                from modelops_bundle.plugin import UsageError

                raise UsageError(
                    f"model {request.model.id}: {request.model.entrypoint} returned a sim already initialised "
                    f"with rand_seed {sim.pars.rand_seed}, so it cannot run with seed {request.seed}",
                    hint="take the seed as a rand_seed argument, or return the sim before sim.init()",
                )
        else:
            sim.pars.rand_seed = request.seed
        if not getattr(sim, "complete", False):
            sim.run()
        used = {**_keyword_defaults(defaults_of), **params}
        return RunOutput(outputs=named_arrays(sim.results), params=used)


def _not_a_sim(request: RunRequest, why: str) -> Exception:
    from modelops_bundle.plugin import UsageError

    return UsageError(
        f"model {request.model.id}: {request.model.entrypoint} does not build a Starsim sim ({why})",
        hint="a Starsim model is an ss.Sim subclass, a function returning an ss.Sim, or a class whose "
        "instances return one when called; networks, diseases and interventions are parts of a sim",
    )


def _constructor(cls: type) -> Callable[..., Any]:
    """The ``__init__`` a class really runs (the nearest in its MRO that defines one)."""
    init: Callable[..., Any] = next(vars(klass)["__init__"] for klass in cls.__mro__ if "__init__" in vars(klass))
    return init


def _parameters(function: Any) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}


def _seed_argument(function: Any) -> str | None:
    accepted = _parameters(function)
    return next((name for name in SEED_ARGUMENTS if name in accepted), None)


def _keyword_defaults(function: Any) -> dict[str, Any]:
    """The function's own keyword defaults (``ss.Sim.__init__``'s many ``None`` defaults are not parameters)."""
    if getattr(function, "__module__", "").split(".")[0] == "starsim":
        return {}
    return {
        name: parameter.default
        for name, parameter in _parameters(function).items()
        if parameter.default is not inspect.Parameter.empty
        and parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and name not in SEED_ARGUMENTS
    }


def named_arrays(results: Any, prefix: str = "") -> dict[str, Any]:
    """A sim's (nested) results as ``{name: numpy array}``: ``sir.new_infections``, ``n_alive``, ``timevec``."""
    import numpy as np

    named: dict[str, Any] = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if key == "timevec":
            if not prefix:  # every module repeats the sim's time axis
                named[name] = _time_axis(value)
        elif hasattr(value, "items"):
            named.update(named_arrays(value, f"{name}."))
        elif hasattr(value, "values"):
            named[name] = np.asarray(value.values)
    return named


def _time_axis(timevec: Any) -> Any:
    """Days (or other plain units) as they are; calendar dates as fractional years."""
    import numpy as np

    try:
        return np.asarray(timevec, dtype=float)
    except (TypeError, ValueError):
        return np.asarray(timevec.to_float(), dtype=float)


@hookimpl(trylast=True)
def mops_model_runner(model: RunnableModel) -> StarsimRunner | None:
    return StarsimRunner() if model.framework == FRAMEWORK else None
