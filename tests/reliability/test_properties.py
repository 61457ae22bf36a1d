"""Property-based tests (hypothesis, derandomized): path validation, ignore matching against pathspec's
GitIgnoreSpec, the linear glob matchers against the regular expressions they replace, index parsing,
reference parsing."""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

import pathspec
from hypothesis import assume, given
from hypothesis import strategies as st

from modelops_bundle.core.errors import IntegrityError, UsageError
from modelops_bundle.core.globs import NameGlob, TokenGlob, glob_to_regex, translate
from modelops_bundle.core.ignore import IgnoreRules, PathRule, compile_patterns
from modelops_bundle.core.index import INDEX_MEDIA_TYPE
from modelops_bundle.core.index_reading import parse_index
from modelops_bundle.core.paths import invalid_reason
from modelops_bundle.core.reference import DIGEST_RE, REPOSITORY_RE, TAG_RE, Reference, parse_reference
from tests.reliability.conftest import PROPERTY, Trial

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
SEGMENT_CHARS = st.sampled_from([*"ab.-_ ~\\:", "\x00", "\n", "\x1b", "é", "/"])
PATHISH = st.lists(SEGMENT_CHARS, max_size=16).map("".join) | st.sampled_from(
    ["..", ".", "/", "a/../b", "a//b", "C:/x"]
)


# ------------------------------------------------------------------------------------------- paths


@PROPERTY
@given(rel=PATHISH | TEXT)
def test_valid_paths_never_escape_the_root(rel: str) -> None:
    if invalid_reason(rel) is not None:
        return
    assert not rel.startswith("/") and "\\" not in rel
    assert all(ord(ch) >= 32 and ord(ch) != 127 for ch in rel)
    parts = rel.split("/")
    assert all(part not in ("", ".", "..") for part in parts)
    root = "/project/root"
    joined = posixpath.normpath(posixpath.join(root, rel))
    assert joined.startswith(root + "/") and posixpath.relpath(joined, root) == rel


def test_path_property_recorded(trial: Trial) -> None:
    trial.record(
        "properties",
        "path validation (core/paths.py): a path accepted as valid never escapes the project root, has no "
        "control characters, backslashes, empty, `.` or `..` segments",
        f"{PROPERTY.max_examples} generated paths (derandomized) per property",
        "held",
    )


# ----------------------------------------------------------------- linear matching (issue 15, item 10)

NAME_PIECES = st.sampled_from(["a", "b", "ab", "*", "?", "[ab]", "[!a]", "**", "\\*"])
PATH_PIECES = st.sampled_from(["a", "b", "*", "?", "[ab]", "**", "**/", "/", "a/", "*/"])


def _old_name_regex(glob: str) -> re.Pattern[str]:
    """The matcher ignore.py used for name patterns: a regular expression over the name (backtracking)."""
    return re.compile("(?s:" + translate(glob) + r")\Z")


@PROPERTY
@given(pattern=st.lists(NAME_PIECES, min_size=1, max_size=7).map("".join), name=st.text("ab*", max_size=10))
def test_name_glob_agrees_with_the_regular_expression(pattern: str, name: str) -> None:
    assert NameGlob(pattern).match(name) == bool(_old_name_regex(pattern).match(name)), (pattern, name)


@PROPERTY
@given(pattern=st.lists(PATH_PIECES, min_size=1, max_size=6).map("".join), path=st.text("ab/", min_size=1, max_size=12))
def test_token_glob_agrees_with_the_regular_expression(pattern: str, path: str) -> None:
    expected = bool(re.compile(translate(pattern) + "(?:/.*)?$").match(path))
    assert TokenGlob(pattern).match(path) == expected, (pattern, path)
    assert bool(glob_to_regex(pattern).match(path)) == expected, (pattern, path)


SEGMENTS = st.sampled_from(["a", "b", "*", "?", "[ab]", "**", "a*b", "*a*", "a**"])
PATH_SEGMENTS = st.sampled_from(["a", "b", "ab", "ba", "aab"])


