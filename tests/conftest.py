"""Shared fixtures. The project fixtures (``mops_env``, ``bundle_project``, ``run_cli``) come from the
opt-in plugin ``modelops_bundle.testing`` (loaded through ``addopts``); these are helpers on top."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

Snapshot = dict[str, tuple[str, bytes | str | None, int]]


def snapshot_tree(root: Path) -> Snapshot:
    """Every entry below ``root``: kind, content (file bytes or link target) and mtime_ns."""
    result: Snapshot = {}
    if not root.exists():
        return result
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = os.lstat(path)
            if path.is_symlink():
                result[rel] = ("link", os.readlink(path), st.st_mtime_ns)
            elif path.is_dir():
                result[rel] = ("dir", None, st.st_mtime_ns)
            else:
                result[rel] = ("file", path.read_bytes(), st.st_mtime_ns)
    return result


@pytest.fixture
def snapshot() -> Callable[[Path], Snapshot]:
    """``snapshot(root)``: compare two snapshots to prove a command touched nothing."""
    return snapshot_tree


@pytest.fixture
def age() -> Callable[..., None]:
    """``age(*paths)``: move mtimes 10 s into the past, out of the stat cache's racy window."""

    def _age(*paths: Path) -> None:
        past = time.time() - 10
        for path in paths:
            os.utime(path, (past, past), follow_symlinks=False)

    return _age


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """Install a tiny distribution on the fly: a ``*.dist-info`` folder and its modules on sys.path.

    ``make_dist("mops-hello", "1.2", entry_points={"hello": "hello_mod"}, modules={"hello_mod": "..."})``
    makes ``importlib.metadata`` see a real distribution with entry points in the ``modelops_bundle`` group.
    """
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []

    def _make(
        name: str,
        version: str = "1.0",
        *,
        entry_points: dict[str, str] | None = None,
        modules: dict[str, str] | None = None,
        group: str = "modelops_bundle",
    ) -> Path:
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = [f"[{group}]"] + [f"{ep} = {target}" for ep, target in (entry_points or {}).items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in (modules or {}).items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            created.append(module)
        importlib.invalidate_caches()
        return info

    yield _make
    for module in created:
        sys.modules.pop(module, None)
