"""Yes/no values: the one word list for environment variables and the boolean keys of settings files."""

from __future__ import annotations

from collections.abc import Mapping

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", "f"})


def truthy(value: str | None) -> bool:
    """Whether an environment variable's text says yes (unset, empty or anything else says no)."""
    return value is not None and value.strip().lower() in TRUE_WORDS


def env_flag(environ: Mapping[str, str], name: str) -> bool:
    """``truthy(environ[name])``."""
    return truthy(environ.get(name))


def parse_bool(value: object) -> bool | None:
    """A settings file's yes/no value: a YAML boolean, 0/1, or one of the words above in any case;
    ``None`` when ``value`` is none of them (the caller names the key)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None
