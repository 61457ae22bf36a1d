"""YAML the tool reads is parsed strictly: errors name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.validation import parse_yaml


def test_a_key_given_twice_is_refused_with_both_lines() -> None:
    text = "registry_ref: r\nstorage:\n  mode: auto\nstorage:\n  mode: blob\n"
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, Path("config.yaml"))
    assert caught.value.message == (
        "config.yaml, line 4: invalid YAML (duplicate key 'storage' (first given on line 2))"
    )


def test_duplicates_are_found_in_nested_mappings_and_lists() -> None:
    with pytest.raises(ConfigError, match=r"line 3.*duplicate key 'uri'"):
        parse_yaml("files:\n  - uri: a\n    uri: b\n", Path("x.yaml"))


def test_merge_keys_and_repeated_values_are_fine() -> None:
    data = parse_yaml("base: &b {x: 1}\nuse:\n  <<: *b\n  y: 1\nother: {x: 1}\n", Path("x.yaml"))
    assert data == {"base": {"x": 1}, "use": {"x": 1, "y": 1}, "other": {"x": 1}}
