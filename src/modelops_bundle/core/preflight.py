"""Preflight: what would make a pushed bundle unusable, found before anything is uploaded.

A push refuses (:class:`PreflightError`, exit code 2) when any registered model or target

* has a dependency that is missing from the working tree, or present but not tracked (it would not
  be in the bundle, so a worker could not run the model);
* has an entrypoint that does not resolve: no project module of that name, a module with a syntax
  error, or no such class (or function) in it -- re-exports through a package ``__init__`` count;
* imports code that cannot be found (a relative import to nowhere) or does not parse;
* (targets) names a ``model_output`` no registered model provides;
* (target sets) names a target that is not registered.

It warns (never refuses) when the models' code imports a distribution the project's ``pyproject.toml``
does not declare (:func:`dependency_warnings`): a worker that installs the project would lack it.

Everything is read from the source with ``ast``; no user code runs. Parsing is shared across models
through one :class:`~modelops_bundle.core.discovery.ProjectSources` per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.discovery import (
    ProjectSources,
    SourceFileError,
    find_project_class,
    import_table,
    module_classes,
    module_functions,
)
from modelops_bundle.core.errors import UsageError
from modelops_bundle.core.model_registry import DependentRecord, ModelRecord, Registry, TargetRecord, load_registry

if TYPE_CHECKING:
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.workspace import Scan, Workspace


@dataclass(frozen=True)
class Problem:
    """One reason a push must not go ahead."""

    kind: str  # "model" | "target" | "target set"
    id: str
    message: str
    path: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        return f"{self.kind} {self.id}: {where}{self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "message": self.message, "path": self.path, "line": self.line}


class PreflightError(UsageError):
    """A push refused by preflight; :attr:`problems` holds every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        listing = "\n  ".join(str(problem) for problem in problems)
        super().__init__(
            f"push refused: {len(problems)} problem(s) with registered models and targets:\n  {listing}",
            hint="fix them (or re-run register-model / register-target), then push again",
        )
        self.problems = problems


def preflight(
    ws: Workspace,
    host: PluginHost | None = None,
    *,
    registry: Registry | None = None,
    scan: Scan | None = None,
    tracked: set[str] | None = None,
) -> list[Problem]:
    """Every problem of the registry against the working tree (empty: good to push).

    ``scan`` (the push's own) is used for what exists when given; otherwise the file system is asked.
    With ``host``, a model's imports are checked through every ``mops_code_dependencies`` plugin (as
    registration computed them); without, through the built-in import graph alone. ``tracked``: what
    counts as tracked (a push's plan adds the dependencies it will track); default ``tracked.txt``.
    """
    registry = registry if registry is not None else load_registry(ws)
    sources = ProjectSources(ws.project.root)
    checker = _Checker(ws, host, sources, tracked if tracked is not None else set(ws.tracked()), scan)
    problems: list[Problem] = []
    for key, model in registry.models.items():
        problems += checker.record("model", key, model)
    outputs = registry.outputs()
    for key, target in registry.targets.items():
        problems += checker.record("target", key, target)
        if target.model_output not in outputs:
            known = ", ".join(sorted(outputs)) or "none"
            problems.append(
                Problem(
                    "target",
                    key,
                    f"model_output '{target.model_output}' is not an output of any registered model (outputs: {known})",
                    target.path,
                )
            )
    for name, target_set in registry.target_sets.items():
        for target_name in target_set.targets:
            if target_name not in registry.targets:
                problems.append(Problem("target set", name, f"names unregistered target '{target_name}'"))
        for target_name in target_set.weights:
            if target_name not in target_set.targets:
                problems.append(Problem("target set", name, f"weight for '{target_name}', which is not in the set"))
    return list(dict.fromkeys(problems))


def check_before_push(
    ws: Workspace,
    host: PluginHost | None = None,
    *,
    registry: Registry | None = None,
    scan: Scan | None = None,
    tracked: set[str] | None = None,
) -> None:
    """Raise :class:`PreflightError` listing every problem, if there is any."""
    problems = preflight(ws, host, registry=registry, scan=scan, tracked=tracked)
    if problems:
        raise PreflightError(problems)


