"""HTTP to one OCI registry: per-worker sessions, authentication, retries, and errors in words.

Each worker thread has its own ``requests.Session`` (one must not be shared between threads), set up
as oras-py sets up its own (cookies ignored: some registries take a cookie as a sign of a browser).
The client is our own rather than oras-py's (decision 0025): oras-py cannot replay a streamed body after
a 401, retries nothing, and holds one token for every scope; importing it costs about 80 ms.
Here every request carries the header for its scope from the shared :class:`Authenticator`, a 401
re-authenticates (a token may expire in the middle of a long transfer) and re-sends a fresh body,
and 5xx / 429 / dropped connections are retried with exponential backoff and full jitter, honouring
``Retry-After``. Requests whose body cannot be replayed safely (upload sessions) pass ``retry=False``
and get a :class:`TransientRegistryError` to restart their upload from the beginning.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from modelops_bundle.core.auth import Authenticator, Credentials
from modelops_bundle.core.errors import RegistryError
from modelops_bundle.core.oci_http.hosts import Endpoint, realm_refusal

log = logging.getLogger("modelops_bundle.registry.http")

#: ``(connect, read)`` seconds; the read timeout bounds a stalled transfer, not a long one.
DEFAULT_TIMEOUT = (10.0, 120.0)
_ERROR_BODY_LIMIT = 64 * 1024
_V2_NAME = re.compile(r"/v2/(.+?)/(?:blobs|manifests|tags|referrers)/")


class TransientRegistryError(RegistryError):
    """A failure that may pass if tried again (5xx, 429, dropped connection); still a RegistryError."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff and full jitter (AWS architecture blog's variant)."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 8.0
    retry_after_cap: float = 60.0
    #: A refused connection or an unknown host rarely heals in seconds: fail fast.
    connect_attempts: int = 2

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        return random.uniform(0, min(self.cap, self.base * (2**attempt)))


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_transient_status(status: int) -> bool:
    return status in (408, 429) or (status >= 500 and status != 501)


def scope_for(repository: str, push: bool) -> str:
    return f"repository:{repository}:{'pull,push' if push else 'pull'}"


def new_session() -> requests.Session:
    """A session as oras-py's client makes one: every cookie refused (Harbor, for one, sets CSRF
    cookies when it sees them kept)."""
    session = requests.Session()
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


