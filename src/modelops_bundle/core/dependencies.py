"""Code dependencies: the transitive closure of a file's project-local imports, read from the source.

Resolution follows what ``python`` would do with the project root and ``src/`` on ``sys.path``:

* a file depends on the ``__init__.py`` of every package that encloses it (importing ``a.b.m`` runs
  them first);
* ``import a.b.c`` depends on ``a/__init__.py``, ``a/b/__init__.py`` and ``a/b/c.py`` (or
  ``a/b/c/__init__.py``) -- importing a submodule runs every package ``__init__`` on the way;
* ``from a.b import c`` also depends on ``a/b/c.py`` when ``c`` is a submodule rather than a name;
* relative imports (``from .helpers import f``, ``from .. import x``) resolve against the importing
  file's folder; one that resolves to nothing is reported, because it can only be a mistake;
* an absolute import whose top-level name is not a project file or package (``numpy``, ``starsim``,
  ``modelops_calabaria``) is not local and ignored; one that names a local package but a submodule it
  does not have is reported;
* imports anywhere in a file count (inside ``try``, ``if TYPE_CHECKING:``, functions): a fallback import
  still decides what runs. Dynamic imports (``importlib.import_module(name)``, ``__import__``) are not
  followed -- their target is a run-time value; add such files with ``--code``.

Import cycles are harmless: every file is visited once. Each file's imports are resolved once per run
(:class:`~modelops_bundle.core.discovery.ProjectSources` memo), so the closures of fifty models over a
10,000-file project parse every reachable file exactly once.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelops_bundle.core.discovery import (
    CodeDependencies,
    DiscoveredModel,
    ProjectSources,
    SourceFileError,
    import_origin,
)

if TYPE_CHECKING:
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.project import Project

_EDGES = "dependencies.edges"


@dataclass
class FileImports:
    """The project files one file's imports reach directly, and the imports that resolved to nothing."""

    files: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    broken: str | None = None


def file_imports(sources: ProjectSources, rel: str) -> FileImports:
    """Direct project-local imports of ``rel`` (memoised for the run)."""
    key = (_EDGES, rel)
    cached = sources.memo.get(key)
    if cached is None:
        cached = sources.memo[key] = _file_imports(sources, rel)
    assert isinstance(cached, FileImports)
    return cached


def _file_imports(sources: ProjectSources, rel: str) -> FileImports:
    result = FileImports()
    try:
        source = sources.get(rel)
    except SourceFileError as exc:
        result.broken = exc.message
        return result
    found: dict[str, None] = {}  # ordered set
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                files, problem = _absolute(sources, alias.name)
                found.update(dict.fromkeys(files))
                if problem:
                    result.unresolved.append(f"{rel}:{node.lineno}: import {alias.name}: {problem}")
        elif isinstance(node, ast.ImportFrom):
            files, problem = _from_import(sources, rel, node)
            found.update(dict.fromkeys(files))
            if problem:
                result.unresolved.append(f"{rel}:{node.lineno}: from {import_origin(node)} import ...: {problem}")
    found.pop(rel, None)
    result.files = list(found)
    return result


def _package_chain(sources: ProjectSources, base: str, parts: list[str]) -> tuple[list[str], str | None]:
    """Files run when importing ``parts`` below folder ``base``: each package ``__init__`` and the module.

    Returns the files and the module's own file (``None`` when it does not exist).
    """
    files = []
    prefix = base
    for index, part in enumerate(parts):
        prefix = f"{prefix}/{part}" if prefix else part
        if index < len(parts) - 1:
            init = f"{prefix}/__init__.py"
            if sources.is_file(init):
                files.append(init)
            continue
        module = sources.file_for_stem(prefix)
        if module is not None:
            files.append(module)
        return files, module
    return files, None


def _import_base(sources: ProjectSources, top: str) -> tuple[str, bool] | None:
    """The import root (``""`` or ``"src"``) holding top-level name ``top``, and whether it is a regular
    module or package (a file) rather than a bare folder (namespace package)."""
    for base in ("", "src"):
        stem = f"{base}/{top}" if base else top
        if sources.file_for_stem(stem) is not None:
            return base, True
    for base in ("", "src"):
        stem = f"{base}/{top}" if base else top
        if sources.is_dir(stem):
            return base, False
    return None


