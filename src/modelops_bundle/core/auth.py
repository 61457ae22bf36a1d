"""Registry credentials and the distribution-spec auth flows (Basic and Bearer token).

Where credentials come from, most explicit first: ``REGISTRY_USERNAME``/``REGISTRY_PASSWORD``, then the
environment file's ``registry.username``/``password``, then docker's ``config.json`` (``credHelpers``,
inline ``auths``, ``credsStore``), else anonymous. Explicit settings win over the ambient docker login
so that a CI job's variables are never shadowed by a developer's stored login.

Secrets never leave this module in text: :class:`Credentials` masks its repr, and every message the
HTTP layer builds passes through :meth:`Authenticator.mask` (passwords, refresh and access tokens, and
the base64 ``user:pass`` form).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops_bundle.core.errors import ConfigError, RegistryError

log = logging.getLogger("modelops_bundle.registry.auth")

MASK = "********"
#: docker's convention: a helper answering this user name returned a refresh (identity) token.
TOKEN_USERNAME = "<token>"
HELPER_TIMEOUT = 30.0
_HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True, repr=False)
class Credentials:
    """What to authenticate with, and where it came from (``source`` is safe to show)."""

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    source: str = "no credentials"
    notes: tuple[str, ...] = ()  # why a configured source gave nothing (e.g. a missing helper)

    def __repr__(self) -> str:
        kind = "token" if self.identity_token else "password" if self.password else "none"
        return f"Credentials(source={self.source!r}, secret={kind}:{MASK if kind != 'none' else '-'})"

    __str__ = __repr__

    @property
    def anonymous(self) -> bool:
        return not (self.identity_token or (self.username and self.password is not None))

    def basic_value(self) -> str | None:
        """The base64 ``user:pass`` for ``Authorization: Basic``, if there is a password."""
        if self.username is None or self.password is None:
            return None
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")

    def secrets(self) -> list[str]:
        values = [self.password, self.identity_token, self.basic_value()]
        return [v for v in values if v and len(v) >= 3]

    def describe(self) -> str:
        """Where the credentials came from, plus any note on a source that failed (never a secret)."""
        extra = f" ({'; '.join(self.notes)})" if self.notes else ""
        return f"{self.source}{extra}"


# ------------------------------------------------------------------------------------------ discovery


def normalize_host(server: str) -> str:
    """docker's key normalisation: drop the scheme and any path (``https://host:5000/v1/`` -> ``host:5000``)."""
    text = server.strip()
    for prefix in ("https://", "http://"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
    return text.split("/", 1)[0].lower()


def docker_config_path(environ: Mapping[str, str]) -> Path:
    folder = environ.get("DOCKER_CONFIG")
    if folder:
        return Path(folder).expanduser() / "config.json"
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker" / "config.json"


def resolve_credentials(
    host: str,
    environ: Mapping[str, str],
    *,
    username: str | None = None,
    password: str | None = None,
) -> Credentials:
    """Credentials for registry ``host`` (``host[:port]``), most explicit source first."""
    env_user, env_password = environ.get("REGISTRY_USERNAME"), environ.get("REGISTRY_PASSWORD")
    if env_user and env_password is not None:
        return Credentials(env_user, env_password, source="REGISTRY_USERNAME/REGISTRY_PASSWORD")
    if username and password is not None:
        return Credentials(username, password, source="the environment file (registry.username/password)")
    return docker_credentials(host, environ)


def docker_credentials(host: str, environ: Mapping[str, str]) -> Credentials:
    """Credentials from docker's ``config.json`` for ``host``; anonymous when it has none."""
    path = docker_config_path(environ)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Credentials()
    except OSError as exc:
        return Credentials(notes=(f"cannot read {path}: {exc.strerror or exc}",))
    except UnicodeDecodeError as exc:  # tests/reliability: binary garbage here was an "unexpected error"
        raise ConfigError(f"{path} is not valid JSON (not UTF-8 text, byte {exc.start})") from None
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON (line {getattr(exc, 'lineno', '?')})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} is not a docker config (expected a JSON object)")
    wanted = _aliases(normalize_host(host))
    helpers = config.get("credHelpers") or {}
    auths = config.get("auths") or {}
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if normalize_host(key) in wanted and isinstance(helper, str):
                return run_credential_helper(helper, host, environ, origin=f"{path} credHelpers")
    if isinstance(auths, dict):
        for key, entry in auths.items():
            if normalize_host(key) not in wanted or not isinstance(entry, dict):
                continue
            found = _from_auth_entry(entry, f"{path} auths")
            if found is not None:
                return found
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        return run_credential_helper(store, host, environ, origin=f"{path} credsStore")
    return Credentials()


