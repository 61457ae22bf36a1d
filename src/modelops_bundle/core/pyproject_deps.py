"""``pyproject.toml`` against the code of the registered models: what they import that it does not declare.

A worker installs a bundle's project from its ``pyproject.toml``; a model that imports ``starsim`` runs
there only if ``[project].dependencies`` names it. Read with ``tomllib`` (``tomli`` before Python 3.11),
so ``init`` and the push preflight can say what is missing, and ``init --add-dependencies`` writes it.

What counts as needed: the module-level imports of the models' code closure (and targets') that are
neither the standard library nor project modules -- not the ones guarded by ``try: ... except
ImportError`` (optional), under ``if TYPE_CHECKING:``, or inside functions (imported lazily, usually
for an optional path). An import name maps to its distribution through the installed distributions
(``importlib.metadata.packages_distributions``), a few well-known names (``yaml`` -> ``pyyaml``), or
else itself. A dependency counts as declared when ``[project].dependencies`` (or Poetry's
``[tool.poetry.dependencies]``) names it; a project whose dependencies are ``dynamic`` is not judged.

Writing keeps the user's file as it is -- comments, order, formatting: the new entries, each rendered by
``tomli-w``, are inserted into the existing ``dependencies = [...]`` array (or a ``dependencies`` key is
added to ``[project]``), and the result is parsed again and must equal the old document plus exactly
those entries, or nothing is written.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from modelops_bundle.core.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from modelops_bundle.core.model_registry import Registry

PYPROJECT = "pyproject.toml"
#: Import names whose distribution is named differently, for when it is not installed here.
KNOWN_DISTRIBUTIONS = {
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "cv2": "opencv-python",
    "bs4": "beautifulsoup4",
    "attr": "attrs",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "jwt": "pyjwt",
    "Bio": "biopython",
    "google": "google-api-core",
    "modelops_calabaria": "modelops-calabaria",
}
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class Needed(NamedTuple):
    """A distribution the models import and the project does not declare."""

    requirement: str  # what to write (``starsim>=3.0,<4`` when a template says so, else the name)
    module: str  # the import name
    used_by: tuple[str, ...]  # project files that import it

    def to_json(self) -> dict[str, Any]:
        return {"requirement": self.requirement, "module": self.module, "used_by": list(self.used_by)}


def normalise(name: str) -> str:
    """PEP 503: ``Foo_Bar.baz`` -> ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str | None:
    match = _REQUIREMENT_NAME.match(requirement)
    return normalise(match.group(1)) if match else None


def load(root: Path) -> dict[str, Any] | None:
    """The parsed ``pyproject.toml`` of ``root``, or ``None`` when there is none."""
    path = root / PYPROJECT
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse(data, str(path))