class HttpRegistry:
    """Everything needed to make requests to one registry endpoint, safely from many threads."""

    def __init__(
        self,
        endpoint: Endpoint,
        credentials: Credentials,
        *,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        tls_verify: bool | str = True,
    ) -> None:
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.tls_verify = tls_verify
        self.auth = Authenticator(
            endpoint.host, credentials, realm_allowed=lambda realm: realm_refusal(realm, endpoint)
        )
        self._local = threading.local()
        self._all: list[requests.Session] = []
        self._lock = threading.Lock()
        self._pinged = False
        self._ping_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpRegistry({self.endpoint.display()!r})"

    # --------------------------------------------------------------------------------------- clients

    def session(self) -> requests.Session:
        """This thread's session: a ``requests.Session`` is not shared between threads, and a streamed
        response keeps using its thread's session until it is read."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = new_session()
            self._local.session = session
            with self._lock:
                self._all.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._all = self._all, []
        self._local = threading.local()
        for session in sessions:
            session.close()

    # -------------------------------------------------------------------------------------- requests

    def url(self, path: str) -> str:
        return urljoin(self.endpoint.base_url + "/", path)

    def ping(self) -> None:
        """``GET /v2/`` once: proves the endpoint is a registry and learns its auth scheme."""
        if self._pinged:
            return
        with self._ping_lock:
            if self._pinged:
                return
            response = self._attempts(self.session(), "GET", self.url("/v2/"), None, {}, None, False, True)
            with response:
                if response.status_code == 401:
                    if self.auth.learn(response.headers.get("WWW-Authenticate")) is None:
                        raise RegistryError(f"registry {self.where()} answered 401 without an auth challenge")
                elif response.status_code == 404:
                    raise RegistryError(f"{self.where()} is not an OCI registry (no /v2/ endpoint)")
                elif response.status_code >= 400:
                    raise self.error(response, f"registry {self.where()} refused the connection check")
            self._pinged = True

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | Callable[[], Any] | None = None,
        stream: bool = False,
        retry: bool = True,
    ) -> requests.Response:
        """One logical request (with auth and, if ``retry``, retries); ``body`` may be a factory that
        returns a fresh streaming body for every send."""
        return self.send(method, self.url(path), scope=scope, headers=headers, body=body, stream=stream, retry=retry)

    def send(
        self,
        method: str,
        url: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        stream: bool = False,
        retry: bool = True,
    ) -> requests.Response:
        self.ping()
        session = self.session()
        auth_tries = 0
        while True:
            auth_headers = self.auth.header(scope, self._token_fetcher(session)) if scope else {}
            response = self._attempts(
                session, method, url, scope, {**(headers or {}), **auth_headers}, body, stream, retry
            )
            if response.status_code != 401:
                return response
            response.close()
            challenge = self.auth.learn(response.headers.get("WWW-Authenticate"))
            sent_credentials = "Authorization" in auth_headers
            if auth_tries >= 2 or challenge is None or (sent_credentials and challenge.scheme == "basic"):
                raise self.auth.rejected()
            if sent_credentials:
                self.auth.invalidate(scope, auth_headers)  # an expired or too narrow token: fetch anew
            auth_tries += 1

    def _attempts(
        self,
        session: requests.Session,
        method: str,
        url: str,
        scope: str | None,
        headers: dict[str, str],
        body: Any,
        stream: bool,
        retry: bool,
    ) -> requests.Response:
        attempt = 0
        while True:
            data = body() if callable(body) else body
            try:
                response = session.request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    stream=stream,
                    timeout=self.timeout,
                    verify=self.tls_verify,
                )
            except requests.exceptions.SSLError as exc:
                raise RegistryError(
                    f"TLS error talking to registry {self.where()}: {self.auth.mask(_reason(exc))}",
                    hint="if this is a trusted registry that speaks plain HTTP, set registry.insecure: true "
                    "or MODELOPS_BUNDLE_INSECURE=true",
                ) from None
            except requests.exceptions.RequestException as exc:
                cannot_connect = _cannot_connect(exc)
                limit = self.retry.connect_attempts if cannot_connect else self.retry.attempts
                message = (
                    f"cannot connect to registry {self.where()}: {_reason(exc)}"
                    if cannot_connect
                    else f"connection to registry {self.where()} failed during {method}: {_reason(exc)}"
                )
                if not retry or attempt + 1 >= limit:
                    raise TransientRegistryError(self.auth.mask(message)) from None
                log.debug("%s; retrying", message)
            else:
                if not is_transient_status(response.status_code):
                    return response
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                message = f"registry {self.where()} answered HTTP {response.status_code} to {method}"
                if not retry or attempt + 1 >= self.retry.attempts:
                    error = self.error(response, message)
                    raise TransientRegistryError(error.message, retry_after=wait)
                response.close()
                log.debug("%s; retrying", message)
                time.sleep(self.retry.delay(attempt, wait))
                attempt += 1
                continue
            finally:
                if callable(body) and hasattr(data, "close"):
                    data.close()
            time.sleep(self.retry.delay(attempt))
            attempt += 1

    def _token_fetcher(
        self, session: requests.Session
    ) -> Callable[[str, str, dict[str, str], dict[str, str], dict[str, str] | None], tuple[int, Any]]:
        def fetch(
            method: str, url: str, headers: dict[str, str], params: dict[str, str], form: dict[str, str] | None
        ) -> tuple[int, Any]:
            try:
                response = session.request(
                    method, url, headers=headers, params=params, data=form, timeout=self.timeout, verify=self.tls_verify
                )
            except requests.exceptions.RequestException as exc:
                raise RegistryError(
                    f"cannot reach the token service of registry {self.where()}: {self.auth.mask(_reason(exc))}"
                ) from None
            with response:
                try:
                    payload = response.json() if response.status_code == 200 else None
                except ValueError:
                    payload = None
                return response.status_code, payload

        return fetch

    # ---------------------------------------------------------------------------------------- errors

    def where(self) -> str:
        return self.endpoint.display()

    def error(self, response: requests.Response, what: str) -> RegistryError:
        """A :class:`RegistryError` naming ``what`` with the registry's own error codes, secrets masked."""
        detail = _error_detail(response)
        text = f"{what}: HTTP {response.status_code}" + (f" {detail}" if detail else "")
        response.close()
        return RegistryError(self.auth.mask(text))


def _error_detail(response: requests.Response) -> str:
    raw = b""
    try:
        raw = next(response.iter_content(_ERROR_BODY_LIMIT), b"")
    except Exception:  # the body only decorates the message
        pass
    try:
        payload = json.loads(raw)
    except ValueError:
        return ""
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for item in errors[:3]:
        if isinstance(item, dict):
            parts.append(": ".join(str(x) for x in (item.get("code"), item.get("message")) if x))
    return "; ".join(p for p in parts if p)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (urllib3 nests reasons, causes and args several levels deep)."""
    stack, seen = [exc], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (getattr(current, "reason", None), current.__cause__, current.__context__, *current.args):
            if isinstance(nested, BaseException):
                stack.append(nested)


def _cannot_connect(exc: BaseException) -> bool:
    """Connection refused, unknown host or connect timeout: the registry is not there at all."""
    return any(isinstance(e, (NewConnectionError, requests.exceptions.ConnectTimeout)) for e in _chain(exc))


def _reason(exc: BaseException) -> str:
    """A short, credential-free reason for a connection failure."""
    for nested in _chain(exc):
        if isinstance(nested, NameResolutionError):
            return "unknown host"
        if isinstance(nested, OSError) and nested.strerror:
            return nested.strerror.lower()
    name = exc.__class__.__name__
    return {
        "ConnectTimeout": "connection timed out",
        "ReadTimeout": "the registry stopped responding (read timeout)",
        "ChunkedEncodingError": "the connection was dropped mid-response",
    }.get(name, "the connection was dropped" if "Connection" in name else name)
