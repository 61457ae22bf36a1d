"""Blob uploads and downloads over the distribution API, streaming and restartable.

Uploads read the source in 1 MiB pieces straight into the socket (never the whole file), monolithic
(``POST`` then ``PUT ?digest=``) below ``chunk_threshold`` and chunked (``PATCH`` with ``Content-Range``,
following each ``Location``, honouring ``OCI-Chunk-Min-Length``) above it. A registry that refuses
chunks gets a monolithic ``PUT`` instead, for the rest of the session. A failed chunk resumes from the
offset the registry reports; anything else restarts the upload session from a fresh stream, with
backoff, a bounded number of times and only while the transfer's deadline (counted from the last byte
that moved) lasts: a transfer that stalls fails after the read timeout per attempt, never minutes more.
Downloads stream into a partial file that is renamed only after size and digest match. Every restart is
logged at INFO with its reason.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import requests

from modelops_bundle.core.errors import IntegrityError, RegistryError
from modelops_bundle.core.oci_http.client import (
    HttpRegistry,
    OutOfTime,
    TransientRegistryError,
    reason_for,
    scope_for,
)
from modelops_bundle.core.oci_http.digests import CHUNK, read_limited, verify_bytes, write_verified
from modelops_bundle.core.oci_http.limits import Budget
from modelops_bundle.core.registry import BlobSource

log = logging.getLogger("modelops_bundle.registry.http")

DEFAULT_CHUNK_THRESHOLD = 64 * 1024 * 1024
DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024
#: Answers to the first PATCH that mean "no chunked uploads here" (not "try again").
_CHUNKS_REFUSED = (400, 404, 405, 411, 413, 415, 501)
#: Seconds the courtesy ``DELETE`` of an abandoned upload session may take.
CANCEL_PATIENCE = 5.0

ByteCallback = Callable[[int], None]


class ProgressMeter:
    """Reports each byte of one blob once, however many times a retry re-sends it."""

    def __init__(self, callback: ByteCallback | None) -> None:
        self.callback = callback
        self.reported = 0
        #: When a byte last moved (``time.monotonic()``), re-sent ones included: the transfer is alive.
        self.moved_at = time.monotonic()

    def at(self, position: int) -> None:
        self.moved_at = time.monotonic()
        if position > self.reported:
            if self.callback is not None:
                self.callback(position - self.reported)
            self.reported = position


class SourceBody:
    """A request body of ``length`` bytes from ``offset`` of a blob source, read in 1 MiB pieces.

    It is iterable and sized, so requests sends it with ``Content-Length`` and urllib3 writes each piece
    to the socket as it is read: memory stays at one piece whatever the blob size.
    """

    def __init__(self, source: BlobSource, offset: int, length: int, meter: ProgressMeter) -> None:
        self.source, self.offset, self.length, self.meter = source, offset, length, meter
        self._handle: BinaryIO | None = None

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        self._handle = self.source.open()
        if self.offset:
            self._handle.seek(self.offset)
        remaining, position = self.length, self.offset
        while remaining > 0:
            piece = self._handle.read(min(CHUNK, remaining))
            if not piece:
                raise IntegrityError(
                    f"{self.source.description or self.source.digest} ended {remaining} bytes early "
                    f"(expected {self.source.size} bytes): did it change after it was hashed?"
                )
            remaining -= len(piece)
            position += len(piece)
            yield piece
            self.meter.at(position)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def with_query(url: str, **params: str) -> str:
    """Append query parameters to an upload ``Location`` that may already carry its own state."""
    from urllib.parse import urlencode

    return url + ("&" if "?" in url else "?") + urlencode(params)


class BlobTransfer:
    """Upload and download blobs of one repository (``repository`` is the name on the wire)."""

    def __init__(
        self,
        http: HttpRegistry,
        *,
        chunk_threshold: int = DEFAULT_CHUNK_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.http = http
        self.chunk_threshold = chunk_threshold
        self.chunk_size = chunk_size
        self.chunks_refused = False
        self._lock = threading.Lock()

    # --------------------------------------------------------------------------------------- queries

    def exists(self, repository: str, digest: str) -> bool:
        response = self.http.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope=scope_for(repository, False))
        with response:
            if response.status_code == 200:
                return True
            if response.status_code == 404:
                return False
            raise self.http.error(response, f"checking blob {digest} in {repository} on {self.http.where()}")

    # --------------------------------------------------------------------------------------- uploads

    def upload(self, repository: str, source: BlobSource, on_bytes: ByteCallback | None) -> str:
        """Upload ``source``; returns ``"chunked"`` or ``"monolithic"`` (how it finally went)."""
        meter = ProgressMeter(on_bytes)
        policy = self.http.retry
        budget = Budget(self.http.timeouts)
        attempt = 0
        while True:
            session: list[str] = []  # the open upload location, to abandon it cleanly on failure
            try:
                if source.size >= self.chunk_threshold and not self.chunks_refused:
                    done = self._chunked(repository, source, meter, session, budget)
                    if done:
                        return "chunked"
                self._monolithic(repository, source, meter, session)
                return "monolithic"
            except OutOfTime as exc:
                raise RegistryError(f"upload of {self._label(source)} failed: {exc}") from None
            except TransientRegistryError as exc:
                if session:
                    self._cancel(repository, session[-1])
                attempt += 1
                budget.progressed(meter.moved_at)
                wait = policy.delay(attempt - 1, exc.retry_after)
                if attempt >= policy.attempts:
                    raise RegistryError(
                        f"upload of {self._label(source)} failed after {attempt} attempts: {exc}"
                    ) from None
                if not budget.allows(wait):
                    raise RegistryError(
                        f"upload of {self._label(source)} failed after {attempt} attempts, no byte moving "
                        f"for {budget.describe()}: {exc}"
                    ) from None
                log.info(
                    "restarting the upload of %s in %.1f s (attempt %d of %d): %s",
                    self._label(source),
                    wait,
                    attempt + 1,
                    policy.attempts,
                    exc,
                )
                time.sleep(wait)

    def _label(self, source: BlobSource) -> str:
        return f"{source.description} ({source.digest})" if source.description else source.digest

    def _start(self, repository: str, session: list[str]) -> tuple[str, int]:
        """``POST`` a new upload session: its URL and the registry's minimum chunk length."""
        response = self.http.request("POST", f"/v2/{repository}/blobs/uploads/", scope=scope_for(repository, True))
        with response:
            if response.status_code != 202 or "Location" not in response.headers:
                raise self.http.error(response, f"starting an upload to {repository} on {self.http.where()}")
            minimum = response.headers.get("OCI-Chunk-Min-Length", "")
            session[:] = [self.http.url(response.headers["Location"])]
            return session[-1], int(minimum) if minimum.isdigit() else 0

    def _finish(
        self, repository: str, location: str, source: BlobSource, body: bytes | Callable[[], object], length: int
    ) -> None:
        response = self.http.request(
            "PUT",
            with_query(location, digest=source.digest),
            scope=scope_for(repository, True),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)},
            body=body,
            retry=False,
        )
        with response:
            if response.status_code not in (201, 204):
                raise self.http.error(response, f"uploading {self._label(source)} to {repository}")
            stored = response.headers.get("Docker-Content-Digest")
            if stored and stored != source.digest:
                raise IntegrityError(f"registry stored {self._label(source)} under a different digest {stored}")

    def _monolithic(self, repository: str, source: BlobSource, meter: ProgressMeter, session: list[str]) -> None:
        location, _ = self._start(repository, session)
        if source.size == 0:
            self._finish(repository, location, source, b"", 0)
        else:
            self._finish(repository, location, source, lambda: SourceBody(source, 0, source.size, meter), source.size)

    def _chunked(
        self, repository: str, source: BlobSource, meter: ProgressMeter, session: list[str], budget: Budget
    ) -> bool:
        """Chunked upload; ``False`` when the registry refuses chunks (then upload monolithically)."""
        location, minimum = self._start(repository, session)
        chunk = max(self.chunk_size, minimum)
        offset, first, resumes = 0, True, 0
        scope = scope_for(repository, True)
        while offset < source.size:
            end = min(source.size, offset + chunk)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{end - 1}",
                "Content-Length": str(end - offset),
            }
            try:
                response = self.http.request(
                    "PATCH",
                    location,
                    scope=scope,
                    headers=headers,
                    body=functools.partial(SourceBody, source, offset, end - offset, meter),
                    retry=False,
                )
            except OutOfTime:
                raise
            except TransientRegistryError as exc:
                resumes += 1
                budget.progressed(meter.moved_at)
                wait = self.http.retry.delay(resumes - 1)
                if resumes >= self.http.retry.attempts or not budget.allows(wait):
                    raise
                log.info(
                    "resuming the upload of %s at byte %d in %.1f s (attempt %d of %d): %s",
                    self._label(source),
                    offset,
                    wait,
                    resumes + 1,
                    self.http.retry.attempts,
                    exc,
                )
                time.sleep(wait)
                location, offset = self._status(repository, location)  # resume where the registry got to
                session[:] = [location]
                continue
            with response:
                if response.status_code == 202:
                    location = self.http.url(response.headers.get("Location", location))
                    session[:] = [location]
                    offset = _range_end(response.headers.get("Range"), default=end)
                    first = False
                    continue
                if response.status_code == 416:  # out of order: ask where the registry is
                    resumes += 1
                    if resumes >= self.http.retry.attempts:
                        raise self.http.error(response, f"uploading {self._label(source)}: chunks kept being refused")
                    location, offset = self._status(repository, location)
                    session[:] = [location]
                    continue
                if first and response.status_code in _CHUNKS_REFUSED:
                    with self._lock:
                        self.chunks_refused = True
                    self._cancel(repository, location)
                    return False
                raise self.http.error(response, f"uploading a chunk of {self._label(source)} to {repository}")
        self._finish(repository, location, source, b"", 0)
        return True

    def _status(self, repository: str, location: str) -> tuple[str, int]:
        """Where an upload session stands (``GET`` its location): new location and the next offset."""
        response = self.http.request("GET", location, scope=scope_for(repository, True))
        with response:
            if response.status_code not in (200, 204):
                raise TransientRegistryError(
                    f"upload session on {self.http.where()} was lost (HTTP {response.status_code})"
                )
            return self.http.url(response.headers.get("Location", location)), _range_end(
                response.headers.get("Range"), default=0
            )

    def _cancel(self, repository: str, location: str) -> None:
        with contextlib.suppress(RegistryError):
            self.http.request(
                "DELETE", location, scope=scope_for(repository, True), retry=False, patience=CANCEL_PATIENCE
            ).close()

    # ------------------------------------------------------------------------------------- downloads

    def download(
        self, repository: str, digest: str, size: int | None, destination: Path, on_bytes: ByteCallback | None
    ) -> int:
        """Stream a blob into ``destination`` (partial file, verified, renamed); restarts on drops."""
        meter = ProgressMeter(on_bytes)
        budget = Budget(self.http.timeouts)
        what = f"blob {digest} of {repository} on {self.http.where()}"
        attempt = 0
        while True:
            response = self.http.request(
                "GET", f"/v2/{repository}/blobs/{digest}", scope=scope_for(repository, False), stream=True
            )
            with response:
                if response.status_code == 404:
                    raise RegistryError(f"{what} not found")
                if response.status_code != 200:
                    raise self.http.error(response, f"downloading {what}")
                received = 0

                def counted(piece: int) -> None:
                    nonlocal received
                    received += piece
                    meter.at(received)

                try:
                    return write_verified(
                        response.iter_content(CHUNK), destination, digest, size, what, on_bytes=counted
                    )
                except requests.exceptions.RequestException as exc:  # (an OSError subclass: catch it first)
                    attempt += 1
                    wait = self._retry_body(what, exc, attempt, budget, meter)
                except OSError as exc:
                    raise RegistryError(f"cannot write {destination}: {exc.strerror or exc}") from None
            time.sleep(wait)

    def read_small(self, repository: str, digest: str, size: int | None, limit: int) -> bytes:
        """A blob in memory (config, index), refusing more than ``limit`` bytes, verified."""
        what = f"blob {digest} of {repository} on {self.http.where()}"
        if size is not None and size > limit:
            raise RegistryError(f"{what} is {size} bytes, more than the {limit}-byte limit")
        found = self.get_limited(f"/v2/{repository}/blobs/{digest}", repository, {}, limit, what)
        if found is None:
            raise RegistryError(f"{what} not found")
        return verify_bytes(found[0], digest, size, what)

    def get_limited(
        self, path: str, repository: str, headers: Mapping[str, str], limit: int, what: str
    ) -> tuple[bytes, Mapping[str, str]] | None:
        """GET at most ``limit`` bytes (a dropped connection is retried); ``None`` on 404."""
        budget = Budget(self.http.timeouts)
        meter = ProgressMeter(None)
        attempt = 0
        while True:
            response = self.http.request("GET", path, scope=scope_for(repository, False), headers=headers, stream=True)
            with response:
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    raise self.http.error(response, f"downloading {what}")
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise RegistryError(f"{what} is {declared} bytes, more than the {limit}-byte limit")
                try:
                    return read_limited(_RawReader(response, meter), limit, what), response.headers
                except requests.exceptions.RequestException as exc:
                    attempt += 1
                    wait = self._retry_body(what, exc, attempt, budget, meter)
            time.sleep(wait)

    def _retry_body(self, what: str, exc: BaseException, attempt: int, budget: Budget, meter: ProgressMeter) -> float:
        """A response body broke off after ``attempt`` tries: the wait before the next, or the error."""
        policy = self.http.retry
        reason = reason_for(exc, self.http.timeouts.read)
        budget.progressed(meter.moved_at)
        wait = policy.delay(attempt - 1)
        if attempt >= policy.attempts:
            raise RegistryError(f"{what}: {reason} ({attempt} attempts)") from None
        if not budget.allows(wait):
            raise RegistryError(f"{what}: {reason}; gave up after {attempt} attempts ({budget.describe()})") from None
        log.info(
            "downloading %s again in %.1f s (attempt %d of %d): %s", what, wait, attempt + 1, policy.attempts, reason
        )
        return wait


class _RawReader:
    """``read(n)`` over a streamed response, decoding any transfer compression."""

    def __init__(self, response: requests.Response, meter: ProgressMeter) -> None:
        self._pieces = response.iter_content(CHUNK)
        self._buffer = b""
        self._meter = meter
        self._received = 0

    def read(self, n: int) -> bytes:
        parts, have = [self._buffer], len(self._buffer)
        for piece in self._pieces:
            parts.append(piece)
            have += len(piece)
            self._received += len(piece)
            self._meter.at(self._received)
            if have >= n:
                break
        data = b"".join(parts)
        self._buffer = data[n:]
        return data[:n]


def _range_end(value: str | None, *, default: int) -> int:
    """Next offset from a ``Range: 0-<last>`` header (``0-0`` may mean nothing yet: restart at 0)."""
    if not value:
        return default
    _, _, last = value.strip().removeprefix("bytes=").partition("-")
    if not last.isdigit():
        return default
    end = int(last)
    return 0 if end == 0 else end + 1
