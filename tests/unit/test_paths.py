"""core/paths.py: what a stored project-relative path may look like, and how user paths map onto it."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_bundle.core.errors import UsageError
from modelops_bundle.core.paths import (
    has_glob,
    invalid_reason,
    is_valid_relpath,
    is_within,
    to_relpath,
    user_path_to_relpath,
)


@pytest.mark.parametrize("rel", ["a.txt", "data/b.csv", "deep/er/path/file", ".modelopsignore", "a b/c d.txt"])
def test_valid_relpaths(rel: str) -> None:
    assert invalid_reason(rel) is None
    assert is_valid_relpath(rel)


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ("", "empty path"),
        ("/etc/passwd", "absolute path"),
        ("C:/windows", "absolute path"),
        ("data\\file.csv", "backslash in path"),
        ("bad\nname", "control character in path"),
        ("bad\x7fname", "control character in path"),
        ("a\x00b", "control character in path"),
        ("../escape", "empty, '.' or '..' segment"),
        ("a/../b", "empty, '.' or '..' segment"),
        ("./a", "empty, '.' or '..' segment"),
        ("a//b", "empty, '.' or '..' segment"),
        ("dir/", "empty, '.' or '..' segment"),
    ],
)
def test_invalid_relpaths_say_why(rel: str, reason: str) -> None:
    assert invalid_reason(rel) == reason
    assert not is_valid_relpath(rel)


def test_has_glob() -> None:
    assert has_glob("*.csv") and has_glob("data/file?.txt") and has_glob("data/[ab].txt")
    assert not has_glob("data/plain.txt")


def test_to_relpath_inside_and_root(tmp_path: Path) -> None:
    assert to_relpath(tmp_path, tmp_path / "data" / "x.csv") == "data/x.csv"
    assert to_relpath(tmp_path, tmp_path) == ""
    # lexical normalisation: '..' that stays inside is fine
    assert to_relpath(tmp_path, tmp_path / "data" / ".." / "x.csv") == "x.csv"


@pytest.mark.parametrize("outside", ["..", "../sibling/file", "data/../../x"])
def test_to_relpath_refuses_climbing_out(tmp_path: Path, outside: str) -> None:
    root = tmp_path / "project"
    with pytest.raises(UsageError, match="outside the project"):
        to_relpath(root, root / outside)


def test_user_path_relative_to_cwd_or_absolute(tmp_path: Path) -> None:
    root = tmp_path
    assert user_path_to_relpath(root, root / "data", "x.csv") == "data/x.csv"
    assert user_path_to_relpath(root, root / "data", "../src/m.py") == "src/m.py"
    assert user_path_to_relpath(root, root / "data", str(root / "abs.txt")) == "abs.txt"
    with pytest.raises(UsageError):
        user_path_to_relpath(root, root / "data", "/etc/passwd")


def test_is_within_is_not_fooled_by_a_common_prefix() -> None:
    assert is_within("/p/root", "/p/root")
    assert is_within("/p/root", "/p/root/a/b")
    assert not is_within("/p/root", "/p/rootkit/a")
    assert not is_within("/p/root", "/p")
    assert is_within("/", "/anything")
