"""Reading versions from a registry backend: a tag or digest resolved once, then manifest and index by
digest.

A version is always read by digest: a tag is resolved once (:func:`resolve_digest`) and everything after
that -- manifest, index, layers -- names the digest, so a tag moved by someone else mid-command cannot
mix two versions. Which registry a project talks to is the session's (:mod:`.session`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops_bundle.core.errors import BundleError, IntegrityError, RegistryError, UsageError
from modelops_bundle.core.reference import Reference

# Index and manifest parsing are imported where a version is fetched: a status whose tag is where the
# project left it never needs them.
if TYPE_CHECKING:
    from modelops_bundle.core.index import BundleIndex
    from modelops_bundle.core.packaging import BundleManifest
    from modelops_bundle.core.registry import RegistryBackend


class RemoteVersion:
    """One version, read by digest: its manifest and its validated index. A plain class (an online status
    defines it; ``index`` would clash with a tuple's method): decision 0017."""

    __slots__ = ("digest", "index", "manifest", "reference")

    def __init__(self, reference: Reference, digest: str, manifest: BundleManifest, index: BundleIndex) -> None:
        self.reference = reference
        self.digest = digest
        self.manifest = manifest
        self.index = index

    def __repr__(self) -> str:
        return f"RemoteVersion({self.reference!r}, {self.digest!r})"

    @property
    def pinned(self) -> Reference:
        return self.reference.with_digest(self.digest)


def resolve_digest(backend: RegistryBackend, reference: Reference) -> str | None:
    """The manifest digest a tag, digest or short-digest reference names now; ``None`` when it does not
    exist (an ambiguous short digest is a :class:`UsageError` listing the candidates)."""
    if reference.prefix is not None and reference.digest is None:
        from modelops_bundle.core import short_digest

        return short_digest.resolve(backend, reference)
    identifier = reference.identifier
    if identifier is None:
        raise UsageError(f"reference {reference} names neither a tag nor a digest")
    return backend.resolve(reference.repository, identifier)


def require_digest(backend: RegistryBackend, reference: Reference) -> str:
    digest = resolve_digest(backend, reference)
    if digest is None:
        where = f"{reference.repository} ({backend.describe()})"
        if reference.digest:
            message = f"digest {reference.digest} not found in {where}"
        elif reference.prefix is not None and reference.tag is None:
            message = f"no version in {where} has a digest starting with {reference.prefix.text}"
        else:
            also = ", nor a version whose digest starts with it" if reference.prefix is not None else ""
            message = f"tag {reference.tag} not found in {where}{also}"
            message += _similar_tag(backend, reference)
        raise RegistryError(message, hint="'mops bundle tags' lists the versions")
    return digest


def _similar_tag(backend: RegistryBackend, reference: Reference) -> str:
    """``"; did you mean 'v1.0.0'?"`` for a mistyped tag (asked of the registry only once it failed)."""
    from modelops_bundle.core.provenance import is_fallback_tag
    from modelops_bundle.core.suggest import did_you_mean

    try:
        tags = [tag for tag in backend.list_tags(reference.repository) if not is_fallback_tag(tag)]
    except BundleError:
        return ""
    return did_you_mean(reference.tag or "", tags)


def fetch_manifest(backend: RegistryBackend, reference: Reference, digest: str) -> BundleManifest:
    from modelops_bundle.core.packaging import parse_manifest

    record = backend.get_manifest(reference.repository, digest)
    if record.digest != digest:
        raise IntegrityError(f"{reference.repository}@{digest}: the registry returned manifest {record.digest}")
    source = f"{reference.repository}@{digest}"
    return parse_manifest(record.data, digest, record.media_type, source=source)


def fetch_index(backend: RegistryBackend, reference: Reference, manifest: BundleManifest) -> BundleIndex:
    from modelops_bundle.core.index import MAX_INDEX_BYTES
    from modelops_bundle.core.index_reading import parse_index
    from modelops_bundle.core.packaging import check_index_against_manifest

    """The manifest's index blob, verified, parsed and checked against the manifest."""
    source = f"{reference.repository}@{manifest.digest}"
    if manifest.config.size > MAX_INDEX_BYTES:
        raise IntegrityError(f"{source}: index of {manifest.config.size} bytes exceeds the {MAX_INDEX_BYTES} limit")
    data = backend.get_blob_bytes(
        reference.repository, manifest.config.digest, manifest.config.size, limit=MAX_INDEX_BYTES
    )
    index = parse_index(data, source=source)
    check_index_against_manifest(index, manifest, source=source)
    return index


def fetch_version(backend: RegistryBackend, reference: Reference, digest: str | None = None) -> RemoteVersion:
    """Resolve ``reference`` once (unless ``digest`` is given) and read that version."""
    resolved = digest or require_digest(backend, reference)
    if reference.prefix is not None:  # a short digest: from here on, the full digest it named
        from modelops_bundle.core.short_digest import settled

        reference = settled(reference, resolved)
    manifest = fetch_manifest(backend, reference, resolved)
    return RemoteVersion(reference, resolved, manifest, fetch_index(backend, reference, manifest))


# ---------------------------------------------------------------------------------------------- tags


class VersionSummary:
    """One version in a repository, with every tag that points at it (a plain class, see
    :class:`RemoteStatus`)."""

    __slots__ = ("created", "digest", "error", "files", "size", "tags")

    def __init__(self, digest: str, tags: list[str]) -> None:
        self.digest = digest
        self.tags = tags
        self.created: str | None = None
        self.files: int | None = None
        self.size: int | None = None
        self.error: str | None = None  # why the version could not be read (e.g. not a modelops bundle)

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "tags": self.tags,
            "created": self.created,
            "files": self.files,
            "size": self.size,
            "error": self.error,
        }


