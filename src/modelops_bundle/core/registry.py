"""The registry-backend contract: what push, pull, diff and tags need from any OCI registry.

Implementations are named providers from the ``mops_registry_backends`` hook: ``oci-layout`` (an OCI
Image Layout directory, the embedded default) and ``oci-distribution`` (any HTTP registry). Every
method takes the repository name (``Reference.repository``); hosts and credentials were fixed when the
backend was constructed from the environment.

Rules every backend keeps:
* blobs are pushed before the manifest that names them, and a tag moves only after its manifest exists;
* everything read is verified against its digest (and size) before it is returned or placed;
* file transfers stream -- memory stays bounded whatever the blob size;
* failures raise :class:`~modelops_bundle.core.errors.RegistryError` (or ``IntegrityError``) with a
  message naming the registry, repository and object -- never a credential.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, NamedTuple, Protocol

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
MANIFEST_ACCEPT = ", ".join(
    (
        OCI_MANIFEST,
        OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
#: Manifests larger than this are refused (registries need only accept 4 MiB).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def check_manifest_upload(data: bytes, tag: str | None) -> None:
    """Refuse a manifest no registry need accept (over 4 MiB) or a malformed tag, before any request."""
    from modelops_bundle.core.errors import RegistryError
    from modelops_bundle.core.reference import TAG_RE

    if len(data) > MAX_MANIFEST_BYTES:
        raise RegistryError(f"manifest of {len(data)} bytes exceeds the {MAX_MANIFEST_BYTES}-byte limit")
    if tag is not None and not TAG_RE.match(tag):
        raise RegistryError(f"invalid tag {tag!r}")


class BlobSource(NamedTuple):
    """A blob to upload: its digest, size and a way to open a fresh binary stream of its bytes.

    (This module's immutable records are NamedTuples: every command defines them, and a frozen
    dataclass costs about 0.4 ms to define; see docs/decisions/0017.)"""

    digest: str
    size: int
    open: Callable[[], BinaryIO]
    description: str = ""  # e.g. the project path, for progress and errors


class ManifestRecord(NamedTuple):
    """A fetched manifest: exact bytes (verified against ``digest``) and its media type."""

    data: bytes
    digest: str
    media_type: str


class TransferStats:
    """Counts of what a batch of transfers moved and skipped (``extra``: a backend's own counters). A plain
    class: a status defines it (decision 0017)."""

    __slots__ = ("downloaded_blobs", "downloaded_bytes", "extra", "skipped_blobs", "uploaded_blobs", "uploaded_bytes")

    def __init__(
        self,
        uploaded_blobs: int = 0,
        uploaded_bytes: int = 0,
        skipped_blobs: int = 0,
        downloaded_blobs: int = 0,
        downloaded_bytes: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.uploaded_blobs = uploaded_blobs
        self.uploaded_bytes = uploaded_bytes
        self.skipped_blobs = skipped_blobs
        self.downloaded_blobs = downloaded_blobs
        self.downloaded_bytes = downloaded_bytes
        self.extra: dict[str, Any] = {} if extra is None else extra

    def __repr__(self) -> str:
        return (
            f"TransferStats(uploaded_blobs={self.uploaded_blobs}, uploaded_bytes={self.uploaded_bytes}, "
            f"skipped_blobs={self.skipped_blobs}, downloaded_blobs={self.downloaded_blobs}, "
            f"downloaded_bytes={self.downloaded_bytes}, extra={self.extra!r})"
        )


class TransferProgress(Protocol):
    def start(self, total_files: int, total_bytes: int) -> None: ...
    def advance(self, files: int = 0, nbytes: int = 0) -> None: ...
    def close(self) -> None: ...


class RegistryBackend(Protocol):
    """One registry (an OCI layout directory or an HTTP endpoint) with fixed credentials."""

    name: ClassVar[str]

    def describe(self) -> str:
        """Human name of the registry for messages (host or layout path), never with credentials."""
        ...

    def resolve(self, repository: str, reference: str) -> str | None:
        """Manifest digest for a tag or digest; ``None`` when it does not exist."""
        ...

    def get_manifest(self, repository: str, reference: str) -> ManifestRecord:
        """The manifest for a tag or digest, verified; ``RegistryError`` when missing."""
        ...

    def put_manifest(self, repository: str, data: bytes, media_type: str, tag: str | None) -> str:
        """Store manifest bytes exactly as given (by digest, then under ``tag``); returns the digest."""
        ...

    def blob_exists(self, repository: str, digest: str) -> bool: ...

    def put_blobs(
        self, repository: str, blobs: list[BlobSource], *, jobs: int, progress: TransferProgress | None
    ) -> TransferStats:
        """Upload the blobs the registry lacks (HEAD first), concurrently and streaming."""
        ...

    def get_blob_bytes(self, repository: str, digest: str, size: int | None, *, limit: int) -> bytes:
        """A small blob (config, index) in memory, verified; refuses more than ``limit`` bytes."""
        ...

    def get_blobs_to_files(
        self,
        repository: str,
        blobs: list[tuple[str, int, Path]],
        *,
        jobs: int,
        progress: TransferProgress | None,
    ) -> TransferStats:
        """Download ``(digest, size, destination)`` concurrently; each written to a partial file,
        verified (size and digest), then renamed onto ``destination``."""
        ...

    def list_tags(self, repository: str) -> list[str]: ...

    def referrers(self, repository: str, digest: str) -> list[dict[str, Any]] | None:
        """Descriptors of the manifests whose ``subject`` is ``digest``, from the registry's referrers
        API; ``None`` when the registry has no such API (callers then read the ``sha256-<hex>`` tag
        that the tag-schema fallback maintains)."""
        ...

    def processed_subject(self, repository: str, digest: str) -> str | None:
        """Optional. The ``subject`` digest the registry said it indexed when it stored manifest ``digest``
        (the ``OCI-Subject`` header of an OCI 1.1 registry), or ``None``. Provenance then skips the
        referrers-API check and the fallback tag; a backend without the method is asked through
        :meth:`referrers` instead."""
        ...

    def close(self) -> None: ...
