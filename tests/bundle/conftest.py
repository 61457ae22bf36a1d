"""Fixtures for push/pull/diff/ensure: projects sharing the embedded OCI layout registry, and the CNCF
distribution registry (re-exported from ``tests.oci.conftest``) for the HTTP path."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle.testing import BundleProject
from tests.oci.conftest import auth_distribution, distribution  # noqa: F401 - re-exported fixtures

Tree = dict[str, bytes]


def read_tree(root: Path, *, skip_meta: bool = True) -> Tree:
    """Every regular file below ``root`` (``.modelops-bundle/`` left out) with its bytes."""
    result: Tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if skip_meta:
            dirnames[:] = [name for name in dirnames if name != ".modelops-bundle"]
        for name in filenames:
            path = Path(dirpath) / name
            result[path.relative_to(root).as_posix()] = path.read_bytes()
    return result


def state_of(project: BundleProject) -> dict[str, Any]:
    path = project.meta / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def ok(result: Any) -> Any:
    """Assert a CliResult succeeded and return its JSON."""
    assert result.exit_code == 0, result
    return result.json()


@pytest.fixture
def make_project(mops_env: dict[str, str], tmp_path: Path) -> Callable[..., BundleProject]:
    """``make_project(name, *init_args, ref=None)``: another project in the same environment; ``ref`` sets
    its ``repository`` (e.g. to share the first project's)."""

    def _make(name: str, *init_args: str, ref: str | None = None) -> BundleProject:
        project = BundleProject.create(tmp_path / name, mops_env, *init_args)
        for scaffolded in (".modelopsignore", "pyproject.toml"):
            (project.root / scaffolded).unlink(missing_ok=True)
        if ref is not None:
            assert project.run("config", "repository", ref).ok
        return project

    return _make


@pytest.fixture
def project(make_project: Callable[..., BundleProject]) -> BundleProject:
    """A project named ``model`` with a few small files and one larger than the raw-layer threshold."""
    project = make_project("model")
    project.write("src/model.py", "def run():\n    return 42\n")
    project.write("src/util/helpers.py", "X = 1\n")
    project.write("data/a.csv", "x,y\n1,2\n")
    project.write("data/b.csv", "x,y\n3,4\n")
    project.write("README.md", "# model\n")
    project.write("data/big.bin", bytes(range(256)) * 4200)  # 1.03 MiB: a raw layer
    ok(project.run("add", ".", "--json"))
    return project


@pytest.fixture
def clone(make_project: Callable[..., BundleProject]) -> Callable[[str], BundleProject]:
    """``clone(name)``: a fresh empty project pointed at the ``model`` repository."""
    return lambda name: make_project(name, ref="model")


def pushed_and_cloned(
    project: BundleProject, clone: Callable[[str], BundleProject], name: str = "other"
) -> tuple[BundleProject, dict[str, Any]]:
    """``project`` pushed, and a clone named ``name`` that pulled that version: two working trees on one
    version (the start of every both-sides-changed test). Returns the clone and the push's JSON."""
    pushed = ok(project.run("push", "--json"))
    other = clone(name)
    ok(other.run("pull", "--json"))
    return other, pushed
