"""Ignore rules: gitignore syntax from ``.modelopsignore`` on top of built-in defaults.

Order of precedence (last match wins, as in git):
1. :data:`ALWAYS_EXCLUDED` -- metadata and VCS folders; never part of a bundle, not even with ``--force``.
2. :data:`DEFAULT_PATTERNS` -- caches, virtualenvs, byte code and secrets; re-include with ``!pattern``.
3. The project's ``.modelopsignore``.

A file that is already tracked stays tracked whatever the rules say (tracking wins).
Patterns are compiled once with pathspec; the resulting regular expressions are cached by the workspace
so that a warm ``status`` does not import pathspec at all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

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


def rules_fingerprint(file_text: str) -> str:
    """Cache key of a compiled rule set: the file's text and the built-in lists."""
    material = "\0".join((*ALWAYS_EXCLUDED, "|", *DEFAULT_PATTERNS, "|", file_text))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


CompiledPatterns = list[tuple[str, bool]]


def compile_patterns(lines: Iterable[str]) -> CompiledPatterns:
    """gitignore lines -> ``[(regex, include)]`` (``include`` False for ``!negations``)."""
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines(list(lines))
    compiled: CompiledPatterns = []
    for pattern in spec.patterns:
        include = getattr(pattern, "include", None)
        regex = getattr(pattern, "regex", None)
        if include is None or regex is None:
            continue  # comment or blank line
        compiled.append((re.sub(r"\(\?P<[^>]+>", "(?:", regex.pattern), bool(include)))
    return compiled


class IgnoreRules:
    """Decides whether a project-relative POSIX path is ignored."""

    def __init__(self, hard: CompiledPatterns, soft: CompiledPatterns) -> None:
        self._hard = re.compile("|".join(f"(?:{rx})" for rx, _ in hard)) if hard else None
        self._soft = [(re.compile(rx), include) for rx, include in soft]
        positives = [rx for rx, include in soft if include]
        # One alternation answers "no rule matches" -- the common case -- in a single regex call.
        self._any = re.compile("|".join(f"(?:{rx})" for rx in positives)) if positives else None

    @classmethod
    def from_text(cls, file_text: str) -> IgnoreRules:
        hard, soft = compile_rule_sets(file_text)
        return cls(hard, soft)

    def is_hard_excluded(self, rel: str, is_dir: bool = False) -> bool:
        probe = rel + "/" if is_dir else rel
        return bool(self._hard and self._hard.match(probe))

    def matches(self, rel: str, is_dir: bool = False) -> bool:
        """The rule verdict for ``rel`` alone (its parent folders are not consulted)."""
        probe = rel + "/" if is_dir else rel
        if self._hard is not None and self._hard.match(probe):
            return True
        if self._any is None or not self._any.match(probe):
            return False
        verdict = False
        for regex, include in self._soft:
            if regex.match(probe):
                verdict = include
        return verdict

    def is_ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Ignored by its own rule or because a parent folder is ignored (git semantics)."""
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            if self.matches("/".join(parts[:depth]), is_dir=True):
                return True
        return self.matches(rel, is_dir)


def compile_rule_sets(file_text: str) -> tuple[CompiledPatterns, CompiledPatterns]:
    hard = compile_patterns(ALWAYS_EXCLUDED)
    soft = compile_patterns([*DEFAULT_PATTERNS, *file_text.splitlines()])
    return hard, soft


def read_ignore_file(path: Path) -> str:
    from modelops_bundle.core.validation import read_text

    return read_text(path, what="ignore file") if path.exists() else ""


def filter_ignored(paths: Sequence[str], rules: IgnoreRules) -> list[str]:
    return [p for p in paths if rules.is_ignored(p)]
