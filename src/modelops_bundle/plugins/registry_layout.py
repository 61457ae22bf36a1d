"""Built-in ``oci-layout`` registry backend: an OCI Image Layout directory per repository.

``<root>/<repository>/`` holds ``oci-layout``, ``index.json`` and ``blobs/<alg>/<hex>``, so other OCI
tools read it directly (``skopeo inspect oci:<root>/<repository>:<tag>``). Blobs are written to a hidden
temp file in their blobs folder, verified, fsynced and renamed; ``index.json`` is rewritten atomically
under an ``flock`` so concurrent pushes never lose a tag, and a tag moves only after its manifest blob
exists. Manifests that lose their tag stay in ``index.json`` untagged, as they stay fetchable by digest
on a registry, so layout-aware garbage collectors do not delete versions someone may still pin.

Blobs are sealed once verified: their mtime is set to :data:`BLOB_SEAL_MTIME_NS`. A blob a push would
skip is trusted only while its size and the seal hold; otherwise it is hashed again -- sealed when its
bytes are right, removed (and so rewritten) when not. A same-size corruption that kept the mtime is
found by ``verify --remote``; push asks :meth:`OciLayoutRegistry.damaged_blobs` about the blobs of a
version it finds up to date, so re-pushing repairs a damaged blob (issue 15).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from modelops_bundle.core.errors import BundleError, IntegrityError, RegistryError
from modelops_bundle.core.fsutil import (
    SymlinkedFolderError,
    atomic_write_bytes,
    describe_os_error,
    exclusive_lock,
    real_folder_below,
)
from modelops_bundle.core.oci_http.digests import (
    new_hash,
    read_chunks,
    read_limited,
    sha256_digest,
    split_digest,
    verify_bytes,
    write_verified,
)
from modelops_bundle.core.oci_http.parallel import run_parallel
from modelops_bundle.core.reference import DIGEST_RE, REPOSITORY_RE, TAG_RE
from modelops_bundle.core.registry import (
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    BlobSource,
    ManifestRecord,
    TransferProgress,
    TransferStats,
    check_manifest_upload,
)

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_FILE = {"imageLayoutVersion": "1.0.0"}
#: Upper bound for ``index.json``: it grows by one descriptor per pushed version.
MAX_INDEX_BYTES = 64 * 1024 * 1024
#: The mtime of every verified blob (the cache's convention): a write through any path changes it.
BLOB_SEAL_MTIME_NS = 1_000_000_000


class OciLayoutRegistry:
    """A folder of OCI Image Layouts, one per repository. ``settings``: ``{"path": <root folder>}``."""

    name: ClassVar[str] = "oci-layout"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        raw = settings.get("path")
        if not raw:
            raise RegistryError("the oci-layout registry needs a path (registry.path in the environment)")
        self.root = Path(str(raw)).expanduser()

    def describe(self) -> str:
        return f"OCI layout {self.root}"

    def __repr__(self) -> str:
        return f"OciLayoutRegistry({str(self.root)!r})"

    def close(self) -> None:
        """Nothing is held open between calls."""

    # ---------------------------------------------------------------------------------------- paths

    def layout_dir(self, repository: str) -> Path:
        if not REPOSITORY_RE.match(repository):
            raise RegistryError(f"invalid repository name {repository!r}")
        return self.root / repository

    def blob_path(self, repository: str, digest: str) -> Path:
        algorithm, hexpart = split_digest(digest)
        return self.layout_dir(repository) / "blobs" / algorithm / hexpart

    def _where(self, repository: str, what: str) -> str:
        return f"{what} in {self.root / repository}"

    # ---------------------------------------------------------------------------------- index.json

    def _read_index(self, repository: str) -> dict[str, Any]:
        path = self.layout_dir(repository) / "index.json"
        try:
            with open(path, "rb") as handle:
                raw = read_limited(handle, MAX_INDEX_BYTES, str(path))
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        except OSError as exc:
            raise RegistryError(describe_os_error("read", path, exc)) from exc
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RegistryError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("manifests", []), list):
            raise RegistryError(f"{path} is not an OCI image index")
        data.setdefault("manifests", [])
        return data

    def _descriptors(self, repository: str) -> list[dict[str, Any]]:
        return [d for d in self._read_index(repository)["manifests"] if isinstance(d, dict)]

    def _tagged(self, repository: str, tag: str) -> dict[str, Any] | None:
        for descriptor in self._descriptors(repository):
            if _ref_name(descriptor) == tag:
                return descriptor
        return None

    def _ensure_layout(self, repository: str) -> Path:
        folder = self.layout_dir(repository)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # Every folder below the root (which the environment names) is checked: no write through a
            # symlink planted in $MODELOPS_HOME (issue 15).
            real_folder_below(self.root, *repository.split("/"), "blobs", "sha256", create=True)
            marker = folder / "oci-layout"
            if not marker.exists():
                atomic_write_bytes(marker, json.dumps(LAYOUT_FILE).encode())
        except OSError as exc:
            raise RegistryError(describe_os_error("create the OCI layout", folder, exc)) from exc
        except SymlinkedFolderError:
            raise
        except BundleError as exc:
            raise RegistryError(exc.message) from exc
        return folder

    @contextlib.contextmanager
    def _index_lock(self, repository: str) -> Iterator[None]:
        folder = self._ensure_layout(repository)
        with exclusive_lock(folder / "index.json.lock", what="OCI layout"):
            yield

    def _record(self, repository: str, descriptor: dict[str, Any], tag: str | None) -> None:
        """Point ``tag`` at ``descriptor`` (or root it untagged) in one locked read-modify-write."""
        with self._index_lock(repository):
            index = self._read_index(repository)
            index["manifests"] = _retag(index["manifests"], descriptor, tag)
            index.setdefault("schemaVersion", 2)
            index.setdefault("mediaType", OCI_INDEX)
            path = self.layout_dir(repository) / "index.json"
            try:
                atomic_write_bytes(path, json.dumps(index, indent=2).encode() + b"\n")
            except BundleError as exc:
                raise RegistryError(exc.message) from exc

    # ------------------------------------------------------------------------------------ manifests

    def resolve(self, repository: str, reference: str) -> str | None:
        if DIGEST_RE.match(reference):
            return reference if self.blob_path(repository, reference).is_file() else None
        if not TAG_RE.match(reference):
            raise RegistryError(f"invalid tag {reference!r}")
        descriptor = self._tagged(repository, reference)
        if descriptor is None:
            return None
        digest = descriptor.get("digest")
        if not isinstance(digest, str) or not DIGEST_RE.match(digest):
            raise RegistryError(f"{self._where(repository, 'index.json')}: tag {reference!r} has a bad digest")
        if not self.blob_path(repository, digest).is_file():
            raise RegistryError(
                f"{self._where(repository, 'index.json')}: tag {reference!r} names {digest}, "
                "whose manifest blob is missing"
            )
        return digest

    def get_manifest(self, repository: str, reference: str) -> ManifestRecord:
        digest = self.resolve(repository, reference)
        if digest is None:
            raise RegistryError(f"manifest {repository}:{reference} not found in {self.describe()}")
        data = self.get_blob_bytes(repository, digest, None, limit=MAX_MANIFEST_BYTES)
        media_type = _media_type_of(data)
        return ManifestRecord(data=data, digest=digest, media_type=media_type)

    def put_manifest(self, repository: str, data: bytes, media_type: str, tag: str | None) -> str:
        check_manifest_upload(data, tag)
        digest = sha256_digest(data)
        self._ensure_layout(repository)
        path = self.blob_path(repository, digest)
        if not _intact(path, digest, len(data)):
            self._store(path, iter([data]), digest, len(data))
        descriptor: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(data)}
        artifact_type = _artifact_type_of(data)
        if artifact_type:
            descriptor["artifactType"] = artifact_type
        self._record(repository, descriptor, tag)
        return digest

    def list_tags(self, repository: str) -> list[str]:
        tags = set()
        for descriptor in self._descriptors(repository):
            name = _ref_name(descriptor)
            if name is not None:
                tags.add(name)
        return sorted(tags)

    def referrers(self, repository: str, digest: str) -> list[dict[str, Any]] | None:
        """An image layout has no referrers API: referrers live under the tag-schema fallback tag
        (``sha256-<hex>``), exactly as on a registry without the API, so other tools find them."""
        return None

    def processed_subject(self, repository: str, digest: str) -> str | None:
        """Nothing indexes a layout's referrers but the fallback tag."""
        return None

    # ----------------------------------------------------------------------------------------- blobs

    def blob_exists(self, repository: str, digest: str) -> bool:
        return self.blob_path(repository, digest).is_file()

    def _store(
        self,
        path: Path,
        chunks: Iterable[bytes],
        digest: str,
        size: int,
        on_bytes: Callable[[int], None] | None = None,
    ) -> int:
        """Verified write of one blob, fsynced and sealed: a name in ``blobs/`` is a promise about its bytes."""
        try:
            written = write_verified(chunks, path, digest, size, f"blob {digest}", on_bytes=on_bytes, fsync=True)
            os.utime(path, ns=(BLOB_SEAL_MTIME_NS, BLOB_SEAL_MTIME_NS))
            return written
        except OSError as exc:
            raise RegistryError(describe_os_error("write", path, exc)) from exc

    def damaged_blobs(self, repository: str, blobs: Iterable[tuple[str, int]]) -> list[str]:
        """Digests of ``(digest, size)`` blobs that are missing or damaged here (damaged ones are removed,
        so the next upload writes them again). Cheap for sealed blobs: a ``stat`` each."""
        return [digest for digest, size in blobs if not _intact(self.blob_path(repository, digest), digest, size)]

    def put_blobs(
        self, repository: str, blobs: list[BlobSource], *, jobs: int, progress: TransferProgress | None
    ) -> TransferStats:
        self._ensure_layout(repository)
        stats = TransferStats()

        def one(blob: BlobSource) -> tuple[bool, int]:
            path = self.blob_path(repository, blob.digest)
            if _intact(path, blob.digest, blob.size):
                if progress is not None:
                    progress.advance(files=1, nbytes=blob.size)
                return False, 0
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with blob.open() as handle:
                    written = self._store(path, read_chunks(handle), blob.digest, blob.size, _advancer(progress))
            except IntegrityError as exc:
                label = f" ({blob.description})" if blob.description else ""
                raise IntegrityError(f"{exc.message}{label}: the source changed while uploading?") from exc
            if progress is not None:
                progress.advance(files=1)
            return True, written

        for uploaded, nbytes in run_parallel(one, _unique(blobs), jobs, name="mops-layout"):
            if uploaded:
                stats.uploaded_blobs += 1
                stats.uploaded_bytes += nbytes
            else:
                stats.skipped_blobs += 1
        return stats

    def get_blob_bytes(self, repository: str, digest: str, size: int | None, *, limit: int) -> bytes:
        path = self.blob_path(repository, digest)
        what = f"blob {digest} in {self.root / repository}"
        try:
            with open(path, "rb") as handle:
                data = read_limited(handle, limit, what)
        except FileNotFoundError as exc:
            raise RegistryError(f"{what} not found") from exc
        except OSError as exc:
            raise RegistryError(describe_os_error("read", path, exc)) from exc
        return verify_bytes(data, digest, size, what)

    def get_blobs_to_files(
        self,
        repository: str,
        blobs: list[tuple[str, int, Path]],
        *,
        jobs: int,
        progress: TransferProgress | None,
    ) -> TransferStats:
        stats = TransferStats()

        def one(item: tuple[str, int, Path]) -> int:
            digest, size, destination = item
            path = self.blob_path(repository, digest)
            what = f"blob {digest} in {self.root / repository}"
            try:
                handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
            except FileNotFoundError as exc:
                raise RegistryError(f"{what} not found") from exc
            except OSError as exc:
                raise RegistryError(describe_os_error("read", path, exc)) from exc
            try:
                with handle:
                    written = write_verified(
                        read_chunks(handle), destination, digest, size, what, on_bytes=_advancer(progress)
                    )
            except OSError as exc:
                raise RegistryError(describe_os_error("copy", path, exc) + f" to {destination}") from exc
            if progress is not None:
                progress.advance(files=1)
            return written

        for nbytes in run_parallel(one, blobs, jobs, name="mops-layout"):
            stats.downloaded_blobs += 1
            stats.downloaded_bytes += nbytes
        return stats


