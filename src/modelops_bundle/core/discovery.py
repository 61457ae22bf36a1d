"""What model and target discovery plugins receive and return.

Discovery reads source code (``ast``) and never imports user code: a model file with a syntax error or
a missing dependency can still be reported precisely, and registering a model runs nothing.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SourceFile:
    """One Python file of the project, parsed once and shared by every discovery plugin."""

    rel: str  # project-relative POSIX path
    path: Path  # absolute path
    text: str
    tree: ast.Module

    @property
    def module_name(self) -> str:
        """Dotted module name relative to the project root (``models/seir.py`` -> ``models.seir``)."""
        parts = self.rel[:-3].split("/") if self.rel.endswith(".py") else self.rel.split("/")
        if parts and parts[-1] == "__init__":
            parts = parts[:-1]
        return ".".join(parts)


@dataclass(frozen=True)
class DiscoveredModel:
    """A model class found in a source file."""

    class_name: str
    rel: str
    framework: str  # "calabaria", "starsim", or a third-party framework name
    line: int = 0
    outputs: tuple[str, ...] = ()
    bases: tuple[str, ...] = ()

    @property
    def entrypoint(self) -> str:
        module = SourceFile(self.rel, Path(self.rel), "", ast.Module(body=[], type_ignores=[])).module_name
        return f"{module}:{self.class_name}"


@dataclass(frozen=True)
class DiscoveredTarget:
    """A calibration target (a decorated function) found in a source file."""

    name: str
    function: str
    rel: str
    model_output: str | None = None
    data: tuple[str, ...] = ()
    line: int = 0


@dataclass
class CodeDependencies:
    """Project-local files a model's code depends on, and imports that could not be resolved."""

    files: set[str] = field(default_factory=set)
    unresolved: set[str] = field(default_factory=set)
