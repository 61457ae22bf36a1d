"""Glob patterns over project-relative POSIX paths (``*``, ``?``, ``[...]``, ``**``).

``*`` and ``?`` stay within one folder; ``**`` crosses folders. A pattern that matches a folder selects
the files below it.

Matching takes time linear in the length of the path, whatever the pattern: patterns and names can come
from someone else (a ``.modelopsignore`` travels inside versions), and a backtracking regular expression
of ``*a*a*a*a*a*a*a*a*a*a*b`` takes seconds on a name of 40 ``a`` -- each further ``a`` multiplies it. A
pattern with at most one star is a regular expression (one star cannot backtrack more than linearly);
with more, :class:`NameGlob` (one path segment: fixed-length pieces between the stars, found leftmost
first) or :class:`TokenGlob` (a whole path: a set-of-states automaton) answers instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Protocol

from modelops_bundle.core.errors import UsageError

#: The regular expression of each token kind that stands for more than itself.
_TOKEN_REGEX = {"star": "[^/]*", "cross": ".*", "dirs": "(?:.*/)?"}


def translate(pattern: str) -> str:
    """The regular expression (unanchored) of a glob: ``*``/``?``/``[...]`` within a folder, ``**`` across
    folders, ``\\x`` a literal ``x``."""
    return "".join(_TOKEN_REGEX.get(kind, regex) for kind, regex in _piece_tokens(pattern))


#: A character that makes a path segment a pattern rather than a literal name.
GLOB_CHARACTER = re.compile(r"[*?\[\\]")


class PathMatcher(Protocol):
    def match(self, path: str) -> Any: ...


@lru_cache(maxsize=256)
def glob_to_regex(pattern: str) -> PathMatcher:
    """What matches a project-relative path matching ``pattern``, or any path below a folder matching it
    (``.match(path)`` is truthy), in time linear in the path (see the module docstring)."""
    if star_count(pattern) <= 1:
        return re.compile(translate(pattern) + "(?:/.*)?$")
    return TokenGlob(pattern)


def star_count(pattern: str) -> int:
    """How many runs of ``*`` a glob has (escaped ones do not count)."""
    count, i, previous_star = 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            previous_star = False
            continue
        if ch == "*" and not previous_star:
            count += 1
        previous_star = ch == "*"
        i += 1
    return count


def _piece_tokens(pattern: str) -> list[tuple[str, str]]:
    """A glob as tokens: ``("lit", regex of one literal)``, ``("one", "[^/]")``, ``("class", regex)``,
    ``("star", "")`` (``*``: within a folder), ``("cross", "")`` (``**`` not followed by ``/``: across
    folders) and ``("dirs", "")`` (``**/``: nothing, or anything ending in ``/``) -- the one reading of a glob that
    :func:`translate` and the linear matchers share."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    i += 1
                    tokens.append(("dirs", ""))
                else:
                    tokens.append(("cross", ""))
                continue
            tokens.append(("star", ""))
        elif ch == "?":
            tokens.append(("one", "[^/]"))
        elif ch == "\\" and i + 1 < n:
            i += 1
            tokens.append(("lit", re.escape(pattern[i])))
        elif ch == "[":
            class_regex, end = bracket_class(pattern, i)
            if class_regex is None:
                tokens.append(("lit", re.escape(ch)))
            else:
                tokens.append(("class", class_regex))
                i = end
        else:
            tokens.append(("lit", re.escape(ch)))
        i += 1
    return tokens


class NameGlob:
    """A glob over one path segment (``*``, ``?``, ``[...]``; no ``/`` in the name) matched in time linear
    in the name: the pieces between the stars have fixed lengths, so the first must match at the start,
    the last at the end, and each other one leftmost after the previous -- exact for fixed-length pieces,
    with no backtracking (each piece is a regular expression without quantifiers)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        pieces: list[list[str]] = [[]]
        for kind, regex in _piece_tokens(pattern):
            if kind in ("star", "cross", "dirs"):
                pieces.append([])
            else:
                pieces[-1].append(regex)
        self._lengths = [len(piece) for piece in pieces]
        self._pieces = [re.compile("".join(piece), re.DOTALL) for piece in pieces]
        self._minimum = sum(self._lengths)

    def match(self, name: str) -> bool:
        pieces, lengths = self._pieces, self._lengths
        if len(pieces) == 1:
            return len(name) == lengths[0] and pieces[0].match(name) is not None
        if len(name) < self._minimum or pieces[0].match(name) is None:
            return False
        start, end = lengths[0], len(name) - lengths[-1]
        if pieces[-1].match(name, end) is None:
            return False
        for piece in pieces[1:-1]:
            found = piece.search(name, start, end)
            if found is None:
                return False
            start = found.end()
        return True


class TokenGlob:
    """A glob over a whole path (see :func:`translate`, with a folder matching selecting what is below
    it), run as an automaton over sets of pattern positions: time linear in the path."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._tokens = [
            (kind, re.compile(regex, re.DOTALL) if regex else None) for kind, regex in _piece_tokens(pattern)
        ]

    def _closure(self, states: set[int]) -> set[int]:
        """Add the states reachable without reading: past a star, past ``**/`` (it may match nothing)."""
        todo, seen = list(states), set(states)
        while todo:
            state = todo.pop()
            skippable = state % 2 == 0 and state // 2 < len(self._tokens)
            if skippable and self._tokens[state // 2][0] in ("star", "cross", "dirs") and state + 2 not in seen:
                seen.add(state + 2)
                todo.append(state + 2)
        return seen

    def match(self, path: str) -> bool:
        # States: 2*i -- about to match token i; 2*i+1 -- inside the ``**/`` of token i; ``done`` -- the
        # pattern matched a folder and the rest of the path lies below it.
        end, done = 2 * len(self._tokens), -1
        states = self._closure({0})
        for ch in path:
            following: set[int] = set()
            for state in states:
                if state == done:
                    following.add(done)
                    continue
                if state == end:
                    if ch == "/":
                        following.add(done)
                    continue
                kind, regex = self._tokens[state // 2]
                if state % 2 == 1:  # inside ``**/``: anything, and a ``/`` may end it
                    following.add(state)
                    if ch == "/":
                        following.add(state + 1)
                elif kind == "star":
                    if ch != "/":
                        following.add(state)
                elif kind == "cross":
                    following.add(state)
                elif kind == "dirs":
                    following.add(state + 1)
                    if ch == "/":
                        following.add(state + 2)
                elif regex is not None and regex.match(ch):
                    following.add(state + 2)
            states = self._closure(following)
            if not states:
                return False
        return end in states or done in states


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
        matcher = glob_to_regex(pattern)
    except re.error as exc:
        raise UsageError(f"invalid glob pattern {pattern!r}: {exc}") from None
    return [path for path in candidates if matcher.match(path)]
