"""The hookspecs, as the meta-tests see them."""

from __future__ import annotations

import inspect
from pathlib import Path

from modelops_bundle import PROJECT_NAME, hookspecs

ROOT = Path(__file__).resolve().parents[2]


def hookspec_names() -> list[str]:
    """Every function of ``hookspecs.py`` marked as a hookspec, in file order."""
    marker = f"{PROJECT_NAME}_spec"
    functions = [
        (obj.__code__.co_firstlineno, name)
        for name, obj in vars(hookspecs).items()
        if inspect.isfunction(obj) and hasattr(obj, marker)
    ]
    return [name for _, name in sorted(functions)]
