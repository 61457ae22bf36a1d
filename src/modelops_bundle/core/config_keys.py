"""The keys of ``config.yaml`` as ``mops bundle config`` sees them: dotted names, values given as text.

Every key is a field of :class:`.settings.ProjectConfig` or of a section nested in it
(``storage.threshold_bytes``); a value is parsed by the field's type and the whole record is built
again by the one validator, so ``config`` refuses exactly what a hand-edited file would be refused for.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal, NamedTuple, get_args, get_origin

from modelops_bundle.core.errors import UsageError
from modelops_bundle.core.flags import parse_bool
from modelops_bundle.core.settings import (
    ProjectConfig,
    SettingsError,
    build,
    field_names,
    field_of,
    is_record,
    to_plain,
)

_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]i?B|B)?\s*$", re.I)
_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4})


class ConfigEntry(NamedTuple):
    """One key for ``config --list``: its value (the default when not set) and whether the file sets it."""

    key: str
    value: Any
    is_set: bool


def config_keys() -> list[str]:
    """Every key, in the order of the records (``storage.*`` after the top-level keys)."""
    keys: list[str] = []
    for name in field_names(ProjectConfig):
        kind = field_of(ProjectConfig, name).kind
        if is_record(kind):
            keys.extend(f"{name}.{inner}" for inner in field_names(kind))
        else:
            keys.append(name)
    return keys


def check_key(key: str) -> str:
    if key in config_keys():
        return key
    close = difflib.get_close_matches(key, config_keys(), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "'mops bundle config --list' shows every key"
    raise UsageError(f"unknown setting {key!r}", hint=hint)


def _field(key: str) -> Any:
    section: Any = ProjectConfig
    *outer, name = check_key(key).split(".")
    for part in outer:
        section = field_of(section, part).kind
    return field_of(section, name)


def get_value(config: ProjectConfig, key: str) -> Any:
    value: Any = config
    for part in check_key(key).split("."):
        value = getattr(value, part)
    return list(value) if isinstance(value, tuple) and not is_record(type(value)) else value


def entries(config: ProjectConfig) -> list[ConfigEntry]:
    """Every key with its value, and whether ``config.yaml`` sets it."""
    plain = to_plain(config)
    result = []
    for key in config_keys():
        node: Any = plain
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        result.append(ConfigEntry(key, get_value(config, key), node is not None))
    return result


def parse_value(key: str, text: str) -> Any:
    """``text`` as a value of ``key``'s type: numbers take a size unit (``50MiB``), yes/no keys the usual
    words, lists a comma-separated text (empty: no items)."""
    field = _field(key)
    kind = field.kind
    if kind is int:
        match = _SIZE.match(text)
        if match is None:
            raise UsageError(f"{key}: {text!r} is not a whole number (a size may end in KiB, MiB, GiB, KB, MB, GB)")
        return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
    if kind is bool:
        flag = parse_bool(text)
        if flag is None:
            raise UsageError(f"{key}: {text!r} is not true or false")
        return flag
    if kind == tuple[str, ...]:
        return [item.strip() for item in text.split(",") if item.strip()]
    if get_origin(kind) is Literal and text not in get_args(kind):
        raise UsageError(f"{key}: must be one of {', '.join(get_args(kind))}, not {text!r}")
    return text


def with_value(config: ProjectConfig, key: str, value: Any) -> ProjectConfig:
    """``config`` with ``key`` set to ``value`` (``None``: unset, back to its default), validated whole."""
    plain = to_plain(config)
    *outer, name = check_key(key).split(".")
    node = plain
    for part in outer:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(name, None)
    else:
        node[name] = value
    try:
        return build(ProjectConfig, plain)
    except SettingsError as exc:
        problems = "; ".join(message for _, message in exc.problems)
        raise UsageError(f"{key}: {problems}") from None