def _absolute(sources: ProjectSources, dotted: str) -> tuple[list[str], str | None]:
    parts = dotted.split(".")
    located = _import_base(sources, parts[0])
    if located is None:
        return [], None  # not a project module: a third-party or standard-library import
    base, regular = located
    files, module = _package_chain(sources, base, parts)
    if module is None:
        # A bare folder of the same name as an installed package is common (``data/``, ``docs/``):
        # only a regular project package missing a submodule is a mistake worth reporting.
        return files, ("no such module in the project" if regular and len(parts) > 1 else None)
    return files, None


def _from_import(sources: ProjectSources, rel: str, node: ast.ImportFrom) -> tuple[list[str], str | None]:
    if node.level == 0:
        if not node.module:
            return [], None
        parts = node.module.split(".")
        located = _import_base(sources, parts[0])
        if located is None:
            return [], None  # not a project module
        package, regular = located
        missing = "no such module in the project" if regular else None
    else:
        relative_base = sources.package_dir(rel, node.level)
        if relative_base is None:
            return [], "relative import beyond the top of the project"
        package, parts, missing = relative_base, node.module.split(".") if node.module else [], "no such module"
    files: list[str] = []
    module: str | None = None
    if parts:
        files, module = _package_chain(sources, package, parts)
    folder = "/".join(part for part in (package, *parts) if part)
    if not parts or module is None:
        init = f"{folder}/__init__.py" if folder else "__init__.py"
        if folder and not sources.is_dir(folder):
            return files, missing  # neither a module nor a (namespace) package
        if not parts and sources.is_file(init):
            files.append(init)
    # ``from pkg import name``: ``name`` may be a submodule (``pkg/name.py``) rather than an attribute.
    for alias in node.names:
        if alias.name != "*":
            submodule = sources.file_for_stem(f"{folder}/{alias.name}" if folder else alias.name)
            if submodule is not None:
                files.append(submodule)
    return files, None


def package_inits(sources: ProjectSources, rel: str) -> list[str]:
    """The ``__init__.py`` files of the packages enclosing ``rel`` (``src/`` itself is an import root)."""
    parts = rel.split("/")[:-1]
    start = 1 if parts[:1] == ["src"] else 0
    inits = []
    for end in range(start + 1, len(parts) + 1):
        init = "/".join(parts[:end]) + "/__init__.py"
        if init != rel and sources.is_file(init):
            inits.append(init)
    return inits


def code_closure(sources: ProjectSources, start: Iterable[str]) -> CodeDependencies:
    """Every project file reachable from ``start`` through imports (``start`` included)."""
    result = CodeDependencies()
    queue = list(start)
    while queue:
        rel = queue.pop()
        if rel in result.files:
            continue
        result.files.add(rel)
        if not rel.endswith(".py"):
            continue
        # Importing ``pkg/sub/m.py`` runs ``pkg/__init__.py`` and ``pkg/sub/__init__.py`` first.
        queue.extend(init for init in package_inits(sources, rel) if init not in result.files)
        imports = file_imports(sources, rel)
        if imports.broken:
            result.broken[rel] = imports.broken
        result.unresolved.update(imports.unresolved)
        queue.extend(path for path in imports.files if path not in result.files)
    return result


def python_dependencies(model: DiscoveredModel, project: Project) -> CodeDependencies:
    """The built-in ``mops_code_dependencies`` answer: the import closure of the model's file.

    Uses the run's parse cache when the model was discovered from one, so many models share it.
    """
    source = model.source
    sources = source.sources if source is not None and source.sources is not None else None
    if sources is None or sources.root != project.root:
        sources = ProjectSources(project.root)
    return code_closure(sources, [model.rel])


def collect_code_dependencies(host: PluginHost, model: DiscoveredModel, project: Project) -> CodeDependencies:
    """The union of every plugin's ``mops_code_dependencies`` answer; failing plugins are reported."""
    from modelops_bundle.core.plugins import describe_plugin

    result = CodeDependencies(files={model.rel})
    answers = host.hook.mops_code_dependencies(model=model, project=project)
    for plugin, failure in answers.failures:
        result.unresolved.add(f"code-dependency plugin {describe_plugin(host, plugin)} failed: {failure}")
    for answer in answers.values:
        if isinstance(answer, CodeDependencies):
            result.update(answer)
    return result