# ------------------------------------------------------------------------------------------- helpers


def _intact(path: Path, digest: str, size: int) -> bool:
    """Present with the right size and seal; an unsealed blob of the right size is hashed (and sealed when
    right). A wrong one is removed, so it is rewritten rather than trusted."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if st.st_size == size and st.st_mtime_ns == BLOB_SEAL_MTIME_NS and not os.path.islink(path):
        return True
    if st.st_size == size and _hashes_to(path, digest):
        with contextlib.suppress(OSError):
            os.utime(path, ns=(BLOB_SEAL_MTIME_NS, BLOB_SEAL_MTIME_NS))
        return True
    with contextlib.suppress(OSError):
        os.unlink(path)
    return False


def _hashes_to(path: Path, digest: str) -> bool:
    try:
        with open(path, "rb") as handle:
            hasher = new_hash(digest)
            for chunk in read_chunks(handle):
                hasher.update(chunk)
    except OSError:
        return False
    return f"{split_digest(digest)[0]}:{hasher.hexdigest()}" == digest


def _ref_name(descriptor: Mapping[str, Any]) -> str | None:
    annotations = descriptor.get("annotations")
    name = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
    return name if isinstance(name, str) else None


def _advancer(progress: TransferProgress | None) -> Callable[[int], None] | None:
    if progress is None:
        return None
    return lambda nbytes: progress.advance(nbytes=nbytes)


def _retag(manifests: list[Any], entry: dict[str, Any], tag: str | None) -> list[dict[str, Any]]:
    """The new ``manifests`` list: ``entry`` added (under ``tag``); a displaced manifest stays untagged;
    one entry per untagged digest, none for a digest a tag already roots."""
    staged: list[dict[str, Any]] = []
    for old in manifests:
        if not isinstance(old, dict) or not isinstance(old.get("digest"), str):
            continue
        name = _ref_name(old)
        if name is not None and name != tag:
            staged.append(old)
            continue
        raw = old.get("annotations")
        annotations = {k: v for k, v in raw.items() if k != REF_NAME} if isinstance(raw, dict) else {}
        untagged = {k: v for k, v in old.items() if k != "annotations"}
        if annotations:
            untagged["annotations"] = annotations
        staged.append(untagged)
    staged.append({**entry, "annotations": {REF_NAME: tag}} if tag is not None else dict(entry))
    tagged_digests = {d["digest"] for d in staged if _ref_name(d) is not None}
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for descriptor in staged:
        if _ref_name(descriptor) is None:
            if descriptor["digest"] in tagged_digests or descriptor["digest"] in seen:
                continue
            seen.add(descriptor["digest"])
        result.append(descriptor)
    return result


def _unique(blobs: list[BlobSource]) -> list[BlobSource]:
    seen: dict[str, BlobSource] = {}
    for blob in blobs:
        seen.setdefault(blob.digest, blob)
    return list(seen.values())


def _parse_json(data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _media_type_of(data: bytes) -> str:
    media_type = _parse_json(data).get("mediaType")
    return media_type if isinstance(media_type, str) and media_type else OCI_MANIFEST


def _artifact_type_of(data: bytes) -> str | None:
    value = _parse_json(data).get("artifactType")
    return value if isinstance(value, str) and value else None