def dependency_warnings(ws: Workspace, registry: Registry) -> list[str]:
    """One warning per distribution the registered code imports and ``pyproject.toml`` does not declare
    (:mod:`modelops_bundle.core.pyproject_deps`); a broken ``pyproject.toml`` is a warning too."""
    from modelops_bundle.core.errors import ConfigError
    from modelops_bundle.core.pyproject_deps import missing, registry_code

    try:
        needed = missing(ws.project.root, registry_code(registry))
    except ConfigError as exc:
        return [exc.message]
    return [
        f"pyproject.toml does not declare {item.requirement!r}, which {', '.join(item.used_by)} imports "
        "(a worker installing the project would lack it; 'mops bundle init --add-dependencies' adds it)"
        for item in needed
    ]


class _Checker:
    def __init__(
        self, ws: Workspace, host: PluginHost | None, sources: ProjectSources, tracked: set[str], scan: Scan | None
    ) -> None:
        self.ws = ws
        self.host = host
        self.sources = sources
        self.tracked = tracked
        self.scan = scan

    def exists(self, rel: str) -> bool:
        if self.scan is not None and rel in self.scan.files:
            return True
        return self.sources.is_file(rel)

    def record(self, kind: str, key: str, record: DependentRecord) -> list[Problem]:
        problems = self.entrypoint(kind, key, record)
        for rel, dep_kind in record.dependencies():
            if not self.exists(rel):
                problems.append(Problem(kind, key, f"{dep_kind} dependency missing: {rel}"))
            elif rel not in self.tracked:
                problems.append(Problem(kind, key, f"{dep_kind} dependency not tracked (not in the bundle): {rel}"))
            elif rel.endswith(".py") and rel != record.path:
                problems += self.code(kind, key, rel)
        if self.exists(record.path):
            problems += self.imports(kind, key, record)
        return problems

    def entrypoint(self, kind: str, key: str, record: DependentRecord) -> list[Problem]:
        module, _, attr = record.entrypoint.partition(":")
        rel = self.sources.module_file(module)
        if rel is None:
            return [Problem(kind, key, f"entrypoint {record.entrypoint}: module '{module}' is not a project file")]
        try:
            source = self.sources.get(rel)
        except SourceFileError as exc:
            return [Problem(kind, key, f"entrypoint {record.entrypoint}: {exc.reason}", rel, exc.line)]
        if isinstance(record, ModelRecord):
            # A model is a class, or a function that builds one (a Starsim sim factory).
            defined: dict[str, Any] = {**module_functions(source), **module_classes(source)}
            what = "class"
        else:
            defined, what = dict(module_functions(source)), "function"
        if attr in defined:
            return []
        origin = import_table(source).names.get(attr)
        if isinstance(record, ModelRecord) and origin and find_project_class(source, origin) is not None:
            return []  # re-exported by the module
        if isinstance(record, TargetRecord) and origin:
            return []  # an imported function: importable, even if not followed further
        names = ", ".join(defined) or "none"
        plural = "classes" if what == "class" else "functions"
        return [
            Problem(kind, key, f"entrypoint {record.entrypoint}: no {what} '{attr}' ({plural} there: {names})", rel)
        ]

    def code(self, kind: str, key: str, rel: str) -> list[Problem]:
        try:
            self.sources.get(rel)
        except SourceFileError as exc:
            return [Problem(kind, key, exc.reason, rel, exc.line)]
        return []

    def imports(self, kind: str, key: str, record: DependentRecord) -> list[Problem]:
        from modelops_bundle.core.dependencies import code_closure, collect_code_dependencies
        from modelops_bundle.core.discovery import DiscoveredModel

        # From every recorded Python dependency, not only the definition file: a helper that is still
        # listed must still import, even if an edit upstream of it stopped importing it.
        starts = [rel for rel, _ in record.dependencies() if rel.endswith(".py") and self.sources.is_file(rel)]
        closure = code_closure(self.sources, starts)
        if isinstance(record, ModelRecord) and self.host is not None:
            model = DiscoveredModel(
                record.class_name,
                record.path,
                record.framework or "unknown",
                source=self.sources.try_get(record.path),
            )
            closure.update(collect_code_dependencies(self.host, model, self.ws.project))
        problems = [Problem(kind, key, f"import does not resolve: {line}") for line in sorted(closure.unresolved)]
        for rel, why in sorted(closure.broken.items()):
            if rel != record.path:  # the entrypoint check reports the definition file itself
                problems.append(Problem(kind, key, f"imported code is broken: {why}", rel))
        return problems
