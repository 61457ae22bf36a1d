"""HTTP to one OCI registry: per-worker sessions, authentication, retries, and errors in words.

Each worker thread has its own ``requests.Session`` (one must not be shared between threads), set up
as oras-py sets up its own (cookies ignored: some registries take a cookie as a sign of a browser).
The client is our own rather than oras-py's (decision 0025): oras-py cannot replay a streamed body after
a 401, retries nothing, and holds one token for every scope; importing it costs about 80 ms.
Here every request carries the header for its scope from the shared :class:`Authenticator`, a 401
re-authenticates (a token may expire in the middle of a long transfer) and re-sends a fresh body,
and 5xx / 429 / dropped connections are retried with exponential backoff and full jitter, honouring
``Retry-After`` (capped, jittered). Requests whose body cannot be replayed safely (upload sessions) pass
``retry=False`` and get a :class:`TransientRegistryError` to restart their upload from the beginning.

Every attempt has a connect and a read (silence) timeout and every request a deadline, clamped to any
limit the operation set (``limits.py``, ``core/deadline.py``). Each retry is logged at INFO with its
reason (``-v`` shows them); a registry that throttles (429, or 503 with ``Retry-After``) is reported
once per registry at WARNING, not per request.
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
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError, ReadTimeoutError

from modelops_bundle.core.auth import Authenticator, Credentials, Login
from modelops_bundle.core.errors import RegistryError
from modelops_bundle.core.oci_http.hosts import Endpoint, realm_refusal
from modelops_bundle.core.oci_http.limits import CONNECT_ENV, READ_ENV, RETRY_AFTER_CAP, Budget, Timeouts

log = logging.getLogger("modelops_bundle.registry.http")

_ERROR_BODY_LIMIT = 64 * 1024
_V2_NAME = re.compile(r"/v2/(.+?)/(?:blobs|manifests|tags|referrers)/")


class TransientRegistryError(RegistryError):
    """A failure that may pass if tried again (5xx, 429, dropped connection); still a RegistryError."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutOfTime(TransientRegistryError):
    """The request's deadline, or the operation's time limit, ran out: callers do not try again."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff and full jitter (AWS architecture blog's variant)."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 8.0
    retry_after_cap: float = RETRY_AFTER_CAP
    #: A refused connection, an unknown host or a registry that does not answer its first request
    #: rarely heals in seconds: fail fast.
    connect_attempts: int = 2

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before attempt ``attempt + 1``: what ``Retry-After`` asks (capped) plus up to as much
        again (and 0.1 s) of jitter, so many workers told the same moment do not all return at once; else
        backoff. Up to 10 % was too little: in bench/sim_fleet.py, 100 nodes against a registry admitting
        100 requests a second, 23 nodes still ran out of attempts (71 with no jitter, none with this)."""
        if retry_after is not None:
            wait = min(max(retry_after, 0.0), self.retry_after_cap)
            return wait + random.uniform(0, 0.1 + wait)
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


def is_throttling(status: int, retry_after: float | None) -> bool:
    """429, or 503 with ``Retry-After`` (ACR and Docker Hub throttle both ways)."""
    return status == 429 or (status == 503 and retry_after is not None)


