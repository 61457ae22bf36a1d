"""Hostile text in core logic (issue 15, items 8-11): glob and ignore matching linear in the name (property
tests against the backtracking regular expressions they replace), YAML bounds, path limits, and the
escaping of characters a terminal does not show. The property tests of the matchers against the
regular expressions they replace are in tests/reliability/test_properties.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle.core.errors import BundleError, ConfigError
from modelops_bundle.core.globs import NameGlob, glob_to_regex
from modelops_bundle.core.ignore import PathRule
from modelops_bundle.core.paths import check_name_limits, display_safe, invalid_reason, shown_path
from modelops_bundle.core.validation import MAX_YAML_DEPTH, parse_yaml

# ----------------------------------------------------------------------------------- glob matching


@pytest.mark.parametrize("length", [40, 250, 10_000])
def test_catastrophic_patterns_stay_linear(length: int) -> None:
    """``*a*a*a*a*a*a*a*a*a*a*b`` against ``a`` * n: a backtracking matcher takes 20 s at n = 40."""
    star = "*a" * 10 + "*b"
    started = time.perf_counter()
    assert not NameGlob(star).match("a" * length)
    assert not PathRule("x/" + star, False).matches("x/" + "a" * length, False)
    assert not glob_to_regex(star).match("a" * length)
    assert not glob_to_regex("**/" + star + "/**").match("/".join(["a" * 40] * max(1, length // 40)))
    assert time.perf_counter() - started < (0.5 if length <= 250 else 5.0)


def test_time_grows_linearly_with_the_name() -> None:
    glob = NameGlob("*a" * 10 + "*b")
    timings = []
    for length in (20_000, 40_000):
        started = time.perf_counter()
        for _ in range(5):
            glob.match("a" * length)
        timings.append(time.perf_counter() - started)
    assert timings[1] < 4 * timings[0] + 0.05, timings  # twice the name, about twice the time


# ------------------------------------------------------------------------------------------- YAML


def _laughs(levels: int, width: int) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * width) + "]" for n in range(1, levels)]
    return "\n".join(lines) + f"\nroot: *a{levels - 1}\n"


def test_alias_expansion_is_bounded_before_construction(tmp_path: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"registry\.yaml, line \d+: too large once its aliases are expanded"):
        parse_yaml(_laughs(9, 10), tmp_path / "registry.yaml")
    with pytest.raises(ConfigError, match="too large"):
        parse_yaml("a: &a {" + ", ".join(f"k{n}: [1, 2, 3]" for n in range(10)) + "}\n" + _merge_bomb(), tmp_path / "x")
    assert time.perf_counter() - started < 2
    data: Any = parse_yaml(_laughs(3, 10), tmp_path / "ok.yaml")  # 1,000 values expanded: fine
    assert len(data["root"]) == 10 and data["root"][0][0] == ["lol"] * 10


def _merge_bomb() -> str:
    """Merge keys (``<<``) that copy a mapping's pairs again at every level."""
    lines = ["b0: &b0 {<<: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], z: 0}"]
    lines += [f"b{n}: &b{n} {{<<: [" + ", ".join([f"*b{n - 1}"] * 10) + f"], z{n}: 0}}" for n in range(1, 8)]
    return "\n".join(lines) + "\n"


def test_depth_size_and_self_reference_are_refused(tmp_path: Path) -> None:
    deep = "a:\n" + "".join("  " * level + "- \n" for level in range(1, MAX_YAML_DEPTH + 5))
    with pytest.raises(ConfigError, match="nested more than"):
        parse_yaml("x: " + "[" * (MAX_YAML_DEPTH + 5) + "]" * (MAX_YAML_DEPTH + 5), tmp_path / "deep.yaml")
    with pytest.raises(ConfigError, match="characters"):
        parse_yaml("a: b\n" * 4_000_000, tmp_path / "big.yaml")
    assert parse_yaml(deep[:200], tmp_path / "fine.yaml") is not None
    assert parse_yaml("", tmp_path / "empty.yaml") is None
    assert parse_yaml("a: &x [1]\nb: *x\n", tmp_path / "alias.yaml") == {"a": [1], "b": [1]}


# ------------------------------------------------------------------------------------------ paths


def test_paths_are_bounded_by_depth_length_and_name() -> None:
    assert invalid_reason("/".join(["d"] * 1900) + "/f") == "1901 segments deep (at most 128)"
    assert invalid_reason("/".join(["d"] * 128)) is None
    assert invalid_reason("n" * 256) == "a name of 256 bytes (at most 255)"
    assert invalid_reason("é" * 128) == "a name of 256 bytes (at most 255)"
    assert invalid_reason("/".join(["p" * 250] * 13)) == "3262 bytes long (at most 3072)"


def test_names_are_checked_against_the_destination(tmp_path: Path) -> None:
    check_name_limits(tmp_path, ["a/b.txt", "n" * 255], source="v")
    with pytest.raises(BundleError, match="a name of 256 bytes, this file system allows 255"):
        check_name_limits(tmp_path, ["ok", "x/" + "n" * 256], source="v")
    deep = tmp_path.joinpath(*(["r" * 200] * 6))
    with pytest.raises(BundleError, match="this file system allows 4095"):
        check_name_limits(deep, ["/".join(["p" * 240] * 12)], source="v")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("data/\u202ehs.txt", "data/\\u202ehs.txt"),
        ("a\u200bb", "a\\u200bb"),
        ("\u2066x\u2069", "\\u2066x\\u2069"),
        ("bom\ufeff", "bom\\ufeff"),
        ("esc\x1b[31m", "esc\\x1b[31m"),
        ("nel\x85", "nel\\x85"),
        ("line\u2028sep", "line\\u2028sep"),
        ("plain ünïcødé 数据 עברית", "plain ünïcødé 数据 עברית"),
    ],
)
def test_invisible_characters_are_escaped(raw: str, shown: str) -> None:
    assert display_safe(raw) == shown
    assert display_safe("tab\tand\nnewline") == "tab\tand\nnewline"
    assert shown_path(raw) == shown


def test_text_without_them_is_returned_as_is() -> None:
    text = "data/x.csv"
    assert display_safe(text) is text