def list_versions(backend: RegistryBackend, reference: Reference) -> list[VersionSummary]:
    """Tagged versions, newest first. File count and size come from the manifest's annotations (one
    request per version); the index is read only for manifests that lack them. The tag-schema
    fallback tags (``sha256-<hex>``, referrers of a version) are not versions and are left out."""
    from modelops_bundle.core.packaging import ANNOTATION_FILES, ANNOTATION_SIZE
    from modelops_bundle.core.provenance import is_fallback_tag

    by_digest: dict[str, list[str]] = {}
    for tag in backend.list_tags(reference.repository):
        if is_fallback_tag(tag):
            continue  # a referrers index (tag-schema fallback), not a version
        digest = backend.resolve(reference.repository, tag)
        if digest is not None:
            by_digest.setdefault(digest, []).append(tag)
    versions: list[VersionSummary] = []
    for digest, tags in by_digest.items():
        summary = VersionSummary(digest, sorted(tags))
        try:
            manifest = fetch_manifest(backend, reference, digest)
            summary.created = manifest.created
            files, size = manifest.annotations.get(ANNOTATION_FILES), manifest.annotations.get(ANNOTATION_SIZE)
            if files is not None and files.isdigit() and size is not None and size.isdigit():
                summary.files, summary.size = int(files), int(size)
            else:
                index = fetch_index(backend, reference, manifest)
                summary.files, summary.size = len(index.files), index.total_size
        except BundleError as exc:
            summary.error = exc.message
        versions.append(summary)
    # Newest first; versions created within the same second (pushes in a script or CI) by their highest
    # tag in version order (v1.10.0 after v1.9.0), so that the listing does not depend on digests.
    versions.sort(key=lambda v: (v.created or "", max(map(_natural, v.tags), default=()), v.digest), reverse=True)
    return versions


def _natural(tag: str) -> tuple[tuple[int, int | str], ...]:
    """A tag as a sort key that orders runs of digits by value: ``v1.10.0`` after ``v1.9.0``."""
    import re

    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", tag) if part)
