"""No import loop among the package's modules at run time.

The graph is read from the source with :mod:`ast`: every import counts wherever it stands -- at the top of
a module or inside a function (a function-local import hides a loop from the interpreter, not from the
design) -- except imports only a type checker runs (under ``if TYPE_CHECKING:``). ``from package import
name`` counts as an import of ``package.name`` when that is a module, else of ``package``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import modelops_bundle

PACKAGE = Path(modelops_bundle.__file__).parent


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        if "templates" in path.relative_to(PACKAGE).parts:
            continue  # files `init` and `plugin new` copy out, never imported from the package
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking_only(tree: ast.Module) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def import_graph() -> dict[str, set[str]]:
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_only(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
            for target in targets:
                if target.startswith(f"{PACKAGE.name}.") or target == PACKAGE.name:
                    imported = owner(target)
                    if imported is not None and imported != name:
                        graph[name].add(imported)
    return graph


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph()
    assert graph.get("modelops_bundle.core.pull")  # the graph is read
    found = loops(graph)
    assert found == [], "import loops (a module in each reaches the others and comes back):\n" + "\n".join(
        " -> ".join(loop) for loop in found
    )


def test_the_loop_finder_finds_a_loop() -> None:
    assert loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert loops({"a": {"b"}, "b": set()}) == []


def test_core_never_imports_the_cli() -> None:
    graph = import_graph()
    offenders = {
        module: sorted(target for target in targets if target.startswith("modelops_bundle.cli"))
        for module, targets in graph.items()
        if module.startswith("modelops_bundle.core")
    }
    assert {module: targets for module, targets in offenders.items() if targets} == {}


def test_every_module_has_its_job_in_the_architecture_notes() -> None:
    """docs/architecture.md names every module with its job; a new module gets its row."""
    notes = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text(encoding="utf-8")
    unnamed = sorted(
        str(path.relative_to(PACKAGE))
        for path in _modules().values()
        if path.name != "__init__.py" and f"`{path.name}`" not in notes and f"/{path.name}`" not in notes
        and f"`{path.stem}`" not in notes  # rows of oci_http/ name modules without ".py"
    )  # fmt: skip
    assert len(_modules()) > 100
    assert unnamed == []