@PROPERTY
@given(
    parts=st.lists(SEGMENTS, min_size=2, max_size=4),
    leading=st.booleans(),
    dir_only=st.booleans(),
    path=st.lists(PATH_SEGMENTS, min_size=1, max_size=5),
    is_dir=st.booleans(),
)
def test_path_rule_agrees_with_gitignore_spec_regexes(
    parts: list[str], leading: bool, dir_only: bool, path: list[str], is_dir: bool
) -> None:
    """The segment-by-segment matcher equals pathspec's regular expression for the same line (what
    ignore.py used before), on every generated pattern with a slash."""
    import pathspec

    body = ("/" if leading else "") + "/".join(parts)
    line = body + ("/" if dir_only else "")
    regex = pathspec.GitIgnoreSpec.from_lines([line]).patterns[0].regex
    assert regex is not None
    pattern = re.sub(r"\(\?P<[^>]+>", "(?:", regex.pattern)
    pattern = pattern if pattern.startswith("^") else f"^[\\s\\S]*?(?:{pattern})"
    rel = "/".join(path)
    expected = bool(re.match(pattern, rel + "/" if is_dir else rel))
    assert PathRule(body, dir_only).matches(rel, is_dir) == expected, (line, rel, is_dir)


def test_linear_matching_property_recorded(trial: Trial) -> None:
    trial.record(
        "properties",
        "linear-time matching (core/globs.py NameGlob and TokenGlob, core/ignore.py PathRule) against the "
        "backtracking regular expressions they replace: name globs with several `*`, `?`, classes and "
        "escapes; path globs with `**`, `**/`; gitignore patterns with a slash against pathspec's regexes "
        "(anchored, folder-only, `**` segments, stars inside segments)",
        f"3 x {PROPERTY.max_examples} generated patterns x names (derandomized)",
        "identical verdicts",
    )


# ------------------------------------------------------------------------------------------ ignore

PATTERN_PART = st.sampled_from(["a", "b", "c", "*", "?", "a*", "*.txt", "[ab]", "**"])
PATH_PART = st.sampled_from(["a", "b", "c", "ab", "a.txt", "b.txt", "x.py"])


@st.composite
def patterns(draw: Any) -> str:
    parts = draw(st.lists(PATTERN_PART, min_size=1, max_size=3))
    text = "/".join(parts)
    if draw(st.booleans()):
        text = "/" + text
    if draw(st.booleans()):
        text += "/"
    if draw(st.integers(0, 4)) == 0:
        text = "!" + text
    return text


@PROPERTY
@given(lines=st.lists(patterns(), min_size=1, max_size=4), path=st.lists(PATH_PART, min_size=1, max_size=4))
def test_ignore_matching_agrees_with_gitignore_spec(lines: list[str], path: list[str]) -> None:
    """Where both define git's semantics the same way, our verdict equals pathspec's GitIgnoreSpec. Not
    compared: a negation re-including a file below an excluded folder -- git never descends into an
    excluded folder (so the file stays ignored, as here), while GitIgnoreSpec lets the negation win."""
    rel = "/".join(path)
    assume(not (len(path) > 1 and any(line.startswith("!") for line in lines)))
    ours = IgnoreRules([], compile_patterns(lines)).is_ignored(rel)
    theirs = pathspec.GitIgnoreSpec.from_lines(lines).match_file(rel)
    assert ours == theirs, (lines, rel)


def test_ignore_property_recorded(trial: Trial) -> None:
    trial.record(
        "properties",
        "ignore matching (core/ignore.py) against pathspec's GitIgnoreSpec: anchored and unanchored, `*`, "
        "`?`, `[ab]`, `**`, folder-only and negated patterns, files at depth 1-4 (negations compared at depth 1 "
        "only: below an excluded folder git keeps the file ignored, GitIgnoreSpec re-includes it)",
        f"{PROPERTY.max_examples} generated rule sets x paths",
        "identical verdicts",
    )


# ------------------------------------------------------------------------------------------- index

DIGEST = "sha256:" + "ab" * 32


