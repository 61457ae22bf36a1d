"""The public plugin API, ``modelops_bundle.plugin``: what a plugin imports, and all it imports.

* Every plugin the project ships or shows -- the built-in plugins, the ``plugin new`` templates, the example
  plugins, the code in docs/plugins.md (the framework plugin ``test_framework_plugin`` builds included),
  the README and CONTRIBUTING, and the examples in the docstrings of the public test modules -- imports
  nothing of ``modelops_bundle`` but the public modules: never ``core``, ``cli`` or ``hookspecs`` (checked
  on the syntax tree, function-local imports included, for Python files; on the import lines of code in
  text). Only the built-ins may import their sibling modules in ``modelops_bundle.plugins``.
* ``modelops_bundle.plugin`` names exactly ``__all__``, every name loads, the names type checkers see are
  the names served at run time, and importing the module loads nothing of the core.
* The plugins that ship declare the plugin API they are written against, and it is this one.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops_bundle import PLUGIN_API
from tests.meta.hooks import ROOT

SRC = ROOT / "src" / "modelops_bundle"
PLUGINS = SRC / "plugins"
TEMPLATES = SRC / "templates" / "plugin"
EXAMPLES = ROOT / "examples" / "plugins"

#: What a plugin (or its tests) may import from the package.
PUBLIC = frozenset(
    {
        "modelops_bundle",
        "modelops_bundle.plugin",
        "modelops_bundle.testing",
        "modelops_bundle.storage_conformance",
        "modelops_bundle.runner_conformance",
        "modelops_bundle.api",
        "modelops_bundle.dask",
    }
)
#: The two registry backend implementations in plugins/ are the core's own OCI machinery -- the HTTP client
#: with its auth and retries, the journalled layout store -- reached only through the lazy stand-ins of
#: oci_layout.py and oci_distribution.py (which keep the rule). docs/architecture.md says so.
CORE_IMPLEMENTATIONS = frozenset({"registry_layout.py", "registry_distribution.py"})

IMPORT_LINE = re.compile(
    r"^\s*(?:from\s+(modelops_bundle[\w.]*)\s+import\s+\(?([\w\s,]*)|import\s+(modelops_bundle[\w.]*))"
)


def private(module: str, names: list[str], *, builtin: bool) -> list[str]:
    """The non-public modules among ``module`` and ``from module import names``."""
    if builtin and (module == "modelops_bundle.plugins" or module.startswith("modelops_bundle.plugins.")):
        return []
    if module == "modelops_bundle":  # from modelops_bundle import core / api / hookimpl ...
        return [f"modelops_bundle.{name}" for name in names if f"modelops_bundle.{name}" not in PUBLIC | {
            "modelops_bundle.hookimpl", "modelops_bundle.PLUGIN_API", "modelops_bundle.__version__"}]  # fmt: skip
    if module.split(".")[0] != "modelops_bundle" or module in PUBLIC:
        return []
    return [module]


def imports_of_source(text: str, *, package: str, builtin: bool) -> list[tuple[int, str]]:
    """``(line, module)`` of every private import in Python source, function-local ones included."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found += [(node.lineno, module) for module in private(alias.name, [], builtin=builtin)]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolved against the file's package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{module}" if module else base
            names = [alias.name for alias in node.names]
            found += [(node.lineno, bad) for bad in private(module, names, builtin=builtin)]
    return found


def imports_of_text(text: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every private import line in code shown in text (docs, docstrings)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        match = IMPORT_LINE.match(line)
        if match:
            module = match.group(1) or match.group(3)
            names = [name.strip() for name in (match.group(2) or "").split(",") if name.strip()]
            found += [(number, bad) for bad in private(module, names, builtin=False)]
    return found


def rendered(path: Path) -> str:
    """A template with its placeholders filled, so that it parses."""
    return re.sub(
        r"\{\{(\w+)\}\}", lambda m: "1.0" if m.group(1) == "plugin_api" else f"tmpl_{m.group(1)}", path.read_text()
    )


def python_sources() -> Iterator[tuple[Path, str, str, bool]]:
    """``(path, source, package, builtin)`` of every plugin-side Python file."""
    for path in sorted(PLUGINS.glob("*.py")):
        if path.name not in CORE_IMPLEMENTATIONS:
            yield path, path.read_text(), "modelops_bundle.plugins", True
    for path in sorted(TEMPLATES.rglob("*.py.tmpl")):
        yield path, rendered(path), "tmpl_package", False
    for path in sorted(EXAMPLES.rglob("*.py")):
        yield path, path.read_text(), path.parent.name, False


def section(text: str, heading: str) -> str:
    """The lines of a Markdown text from the heading starting with ``heading`` to the next heading of its
    level or above (a ``#`` line inside a fenced code block is no heading)."""
    level = len(heading) - len(heading.lstrip("#"))
    lines, inside, fenced = [], False, False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith(heading):
            inside = True
        elif not fenced and inside and re.match(rf"#{{1,{level}}} ", line):
            break
        if inside:
            lines.append(line)
    return "".join(lines)


def text_sources() -> Iterator[tuple[Path, str]]:
    """Code shown to plugin authors: the plugin guide, the plugin sections of README and CONTRIBUTING (the
    rest of the README shows the Python API, another public surface), the template and example READMEs,
    the docstrings of the public modules."""
    yield ROOT / "docs" / "plugins.md", (ROOT / "docs" / "plugins.md").read_text()
    yield ROOT / "README.md", section((ROOT / "README.md").read_text(), "### Plugins:")
    yield ROOT / "CONTRIBUTING.md", section((ROOT / "CONTRIBUTING.md").read_text(), "## Plugins")
    for path in sorted([*TEMPLATES.rglob("*.md.tmpl"), *EXAMPLES.rglob("README.md")]):
        yield path, path.read_text()
    for name in ("plugin.py", "testing.py", "storage_conformance.py", "runner_conformance.py"):
        path = SRC / name
        yield path, ast.get_docstring(ast.parse(path.read_text())) or ""


def test_every_shipped_plugin_imports_only_the_public_api() -> None:
    problems = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path, source, package, builtin in python_sources()
        for line, module in imports_of_source(source, package=package, builtin=builtin)
    ]
    problems += [
        f"{path.relative_to(ROOT)}:{line}: shows an import of {module}"
        for path, text in text_sources()
        for line, module in imports_of_text(text)
    ]
    assert not problems, "plugins import modelops_bundle.plugin only:\n" + "\n".join(problems)


