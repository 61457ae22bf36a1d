"""Credentials in settings: the one rule for what counts as a secret, and the three things done with it.

A key whose name says it may hold a credential (:data:`SECRET_NAME`) is

* masked by ``env show`` and every other display of settings (:func:`masked`);
* scrubbed from error messages (:func:`secret_values` lists what to scrub);
* never written to the settings memo, a file on disk (:func:`holds_secret`).

A mapping given as an option's value (``storage.storage_options``: two levels into a settings file) may
hide a credential under any name, so it counts as secret for the memo; its secret-named keys are masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from modelops_bundle.core.patterns import LazyPattern

#: Names that say a value may be a credential. ``key`` counts except as ``keys`` or ``public_key``
#: (the trust policy's public keys are meant to be shown).
SECRET_NAME = LazyPattern(r"(secret|token|password|passwd|sas|credential|connection|(?<!public_)key(?!s))", re.I)
MASK = "********"


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


class Secret:
    """A secret string that never shows itself in a repr or a format."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def reveal(value: Any) -> Any:
    """The plain value of a :class:`Secret` (anything else as it is)."""
    return value.get_secret_value() if isinstance(value, Secret) else value


def masked(value: Any, key: str = "") -> Any:
    """``value`` as plain data for display, every secret replaced by :data:`MASK`."""
    if isinstance(value, Mapping):
        return {k: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v, key) for v in value]
    if isinstance(value, Secret) or (value not in (None, "") and not isinstance(value, bool) and is_secret_name(key)):
        return MASK
    return value


def holds_secret(value: Any, key: str = "", depth: int = 0) -> bool:
    """Whether the settings document ``value`` holds a credential, or an option whose value is a mapping
    that could hide one (``depth``: 0 the document, 1 a section, 2 an option)."""
    if isinstance(value, Secret):
        return True
    if isinstance(value, Mapping):
        if depth >= 2:
            return True
        return any(holds_secret(v, str(k), depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(holds_secret(v, key, depth) for v in value)
    return value not in (None, "") and not isinstance(value, bool) and is_secret_name(key)


def secret_values(values: Iterable[tuple[str, Any]]) -> list[str]:
    """Every secret among ``(key, value)`` pairs, for scrubbing messages: longest first, so that a part
    never wins over the whole; the ``name=value`` parts of connection strings too."""
    found: set[str] = set()

    def visit(key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                visit(str(k), v)
            return
        if not isinstance(value, Secret) and not (isinstance(value, str) and is_secret_name(key)):
            return
        raw = str(reveal(value))
        found.add(raw)
        for part in raw.split(";"):
            name, _, inner = part.partition("=")
            if inner and is_secret_name(name):
                found.add(inner)

    for key, value in values:
        visit(key, value)
    return sorted((v for v in found if len(v) >= 4), key=len, reverse=True)
