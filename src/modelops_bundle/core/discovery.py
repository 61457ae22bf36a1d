"""What model and target discovery plugins receive and return, and the per-run source cache they share.

Discovery reads source code (``ast``) and never imports user code: a model file with a syntax error or
a missing dependency can still be reported precisely, and registering a model runs nothing.

Names in source are judged by what they are bound to, not by how they are spelt: every ``import`` in a
file fills an :class:`ImportTable` (local name -> dotted origin), so ``BM`` in ``from modelops_calabaria
import BaseModel as BM`` and ``mc.BaseModel`` after ``import modelops_calabaria as mc`` both read as
``modelops_calabaria.BaseModel``. :func:`find_subclasses` follows base classes through the same file and,
cheaply, into project-local modules, so plugins only say which qualified names are roots.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.errors import UsageError

if TYPE_CHECKING:
    from modelops_bundle.core.hooks import Answers
    from modelops_bundle.core.plugins import PluginHost

#: Folders, below the project root, that hold importable top-level modules (src layout included).
IMPORT_ROOTS = ("", "src/")

#: How many re-export hops (``from .impl import X`` in an ``__init__.py``) a class lookup follows.
MAX_REEXPORT_HOPS = 8


def module_name_for(rel: str) -> str:
    """Dotted module name of a project file (``src/pkg/m.py`` -> ``pkg.m``, ``pkg/__init__.py`` -> ``pkg``).

    A leading ``src/`` is dropped because in a src layout that folder is on ``sys.path``, not a package.
    """
    stem = rel[:-3] if rel.endswith(".py") else rel
    parts = stem.split("/")
    if len(parts) > 1 and parts[0] == "src":
        parts = parts[1:]
    if len(parts) > 1 and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@dataclass(frozen=True)
class SourceFile:
    """One Python file of the project, parsed once and shared by every discovery plugin."""

    rel: str  # project-relative POSIX path
    path: Path  # absolute path
    text: str
    tree: ast.Module
    #: The run's parse cache, when the file came from one: lets plugins follow project-local imports.
    sources: ProjectSources | None = field(default=None, compare=False, repr=False)

    @property
    def module_name(self) -> str:
        """Dotted module name relative to the project root (``models/seir.py`` -> ``models.seir``)."""
        return module_name_for(self.rel)


#: :attr:`DiscoveredModel.role` of a model: registered by ``register-model PATH`` without ``--class``.
ROLE_MODEL = "model"
#: :attr:`DiscoveredModel.role` of a framework building block (a Starsim network, disease, intervention...):
#: not registered unless named with ``--class``; recorded in the ``components`` of the models using it.
ROLE_COMPONENT = "component"


@dataclass(frozen=True)
class DiscoveredModel:
    """A model class (or function: ``class_name`` is then the function's name) found in a source file."""

    class_name: str
    rel: str
    framework: str  # "calabaria", "starsim", or a third-party framework name
    line: int = 0
    outputs: tuple[str, ...] = ()
    bases: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    #: ``"model"`` or ``"component"`` (see :data:`ROLE_COMPONENT`); what a component is, in ``kind``.
    role: str = ROLE_MODEL
    #: What kind of model or component, in the framework's words (``"sim"``, ``"sim factory"``, ``"network"``).
    kind: str = ""
    #: Entrypoints (``module:Name``) of the framework components the model's code defines or imports.
    components: tuple[str, ...] = ()
    #: The parsed file (and through it the run's parse cache); absent for models built by hand.
    source: SourceFile | None = field(default=None, compare=False, repr=False)

    @property
    def entrypoint(self) -> str:
        return f"{module_name_for(self.rel)}:{self.class_name}"


@dataclass(frozen=True)
class DiscoveredTarget:
    """A calibration target (a decorated function) found in a source file."""

    name: str
    function: str
    rel: str
    model_output: str | None = None
    data: tuple[str, ...] = ()
    line: int = 0
    #: Decorator arguments that were not literals and could therefore not be read without running code.
    unreadable: tuple[str, ...] = ()

    @property
    def entrypoint(self) -> str:
        return f"{module_name_for(self.rel)}:{self.function}"


@dataclass
class CodeDependencies:
    """Project-local files a model's code depends on, and imports that could not be resolved."""

    files: set[str] = field(default_factory=set)
    unresolved: set[str] = field(default_factory=set)  # "rel:line: why" for relative/local imports
    broken: dict[str, str] = field(default_factory=dict)  # rel -> why it could not be read or parsed

    def update(self, other: CodeDependencies) -> None:
        self.files |= other.files
        self.unresolved |= other.unresolved
        self.broken.update(other.broken)


# ----------------------------------------------------------------------------------------- errors


class SourceFileError(UsageError):
    """A Python file that is missing, unreadable or not valid Python; names the file and line."""

    def __init__(self, rel: str, reason: str, line: int | None = None) -> None:
        where = f"{rel}:{line}" if line else rel
        super().__init__(f"{where}: {reason}")
        self.rel = rel
        self.reason = reason
        self.line = line


# -------------------------------------------------------------------------------------- parse cache


class ProjectSources:
    """A per-run cache of parsed project files and of file-existence checks.

    Registering, refreshing or checking many models reads each Python file at most once per run, and
    module resolution asks the file system about each candidate path at most once.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix = str(root) + os.sep
        self._parsed: dict[str, SourceFile | SourceFileError] = {}
        self._is_file: dict[str, bool] = {}
        self._is_dir: dict[str, bool] = {}
        #: Derived per-run data (import edges, import tables), keyed by the deriving module's own prefix.
        self.memo: dict[tuple[str, str], Any] = {}

    def is_file(self, rel: str) -> bool:
        known = self._is_file.get(rel)
        if known is None:
            known = self._is_file[rel] = os.path.isfile(self._prefix + rel)
        return known

    def is_dir(self, rel: str) -> bool:
        known = self._is_dir.get(rel)
        if known is None:
            known = self._is_dir[rel] = os.path.isdir(self._prefix + rel)
        return known

    def get(self, rel: str) -> SourceFile:
        """The parsed file, or :class:`SourceFileError` (missing, unreadable, syntax error)."""
        cached = self._parsed.get(rel)
        if cached is None:
            cached = self._parsed[rel] = self._load(rel)
        if isinstance(cached, SourceFileError):
            raise cached
        return cached

    def try_get(self, rel: str) -> SourceFile | None:
        try:
            return self.get(rel)
        except SourceFileError:
            return None

    def _load(self, rel: str) -> SourceFile | SourceFileError:
        path = self.root / rel
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return SourceFileError(rel, "no such file")
        except IsADirectoryError:
            return SourceFileError(rel, "is a folder, not a Python file")
        except OSError as exc:
            return SourceFileError(rel, f"cannot read: {exc.strerror or exc}")
        try:
            # Bytes, not text: the parser then honours a PEP 263 encoding declaration.
            tree = ast.parse(data, filename=rel)
        except SyntaxError as exc:
            return SourceFileError(rel, f"syntax error: {exc.msg}", exc.lineno)
        except ValueError as exc:  # NUL bytes and the like
            return SourceFileError(rel, f"not valid Python source: {exc}")
        return SourceFile(rel, path, data.decode("utf-8", errors="replace"), tree, self)

    # ------------------------------------------------------------------ module resolution

    def module_file(self, dotted: str) -> str | None:
        """The file that defines module ``dotted`` (``pkg/m.py`` or ``pkg/m/__init__.py``), if local."""
        stem = dotted.replace(".", "/")
        for base in IMPORT_ROOTS:
            found = self.file_for_stem(base + stem)
            if found is not None:
                return found
        return None

    def file_for_stem(self, stem: str) -> str | None:
        if self.is_file(stem + ".py"):
            return stem + ".py"
        if self.is_file(stem + "/__init__.py"):
            return stem + "/__init__.py"
        return None

    def resolve(self, importer_rel: str, module: str) -> str | None:
        """The file of ``module`` as written in ``importer_rel`` (leading dots for relative imports)."""
        name = module.lstrip(".")
        level = len(module) - len(name)
        if level == 0:
            return self.module_file(name) if name else None
        base = self.package_dir(importer_rel, level)
        if base is None:
            return None
        if not name:
            init = f"{base}/__init__.py" if base else "__init__.py"
            return init if self.is_file(init) else None
        stem = name.replace(".", "/")
        return self.file_for_stem(f"{base}/{stem}" if base else stem)

    def package_dir(self, importer_rel: str, level: int) -> str | None:
        """The folder a relative import of ``level`` dots starts from, or ``None`` above the project."""
        parts = importer_rel.split("/")[:-1]
        up = level - 1
        if up > len(parts):
            return None
        return "/".join(parts[: len(parts) - up])


def import_origin(node: ast.ImportFrom) -> str:
    """The module of a ``from`` import written with its leading dots (``from ..a import b`` -> ``..a``)."""
    return "." * node.level + (node.module or "")


# --------------------------------------------------------------------------------- import tables


@dataclass
class ImportTable:
    """What each imported name of a file stands for: local name -> dotted origin.

    ``import a.b`` binds ``a`` -> ``a``; ``import a.b as x`` binds ``x`` -> ``a.b``; ``from m import n as k``
    binds ``k`` -> ``m.n``; relative origins keep their dots (``from .base import X`` -> ``.base.X``).
    Imports anywhere in the file count (inside ``try``/``if``/functions): fallback imports such as
    ``try: from modelops_calabaria import BaseModel / except ImportError: from .base import BaseModel``
    are the norm in model code.
    """

    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, tree: ast.Module) -> ImportTable:
        table = cls()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        table.names[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        table.names[top] = top
            elif isinstance(node, ast.ImportFrom):
                origin = import_origin(node)
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    joined = f"{origin}.{alias.name}" if not origin.endswith(".") else origin + alias.name
                    table.names[alias.asname or alias.name] = joined
        return table

    def qualified(self, expr: ast.expr) -> str | None:
        """The dotted origin of a name or attribute chain (``mc.BaseModel`` -> ``modelops_calabaria.BaseModel``).

        A name bound by no import stands for itself. Anything else (a call, a subscript) gives ``None``.
        """
        if isinstance(expr, ast.Name):
            return self.names.get(expr.id, expr.id)
        if isinstance(expr, ast.Attribute):
            inner = self.qualified(expr.value)
            return f"{inner}.{expr.attr}" if inner is not None else None
        return None


def import_table(source: SourceFile) -> ImportTable:
    """The file's :class:`ImportTable`, computed once per run when the file came from a cache."""
    if source.sources is None:
        return ImportTable.of(source.tree)
    key = ("discovery.imports", source.rel)
    table = source.sources.memo.get(key)
    if table is None:
        table = source.sources.memo[key] = ImportTable.of(source.tree)
    assert isinstance(table, ImportTable)
    return table


def last_name(qualified: str) -> str:
    return qualified.rsplit(".", 1)[-1]


def decorator_call(decorator: ast.expr) -> tuple[ast.expr, ast.Call | None]:
    """``@f(...)`` -> (``f``, the call); ``@f`` -> (``f``, ``None``)."""
    if isinstance(decorator, ast.Call):
        return decorator.func, decorator
    return decorator, None


def module_level_defs(tree: ast.Module) -> Iterator[ast.stmt]:
    """Statements defined at module level, including inside top-level ``if``/``try``/``with`` blocks.

    Function and class bodies are not entered: what is defined there cannot be named by an entrypoint.
    """
    stack: list[Sequence[ast.stmt]] = [tree.body]
    while stack:
        for node in stack.pop():
            if isinstance(node, ast.If):
                stack.extend([node.body, node.orelse])
            elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":  # TryStar: ``except*``, 3.11+
                stack.extend([getattr(node, "body"), getattr(node, "orelse"), getattr(node, "finalbody")])  # noqa: B009
                stack.extend(handler.body for handler in getattr(node, "handlers"))  # noqa: B009
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                stack.append(node.body)
            else:
                yield node


def module_classes(source: SourceFile) -> dict[str, ast.ClassDef]:
    """Module-level classes by name (a later definition of a name wins, as at run time)."""
    return {node.name: node for node in module_level_defs(source.tree) if isinstance(node, ast.ClassDef)}


def module_functions(source: SourceFile) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {
        node.name: node
        for node in module_level_defs(source.tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


# ------------------------------------------------------------------------------- class ancestry


@dataclass(frozen=True)
class ClassMatch:
    """A class that derives from a root base, with the project classes in between (nearest first)."""

    source: SourceFile
    node: ast.ClassDef
    ancestors: tuple[tuple[SourceFile, ast.ClassDef], ...]
    root: str  # the qualified name of the root base that was reached


class _Ancestry:
    """Decides, per (file, class), whether a class reaches a root base; memoised, cycle-safe."""

    def __init__(self, is_root: Callable[[str], bool]) -> None:
        self.is_root = is_root
        self.memo: dict[tuple[str, str], tuple[tuple[tuple[SourceFile, ast.ClassDef], ...], str] | None] = {}
        self.active: set[tuple[str, str]] = set()

    def reach(
        self, source: SourceFile, node: ast.ClassDef
    ) -> tuple[tuple[tuple[SourceFile, ast.ClassDef], ...], str] | None:
        key = (source.rel, node.name)
        if key in self.memo:
            return self.memo[key]
        if key in self.active:  # a class hierarchy cycle (invalid at run time): not a model
            return None
        self.active.add(key)
        try:
            result = self._reach(source, node)
        finally:
            self.active.discard(key)
        self.memo[key] = result
        return result

    def _reach(
        self, source: SourceFile, node: ast.ClassDef
    ) -> tuple[tuple[tuple[SourceFile, ast.ClassDef], ...], str] | None:
        table = import_table(source)
        local = module_classes(source)
        for base in node.bases:
            qualified = table.qualified(base)
            if qualified is None:
                continue
            if self.is_root(qualified):
                return (), qualified
            parent: tuple[SourceFile, ast.ClassDef] | None = None
            if isinstance(base, ast.Name) and base.id in local and local[base.id] is not node:
                parent = (source, local[base.id])
            elif source.sources is not None:
                parent = find_project_class(source, qualified)
            if parent is not None:
                above = self.reach(*parent)
                if above is not None:
                    return (parent, *above[0]), above[1]
        return None


def split_qualified(qualified: str) -> tuple[str, str]:
    """``pkg.mod.Name`` -> (``pkg.mod``, ``Name``); relative dots stay with the module (``.N`` -> ``.``, ``N``)."""
    rest = qualified.lstrip(".")
    dots = qualified[: len(qualified) - len(rest)]
    module, _, attr = rest.rpartition(".")
    return dots + module, attr


def find_project_class(source: SourceFile, qualified: str) -> tuple[SourceFile, ast.ClassDef] | None:
    """The project-local class a qualified name in ``source`` stands for, following re-exports."""
    sources = source.sources
    if sources is None:
        return None
    current, name = source, qualified
    for _hop in range(MAX_REEXPORT_HOPS):
        module, attr = split_qualified(name)
        rel = sources.resolve(current.rel, module) if module else None
        if rel is None:
            return None
        target = sources.try_get(rel)
        if target is None:
            return None
        classes = module_classes(target)
        if attr in classes:
            return target, classes[attr]
        origin = import_table(target).names.get(attr)
        if origin is None or origin == attr:
            return None
        current, name = target, origin
    return None


def find_subclasses(source: SourceFile, is_root: Callable[[str], bool]) -> list[ClassMatch]:
    """Module-level classes of ``source`` deriving, directly or through other project classes, from a root.

    ``is_root`` receives qualified base names (see :class:`ImportTable`). Bases defined in the same file
    are followed always; bases imported from project-local modules when ``source`` came from a
    :class:`ProjectSources` cache. Classes that are themselves roots are not reported.
    """
    ancestry = _Ancestry(is_root)
    matches = []
    for node in module_classes(source).values():
        reached = ancestry.reach(source, node)
        if reached is not None:
            matches.append(ClassMatch(source, node, reached[0], reached[1]))
    return sorted(matches, key=lambda match: match.node.lineno)


def string_arg(call: ast.Call, keyword: str, position: int = 0) -> str | None:
    """A string literal passed as ``keyword=`` or as positional argument ``position``."""
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value.value if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str) else None
    if len(call.args) > position:
        arg = call.args[position]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
    return None


# ------------------------------------------------------------------------------ calling the hooks


@dataclass
class DiscoveryResult:
    """What every discovery plugin found in one file, and the plugins that failed on it."""

    models: list[DiscoveredModel] = field(default_factory=list)
    targets: list[DiscoveredTarget] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    components: list[DiscoveredModel] = field(default_factory=list)


def _discovered(
    host: PluginHost, answers: Answers[Any], source: SourceFile, name_of: Callable[[Any], str], what: str
) -> tuple[list[Any], list[str]]:
    """The answers of a discovery hook on ``source``: every plugin's findings (the first report of a name
    wins, sorted by line) and the failures of the plugins that raised."""
    from modelops_bundle.core.plugins import describe_plugin

    found_items: list[Any] = []
    failures = [
        f"{what} plugin {describe_plugin(host, plugin)} failed on {source.rel}: {error}"
        for plugin, error in answers.failures
    ]
    seen: set[str] = set()
    for found in answers.values:
        for item in found or ():
            if name_of(item) not in seen:
                seen.add(name_of(item))
                found_items.append(item)
    found_items.sort(key=lambda item: (item.line, name_of(item)))
    return found_items, failures


def discover_models(host: PluginHost, source: SourceFile) -> DiscoveryResult:
    """Models in ``source`` from every discovery plugin; the first report of a class wins.

    Components (``role == "component"``) come back in :attr:`DiscoveryResult.components`, not as models.
    """
    answers = host.hook.mops_discover_models(source=source)
    found, failures = _discovered(host, answers, source, lambda m: m.class_name, "discovery")
    models = [item for item in found if getattr(item, "role", ROLE_MODEL) != ROLE_COMPONENT]
    components = [item for item in found if getattr(item, "role", ROLE_MODEL) == ROLE_COMPONENT]
    return DiscoveryResult(models=models, components=components, failures=failures)


def discover_targets(host: PluginHost, source: SourceFile) -> DiscoveryResult:
    """Targets in ``source`` from every discovery plugin; the first report of a function wins."""
    answers = host.hook.mops_discover_targets(source=source)
    targets, failures = _discovered(host, answers, source, lambda t: t.function, "target")
    return DiscoveryResult(targets=targets, failures=failures)
