"""Ignore rules: gitignore syntax from ``.modelopsignore`` on top of built-in defaults.

Order of precedence (last match wins, as in git):
1. :data:`ALWAYS_EXCLUDED` -- metadata and VCS folders; never part of a bundle, not even with ``--force``.
2. :data:`DEFAULT_PATTERNS` -- caches, virtualenvs, byte code and secrets; re-include with ``!pattern``.
3. The project's ``.modelopsignore``.

A file that is already tracked stays tracked whatever the rules say (tracking wins).
Patterns are compiled once; the compiled rules are cached by the workspace so that a warm ``status``
compiles nothing. Matching is linear in the length of the path whatever the patterns (a
``.modelopsignore`` travels inside versions, so a pulled one must not hang a clone's ``status``): a
pattern with a slash is matched segment by segment (:class:`PathRule`), and a name pattern with more than
one star by :class:`~modelops_bundle.core.globs.NameGlob` -- never by a backtracking regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.globs import GLOB_CHARACTER, NameGlob, star_count, translate

ALWAYS_EXCLUDED = (".modelops-bundle/", ".git/", ".hg/", ".svn/")

DEFAULT_PATTERNS = (
    # Python byte code and build output
    "__pycache__/",
    "*.py[cod]",
    "*.egg-info/",
    ".eggs/",
    # virtual environments
    ".venv/",
    "venv/",
    ".conda/",
    # tool caches
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".hypothesis/",
    ".tox/",
    ".nox/",
    ".ipynb_checkpoints/",
    "node_modules/",
    # editors and operating systems
    ".idea/",
    ".vscode/",
    "*.swp",
    "*~",
    ".DS_Store",
    "Thumbs.db",
    # secrets: never ship credentials inside a bundle
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "id_rsa*",
    "id_ed25519*",
    ".netrc",
    ".pypirc",
    ".git-credentials",
)

IGNORE_FILE_TEMPLATE = """\
# .modelopsignore -- files that never go into the bundle (gitignore syntax).
# The project's metadata (.modelops-bundle/) and VCS folders (.git/, .hg/, .svn/) are always excluded.
# The defaults below are also built in; re-include one with a negated pattern such as "!data/server.key".

{defaults}