def test_the_check_sees_function_local_and_aliased_imports() -> None:
    source = (
        "import modelops_bundle.core.storage as storage\n"
        "from modelops_bundle import core, hookimpl\n"
        "def f():\n    from modelops_bundle.cli.app import build_app\n"
        "from .registry_layout import OciLayoutRegistry\n"
    )
    assert imports_of_source(source, package="mine", builtin=False) == [
        (1, "modelops_bundle.core.storage"),
        (2, "modelops_bundle.core"),
        (4, "modelops_bundle.cli.app"),
    ]
    assert imports_of_source(source, package="modelops_bundle.plugins", builtin=True)[-1:] == [
        (4, "modelops_bundle.cli.app")
    ]
    assert imports_of_text("text\n    from modelops_bundle.core.errors import X\nfrom modelops_bundle import (\n") == [
        (2, "modelops_bundle.core.errors")
    ]


def test_the_sources_checked_are_there() -> None:
    paths = {path.relative_to(ROOT).as_posix() for path, *_ in python_sources()}
    assert (
        "src/modelops_bundle/plugins/storage.py" in paths and "src/modelops_bundle/plugins/runner_starsim.py" in paths
    )
    assert sum(path.startswith("src/modelops_bundle/templates/plugin/") for path in paths) >= 8
    assert "examples/plugins/mops-mesa/src/mops_mesa/plugin.py" in paths
    texts = {path.relative_to(ROOT).as_posix(): text for path, text in text_sources()}
    assert "# file: mops-walkers/src/mops_walkers/plugin.py" in texts["docs/plugins.md"]  # the framework plugin
    assert "MOPS_PLUGIN_API" in texts["README.md"] and "def mops_model_runner" in texts["README.md"]
    assert "def mops_add_commands" in texts["CONTRIBUTING.md"] and "### Register it" in texts["CONTRIBUTING.md"]


# --------------------------------------------------------------------------------------- the module


def test_all_is_what_the_module_serves_and_what_type_checkers_see() -> None:
    import modelops_bundle.plugin as api

    eager = {"hookimpl", "API_VERSION", "tracked_files"}
    assert sorted(api.__all__) == sorted(set(api.__all__)), "duplicates in __all__"
    assert set(api.__all__) == set(api._MODULE_OF) | eager
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    # The names imported under TYPE_CHECKING (what mypy sees) are the ones served, from the same modules.
    tree = ast.parse((SRC / "plugin.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    typed = {alias.name: node.module for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert typed == api._MODULE_OF
    assert ".".join(map(str, PLUGIN_API)) == api.API_VERSION
    assert sorted(dir(api)) == sorted(api.__all__)
    with pytest.raises(AttributeError):
        api.Workspace  # noqa: B018 -- internal classes are not served


def test_importing_the_module_loads_nothing_of_the_core() -> None:
    probe = (
        "import sys\n"
        "from modelops_bundle.plugin import API_VERSION, hookimpl\n"
        "print(sorted(m for m in sys.modules if m.startswith('modelops_bundle.') and m != 'modelops_bundle.plugin'))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------- declared versions


def test_the_plugins_that_ship_declare_this_plugin_api() -> None:
    import importlib

    from modelops_bundle.core.plugins import BUILTIN_PLUGINS, api_mismatch

    declared = {}
    for name, module_name in BUILTIN_PLUGINS:
        if module_name.startswith("modelops_bundle.plugins."):
            declared[name] = getattr(importlib.import_module(module_name), "MOPS_PLUGIN_API", None)
    for path in [*EXAMPLES.glob("*/src/*/plugin.py"), *TEMPLATES.glob("*/src/__package__/plugin.py.tmpl")]:
        match = re.search(r'^MOPS_PLUGIN_API = "([^"]+)"', rendered(path), re.M)
        declared[path.relative_to(ROOT).as_posix()] = match.group(1) if match else None
    guide = (ROOT / "docs" / "plugins.md").read_text()
    walkers = guide[guide.index("# file: mops-walkers/src/mops_walkers/plugin.py") :]
    declared["the guide's walkers plugin"] = re.search(r'^MOPS_PLUGIN_API = "([^"]+)"', walkers, re.M).group(1)  # type: ignore[union-attr]

    class Declares:
        def __init__(self, version: object) -> None:
            self.MOPS_PLUGIN_API = version

    problems = {
        where: version for where, version in declared.items() if version is None or api_mismatch(Declares(version))
    }
    assert not problems, f"declarations missing or not this plugin API: {problems}"
    assert len(declared) >= 15


def test_the_guide_lists_every_name_of_the_api() -> None:
    import modelops_bundle.plugin as api

    guide = (ROOT / "docs" / "plugins.md").read_text()
    section = guide[guide.index("## Public API") : guide.index("## Compatibility")]
    listed = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)", section))
    assert sorted(set(api.__all__) - listed) == [], "names of modelops_bundle.plugin missing from 'Public API'"
