"""The command line: one thin module per command, all output through :mod:`.console`.

``from modelops_bundle.cli import app`` gives the Typer application that CLIs mounting this tool expect
(older ModelOps suite releases: ``add_typer(app, name="bundle")``; see :mod:`.typer_app`). The package
attribute ``app`` is that object -- built on first access, importing Typer only then -- even though a
submodule is also named ``app`` (the argparse :class:`~.app.CommandApp`): import that one by its full
name, ``from modelops_bundle.cli.app import build_app``, which always reaches the module.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CliPackage(types.ModuleType):
    @property
    def app(self) -> Any:
        from modelops_bundle.cli.typer_app import typer_app

        return typer_app()

    @app.setter
    def app(self, value: Any) -> None:
        # Importing the submodule ``cli.app`` makes the import system set it as this package's attribute;
        # the submodule stays in sys.modules, and ``app`` keeps meaning the Typer application.
        pass


sys.modules[__name__].__class__ = _CliPackage
