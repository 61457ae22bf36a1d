"""A stand-in for Calabaria's ``@calibration_target`` so the example runs without Calabaria.

It behaves like Calabaria's decorator: the metadata (``name``, ``model_output``, ``data``) stays on the
function for tools that read it (``mops bundle register-target`` reads it from the source), and calling
the decorated function with no arguments calls the original with ``data_paths``, the ``data`` mapping.
Unlike Calabaria, the paths are resolved against the project root rather than the current directory,
so a pulled copy of the bundle works from any folder.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def calibration_target(**metadata: Any) -> Callable[[Callable[..., Any]], Callable[[], Any]]:
    def decorator(func: Callable[..., Any]) -> Callable[[], Any]:
        @functools.wraps(func)
        def wrapper() -> Any:
            data_paths = {key: str(PROJECT_ROOT / rel) for key, rel in metadata.get("data", {}).items()}
            return func(data_paths)

        wrapper._target_metadata = metadata  # type: ignore[attr-defined]
        return wrapper

    return decorator
