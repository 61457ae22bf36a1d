"""Built-in discovery of Calabaria calibration targets: functions decorated ``@calibration_target(...)``.

The decorator is recognised under any alias (``from modelops_calabaria import calibration_target as ct``,
``@mc.calibration_target(...)``, a local stand-in of the same name). Its arguments are read as literals,
never evaluated: ``name`` (default: the function name), ``model_output`` and ``data`` -- a mapping of
names to paths (``{"observed": "data/obs.csv"}``), a list of paths, or one path. An argument that is not a
literal is reported in :attr:`~modelops_bundle.core.discovery.DiscoveredTarget.unreadable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops_bundle import hookimpl

if TYPE_CHECKING:  # the discovery machinery (and ``ast``) load on first use: ``--help`` stays fast
    import ast

    from modelops_bundle.plugin import DiscoveredTarget, SourceFile

MOPS_PLUGIN_API = "1.0"

DECORATOR = "calibration_target"


@hookimpl(trylast=True)
def mops_discover_targets(source: SourceFile) -> list[DiscoveredTarget] | None:
    from modelops_bundle.plugin import decorator_call, import_table, last_name, module_functions

    table = import_table(source)
    found = []
    for function in module_functions(source).values():
        for decorator in function.decorator_list:
            func, call = decorator_call(decorator)
            qualified = table.qualified(func)
            if qualified is None or last_name(qualified) != DECORATOR:
                continue
            found.append(_target(source, function, call))
            break
    return found


def _target(
    source: SourceFile, function: ast.FunctionDef | ast.AsyncFunctionDef, call: ast.Call | None
) -> DiscoveredTarget:
    import ast

    from modelops_bundle.plugin import DiscoveredTarget

    arguments = {kw.arg: kw.value for kw in call.keywords if kw.arg} if call is not None else {}
    unreadable: list[str] = []
    name = _literal_str(arguments.get("name"), "name", unreadable) or function.name
    model_output = _literal_str(arguments.get("model_output"), "model_output", unreadable)
    data: list[str] = []
    if "data" in arguments:
        try:
            value = ast.literal_eval(arguments["data"])
        except ValueError:
            unreadable.append("data")
        else:
            data = _paths(value, unreadable)
    return DiscoveredTarget(
        name=name,
        function=function.name,
        rel=source.rel,
        model_output=model_output,
        data=tuple(dict.fromkeys(data)),
        line=function.lineno,
        unreadable=tuple(unreadable),
    )


def _literal_str(node: ast.expr | None, key: str, unreadable: list[str]) -> str | None:
    import ast

    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    unreadable.append(key)
    return None


def _paths(value: object, unreadable: list[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    items: list[object] | None = None
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    if items is None or not all(isinstance(item, str) for item in items):
        unreadable.append("data")
        return [item for item in items or () if isinstance(item, str)]
    return [str(item) for item in items]
