"""Built-in ``oci-distribution`` registry backend: any registry speaking the OCI distribution API.

Built on this project's own transport (``core/oci_http``, decision 0025): concurrent streaming
transfers, HEAD before upload, chunked uploads with a monolithic fall-back, retries, re-authentication,
and verification of every manifest and blob read. The HTTP stack is imported when a backend is
constructed, never at plugin load, so ``mops bundle --help`` stays fast.

Settings (built by :func:`modelops_bundle.core.registry_select.open_registry`):
``url`` (``[http[s]://]host[:port][/namespace]``), ``insecure``, ``username``, ``password``,
``provider`` (``acr``: log in through the Azure CLI, as for any ``*.azurecr.io`` host) and ``acr_name``,
``environ`` (for ``REGISTRY_USERNAME``/``PASSWORD``, ``DOCKER_CONFIG``, ``MODELOPS_BUNDLE_INSECURE``, the
``MOPS_REGISTRY_*`` timeouts, ``MOPS_AZ_TIMEOUT``, ``PATH``), the timeouts ``connect_timeout``,
``read_timeout``, ``deadline`` (or the older ``timeout: [connect, read]``) and ``az_timeout``, and the
tuning knobs ``chunk_threshold``, ``chunk_size``, ``retries``, ``retry_base``, ``tls_verify``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from modelops_bundle.core.errors import IntegrityError, RegistryError
from modelops_bundle.core.reference import DIGEST_RE, REPOSITORY_RE, TAG_RE
from modelops_bundle.core.registry import (
    MANIFEST_ACCEPT,
    MAX_MANIFEST_BYTES,
    OCI_MANIFEST,
    BlobSource,
    ManifestRecord,
    TransferProgress,
    TransferStats,
    check_manifest_upload,
)

if TYPE_CHECKING:
    from modelops_bundle.core.oci_http.client import HttpRegistry
    from modelops_bundle.core.oci_http.transfer import BlobTransfer

#: Tags requested per page; registries may return fewer and paginate with ``Link``.
TAGS_PAGE = 1000
_MAX_TAG_PAGES = 10_000


class OciDistributionRegistry:
    """One HTTP registry endpoint with fixed credentials."""

    name: ClassVar[str] = "oci-distribution"

    def __init__(self, settings: Mapping[str, Any]) -> None:
        from modelops_bundle.core.acr import azure_cli_login
        from modelops_bundle.core.auth import resolve_credentials
        from modelops_bundle.core.flags import env_flag
        from modelops_bundle.core.oci_http.client import HttpRegistry, RetryPolicy
        from modelops_bundle.core.oci_http.hosts import parse_endpoint
        from modelops_bundle.core.oci_http.limits import timeouts_from
        from modelops_bundle.core.oci_http.transfer import (
            DEFAULT_CHUNK_SIZE,
            DEFAULT_CHUNK_THRESHOLD,
            BlobTransfer,
        )
        from modelops_bundle.core.settings import INSECURE_ENV

        raw_url = settings.get("url") or settings.get("login_server")
        if not raw_url:
            raise RegistryError("the oci-distribution registry needs an address (registry.login_server)")
        environ: Mapping[str, str] = settings.get("environ") or os.environ
        insecure = bool(settings.get("insecure")) or env_flag(environ, INSECURE_ENV)
        self.endpoint = parse_endpoint(str(raw_url), insecure=insecure)
        credentials = resolve_credentials(
            self.endpoint.host,
            environ,
            username=settings.get("username"),
            password=_secret(settings.get("password")),
        )
        retry = RetryPolicy(
            attempts=int(settings.get("retries", RetryPolicy.attempts)),
            base=float(settings.get("retry_base", RetryPolicy.base)),
        )
        login = azure_cli_login(self.endpoint.host, settings, environ)
        self.http: HttpRegistry = HttpRegistry(
            self.endpoint,
            credentials,
            retry=retry,
            timeouts=timeouts_from(settings, environ),
            tls_verify=settings.get("tls_verify", True),
            login=login,
            login_hint=login.hint() if login is not None else None,
        )
        self.blobs: BlobTransfer = BlobTransfer(
            self.http,
            chunk_threshold=int(settings.get("chunk_threshold", DEFAULT_CHUNK_THRESHOLD)),
            chunk_size=int(settings.get("chunk_size", DEFAULT_CHUNK_SIZE)),
        )
        #: ``(repository, manifest digest) -> subject digest`` the registry said it processed when it stored
        #: the manifest (the ``OCI-Subject`` answer of an OCI 1.1 registry, see :meth:`processed_subject`).
        self._processed_subjects: dict[tuple[str, str], str] = {}

    def describe(self) -> str:
        return self.endpoint.display()

    def __repr__(self) -> str:
        return f"OciDistributionRegistry({self.describe()!r})"

    def close(self) -> None:
        self.http.close()

    # ----------------------------------------------------------------------------------------- names

    def _wire(self, repository: str) -> str:
        if not REPOSITORY_RE.match(repository):
            raise RegistryError(f"invalid repository name {repository!r}")
        return self.endpoint.repository(repository)

    def _what(self, repository: str, reference: str) -> str:
        sep = "@" if DIGEST_RE.match(reference) else ":"
        return f"manifest {repository}{sep}{reference}"

    @staticmethod
    def _check_reference(reference: str) -> None:
        if not (DIGEST_RE.match(reference) or TAG_RE.match(reference)):
            raise RegistryError(f"invalid tag or digest {reference!r}")

    # ------------------------------------------------------------------------------------- manifests

    def resolve(self, repository: str, reference: str) -> str | None:
        from modelops_bundle.core.oci_http.client import scope_for

        self._check_reference(reference)
        wire = self._wire(repository)
        response = self.http.request(
            "HEAD",
            f"/v2/{wire}/manifests/{reference}",
            scope=scope_for(wire, False),
            headers={"Accept": MANIFEST_ACCEPT},
        )
        with response:
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise self.http.error(response, f"looking up {self._what(repository, reference)} on {self.describe()}")
            header = response.headers.get("Docker-Content-Digest", "")
        if DIGEST_RE.match(reference):
            if header and header != reference:
                raise IntegrityError(f"{self._what(repository, reference)}: registry answered for {header}")
            return reference
        if DIGEST_RE.match(header):
            return header
        return self.get_manifest(repository, reference).digest  # no digest header: hash the bytes

    def get_manifest(self, repository: str, reference: str) -> ManifestRecord:
        self._check_reference(reference)
        wire = self._wire(repository)
        what = self._what(repository, reference)
        found = self.blobs.get_limited(
            f"/v2/{wire}/manifests/{reference}",
            wire,
            {"Accept": MANIFEST_ACCEPT},
            MAX_MANIFEST_BYTES,
            f"{what} on {self.describe()}",
        )
        if found is None:
            raise RegistryError(f"{what} not found on {self.describe()}")
        data, headers = found
        if DIGEST_RE.match(reference):
            from modelops_bundle.core.oci_http.digests import new_hash

            check = new_hash(reference)
            check.update(data)
            digest = f"{reference.split(':', 1)[0]}:{check.hexdigest()}"
            if digest != reference:
                raise IntegrityError(f"{what}: content digest {digest} does not match")
        else:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            stated = headers.get("Docker-Content-Digest", "")
            if stated.startswith("sha256:") and stated != digest:
                raise IntegrityError(f"{what}: content digest {digest} does not match the registry's {stated}")
        media_type = headers.get("Content-Type", "").split(";", 1)[0].strip()
        if not media_type or media_type in ("application/json", "application/octet-stream"):
            media_type = _json_media_type(data)
        return ManifestRecord(data=data, digest=digest, media_type=media_type)

    def put_manifest(self, repository: str, data: bytes, media_type: str, tag: str | None) -> str:
        from modelops_bundle.core.oci_http.client import scope_for

        check_manifest_upload(data, tag)
        wire = self._wire(repository)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        # One PUT by tag stores the bytes under their digest and moves the tag atomically; the
        # registry refuses it (MANIFEST_BLOB_UNKNOWN) unless every referenced blob is already there.
        target = tag if tag is not None else digest
        response = self.http.request(
            "PUT",
            f"/v2/{wire}/manifests/{target}",
            scope=scope_for(wire, True),
            headers={"Content-Type": media_type},
            body=data,
        )
        with response:
            if response.status_code not in (200, 201):
                raise self.http.error(response, f"storing {self._what(repository, target)} on {self.describe()}")
            stored = response.headers.get("Docker-Content-Digest", "")
            subject = response.headers.get("OCI-Subject", "").strip()
        if stored.startswith("sha256:") and stored != digest:
            raise IntegrityError(f"registry stored the manifest as {stored}, not {digest}")
        if subject:
            self._processed_subjects[(repository, digest)] = subject
        return digest

    def processed_subject(self, repository: str, digest: str) -> str | None:
        """The subject digest the registry reported having indexed when manifest ``digest`` was stored
        (OCI 1.1: a registry with the referrers API answers such a PUT with ``OCI-Subject``), else
        ``None`` -- then the client keeps the tag-schema fallback itself."""
        return self._processed_subjects.get((repository, digest))

    def list_tags(self, repository: str) -> list[str]:
        from modelops_bundle.core.oci_http.client import scope_for

        wire = self._wire(repository)
        path = f"/v2/{wire}/tags/list?n={TAGS_PAGE}"
        tags: set[str] = set()
        for _ in range(_MAX_TAG_PAGES):
            response = self.http.request("GET", path, scope=scope_for(wire, False))
            with response:
                if response.status_code == 404:
                    return sorted(tags)
                if response.status_code != 200:
                    raise self.http.error(response, f"listing tags of {repository} on {self.describe()}")
                try:
                    payload = response.json()
                except ValueError:
                    raise RegistryError(f"tag list of {repository} from {self.describe()} is not JSON") from None
                page = payload.get("tags") if isinstance(payload, dict) else None
                tags.update(t for t in page or () if isinstance(t, str))
                following = response.links.get("next", {}).get("url")
            if not following or not page:
                break
            path = following
        return sorted(tags)

    def referrers(self, repository: str, digest: str) -> list[dict[str, Any]] | None:
        """``GET /v2/<name>/referrers/<digest>``; ``None`` when the registry answers 404 (no such API:
        a registry that has it answers an empty index for a digest without referrers)."""
        from modelops_bundle.core.registry import OCI_INDEX

        _check_digest(digest)
        wire = self._wire(repository)
        found = self.blobs.get_limited(
            f"/v2/{wire}/referrers/{digest}",
            wire,
            {"Accept": OCI_INDEX},
            MAX_MANIFEST_BYTES,
            f"referrers of {repository}@{digest} on {self.describe()}",
        )
        if found is None:
            return None
        try:
            payload = json.loads(found[0])
        except ValueError:
            return None  # not an index: treat as unsupported, the fallback tag still works
        manifests = payload.get("manifests") if isinstance(payload, dict) else None
        if not isinstance(manifests, list):
            return None
        return [item for item in manifests if isinstance(item, dict)]

    # ----------------------------------------------------------------------------------------- blobs

    def blob_exists(self, repository: str, digest: str) -> bool:
        _check_digest(digest)
        return self.blobs.exists(self._wire(repository), digest)

    def put_blobs(
        self, repository: str, blobs: list[BlobSource], *, jobs: int, progress: TransferProgress | None
    ) -> TransferStats:
        from modelops_bundle.core.oci_http.parallel import run_parallel

        wire = self._wire(repository)
        unique = list({blob.digest: blob for blob in blobs}.values())
        for blob in unique:
            _check_digest(blob.digest)
        advance = (lambda n: progress.advance(nbytes=n)) if progress is not None else None

        from modelops_bundle.core.oci_http.client import TransientRegistryError

        def present(digest: str) -> bool:
            try:
                return self.blobs.exists(wire, digest)
            except TransientRegistryError:
                # A registry that keeps failing HEAD for one blob (distribution answers 500 for a blob a
                # crash left half-written) may still take the upload, which rewrites it; if not, the
                # upload's own error is reported. Found by tests/reliability (registry killed mid-push).
                return False

        def one(blob: BlobSource) -> str:
            if present(blob.digest):
                outcome = "skipped"
                if progress is not None:
                    progress.advance(files=1, nbytes=blob.size)
                return outcome
            outcome = self.blobs.upload(wire, blob, advance)
            if progress is not None:
                progress.advance(files=1)
            return outcome

        stats = TransferStats()
        counts: dict[str, int] = {}
        for blob, outcome in zip(unique, run_parallel(one, unique, jobs), strict=True):
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome == "skipped":
                stats.skipped_blobs += 1
            else:
                stats.uploaded_blobs += 1
                stats.uploaded_bytes += blob.size
        stats.extra.update({"chunked_blobs": counts.get("chunked", 0), "monolithic_blobs": counts.get("monolithic", 0)})
        return stats

    def get_blob_bytes(self, repository: str, digest: str, size: int | None, *, limit: int) -> bytes:
        _check_digest(digest)
        return self.blobs.read_small(self._wire(repository), digest, size, limit)

    def get_blobs_to_files(
        self,
        repository: str,
        blobs: list[tuple[str, int, Path]],
        *,
        jobs: int,
        progress: TransferProgress | None,
    ) -> TransferStats:
        from modelops_bundle.core.oci_http.parallel import run_parallel

        wire = self._wire(repository)
        for digest, _, _ in blobs:
            _check_digest(digest)
        advance = (lambda n: progress.advance(nbytes=n)) if progress is not None else None

        def one(item: tuple[str, int, Path]) -> int:
            digest, size, destination = item
            written = self.blobs.download(wire, digest, size, destination, advance)
            if progress is not None:
                progress.advance(files=1)
            return written

        stats = TransferStats()
        for written in run_parallel(one, blobs, jobs):
            stats.downloaded_blobs += 1
            stats.downloaded_bytes += written
        return stats


def _check_digest(digest: str) -> None:
    """Digests come from manifests (untrusted): refuse anything that is not one before it reaches a URL."""
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise IntegrityError(f"malformed digest {digest!r}")


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if callable(getter) else str(value)


def _json_media_type(data: bytes) -> str:
    try:
        parsed = json.loads(data)
    except ValueError:
        return OCI_MANIFEST
    value = parsed.get("mediaType") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) and value else OCI_MANIFEST
