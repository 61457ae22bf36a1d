"""Helpers for the model-registry tests: source trees written to disk, parsed the way the CLI does."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

Tree = Callable[[dict[str, str]], Path]


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """``tree({"rel": "source"})``: write dedented files under a fresh folder and return it."""

    def write(files: dict[str, str]) -> Path:
        root = tmp_path / "tree"
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return root

    return write
