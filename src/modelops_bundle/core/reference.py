"""OCI references: ``[host[:port]/]repository[:tag][@<algorithm>:<hex>]``.

The first path component is a registry host when it contains ``.`` or ``:`` or is ``localhost``
(the docker convention); otherwise the whole string is a repository on the environment's registry.

Where a user names a version (``--ref``, the API), a short digest is accepted too (``@sha256:eba4b34``,
``sha256:eba4b34``, a hex tag): it travels as :attr:`Reference.prefix` until the registry resolves it
(:mod:`.short_digest`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from modelops_bundle.core.errors import UsageError
from modelops_bundle.core.patterns import LazyPattern

#: The fewest hex digits a short digest may have (git's default abbreviation).
MIN_HEX = 7
_PREFIX = LazyPattern(r"^(?:(sha256|sha512):)?([0-9a-f]+)$")
_FULL_HEX = {"sha256": 64, "sha512": 128}


class DigestPrefix(NamedTuple):
    """A short digest still to resolve: ``text`` is ``<algorithm>:<hex>`` (``sha256`` when the user gave
    hex alone), ``known`` the full digests the place it was typed knows besides the registry's."""

    text: str
    known: tuple[str, ...] = ()

    def knowing(self, digests: Iterable[str]) -> DigestPrefix:
        return self._replace(known=tuple(sorted({*self.known, *digests})))

    def matches(self, digest: str) -> bool:
        return digest.startswith(self.text)


def parse_prefix(text: str, *, bare: bool = True) -> DigestPrefix | None:
    """The short digest ``text`` spells (``sha256:<hex>``, or ``<hex>`` alone when ``bare``), or ``None``
    when it is none: fewer than :data:`MIN_HEX` digits, not hex, or a full digest (which is no prefix)."""
    match = _PREFIX.match(text)
    if match is None or (match.group(1) is None and not bare):
        return None
    algorithm, hexdigits = match.group(1) or "sha256", match.group(2)
    if not MIN_HEX <= len(hexdigits) <= _FULL_HEX[algorithm]:
        return None
    if match.group(1) is not None and len(hexdigits) == _FULL_HEX[algorithm]:
        return None  # a full digest, not a prefix
    return DigestPrefix(f"{algorithm}:{hexdigits}")


_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = LazyPattern(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = LazyPattern(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = LazyPattern(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
HOST_RE = LazyPattern(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$"
)


class Reference(NamedTuple):
    """A parsed reference. ``registry`` is ``None`` when the environment's registry is meant.

    Immutable; a NamedTuple rather than a frozen dataclass because every command defines it, and a
    frozen dataclass costs 0.4 ms to define (its generated methods are compiled one by one).
    """

    repository: str
    registry: str | None = None
    tag: str | None = None
    digest: str | None = None
    #: A short digest still to resolve; with ``tag`` also set (a hex tag), the tag wins when it exists.
    prefix: DigestPrefix | None = None

    @property
    def identifier(self) -> str | None:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return self.digest or self.tag

    def with_tag(self, tag: str | None) -> Reference:
        return self._replace(tag=tag, digest=None, prefix=None)

    def with_digest(self, digest: str) -> Reference:
        return self._replace(digest=digest, prefix=None)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        elif self.prefix is not None and not self.tag:
            text += f"@{self.prefix.text}"
        return text


def is_digest(text: str) -> bool:
    return bool(DIGEST_RE.match(text))


def is_tag(text: str) -> bool:
    return bool(TAG_RE.match(text))


def parse_reference(text: str, *, short_digests: bool = False) -> Reference:
    """Parse ``text`` or raise :class:`UsageError` naming what is wrong. With ``short_digests`` (a version
    named by a user), ``@<short digest>`` and hex tags also set :attr:`Reference.prefix`."""
    raw = text.strip()
    if not raw or any(ch.isspace() or ord(ch) < 32 for ch in raw):
        raise UsageError(f"invalid reference {text!r}: empty or contains whitespace/control characters")
    digest = None
    prefix = None
    if "@" in raw:
        raw, digest = raw.split("@", 1)
        if not DIGEST_RE.match(digest):
            prefix = parse_prefix(digest) if short_digests else None
            if prefix is None:
                raise UsageError(f"invalid reference {text!r}: {digest!r} is not a sha256/sha512 digest")
            digest = None
    registry = None
    first, sep, rest = raw.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not HOST_RE.match(first):
            raise UsageError(f"invalid reference {text!r}: bad registry host {first!r}")
        registry, raw = first, rest
    tag = None
    last_slash = raw.rfind("/")
    colon = raw.rfind(":")
    if colon > last_slash:
        raw, tag = raw[:colon], raw[colon + 1 :]
        if not TAG_RE.match(tag):
            raise UsageError(f"invalid reference {text!r}: bad tag {tag!r}")
    if not REPOSITORY_RE.match(raw):
        raise UsageError(
            f"invalid reference {text!r}: repository {raw!r} must be lower-case letters, digits and . _ - /"
        )
    if short_digests and prefix is None and tag is not None and digest is None:
        prefix = parse_prefix(tag)
    return Reference(repository=raw, registry=registry, tag=tag, digest=digest, prefix=prefix)


def parse_ref_option(value: str, base: Reference) -> Reference:
    """``--ref`` values: a tag, a digest, a short digest or a full reference; all but the last apply to
    ``base``."""
    if is_digest(value):
        return Reference(base.repository, base.registry, None, value)
    prefix = parse_prefix(value, bare=False)
    if prefix is not None:
        return Reference(base.repository, base.registry, prefix=prefix)
    if value.startswith(("sha256:", "sha512:")):  # never a repository named "sha256"
        raise UsageError(f"invalid reference {value!r}: not a digest, nor a short one (at least {MIN_HEX} hex digits)")
    if is_tag(value) and "/" not in value and ":" not in value:
        return Reference(base.repository, base.registry, value, None, parse_prefix(value))
    return parse_reference(value, short_digests=True)
