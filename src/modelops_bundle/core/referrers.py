"""OCI 1.1 referrers: small artifacts attached to a version (provenance documents, signatures).

A referrer is an image-spec 1.1 manifest whose ``subject`` is the version's manifest, with an empty
config and one layer holding the artifact's bytes. The version's own manifest -- and so its digest -- is
never touched. Registries with the referrers API index referrers themselves; for those without it (CNCF
distribution 2.8, and the OCI image layout, which has no API) the tag-schema fallback of the
distribution spec is kept: an image index at the tag ``sha256-<hex of the version>`` lists them.

Used by :mod:`.provenance` and :mod:`.signing`; each kind is told apart by its ``artifactType``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from modelops_bundle.core.errors import IntegrityError
from modelops_bundle.core.registry import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, BlobSource, RegistryBackend

EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(EMPTY_JSON).hexdigest()
ANNOTATION_CREATED = "org.opencontainers.image.created"
_FALLBACK_TAG = re.compile(r"^(sha256-[a-f0-9]{64}|sha512-[a-f0-9]{128})$")


def fallback_tag(digest: str) -> str:
    """The tag-schema fallback tag of a subject: ``sha256:<hex>`` -> ``sha256-<hex>``."""
    return digest.replace(":", "-", 1)


def is_fallback_tag(tag: str) -> bool:
    return bool(_FALLBACK_TAG.match(tag))


def dumps(document: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no spaces, UTF-8 (same content, same digest)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ReferrerUpload(NamedTuple):
    """An artifact ready to attach to one version: the blobs its referrer manifest names (a push may
    upload them while it uploads the version's own blobs), the manifest, and what its descriptor in a
    listing carries."""

    subject_digest: str
    manifest: bytes
    created: str
    blobs: tuple[BlobSource, ...]
    artifact_type: str
    annotations: dict[str, str]


def referrer_manifest(
    data: bytes,
    *,
    artifact_type: str,
    layer_media_type: str,
    subject_digest: str,
    subject_size: int,
    annotations: Mapping[str, str],
    subject_media_type: str = OCI_MANIFEST,
) -> bytes:
    """An image-spec 1.1 artifact manifest: empty config, ``data`` as its only layer, ``subject`` set."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": OCI_EMPTY,
            "digest": EMPTY_DIGEST,
            "size": 2,
            "data": base64.b64encode(EMPTY_JSON).decode(),
        },
        "layers": [{"mediaType": layer_media_type, "digest": sha256_digest(data), "size": len(data)}],
        "subject": {"mediaType": subject_media_type, "digest": subject_digest, "size": subject_size},
        "annotations": dict(annotations),
    }
    return dumps(manifest)


def prepare(
    data: bytes,
    *,
    artifact_type: str,
    layer_media_type: str,
    subject_digest: str,
    subject_size: int,
    created: str,
    annotations: Mapping[str, str] | None = None,
    what: str = "referrer",
    subject_media_type: str = OCI_MANIFEST,
) -> ReferrerUpload:
    """The referrer carrying ``data`` for version ``subject_digest`` (whose manifest has ``subject_size``
    bytes); ``created`` goes into the annotations, which order listings (newest first)."""
    notes = {ANNOTATION_CREATED: created, **dict(annotations or {})}
    blobs = (
        BlobSource(EMPTY_DIGEST, 2, lambda: io.BytesIO(EMPTY_JSON), "empty config"),
        BlobSource(sha256_digest(data), len(data), lambda: io.BytesIO(data), what),
    )
    manifest = referrer_manifest(
        data,
        artifact_type=artifact_type,
        layer_media_type=layer_media_type,
        subject_digest=subject_digest,
        subject_size=subject_size,
        annotations=notes,
        subject_media_type=subject_media_type,
    )
    return ReferrerUpload(subject_digest, manifest, created, blobs, artifact_type, notes)


def attach(
    backend: RegistryBackend, repository: str, upload: ReferrerUpload, *, blobs_uploaded: bool = False
) -> dict[str, Any]:
    """Push the referrer; keep the fallback index where the registry has no referrers API.

    ``blobs_uploaded`` says the caller already uploaded ``upload.blobs``. Returns
    ``{"digest": <referrer manifest>, "method": "referrers-api" | "tag-schema"}``.
    """
    if not blobs_uploaded:
        backend.put_blobs(repository, list(upload.blobs), jobs=2, progress=None)
    digest = backend.put_manifest(repository, upload.manifest, OCI_MANIFEST, None)
    descriptor = {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": len(upload.manifest),
        "artifactType": upload.artifact_type,
        "annotations": dict(upload.annotations),
    }
    # OCI 1.1: a registry that indexed the subject says so in its answer to the PUT (``OCI-Subject``);
    # then nothing is left to do. Registries that have the API but predate the header are asked.
    processed = getattr(backend, "processed_subject", None)  # a third-party backend may predate the method
    if processed is not None and processed(repository, digest) == upload.subject_digest:
        return {"digest": digest, "method": "referrers-api"}
    listed = api_referrers(backend, repository, upload.subject_digest)
    if listed is not None and any(item.get("digest") == digest for item in listed):
        return {"digest": digest, "method": "referrers-api"}
    add_to_fallback(backend, repository, upload.subject_digest, descriptor)
    return {"digest": digest, "method": "tag-schema"}


