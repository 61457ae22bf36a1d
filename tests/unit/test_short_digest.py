"""Short-digest parsing and resolution (core logic; the CLI side is tests/cli/test_short_digests.py)."""

from __future__ import annotations

import pytest

from modelops_bundle.core import short_digest
from modelops_bundle.core.errors import UsageError
from modelops_bundle.core.reference import DigestPrefix, Reference, parse_prefix, parse_ref_option, parse_reference
from modelops_bundle.core.short_digest import expand, settled

A = "sha256:" + "ab12cd3" + "0" * 57
B = "sha256:" + "ab12cd3" + "f" * 57
C = "sha256:" + "9" * 64


class Backend:
    """Just enough of a registry: tags -> digests, and which manifests exist (a unit-test fake)."""

    def __init__(self, tags: dict[str, str], stored: set[str]) -> None:
        self.tags, self.stored = tags, stored
        self.asked: list[str] = []

    def list_tags(self, repository: str) -> list[str]:
        return sorted(self.tags)

    def resolve(self, repository: str, reference: str) -> str | None:
        self.asked.append(reference)
        if reference.startswith("sha256:"):
            return reference if reference in self.stored else None
        return self.tags.get(reference)


@pytest.mark.parametrize(
    ("text", "bare", "expected"),
    [
        ("sha256:ab12cd3", False, "sha256:ab12cd3"),
        ("ab12cd3", True, "sha256:ab12cd3"),
        ("ab12cd3", False, None),  # hex alone only where a bare prefix is meant
        ("sha256:ab12cd", True, None),  # six digits: too few
        ("AB12CD3", True, None),  # digests are lower case
        ("sha256:ab12cd3x", True, None),
        (A, True, None),  # a full digest is no prefix
        ("sha512:" + "a" * 64, True, "sha512:" + "a" * 64),
        ("v1.0.0", True, None),
    ],
)
def test_parse_prefix(text: str, bare: bool, expected: str | None) -> None:
    parsed = parse_prefix(text, bare=bare)
    assert (parsed.text if parsed else None) == expected


def test_references_carry_the_prefix_until_it_is_resolved() -> None:
    base = Reference("proj", tag="latest")
    by_prefix = parse_ref_option("sha256:ab12cd3", base)
    assert (by_prefix.tag, by_prefix.digest, by_prefix.prefix) == (None, None, DigestPrefix("sha256:ab12cd3"))
    assert str(by_prefix) == "proj@sha256:ab12cd3"
    hex_tag = parse_ref_option("ab12cd3", base)
    assert hex_tag.tag == "ab12cd3" and hex_tag.prefix == DigestPrefix("sha256:ab12cd3")
    assert parse_ref_option("v1", base).prefix is None
    assert parse_ref_option(A, base).digest == A
    with pytest.raises(UsageError, match="at least 7 hex digits"):
        parse_ref_option("sha256:ab12", base)
    full = parse_reference("host:5000/proj@ab12cd3", short_digests=True)
    assert (full.registry, full.repository, full.prefix) == ("host:5000", "proj", DigestPrefix("sha256:ab12cd3"))
    with pytest.raises(UsageError, match="is not a sha256/sha512 digest"):
        parse_reference("proj@ab12cd3")  # configuration files name full digests only
    assert by_prefix.with_digest(A).prefix is None and hex_tag.with_tag("x").prefix is None


def test_expand_finds_the_one_match_or_lists_all() -> None:
    versions = {A: ["v1"], C: ["latest"]}
    assert expand(DigestPrefix("sha256:ab12cd3"), versions, where="proj") == A
    assert expand(DigestPrefix("sha256:1234567"), versions, where="proj") is None
    with pytest.raises(UsageError) as caught:
        expand(DigestPrefix("sha256:ab12cd3", known=(B,)), versions, where="proj")
    message = caught.value.message
    assert "short digest sha256:ab12cd3 is ambiguous in proj: 2 versions start with it" in message
    assert f"{A} (v1)" in message and B in message
    assert expand(DigestPrefix("sha256:ab12cd3f", known=(B,)), versions, where="proj") == B


def test_resolve_asks_the_tag_first_then_every_version() -> None:
    backend = Backend({"v1": A, "ab12cd3": C, f"sha256-{B[7:]}": "sha256:" + "e" * 64}, {A, B, C})
    hex_tag = Reference("proj", tag="ab12cd3", prefix=DigestPrefix("sha256:ab12cd3"))
    assert short_digest.resolve(backend, hex_tag) == C  # the tag exists: it wins
    assert settled(hex_tag, C) == Reference("proj", tag="ab12cd3")
    by_prefix = Reference("proj", prefix=DigestPrefix("sha256:ab12cd30"))
    assert short_digest.resolve(backend, by_prefix) == A
    assert settled(by_prefix, A) == Reference("proj", digest=A)
    untagged = Reference("proj", prefix=DigestPrefix("sha256:ab12cd3f"))
    assert short_digest.resolve(backend, untagged) == B  # named by its referrers' fallback tag only


def test_a_digest_only_the_caller_knows_must_still_exist() -> None:
    backend = Backend({"latest": C}, {C})
    known_gone = Reference("proj", prefix=DigestPrefix("sha256:ab12cd3", known=(A,)))
    assert short_digest.resolve(backend, known_gone) is None
    backend.stored.add(A)
    assert short_digest.resolve(backend, known_gone) == A
    assert A in backend.asked
