"""Built-in discovery of Starsim models: subclasses of Starsim's simulation and module classes.

Starsim is imported under any alias (``import starsim as ss`` is the convention, but ``import starsim``,
``import starsim as sim`` and ``from starsim import Sim`` work alike); a class deriving -- directly or
through other project classes -- from one of :data:`STARSIM_BASES` is reported. Starsim has no output
decorator, so outputs are left empty; they are not discoverable without running the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops_bundle import hookimpl

if TYPE_CHECKING:  # the discovery machinery loads on first use: ``--help`` stays fast
    from modelops_bundle.core.discovery import DiscoveredModel, SourceFile

FRAMEWORK = "starsim"
STARSIM_MODULE = "starsim"

#: Starsim classes a project subclasses to make a model or one of its building blocks.
STARSIM_BASES = frozenset(
    {
        "Sim",
        "Module",
        "Disease",
        "Infection",
        "NCD",
        "SIR",
        "SIS",
        "Network",
        "DynamicNetwork",
        "SexualNetwork",
        "RandomNet",
        "StaticNet",
        "MixingPool",
        "MixingPools",
        "Intervention",
        "Analyzer",
        "Demographics",
        "Births",
        "Deaths",
        "Pregnancy",
        "Connector",
        "Product",
    }
)


def is_starsim_root(qualified: str) -> bool:
    # ``starsim.Sim`` and deeper spellings such as ``starsim.sim.Sim`` or ``starsim.diseases.SIR``.
    return qualified.split(".")[0] == STARSIM_MODULE and qualified.rsplit(".", 1)[-1] in STARSIM_BASES


@hookimpl(trylast=True)
def mops_discover_models(source: SourceFile) -> list[DiscoveredModel] | None:
    from modelops_bundle.core.discovery import DiscoveredModel, find_subclasses, import_table

    table = import_table(source)
    return [
        DiscoveredModel(
            class_name=match.node.name,
            rel=source.rel,
            framework=FRAMEWORK,
            line=match.node.lineno,
            bases=tuple(filter(None, (table.qualified(base) for base in match.node.bases))),
            source=source,
        )
        for match in find_subclasses(source, is_starsim_root)
    ]