# Project-specific rules:
"""


def default_ignore_file_text() -> str:
    return IGNORE_FILE_TEMPLATE.format(defaults="\n".join(DEFAULT_PATTERNS))


RULES_FORMAT = "rules-v4"  # bump when the compiled form changes: cached rule sets are then recompiled


def rules_fingerprint(file_text: str) -> str:
    """Cache key of a compiled rule set: the format, the built-in lists and the file's text themselves.

    The key is the text, not a hash of it: exact, a few kilobytes in the stat cache, and a warm status
    need not load OpenSSL (``hashlib``: 3-4 ms) to compare it."""
    return "\0".join((RULES_FORMAT, *ALWAYS_EXCLUDED, "|", *DEFAULT_PATTERNS, "|", file_text))


# A compiled rule: (kind, text, include, dir_only). Kinds, cheapest first:
#   "name"   -- the basename equals ``text``          (``.env``, ``node_modules/``)
#   "suffix" -- the basename ends with ``text``       (``*.pyc`` -> ``.pyc``)
#   "glob"   -- the basename matches regex ``text``   (``id_rsa*``, ``*.py[cod]``: at most one star)
#   "wild"   -- the basename matches glob ``text``    (two stars or more: :class:`NameGlob`)
#   "path"   -- the whole path matches the glob ``text`` (patterns containing ``/``: :class:`PathRule`)
# As in git, a pattern without a slash matches the name at any depth; one with a slash is anchored.
Rule = tuple[str, str, bool, bool]
CompiledPatterns = list[Rule]


def compile_patterns(lines: Iterable[str]) -> CompiledPatterns:
    """gitignore lines -> rules (plain data, cached by the workspace; see the kinds above)."""
    rules: CompiledPatterns = []
    for raw in lines:
        line = raw.rstrip("\n")
        line = line.rstrip() + (" " if line.endswith("\\ ") else "")  # "\ " keeps a trailing space
        if not line or line.startswith("#"):
            continue
        include = True
        if line.startswith("!"):
            include, line = False, line[1:]
        elif line.startswith("\\!") or line.startswith("\\#"):
            line = line[1:]
        dir_only = line.endswith("/")
        body = line.rstrip("/")
        if not body:
            continue
        if "/" in body:
            rules.append(("path", body, include, dir_only))
        elif not GLOB_CHARACTER.search(body):
            rules.append(("name", body, include, dir_only))
        elif body.startswith("*") and not GLOB_CHARACTER.search(body[1:]):
            rules.append(("suffix", body[1:], include, dir_only))
        elif star_count(body) > 1:
            rules.append(("wild", body, include, dir_only))
        else:
            rules.append(("glob", _name_regex(body), include, dir_only))
    return rules


class PathRule:
    """A gitignore pattern containing a slash, matched segment by segment in time linear in the path.

    As git (and pathspec's GitIgnoreSpec): anchored at the project root (a leading ``/`` is dropped); a
    ``**`` segment stands for any number of folders (``**/x``, ``a/**/b``); a trailing ``/**`` matches
    everything below the folder (and, as a folder-only pattern, the folder); ``*``, ``?`` and ``[...]``
    stay within a segment. The pattern matches a path when it matches the path's first segments: the
    whole path, or a folder above it (what is below an ignored folder is ignored) -- a folder-only pattern
    only a folder (``is_dir``) or what lies below one.
    """

    def __init__(self, body: str, dir_only: bool) -> None:
        parts: list[str] = []
        for part in body.lstrip("/").split("/"):
            if not (part == "**" and parts and parts[-1] == "**"):  # ``**/**`` is one ``**``
                parts.append(part)
        if len(parts) > 1 and parts[-1] == "**":
            parts.pop()
            dir_only = True
        self.dir_only = dir_only
        #: ``None`` for a ``**`` segment, else the segment's matcher.
        self._segments: list[NameGlob | str | None] = [
            None if part == "**" else (NameGlob(part) if GLOB_CHARACTER.search(part) else part) for part in parts
        ]
        first = self._segments[0]
        self._prefix = first if isinstance(first, str) else None

    def matches(self, rel: str, is_dir: bool) -> bool:
        prefix = self._prefix
        if prefix is not None and not (rel.startswith(prefix) and rel[len(prefix) : len(prefix) + 1] in ("", "/")):
            return False  # the cheap test that answers most paths
        names = rel.split("/")
        count = len(names)
        reach = [0]  # how many segments of the path the pattern's segments so far can consume, ascending
        for segment in self._segments:
            if segment is None:
                reach = list(range(reach[0], count + 1))
            elif isinstance(segment, str):
                reach = [at + 1 for at in reach if at < count and names[at] == segment]
            else:
                reach = [at + 1 for at in reach if at < count and segment.match(names[at])]
            if not reach:
                return False
        if self.dir_only:
            return any(0 < end < count or (end == count and is_dir) for end in reach)
        return reach[-1] > 0


def _name_regex(glob: str) -> str:
    """A gitignore glob over one path component (no ``/`` can occur) as an anchored regex."""
    return "(?s:" + translate(glob) + r")\Z"


class IgnoreRules:
    """Decides whether a project-relative POSIX path is ignored (last matching rule wins)."""

    def __init__(self, hard: CompiledPatterns, soft: CompiledPatterns) -> None:
        self._hard_names = {text for kind, text, _, _ in hard if kind == "name"}
        for kind, text, _, _ in soft:
            if kind == "glob":
                try:
                    re.compile(text)
                except re.error as exc:
                    raise ConfigError(f".modelopsignore: invalid pattern ({exc})") from None
        self._rules: list[tuple[str, Any, bool, bool]] = [
            (kind, _matcher(kind, text, dir_only), include, dir_only) for kind, text, include, dir_only in soft
        ]
        positive = [rule for rule in self._rules if rule[2]]
        # Cheap pre-checks answer "no rule can match" -- the common case -- without evaluating each rule.
        self._names = frozenset(text for kind, text, _, _ in positive if kind == "name")
        self._suffixes = tuple(text for kind, text, _, _ in positive if kind == "suffix")
        globs = [matcher.pattern for kind, matcher, _, _ in positive if kind == "glob"]
        self._any_glob = re.compile("|".join(f"(?:{rx})" for rx in globs)) if globs else None
        self._wild = [matcher for kind, matcher, _, _ in positive if kind == "wild"]
        self._paths = [matcher for kind, matcher, _, _ in positive if kind == "path"]

    @classmethod
    def from_text(cls, file_text: str) -> IgnoreRules:
        hard, soft = compile_rule_sets(file_text)
        return cls(hard, soft)

    def is_hard_excluded(self, rel: str, is_dir: bool = False) -> bool:
        """Metadata and VCS folders (at any depth), everything below them, and files of those names."""
        return any(part in self._hard_names for part in rel.split("/"))

    def matches(self, rel: str, is_dir: bool = False) -> bool:
        """The rule verdict for ``rel`` alone (its parent folders are not consulted)."""
        name = rel.rpartition("/")[2]
        if name in self._hard_names:
            return True
        if not (
            name in self._names
            or (self._suffixes and name.endswith(self._suffixes))
            or (self._any_glob is not None and self._any_glob.match(name))
            or (self._wild and any(glob.match(name) for glob in self._wild))
            or (self._paths and any(rule.matches(rel, is_dir) for rule in self._paths))
        ):
            return False
        verdict = False
        for kind, matcher, include, dir_only in self._rules:
            if dir_only and not is_dir:
                continue
            if kind == "name":
                hit = name == matcher
            elif kind == "suffix":
                hit = name.endswith(matcher)
            elif kind == "glob":
                hit = matcher.match(name) is not None
            elif kind == "wild":
                hit = matcher.match(name)
            else:
                hit = matcher.matches(rel, is_dir)
            if hit:
                verdict = include
        return verdict

    def is_ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Ignored by its own rule or because a parent folder is ignored (git semantics)."""
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            if self.matches("/".join(parts[:depth]), is_dir=True):
                return True
        return self.matches(rel, is_dir)


def _matcher(kind: str, text: str, dir_only: bool) -> Any:
    """What a compiled rule's ``text`` becomes when the rules are loaded (see the kinds above)."""
    if kind == "glob":
        return re.compile(text)
    if kind == "wild":
        return NameGlob(text)
    if kind == "path":
        return PathRule(text, dir_only)
    return text


def compile_rule_sets(file_text: str) -> tuple[CompiledPatterns, CompiledPatterns]:
    hard = compile_patterns(ALWAYS_EXCLUDED)
    soft = compile_patterns([*DEFAULT_PATTERNS, *file_text.splitlines()])
    return hard, soft


def read_ignore_file(path: Path) -> str:
    from modelops_bundle.core.validation import read_text

    return read_text(path, what="ignore file") if path.exists() else ""


def filter_ignored(paths: Sequence[str], rules: IgnoreRules) -> list[str]:
    return [p for p in paths if rules.is_ignored(p)]