def parse(data: bytes, source: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10
        import tomli as tomllib
    try:
        parsed: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from exc
    return parsed


def declared(document: Mapping[str, Any]) -> set[str] | None:
    """Normalised names of the declared dependencies; ``None`` when they cannot be known here (declared
    ``dynamic``, or neither a ``[project]`` nor a Poetry table)."""
    project = document.get("project")
    names: set[str] = set()
    if isinstance(project, Mapping):
        if "dependencies" in (project.get("dynamic") or ()):
            return None
        for requirement in project.get("dependencies") or ():
            name = requirement_name(str(requirement))
            if name:
                names.add(name)
        return names
    poetry = ((document.get("tool") or {}).get("poetry") or {}).get("dependencies")
    if isinstance(poetry, Mapping):
        return {normalise(str(name)) for name in poetry if str(name).lower() != "python"}
    return None


def required_imports(root: Path, files: Iterable[str]) -> dict[str, list[str]]:
    """``{top-level import name: [files]}``: the third-party modules ``files`` import at module level,
    unguarded (see the module docstring)."""
    from modelops_bundle.core.discovery import ProjectSources, SourceFileError

    sources = ProjectSources(root)
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    found: dict[str, list[str]] = {}
    for rel in sorted(set(files)):
        if not rel.endswith(".py"):
            continue
        try:
            tree = sources.get(rel).tree
        except SourceFileError:
            continue  # the preflight reports broken code
        for name in _module_level_imports(tree.body):
            if name in stdlib or name == "__future__" or _is_project_module(sources, name):
                continue
            users = found.setdefault(name, [])
            if rel not in users:
                users.append(rel)
    return found


def _module_level_imports(body: Sequence[ast.stmt]) -> Iterable[str]:
    for node in body:
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".", 1)[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                yield node.module.split(".", 1)[0]
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _module_level_imports(node.body)
                yield from _module_level_imports(node.orelse)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            handlers: list[ast.ExceptHandler] = getattr(node, "handlers", [])
            if not any(_catches_import_error(handler) for handler in handlers):
                yield from _module_level_imports(getattr(node, "body", []))
            yield from _module_level_imports(getattr(node, "orelse", []))
            yield from _module_level_imports(getattr(node, "finalbody", []))
        elif isinstance(node, ast.With):
            yield from _module_level_imports(node.body)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    names = {kind.id if isinstance(kind, ast.Name) else getattr(kind, "attr", "") for kind in kinds}
    return bool(names & {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def _is_project_module(sources: Any, name: str) -> bool:
    return any(
        sources.file_for_stem(f"{base}{name}") is not None or sources.is_dir(f"{base}{name}") for base in ("", "src/")
    )


def distribution_of(module: str, installed: Mapping[str, list[str]] | None) -> str:
    """The distribution that provides import name ``module`` (see the module docstring)."""
    if installed and installed.get(module):
        return installed[module][0]
    return KNOWN_DISTRIBUTIONS.get(module, module.replace("_", "-"))


def missing(
    root: Path, files: Iterable[str], *, suggested: Iterable[str] = (), document: Mapping[str, Any] | None = None
) -> list[Needed]:
    """What ``files`` import that the project's ``pyproject.toml`` does not declare (empty when there is
    no ``pyproject.toml``, or its dependencies cannot be judged). ``suggested``: requirement strings to
    write for a name instead of the bare name (a template's own, with versions)."""
    if document is None:
        document = load(root)
    if document is None:
        return []
    names = declared(document)
    if names is None:
        return []
    imports = required_imports(root, files)
    unknown = [module for module in imports if normalise(module) not in names]
    if not unknown:
        return []
    installed = _installed_modules()
    specs = {requirement_name(text): text for text in suggested}
    result: list[Needed] = []
    for module in sorted(unknown):
        distribution = distribution_of(module, installed)
        if normalise(distribution) in names:
            continue
        requirement = specs.get(normalise(distribution)) or distribution
        result.append(Needed(requirement, module, tuple(imports[module])))
    return result


def _installed_modules() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    try:
        return dict(packages_distributions())
    except Exception:  # a broken installed distribution must not break init or push
        return {}


def registry_code(registry: Registry) -> list[str]:
    """The Python files the registered models and targets are made of (their recorded code closures)."""
    return sorted(
        {rel for _kind, _key, record in registry.records() for rel, kind in record.dependencies() if kind == "code"}
    )


def add(root: Path, requirements: Sequence[str]) -> bool:
    """Write ``requirements`` into ``[project].dependencies`` of ``root/pyproject.toml``, keeping every
    other byte of the file; False when there was nothing to add. :class:`UsageError` when the file has
    no ``[project]`` table to add them to (a Poetry project, say): then it is left untouched."""
    from modelops_bundle.core.fsutil import atomic_write_text

    path = root / PYPROJECT
    text = path.read_text(encoding="utf-8")
    before = parse(text.encode("utf-8"), str(path))
    project = before.get("project")
    if not isinstance(project, Mapping):
        raise UsageError(f"{path} has no [project] table to add dependencies to", hint="add them by hand")
    present = {requirement_name(str(item)) for item in project.get("dependencies") or ()}
    wanted = [item for item in dict.fromkeys(requirements) if requirement_name(item) not in present]
    if not wanted:
        return False
    updated = _insert(text, wanted)
    after = parse(updated.encode("utf-8"), str(path))
    expected = {**before, "project": {**project, "dependencies": [*(project.get("dependencies") or []), *wanted]}}
    if after != expected:
        raise UsageError(
            f"{path}: could not add {', '.join(wanted)} without changing anything else",
            hint=f"add them to [project].dependencies by hand: {', '.join(wanted)}",
        )
    atomic_write_text(path, updated)
    return True


def _rendered(requirement: str) -> str:
    """One requirement as a TOML string, rendered by tomli-w (quotes and escapes done right)."""
    import tomli_w

    return tomli_w.dumps({"x": requirement}).split("=", 1)[1].strip()


_PROJECT_HEADER = re.compile(r"^\[project\][ \t]*(#.*)?$", re.M)
_NEXT_TABLE = re.compile(r"^\[", re.M)
_DEPENDENCIES = re.compile(r"^dependencies[ \t]*=[ \t]*\[", re.M)


def _insert(text: str, requirements: Sequence[str]) -> str:
    """``text`` with ``requirements`` appended to ``[project].dependencies`` (see the module docstring)."""
    header = _PROJECT_HEADER.search(text)
    if header is None:
        raise UsageError("pyproject.toml: [project] is not a plain table header here", hint="add them by hand")
    following = _NEXT_TABLE.search(text, header.end())
    end = following.start() if following else len(text)
    section = text[header.end() : end]
    items = [_rendered(requirement) for requirement in requirements]
    array = _DEPENDENCIES.search(section)
    if array is None:  # no dependencies key yet: add one after the table's last line
        at = header.end() + len(section.rstrip())
        return text[:at] + "\ndependencies = [" + ", ".join(items) + "]" + text[at:]
    start = header.end() + array.end()
    close = _closing_bracket(text, start)
    inside = text[start:close]
    stripped = inside.rstrip()
    if "\n" in inside:  # a multi-line array: one entry per line, indented like the others
        indent = re.search(r"\n([ \t]+)\S", inside)
        pad = indent.group(1) if indent else "  "
        if stripped and not _ends_with_comma(stripped):
            stripped = _add_comma(stripped)
        lines = "".join(f"{pad}{item},\n" for item in items)
        return text[:start] + stripped + "\n" + lines + text[close:].lstrip(" \t")
    joined = ", ".join(items)
    if not stripped:
        return text[:start] + joined + text[close:]
    return text[:start] + stripped + ("" if _ends_with_comma(stripped) else ",") + " " + joined + text[close:]


def _ends_with_comma(text: str) -> bool:
    """Whether the last thing before the end (comments aside) is a comma."""
    code = [line for line in (_code_of(line).rstrip() for line in text.splitlines()) if line]
    return bool(code) and code[-1].endswith(",")


def _add_comma(text: str) -> str:
    """``text`` with a comma after its last value, before a comment that may end its last line."""
    lines = text.splitlines()
    for number in range(len(lines) - 1, -1, -1):
        code = _code_of(lines[number]).rstrip()
        if code:
            lines[number] = code + "," + lines[number][len(code) :]
            break
    return "\n".join(lines)


def _code_of(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` inside a string is no comment)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:index]
    return line


def _closing_bracket(text: str, start: int) -> int:
    """The index of the ``]`` that closes the array opened just before ``start`` (strings, comments and
    nested arrays skipped)."""
    depth, index = 1, start
    while index < len(text):
        char = text[index]
        if char == "#":
            index = text.find("\n", index)
            if index < 0:
                break
            continue
        if char in "\"'":
            triple = text[index : index + 3] == char * 3
            quote = char * 3 if triple else char
            index += len(quote)
            while index < len(text) and text[index : index + len(quote)] != quote:
                index += 2 if char == '"' and text[index] == "\\" else 1
            index += len(quote)
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise UsageError("pyproject.toml: the dependencies array is not closed", hint="fix the file, then try again")


# ------------------------------------------------------------------------------------------ init


class DependencyCheck(NamedTuple):
    """What ``init`` found in ``pyproject.toml``: the missing entries, and whether it wrote them."""

    missing: list[Needed]
    written: bool

    def to_json(self) -> dict[str, Any]:
        return {"missing": [item.to_json() for item in self.missing], "written": self.written}


def template_requirements(template: str) -> list[str]:
    """The requirement strings of a template's own ``pyproject.toml`` (with their versions)."""
    from importlib import resources

    node = resources.files("modelops_bundle") / "templates" / template / f"{PYPROJECT}.tmpl"
    try:
        data = node.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return []
    project = parse(data, f"template {template}").get("project") or {}
    return [str(item) for item in project.get("dependencies") or ()]


def check_project(root: Path, files: Iterable[str], *, suggested: Iterable[str] = (), write: bool) -> DependencyCheck:
    """The entries ``files`` need that ``root/pyproject.toml`` lacks; written into it when ``write``."""
    needed = missing(root, files, suggested=suggested)
    written = bool(needed) and write and add(root, [item.requirement for item in needed])
    return DependencyCheck(needed, written)
