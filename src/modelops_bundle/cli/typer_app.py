"""A Typer application for CLIs that mount this tool: ``from modelops_bundle.cli import app``.

Older ModelOps suite releases imported ``app`` from ``modelops_bundle.cli`` and mounted it with
``add_typer(app, name="bundle")``. This is that object: a Typer group that hands every argument after
its name, unparsed, to the tool's own parser (``--help``, options and plugin commands included) and
exits with the command's exit code. Typer is imported only here, when a host CLI asks for ``app``;
it is not a dependency of modelops-bundle (docs/decisions/0021).
"""

from __future__ import annotations

from typing import Any

HELP = "Package, push and pull model bundles (modelops-bundle)"

_app: Any = None


def typer_app() -> Any:
    """The Typer application (built once per process); ``ImportError`` naming Typer without it."""
    global _app
    if _app is None:
        _app = _build()
    return _app


def _build() -> Any:
    try:
        import typer
        from typer.core import TyperGroup
    except ImportError as exc:
        raise ImportError(
            "modelops_bundle.cli.app is a Typer application for CLIs that mount modelops-bundle, and "
            f"Typer is not installed ({exc}); install typer, or run the modelops-bundle executable"
        ) from exc

    class BundleGroup(TyperGroup):
        """Passes the whole command line after ``bundle`` to modelops-bundle instead of parsing it."""

        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            ctx.args = list(args)
            return list(ctx.args)

        def invoke(self, ctx: Any) -> Any:
            from modelops_bundle.cli.main import bundle_main

            ctx.exit(bundle_main(list(ctx.args), prog=ctx.command_path))

    app = typer.Typer(
        name="bundle",
        cls=BundleGroup,
        help=HELP,
        add_completion=False,
        invoke_without_command=True,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    )

    @app.callback()
    def bundle() -> None:
        """Package, push and pull model bundles (modelops-bundle)."""

    return app