def _entry(path: str) -> dict[str, Any]:
    return {
        "path": path,
        "size": 3,
        "digest": DIGEST,
        "algorithm": "sha256",
        "storage": "oci",
        "mode": 420,
        "layer": DIGEST,
    }


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
FIELDS = ["path", "size", "digest", "algorithm", "storage", "mode", "layer", "blobRef", "extra"]


@st.composite
def hostile_indexes(draw: Any) -> bytes:
    files = [_entry(draw(PATHISH | TEXT)) for _ in range(draw(st.integers(0, 4)))]
    for entry in files:
        for _ in range(draw(st.integers(0, 2))):
            entry[draw(st.sampled_from(FIELDS))] = draw(JSONISH)
    document: Any = {"mediaType": INDEX_MEDIA_TYPE, "schemaVersion": 1, "files": files}
    mode = draw(st.integers(0, 9))
    if mode == 0:
        document = draw(JSONISH)
    elif mode == 1:
        document[draw(TEXT)] = draw(JSONISH)
    elif mode == 2:
        return draw(st.binary(max_size=64))
    text = json.dumps(document)
    if mode == 3 and files:  # a duplicate key, which json.loads would silently collapse
        text = text.replace('"size": 3', '"size": 3, "size": 4', 1)
    return text.encode()


@PROPERTY
@given(data=hostile_indexes())
def test_parse_index_only_raises_integrity_errors_and_accepts_only_valid_paths(data: bytes) -> None:
    try:
        index = parse_index(data, source="generated")
    except IntegrityError:
        return
    paths = [entry.path for entry in index.files]
    assert len(paths) == len(set(paths))
    for path in paths:
        assert invalid_reason(path) is None, path


def test_index_property_recorded(trial: Trial) -> None:
    trial.record(
        "properties",
        "index parsing (core/index.py parse_index) of mutated indexes: random paths, wrong-typed fields, "
        "extra keys, duplicate keys, arbitrary JSON and bytes",
        f"{PROPERTY.max_examples} generated documents",
        "only IntegrityError raised; every accepted path valid and unique",
    )


# ---------------------------------------------------------------------------------------- references

COMPONENT = st.from_regex(r"\A[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4}){0,2}\Z")
TAG = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,20}\Z")
HOST = st.sampled_from(["localhost", "localhost:5000", "127.0.0.1:5555", "registry.example.com", "ghcr.io", "[::1]:80"])


@st.composite
def references(draw: Any) -> Reference:
    repository = "/".join(draw(st.lists(COMPONENT, min_size=1, max_size=3)))
    registry = draw(st.none() | HOST)
    tag = draw(st.none() | TAG)
    digest = draw(st.none() | st.from_regex(r"\Asha256:[a-f0-9]{64}\Z"))
    if registry is None and "/" in repository and ("." in repository.split("/")[0]):
        registry = "localhost"  # a first component with '.' would be read as a host (docker's rule)
    return Reference(repository=repository, registry=registry, tag=tag, digest=digest)


@PROPERTY
@given(reference=references())
def test_references_round_trip(reference: Reference) -> None:
    assert parse_reference(str(reference)) == reference


@PROPERTY
@given(text=TEXT | st.lists(st.sampled_from([*"aA:/@.-_ 0x", "sha256:", "localhost"]), max_size=20).map("".join))
def test_reference_parsing_never_accepts_invalid(text: str) -> None:
    try:
        parsed = parse_reference(text)
    except UsageError:
        return
    assert REPOSITORY_RE.match(parsed.repository)
    assert parsed.tag is None or TAG_RE.match(parsed.tag)
    assert parsed.digest is None or DIGEST_RE.match(parsed.digest)
    assert not any(ch.isspace() or ord(ch) < 32 for ch in str(parsed))
    assert parse_reference(str(parsed)) == parsed


def test_reference_property_recorded(trial: Trial) -> None:
    trial.record(
        "properties",
        "reference parsing (core/reference.py): generated valid references round-trip; arbitrary text is "
        "refused with UsageError or parses to valid, re-parseable parts",
        f"{PROPERTY.max_examples} generated references + {PROPERTY.max_examples} arbitrary strings",
        "held",
    )