_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def _aliases(host: str) -> frozenset[str]:
    """Docker Hub is stored under ``https://index.docker.io/v1/`` but served from ``registry-1.docker.io``."""
    return _DOCKER_HUB if host in _DOCKER_HUB else frozenset({host})


def _from_auth_entry(entry: Mapping[str, Any], origin: str) -> Credentials | None:
    token = entry.get("identitytoken")
    encoded = entry.get("auth")
    user, password = entry.get("username"), entry.get("password")
    if isinstance(encoded, str) and encoded:
        try:
            user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise ConfigError(f"{origin}: the 'auth' value is not base64 'user:password'") from None
    if isinstance(token, str) and token:
        return Credentials(username=user if isinstance(user, str) else None, identity_token=token, source=origin)
    if isinstance(user, str) and user and isinstance(password, str):
        return Credentials(user, password, source=origin)
    return None


def run_credential_helper(name: str, host: str, environ: Mapping[str, str], *, origin: str) -> Credentials:
    """Ask ``docker-credential-<name> get`` for ``host``. A missing or failing helper means anonymous,
    with a note for the error message if the registry then demands credentials."""
    if not _HELPER_NAME.match(name):
        raise ConfigError(f"{origin}: invalid credential helper name {name!r}")
    binary = f"docker-credential-{name}"
    source = f"credential helper {binary} ({origin})"
    try:
        completed = subprocess.run(
            [binary, "get"],
            input=normalize_host(host).encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            env=dict(environ),
            check=False,
        )
    except FileNotFoundError:
        return Credentials(notes=(f"{binary} is not installed",))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Credentials(notes=(f"{binary} failed: {exc.__class__.__name__}",))
    if completed.returncode != 0:
        # stderr is not shown: helpers may echo what they were given.
        return Credentials(notes=(f"{binary} found no credentials (exit {completed.returncode})",))
    try:
        payload = json.loads(completed.stdout)
        user, secret = payload["Username"], payload["Secret"]
    except (ValueError, KeyError, TypeError):
        return Credentials(notes=(f"{binary} printed something that is not credentials JSON",))
    if not isinstance(user, str) or not isinstance(secret, str) or not secret:
        return Credentials(notes=(f"{binary} returned empty credentials",))
    if user == TOKEN_USERNAME:
        return Credentials(identity_token=secret, source=source)
    return Credentials(user, secret, source=source)


# ---------------------------------------------------------------------------------------- challenges


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: ``scheme`` (lower case) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse the first challenge of a ``WWW-Authenticate`` header (registries send one)."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if not match or match.end() == position:
            break
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare or ""
        params[match.group(1).lower()] = value
        position = match.end()
    return Challenge(scheme.lower(), params)


# ------------------------------------------------------------------------------------------- tokens

#: ``fetch(method, url, headers, params, form) -> (status, json or None)``: the HTTP layer's request,
#: so this module stays free of network code and uses the caller's session and TLS settings.
TokenFetch = Callable[[str, str, dict[str, str], dict[str, str], dict[str, str] | None], tuple[int, Any]]

#: Tokens without ``expires_in`` live 60 s by the token spec; renew a little early.
DEFAULT_TOKEN_LIFETIME = 60.0
EXPIRY_MARGIN = 10.0


@dataclass
class _Token:
    value: str
    expires: float


