"""Built-in discovery of Calabaria models: classes deriving from ``BaseModel``, read from the source.

A class is a model when it derives -- directly, through other classes of the same file, or through
classes of project-local modules -- from a base whose qualified name ends in ``BaseModel``:
``modelops_calabaria.BaseModel`` under any alias (``from modelops_calabaria import BaseModel as BM``,
``import modelops_calabaria as mc``), and, as upstream does, a ``BaseModel`` imported from anywhere -- model
projects often fall back to a local stand-in (``from models.base import BaseModel``). Pydantic's
``BaseModel`` is the one well-known exception: a configuration class is not a simulation model.

Outputs come from methods decorated ``@model_output("name")`` or ``@model_output(name="...")`` (any alias),
inherited ones included; parameters from ``ParameterSpec("name", ...)`` calls in a ``PARAMS`` assignment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops_bundle import hookimpl

if TYPE_CHECKING:  # the discovery machinery (and ``ast``) load on first use: ``--help`` stays fast
    import ast

    from modelops_bundle.plugin import ClassMatch, DiscoveredModel, ImportTable, SourceFile

MOPS_PLUGIN_API = "1.0"

FRAMEWORK = "calabaria"
ROOT_NAME = "BaseModel"
#: Modules whose ``BaseModel`` is not a simulation model base.
NOT_MODEL_BASES = ("pydantic", "pydantic_settings", "sqlmodel", "beanie", "odmantic")


def is_model_root(qualified: str) -> bool:
    if qualified.rsplit(".", 1)[-1] != ROOT_NAME:
        return False
    top = qualified.lstrip(".").split(".")[0]
    return top not in NOT_MODEL_BASES


@hookimpl(trylast=True)
def mops_discover_models(source: SourceFile) -> list[DiscoveredModel] | None:
    from modelops_bundle.plugin import find_subclasses

    return [_model(match) for match in find_subclasses(source, is_model_root)]


def _model(match: ClassMatch) -> DiscoveredModel:
    from modelops_bundle.plugin import DiscoveredModel, import_table

    table = import_table(match.source)
    outputs: list[str] = []
    parameters: list[str] = []
    # Nearest class first: Calabaria collects outputs along the MRO, a subclass's own ones first.
    for source, node in ((match.source, match.node), *match.ancestors):
        for name in _outputs(node, import_table(source)):
            if name not in outputs:
                outputs.append(name)
        for name in _parameters(node):
            if name not in parameters:
                parameters.append(name)
    bases = tuple(filter(None, (table.qualified(base) for base in match.node.bases)))
    return DiscoveredModel(
        class_name=match.node.name,
        rel=match.source.rel,
        framework=FRAMEWORK,
        line=match.node.lineno,
        outputs=tuple(outputs),
        bases=bases,
        parameters=tuple(parameters),
        source=match.source,
    )


def _outputs(node: ast.ClassDef, table: ImportTable) -> list[str]:
    import ast

    from modelops_bundle.plugin import decorator_call, last_name, string_arg

    names = []
    for item in node.body:
        if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in item.decorator_list:
            func, call = decorator_call(decorator)
            qualified = table.qualified(func)
            if call is None or qualified is None or last_name(qualified) != "model_output":
                continue
            name = string_arg(call, "name")
            if name:
                names.append(name)
    return names


def _parameters(node: ast.ClassDef) -> list[str]:
    """Parameter names from ``PARAMS = ParameterSpace([ParameterSpec("R0", ...), ...])`` (literal names only)."""
    import ast

    from modelops_bundle.plugin import string_arg

    names = []
    for item in node.body:
        targets: list[ast.expr]
        value: ast.expr | None
        if isinstance(item, ast.Assign):
            targets, value = item.targets, item.value
        elif isinstance(item, ast.AnnAssign):
            targets, value = [item.target], item.value
        else:
            continue
        if value is None or not any(isinstance(target, ast.Name) and target.id == "PARAMS" for target in targets):
            continue
        for call in ast.walk(value):
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            spelt = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if spelt == "ParameterSpec":
                name = string_arg(call, "name")
                if name and name not in names:
                    names.append(name)
    return names