def api_referrers(backend: RegistryBackend, repository: str, digest: str) -> list[dict[str, Any]] | None:
    """What the registry's referrers API lists for ``digest``; ``None`` when it has no such API."""
    method = getattr(backend, "referrers", None)  # a third-party backend may predate the method
    if method is None:
        return None
    result: list[dict[str, Any]] | None = method(repository, digest)
    return result


def fallback_index(backend: RegistryBackend, repository: str, subject: str) -> list[dict[str, Any]]:
    """The descriptors listed under the subject's ``sha256-<hex>`` tag (none when it is absent or unreadable)."""
    tag = fallback_tag(subject)
    if backend.resolve(repository, tag) is None:
        return []
    record = backend.get_manifest(repository, tag)
    try:
        data = json.loads(record.data)
    except ValueError:
        return []
    manifests = data.get("manifests") if isinstance(data, dict) else None
    return [item for item in manifests or () if isinstance(item, dict)]


def add_to_fallback(backend: RegistryBackend, repository: str, subject: str, descriptor: dict[str, Any]) -> None:
    """Read-modify-write of the ``sha256-<hex>`` index (two attaches to one digest at the same instant
    could drop one entry: both artifacts stay fetchable by digest, only the listing misses one)."""
    existing = [
        item for item in fallback_index(backend, repository, subject) if item.get("digest") != descriptor["digest"]
    ]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*existing, descriptor]}
    backend.put_manifest(repository, dumps(index), OCI_INDEX, fallback_tag(subject))


def find(backend: RegistryBackend, repository: str, digest: str, artifact_type: str) -> list[dict[str, Any]]:
    """Descriptors of the referrers of ``digest`` of one ``artifact_type`` (API first, then the fallback
    tag), newest first. What a listing says is only a pointer: :func:`read_layer` checks the referrer."""
    listed = api_referrers(backend, repository, digest)
    items = listed if listed else fallback_index(backend, repository, digest)
    found = [item for item in items if item.get("artifactType") == artifact_type]
    return sorted(
        found, key=lambda item: str((item.get("annotations") or {}).get(ANNOTATION_CREATED, "")), reverse=True
    )


def read_layer(
    backend: RegistryBackend, repository: str, referrer: str, subject: str, *, artifact_type: str, limit: int
) -> tuple[dict[str, Any], bytes]:
    """The referrer manifest ``referrer`` and its one layer's bytes (verified against the layer's
    digest, at most ``limit`` bytes). Refuses -- :class:`IntegrityError` naming the referrer -- a
    manifest that is not an artifact of ``artifact_type`` whose ``subject`` is ``subject``: a listing
    (an API answer or a fallback index) could point anywhere."""
    record = backend.get_manifest(repository, referrer)
    if record.digest != referrer:
        raise IntegrityError(f"referrer {referrer}: the registry returned manifest {record.digest}")
    try:
        manifest = json.loads(record.data)
    except ValueError:
        raise IntegrityError(f"referrer {referrer}: not a JSON manifest") from None
    if not isinstance(manifest, dict):
        raise IntegrityError(f"referrer {referrer}: not a JSON manifest")
    found_type = manifest.get("artifactType")
    if found_type != artifact_type:
        raise IntegrityError(f"referrer {referrer}: artifact type {found_type!r}, expected {artifact_type!r}")
    named = (manifest.get("subject") or {}).get("digest") if isinstance(manifest.get("subject"), dict) else None
    if named != subject:
        raise IntegrityError(f"referrer {referrer}: its subject is {named or 'missing'}, not {subject}")
    layers = manifest.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise IntegrityError(f"referrer {referrer}: expected exactly one layer")
    layer = layers[0]
    layer_digest, size = layer.get("digest"), layer.get("size")
    if not isinstance(layer_digest, str) or not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise IntegrityError(f"referrer {referrer}: malformed layer descriptor")
    if size > limit:
        raise IntegrityError(f"referrer {referrer}: layer of {size} bytes exceeds the {limit}-byte limit")
    data = backend.get_blob_bytes(repository, layer_digest, size, limit=limit)
    return manifest, data
