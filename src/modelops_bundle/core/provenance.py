"""Provenance of a push: what made a version, recorded twice.

* Small items go into the version's manifest annotations (they travel with every copy of the manifest
  and cost nothing to read): tool version, Python version, platform, the environment lock file's
  digest, and the user's ``--annotation KEY=VALUE`` pairs. Git source, revision and dirty flag are
  added by the packaging plugin (``mops_manifest_annotations``).
* The whole record is a JSON document (:data:`PROVENANCE_MEDIA_TYPE`) attached to the version as an
  OCI *referrer*: an artifact manifest whose ``subject`` is the version, with the document as its only
  layer. Registries with the referrers API index it themselves; for those without it (CNCF
  distribution 2.8, and the OCI image layout, which has no API) the tag-schema fallback is kept: an
  image index at the tag ``sha256-<hex of the version>`` lists the referrers.

The document (``schemaVersion`` 1)::

    {"schemaVersion": 1, "mediaType": "application/vnd.modelops.bundle.provenance.v1+json",
     "subject": {"digest": "sha256:...", "reference": "host/repo:tag"},
     "created": "2025-01-01T00:00:00Z",
     "tool": {"name": "modelops-bundle", "version": "0.3.0"},
     "python": {"version": "3.11.7", "implementation": "CPython"},
     "platform": {"system": "Linux", "machine": "x86_64", "release": "...", "platform": "..."},
     "git": {"source": "https://...", "revision": "abc...", "dirty": false} | null,
     "lockfiles": [{"path": "uv.lock", "digest": "sha256:..."}],
     "annotations": {"study": "flu-2025"},
     "plugins": [{"name": "sha256", "distribution": "modelops-bundle", "version": "0.3.0", "builtin": true}],
     "bundle": {"files": 12, "size": 12345, "index": "sha256:..."}}
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_bundle import __version__
from modelops_bundle.core.errors import BundleError, UsageError
from modelops_bundle.core.registry import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, BlobSource, RegistryBackend

if TYPE_CHECKING:
    from modelops_bundle.core.index import BundleIndex
    from modelops_bundle.core.plugins import PluginHost

PROVENANCE_MEDIA_TYPE = "application/vnd.modelops.bundle.provenance.v1+json"
EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(EMPTY_JSON).hexdigest()
MAX_PROVENANCE_BYTES = 1024 * 1024

ANNOTATION_TOOL = "io.modelops.bundle.tool"
ANNOTATION_PYTHON = "io.modelops.bundle.python"
ANNOTATION_PLATFORM = "io.modelops.bundle.platform"
ANNOTATION_LOCKFILE = "io.modelops.bundle.lockfile"
ANNOTATION_LOCKFILE_DIGEST = "io.modelops.bundle.lockfile.digest"
ANNOTATION_CREATED = "org.opencontainers.image.created"
#: Environment lock files, in order of preference for the manifest annotation.
LOCKFILE_PATTERNS = ("uv.lock", "poetry.lock", "requirements*.txt")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
_RESERVED_PREFIX = "io.modelops.bundle."


def parse_annotation(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` from ``push --annotation``; keys are reverse-DNS-like, our own prefix is refused."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key):
        raise UsageError(
            f"invalid annotation {text!r}: use KEY=VALUE with a key of letters, digits and . _ - /",
            hint="e.g. --annotation org.example.study=flu-2025",
        )
    if key.startswith(_RESERVED_PREFIX):
        raise UsageError(f"annotation key {key!r}: the prefix {_RESERVED_PREFIX!r} is reserved for the tool")
    if len(value) > 4096:
        raise UsageError(f"annotation {key!r}: value longer than 4096 characters")
    return key, value


def lockfiles(root: Path, index: BundleIndex) -> list[dict[str, str]]:
    """Lock files at the project root with their digests (the index's digest when the file travels)."""
    by_path = index.by_path()
    found: list[dict[str, str]] = []
    try:
        names = sorted(entry.name for entry in root.iterdir() if entry.is_file())
    except OSError:
        names = []
    for pattern in LOCKFILE_PATTERNS:
        for name in names:
            if fnmatch.fnmatchcase(name, pattern) and all(item["path"] != name for item in found):
                entry = by_path.get(name)
                digest = entry.digest if entry is not None else _file_sha256(root / name)
                if digest:
                    found.append({"path": name, "digest": digest})
    return found


def _file_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
    except OSError:
        return None
    return "sha256:" + digest.hexdigest()


def collect(
    host: PluginHost,
    root: Path,
    index: BundleIndex,
    *,
    created: str,
    git: Mapping[str, str],
    annotations: Mapping[str, str],
) -> dict[str, Any]:
    """The provenance document of a push (``subject`` is filled in by :func:`attach`)."""
    from modelops_bundle.core.gitinfo import ANNOTATION_GIT_DIRTY, ANNOTATION_REVISION, ANNOTATION_SOURCE
    from modelops_bundle.core.index import bytes_digest, canonical_bytes

    plugins = [
        {"name": info.name, "distribution": info.distribution, "version": info.version, "builtin": info.builtin}
        for info in sorted(host.infos.values(), key=lambda item: item.name)
        if info.status == "loaded"
    ]
    git_record: dict[str, Any] | None = None
    if git.get(ANNOTATION_REVISION):
        git_record = {
            "source": git.get(ANNOTATION_SOURCE),
            "revision": git.get(ANNOTATION_REVISION),
            "dirty": git.get(ANNOTATION_GIT_DIRTY) == "true" if ANNOTATION_GIT_DIRTY in git else None,
        }
    return {
        "schemaVersion": 1,
        "mediaType": PROVENANCE_MEDIA_TYPE,
        "subject": None,
        "created": created,
        "tool": {"name": "modelops-bundle", "version": __version__},
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "platform": {
            "system": platform.system(),
            "machine": platform.machine(),
            "release": platform.release(),
            "platform": platform.platform(),
        },
        "git": git_record,
        "lockfiles": lockfiles(root, index),
        "annotations": dict(sorted(annotations.items())),
        "plugins": plugins,
        "bundle": {"files": len(index.files), "size": index.total_size, "index": bytes_digest(canonical_bytes(index))},
    }


def manifest_annotations(document: Mapping[str, Any]) -> dict[str, str]:
    """The small items of a provenance document as manifest annotations (user annotations included)."""
    result = {
        ANNOTATION_TOOL: f"modelops-bundle/{document['tool']['version']}",
        ANNOTATION_PYTHON: str(document["python"]["version"]),
        ANNOTATION_PLATFORM: f"{document['platform']['system']}-{document['platform']['machine']}",
    }
    locks = document.get("lockfiles") or []
    if locks:
        result[ANNOTATION_LOCKFILE] = str(locks[0]["path"])
        result[ANNOTATION_LOCKFILE_DIGEST] = str(locks[0]["digest"])
    result.update({str(k): str(v) for k, v in (document.get("annotations") or {}).items()})
    return result


# ------------------------------------------------------------------------------------------- referrers


def fallback_tag(digest: str) -> str:
    """The tag-schema fallback tag of a subject: ``sha256:<hex>`` -> ``sha256-<hex>``."""
    return digest.replace(":", "-", 1)


def is_fallback_tag(tag: str) -> bool:
    return bool(re.match(r"^(sha256-[a-f0-9]{64}|sha512-[a-f0-9]{128})$", tag))


def _dumps(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def referrer_manifest(document_bytes: bytes, subject_digest: str, subject_size: int, created: str) -> bytes:
    """An image-spec 1.1 artifact manifest: empty config, the document as its layer, ``subject`` set."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": PROVENANCE_MEDIA_TYPE,
        "config": {
            "mediaType": OCI_EMPTY,
            "digest": EMPTY_DIGEST,
            "size": 2,
            "data": base64.b64encode(EMPTY_JSON).decode(),
        },
        "layers": [
            {
                "mediaType": PROVENANCE_MEDIA_TYPE,
                "digest": "sha256:" + hashlib.sha256(document_bytes).hexdigest(),
                "size": len(document_bytes),
            }
        ],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject_size},
        "annotations": {ANNOTATION_CREATED: created},
    }
    return _dumps(manifest)


@dataclass(frozen=True)
class ReferrerUpload:
    """A provenance document ready to attach to one version: the blobs its referrer manifest names (a
    push uploads them while it uploads the version's own blobs), and that manifest."""

    subject_digest: str
    manifest: bytes
    created: str
    blobs: tuple[BlobSource, ...]


def prepare(document: Mapping[str, Any], *, subject_digest: str, subject_size: int, reference: str) -> ReferrerUpload:
    """The referrer of version ``subject_digest`` (whose manifest has ``subject_size`` bytes)."""
    import io

    full = {**document, "subject": {"digest": subject_digest, "reference": reference}}
    data = _dumps(full)
    created = str(document.get("created") or "")
    blobs = (
        BlobSource(EMPTY_DIGEST, 2, lambda: io.BytesIO(EMPTY_JSON), "empty config"),
        BlobSource("sha256:" + hashlib.sha256(data).hexdigest(), len(data), lambda: io.BytesIO(data), "provenance"),
    )
    return ReferrerUpload(
        subject_digest, referrer_manifest(data, subject_digest, subject_size, created), created, blobs
    )


def attach(
    backend: RegistryBackend, repository: str, upload: ReferrerUpload, *, blobs_uploaded: bool = False
) -> dict[str, Any]:
    """Push the document as a referrer of the version; keep the fallback index where there is no API.

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
        "artifactType": PROVENANCE_MEDIA_TYPE,
        "annotations": {ANNOTATION_CREATED: upload.created},
    }
    # OCI 1.1: a registry that indexed the subject says so in its answer to the PUT (``OCI-Subject``);
    # then nothing is left to do. Registries that have the API but predate the header are asked.
    processed = getattr(backend, "processed_subject", None)  # a third-party backend may predate the method
    if processed is not None and processed(repository, digest) == upload.subject_digest:
        return {"digest": digest, "method": "referrers-api"}
    listed = _api_referrers(backend, repository, upload.subject_digest)
    if listed is not None and any(item.get("digest") == digest for item in listed):
        return {"digest": digest, "method": "referrers-api"}
    _add_to_fallback(backend, repository, upload.subject_digest, descriptor)
    return {"digest": digest, "method": "tag-schema"}


def _api_referrers(backend: RegistryBackend, repository: str, digest: str) -> list[dict[str, Any]] | None:
    method = getattr(backend, "referrers", None)  # a third-party backend may predate the method
    if method is None:
        return None
    result: list[dict[str, Any]] | None = method(repository, digest)
    return result


def _fallback_index(backend: RegistryBackend, repository: str, subject: str) -> list[dict[str, Any]]:
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


def _add_to_fallback(backend: RegistryBackend, repository: str, subject: str, descriptor: dict[str, Any]) -> None:
    """Read-modify-write of the ``sha256-<hex>`` index (two pushes of one digest at the same instant
    could drop one entry: both documents stay fetchable by digest, only the listing misses one)."""
    existing = [
        item for item in _fallback_index(backend, repository, subject) if item.get("digest") != descriptor["digest"]
    ]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*existing, descriptor]}
    backend.put_manifest(repository, _dumps(index), OCI_INDEX, fallback_tag(subject))


def find(backend: RegistryBackend, repository: str, digest: str) -> list[dict[str, Any]]:
    """Provenance referrers of a version (API first, then the fallback tag), newest first."""
    listed = _api_referrers(backend, repository, digest)
    items = listed if listed else _fallback_index(backend, repository, digest)
    found = [item for item in items if item.get("artifactType") == PROVENANCE_MEDIA_TYPE]
    return sorted(
        found, key=lambda item: str((item.get("annotations") or {}).get(ANNOTATION_CREATED, "")), reverse=True
    )


def fetch(backend: RegistryBackend, repository: str, digest: str) -> tuple[dict[str, Any], str] | None:
    """The newest provenance document of a version and its referrer digest; ``None`` when it has none."""
    for item in find(backend, repository, digest):
        referrer = str(item.get("digest"))
        try:
            record = backend.get_manifest(repository, referrer)
            manifest = json.loads(record.data)
            layer = manifest["layers"][0]
            if (manifest.get("subject") or {}).get("digest") != digest:
                continue
            data = backend.get_blob_bytes(repository, layer["digest"], layer["size"], limit=MAX_PROVENANCE_BYTES)
            document = json.loads(data)
        except (BundleError, ValueError, KeyError, IndexError, TypeError):
            continue  # a damaged or foreign referrer: try the next one
        if isinstance(document, dict):
            return document, referrer
    return None
