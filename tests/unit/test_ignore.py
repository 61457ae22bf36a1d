"""core/ignore.py: built-in defaults, .modelopsignore (gitignore syntax), negation, hard excludes."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_bundle.core.ignore import (
    ALWAYS_EXCLUDED,
    DEFAULT_PATTERNS,
    IgnoreRules,
    compile_rule_sets,
    default_ignore_file_text,
    filter_ignored,
    read_ignore_file,
    rules_fingerprint,
)


@pytest.fixture
def defaults() -> IgnoreRules:
    return IgnoreRules.from_text("")


@pytest.mark.parametrize(
    "rel",
    [
        ".env",
        "config/.env",
        ".env.production",
        "certs/server.pem",
        "deploy.key",
        "id_rsa",
        "id_ed25519.pub",
        ".netrc",
        "pkg/module.pyc",
        "pkg/__pycache__/module.cpython-311.pyc",
        ".venv/lib/site.py",
        "venv/bin/python",
        ".pytest_cache/v/x",
        "node_modules/x/index.js",
        "notes.txt.swp",
        ".DS_Store",
    ],
)
def test_defaults_ignore_secrets_caches_and_environments(defaults: IgnoreRules, rel: str) -> None:
    assert defaults.is_ignored(rel)


@pytest.mark.parametrize("rel", ["src/model.py", "data/a.csv", "README.md", "keys.txt", "environment.yml"])
def test_defaults_keep_ordinary_files(defaults: IgnoreRules, rel: str) -> None:
    assert not defaults.is_ignored(rel)


@pytest.mark.parametrize("rel", [".git/config", ".modelops-bundle/config.yaml", ".hg/store", ".svn/entries"])
def test_hard_excludes(defaults: IgnoreRules, rel: str) -> None:
    folder = rel.split("/")[0]
    assert defaults.is_hard_excluded(folder, is_dir=True)
    assert defaults.is_ignored(rel)


def test_hard_excludes_cannot_be_negated() -> None:
    rules = IgnoreRules.from_text("!.git/\n!.modelops-bundle/\n!.git/config\n")
    assert rules.is_ignored(".git/config")
    assert rules.is_ignored(".modelops-bundle/tracked.txt")
    assert rules.matches(".git", is_dir=True)


def test_negation_re_includes_a_default() -> None:
    rules = IgnoreRules.from_text("!data/server.key\n")
    assert not rules.is_ignored("data/server.key")
    assert rules.is_ignored("other/server.key")


def test_last_matching_rule_wins() -> None:
    rules = IgnoreRules.from_text("*.log\n!keep.log\n")
    assert rules.is_ignored("run.log")
    assert not rules.is_ignored("keep.log")
    rules = IgnoreRules.from_text("!keep.log\n*.log\n")
    assert rules.is_ignored("keep.log")


def test_directory_pattern_matches_folders_only() -> None:
    rules = IgnoreRules.from_text("build/\n")
    assert rules.matches("build", is_dir=True)
    assert not rules.matches("build", is_dir=False)  # a file named 'build' is kept
    assert rules.is_ignored("build/out.bin")
    assert rules.is_ignored("sub/build/out.bin")


def test_anchored_pattern() -> None:
    rules = IgnoreRules.from_text("/output\n")
    assert rules.is_ignored("output/x.csv")
    assert not rules.is_ignored("src/output/x.csv")


def test_parent_folder_semantics_as_in_git() -> None:
    """A file below an ignored folder is ignored; negating the file alone cannot bring it back."""
    rules = IgnoreRules.from_text("results/\n!results/keep.csv\n")
    assert rules.is_ignored("results/keep.csv")
    assert rules.is_ignored("results/deep/x.csv")
    # matches() judges the path alone, without its parents
    assert not rules.matches("results/keep.csv")


def test_comments_and_blank_lines_are_not_rules() -> None:
    rules = IgnoreRules.from_text("# *.csv\n\n   \n")
    assert not rules.is_ignored("a.csv")


def test_filter_ignored(defaults: IgnoreRules) -> None:
    assert filter_ignored(["a.py", ".env", "b.pyc", "c.csv"], defaults) == [".env", "b.pyc"]


def test_default_file_text_lists_every_default_and_compiles_to_the_same_rules() -> None:
    text = default_ignore_file_text()
    for pattern in DEFAULT_PATTERNS:
        assert pattern in text.splitlines()
    for secret in (".env", "*.pem", "*.key"):
        assert secret in text.splitlines()
    from_file = IgnoreRules.from_text(text)
    for rel in (".env", "a.pem", "x.key", ".venv/x", "a.pyc", "src/m.py"):
        assert from_file.is_ignored(rel) == IgnoreRules.from_text("").is_ignored(rel)


def test_compiled_rules_round_trip_through_json() -> None:
    """The workspace caches compiled rules as JSON; rebuilt rules must decide identically."""
    import json

    hard, soft = compile_rule_sets("*.log\n!keep.log\nbuild/\n")
    restored = json.loads(json.dumps([hard, soft]))
    rebuilt = IgnoreRules([tuple(p) for p in restored[0]], [tuple(p) for p in restored[1]])
    original = IgnoreRules(hard, soft)
    for rel in ("a.log", "keep.log", "build/x", ".git/x", "src/a.py", ".env"):
        assert rebuilt.is_ignored(rel) == original.is_ignored(rel)
    assert len(hard) == len(ALWAYS_EXCLUDED)


def test_fingerprint_changes_with_the_file_text() -> None:
    assert rules_fingerprint("a\n") == rules_fingerprint("a\n")
    assert rules_fingerprint("a\n") != rules_fingerprint("b\n")


def test_read_ignore_file(tmp_path: Path) -> None:
    assert read_ignore_file(tmp_path / "missing") == ""
    path = tmp_path / ".modelopsignore"
    path.write_text("*.csv\n")
    assert read_ignore_file(path) == "*.csv\n"