class Authenticator:
    """Answers registry challenges for one host; shared by all worker threads (internally locked).

    Learns the scheme from the first challenge (``learn``), then returns the header for a scope
    (``header``): Basic straight from the credentials, or a Bearer token fetched from the realm once per
    scope and cached until shortly before it expires. ``invalidate`` drops a token the registry refused,
    so a long transfer re-authenticates when its token expires.
    """

    def __init__(self, host: str, credentials: Credentials, *, realm_allowed: Callable[[str], str | None]) -> None:
        self.host = host
        self.credentials = credentials
        self._realm_allowed = realm_allowed
        self._challenge: Challenge | None = None
        self._tokens: dict[str, _Token] = {}
        self._issued: set[str] = set()
        self._scope_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Authenticator(host={self.host!r}, credentials={self.credentials!r})"

    @property
    def scheme(self) -> str | None:
        return self._challenge.scheme if self._challenge else None

    def learn(self, header: str | None) -> Challenge | None:
        challenge = parse_challenge(header)
        if challenge is not None:
            with self._lock:
                self._challenge = challenge
        return challenge

    def mask(self, text: str) -> str:
        """``text`` with every known secret (credentials and issued tokens) replaced by ``********``."""
        with self._lock:
            secrets = [*self.credentials.secrets(), *self._issued]
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def invalidate(self, scope: str, refused: Mapping[str, str]) -> None:
        """Forget the token for ``scope`` if it is the one the registry just refused (another thread
        may already have fetched a fresh one)."""
        with self._lock:
            token = self._tokens.get(scope)
            if token is not None and refused.get("Authorization") == f"Bearer {token.value}":
                del self._tokens[scope]

    def header(self, scope: str, fetch: TokenFetch) -> dict[str, str]:
        """The ``Authorization`` header for ``scope`` under the learnt scheme ({} when none is needed)."""
        challenge = self._challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            value = self.credentials.basic_value()
            if value is None:
                raise self.missing_credentials()
            return {"Authorization": f"Basic {value}"}
        if challenge.scheme != "bearer":
            raise RegistryError(f"registry {self.host} asks for unsupported authentication {challenge.scheme!r}")
        with self._lock:
            scope_lock = self._scope_locks.setdefault(scope, threading.Lock())
        with scope_lock:  # one fetch per scope, however many workers ask at once
            with self._lock:
                token = self._tokens.get(scope)
            if token is None or token.expires <= time.monotonic():
                token = self._fetch_token(challenge, scope, fetch)
                with self._lock:
                    self._tokens[scope] = token
                    self._issued.add(token.value)
        return {"Authorization": f"Bearer {token.value}"}

    def missing_credentials(self) -> RegistryError:
        return RegistryError(
            f"registry {self.host} requires authentication and no credentials were found"
            + (f" ({'; '.join(self.credentials.notes)})" if self.credentials.notes else ""),
            hint="set REGISTRY_USERNAME and REGISTRY_PASSWORD, add registry.username/password to the "
            "environment file, or log in with docker",
        )

    def rejected(self) -> RegistryError:
        if self.credentials.anonymous:
            return self.missing_credentials()
        return RegistryError(
            f"authentication to registry {self.host} failed: the credentials from "
            f"{self.credentials.describe()} were rejected",
            hint="check the user name and password (or run docker login again)",
        )

    def _fetch_token(self, challenge: Challenge, scope: str, fetch: TokenFetch) -> _Token:
        realm = challenge.realm
        if not realm:
            raise RegistryError(f"registry {self.host} sent a Bearer challenge without a realm")
        refusal = self._realm_allowed(realm)
        if refusal:
            raise RegistryError(refusal)
        service = challenge.params.get("service")
        params = {"scope": scope} if scope else {}
        if service:
            params["service"] = service
        creds = self.credentials
        headers = {"Accept": "application/json"}
        if creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "modelops-bundle",
                **params,
            }
            status, body = fetch("POST", realm, headers, {}, form)
        else:
            basic = creds.basic_value()
            if basic is not None:
                headers["Authorization"] = f"Basic {basic}"
            status, body = fetch("GET", realm, headers, params, None)
            if status in (404, 405) and creds.username and creds.password is not None:
                # Some token servers implement only the OAuth2 POST endpoint.
                form = {
                    "grant_type": "password",
                    "username": creds.username,
                    "password": creds.password,
                    "client_id": "modelops-bundle",
                    **params,
                }
                status, body = fetch("POST", realm, {"Accept": "application/json"}, {}, form)
        if status in (401, 403):
            raise self.rejected()
        if status != 200 or not isinstance(body, dict):
            raise RegistryError(f"token service of registry {self.host} answered HTTP {status}")
        value = body.get("token") or body.get("access_token")
        if not isinstance(value, str) or not value:
            raise RegistryError(f"token service of registry {self.host} returned no token")
        lifetime = body.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, (int, float)) and lifetime > 0 else DEFAULT_TOKEN_LIFETIME
        log.debug("token for %s scope %s, %.0f s", self.host, scope, seconds)
        return _Token(value, time.monotonic() + max(seconds - EXPIRY_MARGIN, seconds / 2))
