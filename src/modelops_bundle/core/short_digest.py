"""Short digests: ``sha256:eba4b34`` (or ``eba4b34``) for the version whose digest starts with it.

``tags``, ``status`` and ``push`` show 12 hex digits; anywhere a version is named, any unique prefix of
at least :data:`MIN_HEX` hex digits names it too, as in git. A prefix is resolved once, against every
version the repository and the caller know of -- the registry's tags, the subjects of its referrers
(the ``sha256-<hex>`` fallback tags that provenance keeps for untagged versions too) and the
``known`` digests of the caller (a project's history in ``state.json``, the versions in the shared
cache) -- and from then on only the full digest is used, recorded and printed. A prefix two versions
share is a usage error that lists both.

A bare hex string is also a valid tag name: it names the tag when that tag exists (a CI tagging by git
commit, say), and a digest prefix otherwise. Parsing a prefix is :mod:`.reference`'s (``DigestPrefix``,
``parse_prefix``); resolving it against a registry is this module's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops_bundle.core.errors import UsageError

if TYPE_CHECKING:
    from modelops_bundle.core.reference import DigestPrefix, Reference
    from modelops_bundle.core.registry import RegistryBackend

#: How many candidates an ambiguity error lists.
SHOWN_CANDIDATES = 10


def repository_versions(backend: RegistryBackend, repository: str) -> dict[str, list[str]]:
    """``{digest: [tags]}`` of every version the registry names: tagged versions, and the subjects of
    referrers kept under ``sha256-<hex>`` fallback tags (untagged versions with provenance)."""
    from modelops_bundle.core.provenance import is_fallback_tag

    versions: dict[str, list[str]] = {}
    for tag in backend.list_tags(repository):
        if is_fallback_tag(tag):
            versions.setdefault(tag.replace("-", ":", 1), [])
            continue
        digest = backend.resolve(repository, tag)
        if digest is not None:
            versions.setdefault(digest, []).append(tag)
    return versions


def expand(prefix: DigestPrefix, versions: dict[str, list[str]], *, where: str) -> str | None:
    """The one digest of ``versions`` (``{digest: [tags]}``) or ``prefix.known`` that ``prefix`` starts;
    ``None`` when none does; :class:`UsageError` listing the candidates when several do."""
    every = {digest: list(tags) for digest, tags in versions.items()}
    for digest in prefix.known:
        every.setdefault(digest, [])
    found = sorted(digest for digest in every if prefix.matches(digest))
    if len(found) > 1:
        shown = [f"{digest}" + (f" ({', '.join(sorted(every[digest]))})" if every[digest] else "") for digest in found]
        more = f"\n  ... and {len(found) - SHOWN_CANDIDATES} more" if len(found) > SHOWN_CANDIDATES else ""
        raise UsageError(
            f"short digest {prefix.text} is ambiguous in {where}: {len(found)} versions start with it:\n  "
            + "\n  ".join(shown[:SHOWN_CANDIDATES])
            + more,
            hint="give more hex digits (or the full digest)",
        )
    return found[0] if found else None


def resolve(backend: RegistryBackend, reference: Reference) -> str | None:
    """The digest ``reference`` (whose ``prefix`` is set) names in the registry now; ``None`` when no
    version matches. A tag of the same name wins (see the module docstring)."""
    assert reference.prefix is not None
    if reference.tag is not None:
        digest = backend.resolve(reference.repository, reference.tag)
        if digest is not None:
            return digest
    versions = repository_versions(backend, reference.repository)
    found = expand(reference.prefix, versions, where=reference.repository)
    if found is None or found in versions:
        return found
    # Known to the caller only (e.g. pushed by this project, untagged since): is it still here?
    return backend.resolve(reference.repository, found)


def settled(reference: Reference, digest: str) -> Reference:
    """``reference`` once resolved to ``digest``: the full digest instead of the prefix (and instead of a
    hex tag that turned out to be a prefix), so only the full digest is recorded and printed."""
    if reference.prefix is None:
        return reference
    if reference.tag is not None and not reference.prefix.matches(digest):
        return reference._replace(prefix=None)  # the tag named it
    return reference._replace(tag=None, digest=digest, prefix=None)