def shown_url(url: str) -> str:
    """A URL for logs: path only (upload locations carry the registry's session state in the query)."""
    return urlsplit(url).path or "/"


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
        timeouts: Timeouts | None = None,
        tls_verify: bool | str = True,
        login: Login | None = None,
        login_hint: str | None = None,
    ) -> None:
        from modelops_bundle.core import logroute

        logroute.activate()  # the CLI's log handler, deferred until something may log (core/logroute.py)
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.tls_verify = tls_verify
        self.auth = Authenticator(
            endpoint.host,
            credentials,
            realm_allowed=lambda realm: realm_refusal(realm, endpoint),
            login=login,
            login_hint=login_hint,
        )
        self._throttle_noted = False
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
            response = self._attempts(self.session(), "GET", self.url("/v2/"), {}, None, False, True, first=True)
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
        patience: float | None = None,
    ) -> requests.Response:
        """One logical request (with auth and, if ``retry``, retries); ``body`` may be a factory that
        returns a fresh streaming body for every send. ``patience`` caps every timeout of a request that
        is only a courtesy (abandoning an upload session)."""
        return self.send(
            method,
            self.url(path),
            scope=scope,
            headers=headers,
            body=body,
            stream=stream,
            retry=retry,
            patience=patience,
        )

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
        patience: float | None = None,
    ) -> requests.Response:
        self.ping()
        session = self.session()
        auth_tries = 0
        while True:
            auth_headers = self.auth.header(scope, self._token_fetcher(session)) if scope else {}
            response = self._attempts(
                session, method, url, {**(headers or {}), **auth_headers}, body, stream, retry, patience=patience
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
        headers: dict[str, str],
        body: Any,
        stream: bool,
        retry: bool,
        *,
        first: bool = False,
        patience: float | None = None,
    ) -> requests.Response:
        """Send until an answer that is not transient, within the attempts and the time budget.

        ``first``: the connection check, where silence counts as "not there" (few attempts)."""
        timeouts = self.timeouts
        silence = f"read timeout: registry.read_timeout or {READ_ENV}"
        if first:
            # A registry answers GET /v2/ at once; one that does not within the connect timeout is not
            # there (a hung server that accepts connections): two short attempts, not two long ones.
            timeouts = Timeouts(timeouts.connect, min(timeouts.read, timeouts.connect), timeouts.deadline)
            silence = f"the connection check waits the connect timeout: registry.connect_timeout or {CONNECT_ENV}"
        if patience is not None:
            timeouts = Timeouts(min(timeouts.connect, patience), min(timeouts.read, patience), patience)
        budget = Budget(timeouts)
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
                    timeout=budget.request_timeout(),
                    verify=self.tls_verify,
                )
            except requests.exceptions.SSLError as exc:
                raise RegistryError(
                    f"TLS error talking to registry {self.where()}: {self.auth.mask(reason_for(exc))}",
                    hint="if this is a trusted registry that speaks plain HTTP, set registry.insecure: true "
                    "or MODELOPS_BUNDLE_INSECURE=true",
                ) from None
            except requests.exceptions.RequestException as exc:
                cannot_connect = _cannot_connect(exc)
                limit = (
                    self.retry.connect_attempts
                    if cannot_connect or (first and _timed_out(exc))
                    else self.retry.attempts
                )
                reason = reason_for(exc, timeouts.read, silence)
                message = (
                    f"cannot connect to registry {self.where()}: {reason}"
                    if cannot_connect
                    else f"connection to registry {self.where()} failed during {method}: {reason}"
                )
                wait = self.retry.delay(attempt)
                if not retry or attempt + 1 >= limit or not budget.allows(wait):
                    if budget.limit is not None and not budget.allows(wait) and _timed_out(exc):
                        where = self.where()
                        raise OutOfTime(
                            self.auth.mask(f"no answer from registry {where} within {budget.describe()}")
                        ) from None
                    raise self._gave_up(
                        message, attempt + 1, budget, retry, out_of_time=not budget.allows(wait)
                    ) from None
                self._log_retry(method, url, reason, attempt, limit, wait, exc)
            else:
                if not is_transient_status(response.status_code):
                    return response
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                wait = self.retry.delay(attempt, retry_after)
                message = f"registry {self.where()} answered HTTP {response.status_code} to {method}"
                if not retry or attempt + 1 >= self.retry.attempts or not budget.allows(wait):
                    error = self.error(response, message)
                    if retry_after is not None and not budget.allows(wait):
                        error.message += f"; it asked to wait {retry_after:g} s, beyond {budget.describe()}"
                    raise TransientRegistryError(error.message, retry_after=retry_after)
                response.close()
                if is_throttling(response.status_code, retry_after):
                    self._note_throttling(response.status_code, retry_after)
                self._log_retry(method, url, f"HTTP {response.status_code}", attempt, self.retry.attempts, wait)
            finally:
                if callable(body) and hasattr(data, "close"):
                    data.close()
            time.sleep(wait)
            attempt += 1

    def _gave_up(
        self, message: str, attempts: int, budget: Budget, retry: bool, *, out_of_time: bool
    ) -> TransientRegistryError:
        if retry and out_of_time:
            tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
            return OutOfTime(self.auth.mask(f"{message}; gave up after {tries} ({budget.describe()})"))
        if retry and attempts > 1:
            return TransientRegistryError(self.auth.mask(f"{message} ({attempts} attempts)"))
        return TransientRegistryError(self.auth.mask(message))

    def _log_retry(
        self,
        method: str,
        url: str,
        reason: str,
        attempt: int,
        attempts: int,
        wait: float,
        exc: BaseException | None = None,
    ) -> None:
        log.info(
            "retrying %s %s on %s in %.1f s (attempt %d of %d): %s",
            method,
            shown_url(url),
            self.where(),
            wait,
            attempt + 2,
            attempts,
            self.auth.mask(reason),
            exc_info=exc,
        )

    def _note_throttling(self, status: int, retry_after: float | None) -> None:
        """Once per registry: the user should know why things slowed down."""
        with self._lock:
            if self._throttle_noted:
                return
            self._throttle_noted = True
        asked = "backing off and"
        if retry_after is not None:
            asked = f"waiting {retry_after:g} s as it asks (Retry-After), then"
        log.warning("registry %s is throttling requests (HTTP %d); %s retrying", self.where(), status, asked)

    def _token_fetcher(
        self, session: requests.Session
    ) -> Callable[[str, str, dict[str, str], dict[str, str], dict[str, str] | None], tuple[int, Any]]:
        def fetch(
            method: str, url: str, headers: dict[str, str], params: dict[str, str], form: dict[str, str] | None
        ) -> tuple[int, Any]:
            budget = Budget(self.timeouts)
            try:
                response = session.request(
                    method,
                    url,
                    headers=headers,
                    params=params,
                    data=form,
                    timeout=budget.request_timeout(),
                    verify=self.tls_verify,
                )
            except requests.exceptions.RequestException as exc:
                if budget.limit is not None and budget.spent():
                    raise OutOfTime(
                        f"no answer from the token service of registry {self.where()} within {budget.describe()}"
                    ) from None
                raise RegistryError(
                    f"cannot reach the token service of registry {self.where()}: "
                    f"{self.auth.mask(reason_for(exc, self.timeouts.read))}"
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


def _timed_out(exc: BaseException) -> bool:
    """A read timeout: the connection is open and nothing moves."""
    return any(isinstance(e, (requests.exceptions.ReadTimeout, ReadTimeoutError, TimeoutError)) for e in _chain(exc))


def reason_for(exc: BaseException, silence: float | None = None, setting: str | None = None) -> str:
    """A short, credential-free reason for a connection failure (``silence``: the read timeout that
    applied, ``setting``: where it comes from)."""
    if _timed_out(exc) and not _cannot_connect(exc):
        seconds = f"{silence:g} s" if silence is not None else "the read timeout"
        return f"no data moved for {seconds} ({setting or f'read timeout: registry.read_timeout or {READ_ENV}'})"
    for nested in _chain(exc):
        if isinstance(nested, NameResolutionError):
            return "unknown host"
        if isinstance(nested, OSError) and nested.strerror:
            return nested.strerror.lower()
    name = exc.__class__.__name__
    return {
        "ConnectTimeout": "connection timed out",
        "ChunkedEncodingError": "the connection was dropped mid-response",
    }.get(name, "the connection was dropped" if "Connection" in name else name)
