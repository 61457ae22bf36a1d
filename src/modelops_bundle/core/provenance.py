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

import fnmatch
import hashlib
import json
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_bundle import __version__
from modelops_bundle.core import referrers
from modelops_bundle.core.errors import BundleError, UsageError
from modelops_bundle.core.referrers import ANNOTATION_CREATED
from modelops_bundle.core.referrers import ReferrerUpload as ReferrerUpload  # re-exported for callers
from modelops_bundle.core.referrers import fallback_tag as fallback_tag  # re-exported for callers
from modelops_bundle.core.referrers import is_fallback_tag as is_fallback_tag  # re-exported for callers
from modelops_bundle.core.registry import RegistryBackend

if TYPE_CHECKING:
    from modelops_bundle.core.index import BundleIndex
    from modelops_bundle.core.plugins import PluginHost

PROVENANCE_MEDIA_TYPE = "application/vnd.modelops.bundle.provenance.v1+json"
MAX_PROVENANCE_BYTES = 1024 * 1024

ANNOTATION_TOOL = "io.modelops.bundle.tool"
ANNOTATION_PYTHON = "io.modelops.bundle.python"
ANNOTATION_PLATFORM = "io.modelops.bundle.platform"
ANNOTATION_LOCKFILE = "io.modelops.bundle.lockfile"
ANNOTATION_LOCKFILE_DIGEST = "io.modelops.bundle.lockfile.digest"
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
# Attaching and finding referrers is shared with signatures: see :mod:`.referrers`.


def referrer_manifest(document_bytes: bytes, subject_digest: str, subject_size: int, created: str) -> bytes:
    """The image-spec 1.1 artifact manifest that attaches a provenance document to its version."""
    return referrers.referrer_manifest(
        document_bytes,
        artifact_type=PROVENANCE_MEDIA_TYPE,
        layer_media_type=PROVENANCE_MEDIA_TYPE,
        subject_digest=subject_digest,
        subject_size=subject_size,
        annotations={ANNOTATION_CREATED: created},
    )


def prepare(document: Mapping[str, Any], *, subject_digest: str, subject_size: int, reference: str) -> ReferrerUpload:
    """The referrer of version ``subject_digest`` (whose manifest has ``subject_size`` bytes)."""
    full = {**document, "subject": {"digest": subject_digest, "reference": reference}}
    return referrers.prepare(
        referrers.dumps(full),
        artifact_type=PROVENANCE_MEDIA_TYPE,
        layer_media_type=PROVENANCE_MEDIA_TYPE,
        subject_digest=subject_digest,
        subject_size=subject_size,
        created=str(document.get("created") or ""),
        what="provenance",
    )


def attach(
    backend: RegistryBackend, repository: str, upload: ReferrerUpload, *, blobs_uploaded: bool = False
) -> dict[str, Any]:
    """Push the document as a referrer of the version; keep the fallback index where there is no API.

    ``blobs_uploaded`` says the caller already uploaded ``upload.blobs``. Returns
    ``{"digest": <referrer manifest>, "method": "referrers-api" | "tag-schema"}``.
    """
    return referrers.attach(backend, repository, upload, blobs_uploaded=blobs_uploaded)


def find(backend: RegistryBackend, repository: str, digest: str) -> list[dict[str, Any]]:
    """Provenance referrers of a version (API first, then the fallback tag), newest first."""
    return referrers.find(backend, repository, digest, PROVENANCE_MEDIA_TYPE)


def fetch(backend: RegistryBackend, repository: str, digest: str) -> tuple[dict[str, Any], str] | None:
    """The newest provenance document of a version and its referrer digest; ``None`` when it has none."""
    for item in find(backend, repository, digest):
        referrer = str(item.get("digest"))
        try:
            _manifest, data = referrers.read_layer(
                backend,
                repository,
                referrer,
                digest,
                artifact_type=PROVENANCE_MEDIA_TYPE,
                limit=MAX_PROVENANCE_BYTES,
            )
            document = json.loads(data)
        except (BundleError, ValueError):
            continue  # a damaged or foreign referrer: try the next one
        if isinstance(document, dict):
            return document, referrer
    return None
