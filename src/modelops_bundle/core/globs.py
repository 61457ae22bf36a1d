"""Glob patterns over project-relative POSIX paths (``*``, ``?``, ``[...]``, ``**``).

``*`` and ``?`` stay within one folder; ``**`` crosses folders. A pattern that matches a folder selects
the files below it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from modelops_bundle.core.errors import UsageError


def translate(pattern: str) -> str:
    """The regular expression (unanchored) of a glob: ``*``/``?``/``[...]`` within a folder, ``**`` across
    folders, ``\\x`` a literal ``x``."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            class_regex, end = bracket_class(pattern, i)
            if class_regex is None:
                out.append(re.escape(ch))
            else:
                out.append(class_regex)
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """A project-relative path matching ``pattern``, or any path below a folder matching it."""
    return re.compile(translate(pattern) + "(?:/.*)?$")


def bracket_class(pattern: str, start: int) -> tuple[str | None, int]:
    """The regex of the ``[...]`` class opening at ``start`` and the index of its ``]``.

    As in fnmatch and git, a ``]`` right after ``[`` or ``[!`` is a member, not the end. Returns
    ``(None, start)`` when the class is not closed (the ``[`` is then a literal).
    """
    first = start + 1
    negate = pattern[first : first + 1] in ("!", "^")
    if negate:
        first += 1
    end = pattern.find("]", first + 1 if pattern[first : first + 1] == "]" else first)
    if end == -1:
        return None, start
    members = pattern[first:end]
    escaped = "".join("\\" + ch if ch in "\\]^[" else ch for ch in members)
    return "[" + ("^" if negate else "") + escaped + "]", end


def match_paths(pattern: str, candidates: Iterable[str]) -> list[str]:
    try:
        regex = glob_to_regex(pattern)
    except re.error as exc:
        raise UsageError(f"invalid glob pattern {pattern!r}: {exc}") from None
    return [path for path in candidates if regex.match(path)]
