"""Built-in discovery of Starsim models: sims and sim factories; everything else Starsim is a component.

Starsim is imported under any alias (``import starsim as ss`` is the convention, but ``import starsim``,
``import starsim as sim`` and ``from starsim import Sim`` work alike). Read from the source, never imported:

* **models** (``role="model"``, registered by ``register-model PATH``):

  - a class deriving -- directly or through other project classes -- from ``ss.Sim`` (kind ``sim``);
  - a public module-level function that returns a sim it builds: ``return ss.Sim(...)``, or
    ``sim = MySim(...)`` ... ``return sim``, or annotated ``-> ss.Sim`` (kind ``sim factory``);
  - a module-level class that is no Starsim class and whose ``__call__`` returns a sim it builds, as a
    function would (kind ``sim factory``);

* **components** (``role="component"``): classes deriving from any other Starsim class -- networks,
  diseases, interventions, analyzers, connectors, demographics, products. A sim is made of them; they
  are not run on their own, so they are not registered unless named with ``--class``. Every model lists
  the components its code defines or imports (its own file and its project-local import closure) in
  ``components``; their files are code dependencies of the model through that closure.

Starsim has no output decorator, so outputs are left empty: they are the sim's results, known only by
running it (the ``starsim`` runner returns them as named arrays).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops_bundle import hookimpl

if TYPE_CHECKING:  # the discovery machinery loads on first use: ``--help`` stays fast
    import ast
    from collections.abc import Callable

    from modelops_bundle.plugin import ClassMatch, DiscoveredModel, ImportTable, SourceFile

MOPS_PLUGIN_API = "1.0"

FRAMEWORK = "starsim"
STARSIM_MODULE = "starsim"
SIM = "Sim"

#: What a component is, by the Starsim class it derives from (anything else Starsim: ``module``).
COMPONENT_KINDS: dict[str, str] = {
    **dict.fromkeys(("Network", "DynamicNetwork", "SexualNetwork", "MixingPool", "MixingPools", "Route"), "network"),
    **dict.fromkeys(("Disease", "Infection", "NCD", "SIR", "SIS", "SEIR"), "disease"),
    **dict.fromkeys(("Intervention", "Vx", "Dx", "Tx", "BaseVaccination", "BaseTest", "BaseTreatment"), "intervention"),
    **dict.fromkeys(("Analyzer",), "analyzer"),
    **dict.fromkeys(("Connector",), "connector"),
    **dict.fromkeys(("Demographics", "Births", "Deaths", "Pregnancy"), "demographics"),
    **dict.fromkeys(("Product",), "product"),
}


def is_starsim_root(qualified: str) -> bool:
    """Any class of the ``starsim`` package (``starsim.Sim``, ``starsim.diseases.SIR``, ...)."""
    return qualified.split(".")[0] == STARSIM_MODULE and "." in qualified


def is_sim(qualified: str) -> bool:
    return is_starsim_root(qualified) and qualified.rsplit(".", 1)[-1] == SIM


def component_kind(root: str) -> str:
    name = root.rsplit(".", 1)[-1]
    if name in COMPONENT_KINDS:
        return COMPONENT_KINDS[name]
    return "network" if name.endswith("Net") else "module"


@hookimpl(trylast=True)
def mops_discover_models(source: SourceFile) -> list[DiscoveredModel] | None:
    from modelops_bundle.plugin import ROLE_COMPONENT, DiscoveredModel, find_subclasses, import_table

    table = import_table(source)
    matches = find_subclasses(source, is_starsim_root)
    sims = {match.node.name for match in matches if is_sim(match.root)}
    found: list[DiscoveredModel] = []
    for match in matches:
        if match.node.name in sims:
            continue
        found.append(
            DiscoveredModel(
                class_name=match.node.name,
                rel=source.rel,
                framework=FRAMEWORK,
                line=match.node.lineno,
                bases=_bases(match, table),
                source=source,
                role=ROLE_COMPONENT,
                kind=component_kind(match.root),
            )
        )
    models = [
        (match.node.name, match.node.lineno, _bases(match, table), "sim")
        for match in matches
        if match.node.name in sims
    ]
    starsim_classes = {match.node.name for match in matches}
    models += [(name, line, (), "sim factory") for name, line in _factories(source, table, sims, starsim_classes)]
    if not models:
        return found
    components = _components(source, found)
    for name, line, bases, kind in models:
        found.append(
            DiscoveredModel(
                class_name=name,
                rel=source.rel,
                framework=FRAMEWORK,
                line=line,
                bases=bases,
                source=source,
                kind=kind,
                components=components,
            )
        )
    return found


def _bases(match: ClassMatch, table: ImportTable) -> tuple[str, ...]:
    return tuple(filter(None, (table.qualified(base) for base in match.node.bases)))


# -------------------------------------------------------------------------------------- factories


def _factories(
    source: SourceFile, table: ImportTable, sims: set[str], starsim_classes: set[str]
) -> list[tuple[str, int]]:
    """Public module-level functions, and classes with a ``__call__``, that return a sim they build."""
    import ast

    from modelops_bundle.plugin import find_project_class, module_level_defs

    def builds_sim(call: ast.expr) -> bool:
        if not isinstance(call, ast.Call):
            return False
        qualified = table.qualified(call.func)
        if qualified is None:
            return False
        if is_sim(qualified) or qualified in sims:
            return True
        found = find_project_class(source, qualified) if source.sources is not None else None
        return found is not None and _derives_from_sim(found)

    found = []
    for node in module_level_defs(source.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not node.name.startswith("_") and _returns_sim(node, table, builds_sim):
                found.append((node.name, node.lineno))
        elif isinstance(node, ast.ClassDef) and node.name not in starsim_classes and not node.name.startswith("_"):
            call = next(
                (item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__call__"), None
            )
            if call is not None and _returns_sim(call, table, builds_sim):
                found.append((node.name, node.lineno))
    return found


def _returns_sim(
    function: ast.FunctionDef | ast.AsyncFunctionDef, table: ImportTable, builds_sim: Callable[[ast.expr], bool]
) -> bool:
    """Annotated ``-> ss.Sim``, or returns a sim call or a name bound to one."""
    import ast

    if function.returns is not None and is_sim(table.qualified(function.returns) or ""):
        return True
    bound: set[str] = set()
    returned: list[ast.expr] = []
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and builds_sim(node.value):
            bound.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and node.value is not None and builds_sim(node.value):
            if isinstance(node.target, ast.Name):
                bound.add(node.target.id)
        elif isinstance(node, ast.Return) and node.value is not None:
            returned.append(node.value)
    return any(builds_sim(value) or (isinstance(value, ast.Name) and value.id in bound) for value in returned)


def _derives_from_sim(found: tuple[SourceFile, ast.ClassDef]) -> bool:
    from modelops_bundle.plugin import find_subclasses

    source, node = found
    return any(match.node is node and is_sim(match.root) for match in find_subclasses(source, is_starsim_root))


# ------------------------------------------------------------------------------------- components


def _components(source: SourceFile, local: list[DiscoveredModel]) -> tuple[str, ...]:
    """Entrypoints of the Starsim components defined in ``source`` or in the project files it imports."""
    from modelops_bundle.plugin import code_closure, find_subclasses, module_name_for

    entrypoints = {f"{module_name_for(source.rel)}:{item.class_name}" for item in local}
    if source.sources is not None:
        for rel in sorted(code_closure(source.sources, [source.rel]).files - {source.rel}):
            other = source.sources.try_get(rel)
            if other is None:
                continue
            for match in find_subclasses(other, is_starsim_root):
                if not is_sim(match.root):
                    entrypoints.add(f"{module_name_for(rel)}:{match.node.name}")
    return tuple(sorted(entrypoints))
