"""``init [PATH] [--env NAME] [--template NAME] [--registry HOST[/REPO]]``: make a folder a project."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelops_bundle.cli import init_dependencies
from modelops_bundle.cli.common import complete_with
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project folder (default: current folder)")
    env_help = "environment to pin (default: dev if provisioned, else local)"
    complete_with(parser.add_argument("--env", metavar="NAME", help=env_help), "environments")
    parser.add_argument(
        "--template",
        metavar="NAME",
        default="minimal",
        help="scaffold to start from: minimal (default), seir, ...",
    )
    parser.add_argument(
        "--registry",
        metavar="HOST[/REPO]",
        help="pin this registry (and repository) instead of following the environment's",
    )
    init_dependencies.configure(parser)


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.envfiles import check_env_name, default_environment_name
    from modelops_bundle.core.scaffold import init_project

    done = init_dependencies.existing_project(ctx, args)
    if done is not None:
        return done
    env_name = check_env_name(args.env) if args.env else default_environment_name(ctx.environ)
    result = init_project(
        ctx.cwd / args.path, ctx.environ, env_name=env_name, template=args.template, registry=args.registry
    )
    config = result.config
    dependencies = init_dependencies.after_init(ctx, args, result)
    outer = enclosing_project(result.project.root)
    if outer is not None:  # as git warns about an embedded repository
        ctx.out.warn(
            f"{result.project.root} is inside the project {outer}: it is a nested project, which that "
            "project's 'add' leaves out (its status lists it as not bundlable)"
        )
    if ctx.out.json_mode:
        ctx.out.emit_json(
            {
                "project": str(result.project.root),
                "environment": result.environment,
                "repository": config.repository,
                "registry": config.registry,
                "created": result.created,
                "kept": result.kept,
                "nested_in": str(outer) if outer is not None else None,
                "dependencies": init_dependencies.to_json(dependencies),
            }
        )
        return 0
    ctx.out.line(f"Initialized modelops-bundle project in {result.project.root}")
    ctx.out.line(f"  environment: {result.environment}")
    ctx.out.line(f"  bundle:      {config.repository}")
    if config.registry:
        ctx.out.line(f"  registry:    {config.registry} (pinned: 'env switch' does not change it)")
    for rel in result.created:
        ctx.out.line(f"  created {rel}")
    for rel in result.kept:
        ctx.out.line(f"  kept existing {rel}")
    init_dependencies.report(ctx, dependencies)
    ctx.out.line("Next: 'mops bundle add .' then 'mops bundle status'")
    return 0


def enclosing_project(root: Path) -> Path | None:
    """The project folder above ``root``, if ``root`` was made inside one."""
    from modelops_bundle.core.project import META_DIR

    return next((folder for folder in root.parents if (folder / META_DIR).is_dir()), None)


COMMAND = Command(
    name="init",
    help="create a project (.modelops-bundle/, .modelopsignore, pyproject.toml)",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle init .\n  mops bundle init seir-model --template seir\n"
    "  mops bundle init --env dev\n  mops bundle init --registry ghcr.io/lab/seir\n"
    "  mops bundle init --add-dependencies   # pyproject.toml gets what the registered models import",
)
