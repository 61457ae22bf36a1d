"""Help on typos: the known name closest to a mistyped one (``psuh`` -> ``push``)."""

from __future__ import annotations

from collections.abc import Iterable

#: How alike two names must be (``difflib`` ratio) for one to be suggested for the other.
CUTOFF = 0.6


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like ``word``, or ``None`` when none is close (or ``word`` is one of them)."""
    import difflib

    options = [choice for choice in dict.fromkeys(choices) if choice]
    if not word or word in options:
        return None
    found = difflib.get_close_matches(word, options, n=1, cutoff=CUTOFF)
    if not found:  # a case slip (``V1.0.0``) is a typo too
        lowered = {choice.lower(): choice for choice in options}
        found = [lowered[word.lower()]] if word.lower() in lowered else []
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'push'?"`` to end an error message with, or ``""``."""
    match = closest(word, choices)
    return f"; did you mean {match!r}?" if match is not None else ""
