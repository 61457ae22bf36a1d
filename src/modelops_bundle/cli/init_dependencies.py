"""``init``'s look at ``pyproject.toml``: the dependencies the models need and the file does not declare.

Kept apart from ``cli/init.py`` (which makes the project): ``init`` in a folder with a ``pyproject.toml``
of its own checks the template's model code against it and offers the missing entries;
``--add-dependencies`` writes them (:mod:`modelops_bundle.core.pyproject_deps` keeps the rest of the
file as it was). In an existing project, ``init --add-dependencies`` does only that, for the code of
the registered models and targets.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.context import CommandContext

if TYPE_CHECKING:
    from modelops_bundle.core.pyproject_deps import DependencyCheck
    from modelops_bundle.core.scaffold import InitResult


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--add-dependencies",
        action="store_true",
        help="write the dependencies the models import and pyproject.toml lacks into it "
        "(in an existing project: only that, for its registered models)",
    )


def existing_project(ctx: CommandContext, args: argparse.Namespace) -> int | None:
    """``init --add-dependencies`` in a project that exists: bring its ``pyproject.toml`` up to the
    registered models' imports and return the exit code; ``None`` when this is no such call."""
    from modelops_bundle.core.project import META_DIR, Project

    root = Path(ctx.cwd / args.path).absolute()
    if not args.add_dependencies or not (root / META_DIR / "config.yaml").is_file():
        return None
    from modelops_bundle.core.model_registry import load_registry
    from modelops_bundle.core.pyproject_deps import check_project, registry_code
    from modelops_bundle.core.workspace import Workspace

    ws = Workspace(Project(root))
    with ws.lock():
        check = check_project(root, registry_code(load_registry(ws)), write=True)
    if ctx.out.json_mode:
        ctx.out.emit_json({"project": str(root), "dependencies": check.to_json()})
        return 0
    if not check.missing:
        ctx.out.line("pyproject.toml declares every dependency the registered models and targets import")
    report(ctx, check)
    return 0


def after_init(ctx: CommandContext, args: argparse.Namespace, result: InitResult) -> DependencyCheck | None:
    """For a ``pyproject.toml`` ``init`` kept: what the template's code imports that it lacks (written
    with ``--add-dependencies``); ``None`` when ``init`` wrote the file itself."""
    if "pyproject.toml" not in result.kept:
        return None
    from modelops_bundle.core.pyproject_deps import check_project, template_requirements

    code = [rel for rel in (*result.created, *result.kept) if rel.endswith(".py")]
    suggested = template_requirements(args.template)
    return check_project(result.project.root, code, suggested=suggested, write=args.add_dependencies)


def report(ctx: CommandContext, check: DependencyCheck | None) -> None:
    """The text lines of a check: what was written, or what is missing and how to add it."""
    if check is None or not check.missing:
        return
    if check.written:
        ctx.out.line(f"  added to pyproject.toml: {', '.join(item.requirement for item in check.missing)}")
        return
    for item in check.missing:
        ctx.out.warn(f"pyproject.toml does not declare {item.requirement!r}, which {', '.join(item.used_by)} imports")
    ctx.out.line("  add them to pyproject.toml, or register the models and run 'mops bundle init --add-dependencies'")


def to_json(check: DependencyCheck | None) -> dict[str, Any] | None:
    return None if check is None else check.to_json()
