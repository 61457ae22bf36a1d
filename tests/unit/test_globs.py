"""core/globs.py: ``*`` and ``?`` stay in one folder, ``**`` crosses folders, folders select their files."""

from __future__ import annotations

import fnmatch

import pytest

from modelops_bundle.core.globs import glob_to_regex, match_paths

FILES = [
    "a.csv",
    "b.txt",
    "data/x.csv",
    "data/y.txt",
    "data/sub/z.csv",
    "data/sub/deeper/w.csv",
    "src/model.py",
    "src/model2.py",
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*.csv", ["a.csv"]),
        ("data/*.csv", ["data/x.csv"]),
        ("**/*.csv", ["a.csv", "data/x.csv", "data/sub/z.csv", "data/sub/deeper/w.csv"]),
        ("data/**/*.csv", ["data/x.csv", "data/sub/z.csv", "data/sub/deeper/w.csv"]),
        ("data/**", ["data/x.csv", "data/y.txt", "data/sub/z.csv", "data/sub/deeper/w.csv"]),
        ("src/model?.py", ["src/model2.py"]),
        ("[ab].*", ["a.csv", "b.txt"]),
        ("[!a].*", ["b.txt"]),
        ("[^a].*", ["b.txt"]),
        # a pattern matching a folder selects every file below it
        ("data/s*", ["data/sub/z.csv", "data/sub/deeper/w.csv"]),
        ("d?ta", ["data/x.csv", "data/y.txt", "data/sub/z.csv", "data/sub/deeper/w.csv"]),
        ("nothing*", []),
    ],
)
def test_match_paths(pattern: str, expected: list[str]) -> None:
    assert match_paths(pattern, FILES) == expected


def test_star_does_not_cross_folders() -> None:
    assert not glob_to_regex("*.csv").match("data/x.csv")
    assert not glob_to_regex("data/?").match("data/ab")


def test_regex_metacharacters_are_literal() -> None:
    assert glob_to_regex("a+b(1).txt").match("a+b(1).txt")
    assert not glob_to_regex("a.txt").match("abtxt")


def test_unclosed_bracket_is_literal() -> None:
    assert glob_to_regex("data[1").match("data[1")
    assert not glob_to_regex("data[1").match("data1")


@pytest.mark.parametrize(("pattern", "name"), [("[]a]", "]"), ("[]a]", "a"), ("[!]]", "x")])
def test_closing_bracket_first_in_a_class_is_a_member(pattern: str, name: str) -> None:
    """fnmatch (and git) read ``]`` right after ``[`` or ``[!`` as a literal member of the class.

    Today ``glob_to_regex`` builds an invalid regular expression here and ``add '[]a]'`` ends in
    "unexpected error: unterminated character set" instead of a usage error.
    """
    assert fnmatch.fnmatchcase(name, pattern)
    assert glob_to_regex(pattern).match(name)
