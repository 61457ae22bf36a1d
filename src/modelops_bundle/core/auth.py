"""Registry credentials and the distribution-spec auth flows (Basic and Bearer token).

Where credentials come from, most explicit first: ``REGISTRY_USERNAME``/``REGISTRY_PASSWORD``, then the
environment file's ``registry.username``/``password``, then docker's ``config.json`` (``credHelpers``,
inline ``auths`` with a password or an OAuth2 ``identitytoken``, ``credsStore``), else anonymous --
and, for an Azure Container Registry that asks for credentials when none of those had any, the Azure
CLI (``core/acr.py``, a *login* the :class:`Authenticator` runs on the first challenge). Explicit
settings win over the ambient docker login so that a CI job's variables are never shadowed by a
developer's stored login.

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
#: The user name that goes with a refresh token where a token service wants one (ACR, docker login).
NULL_GUID_USER = "00000000-0000-0000-0000-000000000000"
HELPER_TIMEOUT = 30.0
_HELPER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True, repr=False)
class Credentials:
    """What to authenticate with, and where it came from (``source`` is safe to show)."""

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    source: str = "no credentials"
    notes: tuple[str, ...] = ()  # what was looked at and gave nothing (e.g. a missing helper)
    #: Only send these to a token service on this host name (a refresh token from the Azure CLI).
    realm_host: str | None = None
    #: What to do when the registry rejects them (``None``: check the user name and password).
    hint: str | None = None

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

    def token_basic_value(self) -> str | None:
        """The base64 ``user:refresh-token`` some token services take instead of the OAuth2 POST (ACR
        with the null-GUID user name)."""
        if not self.identity_token:
            return None
        user = self.username or NULL_GUID_USER
        return base64.b64encode(f"{user}:{self.identity_token}".encode()).decode("ascii")

    def secrets(self) -> list[str]:
        values = [self.password, self.identity_token, self.basic_value(), self.token_basic_value()]
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
    found = docker_credentials(host, environ)
    if not found.anonymous:
        return found
    # Nothing matched: say what was looked at, for the error if the registry then asks for credentials.
    looked = ("REGISTRY_USERNAME/REGISTRY_PASSWORD not set", "no registry.username/password in the environment file")
    return Credentials(notes=(*looked, *found.notes))


def docker_credentials(host: str, environ: Mapping[str, str]) -> Credentials:
    """Credentials from docker's ``config.json`` for ``host``; anonymous when it has none.

    The whole file is checked, as docker itself does when it loads it: a file of the wrong shape (``auths``
    not an object, an ``auth`` value that is not base64 ``user:password``, a folder where the file should
    be) is a :class:`ConfigError` naming it, never a silent "no credentials" (issue 15, item 16).
    """
    path = docker_config_path(environ)
    config = _read_docker_config(path)
    if config is None:
        return Credentials(notes=(f"no docker login for {normalize_host(host)} in {path}",))
    helpers = _mapping(config, "credHelpers", path)
    auths = _mapping(config, "auths", path)
    entries: dict[str, Credentials | None] = {}
    for key, entry in auths.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: auths entry {key!r} is not an object")
        entries[key] = _from_auth_entry(entry, f"{path} auths", key)
    for key, helper in helpers.items():
        if not isinstance(helper, str) or not _HELPER_NAME.match(helper):
            raise ConfigError(f"{path}: credHelpers entry {key!r} is not a credential helper name")
    store = config.get("credsStore")
    if store is not None and not isinstance(store, str):
        raise ConfigError(f"{path}: credsStore is not a credential helper name")
    wanted = _aliases(normalize_host(host))
    for key, helper in helpers.items():
        if normalize_host(key) in wanted:
            return run_credential_helper(helper, host, environ, origin=f"{path} credHelpers")
    for key, found in entries.items():
        if normalize_host(key) in wanted and found is not None:
            return found
    if store:
        return run_credential_helper(store, host, environ, origin=f"{path} credsStore")
    return Credentials(notes=(f"no docker login for {normalize_host(host)} in {path}",))


def _read_docker_config(path: Path) -> dict[str, Any] | None:
    """The parsed ``config.json``; ``None`` when there is none. Anything else wrong names the file."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(
            f"{path} is a folder, not docker's config.json", hint="remove it, or set DOCKER_CONFIG to another folder"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read docker's config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:  # tests/reliability: binary garbage here was an "unexpected error"
        raise ConfigError(f"{path} is not valid JSON (not UTF-8 text, byte {exc.start})") from None
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON (line {getattr(exc, 'lineno', '?')})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} is not a docker config (expected a JSON object)")
    return config


def _mapping(config: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f'{path}: {key!r} is not an object (docker expects {{"host": ...}})')
    return value


_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def _aliases(host: str) -> frozenset[str]:
    """Docker Hub is stored under ``https://index.docker.io/v1/`` but served from ``registry-1.docker.io``."""
    return _DOCKER_HUB if host in _DOCKER_HUB else frozenset({host})


def _from_auth_entry(entry: Mapping[str, Any], origin: str, key: str) -> Credentials | None:
    token = entry.get("identitytoken")
    encoded = entry.get("auth")
    user, password = entry.get("username"), entry.get("password")
    if encoded is not None and not isinstance(encoded, str):
        raise ConfigError(f"{origin} {key!r}: the 'auth' value is not base64 'user:password'")
    if encoded:
        try:
            decoded = base64.b64decode(encoded).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            decoded = ""
        if ":" not in decoded:  # docker refuses the file too ("invalid auth configuration file")
            raise ConfigError(f"{origin} {key!r}: the 'auth' value is not base64 'user:password'")
        user, _, password = decoded.partition(":")
    if token is not None and not isinstance(token, str):
        raise ConfigError(f"{origin} {key!r}: 'identitytoken' is not a string")
    if token:
        # docker writes these for OAuth2 registries (ACR: `az acr login`): a refresh token, exchanged
        # at the registry's token service for access tokens.
        return Credentials(
            username=user if isinstance(user, str) and user else None,
            identity_token=token,
            source=f"{origin} (identity token)",
        )
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

#: Tokens without ``expires_in`` (nor a JWT ``exp``) live 60 s by the token spec; renew a little early.
DEFAULT_TOKEN_LIFETIME = 60.0
EXPIRY_MARGIN = 10.0

#: ``login(renew)``: credentials from a source the Authenticator asks only when the registry challenges
#: and nothing else matched (the Azure CLI); ``renew`` after the registry refused what it gave last time.
Login = Callable[[bool], Credentials]


class CredentialsRejected(RegistryError):
    """The registry (or its token service) refused the credentials."""


@dataclass
class _Token:
    value: str
    expires: float


class Authenticator:
    """Answers registry challenges for one host; shared by all worker threads (internally locked).

    Learns the scheme from the first challenge (``learn``), then returns the header for a scope
    (``header``): Basic straight from the credentials, or a Bearer token fetched from the realm once per
    scope and cached in memory until shortly before it expires. ``invalidate`` drops a token the registry
    refused, so a long transfer re-authenticates when its token expires. Without credentials, the first
    challenge runs ``login`` (if any) once; a refresh token it gave that the token service refuses is
    renewed once.
    """

    def __init__(
        self,
        host: str,
        credentials: Credentials,
        *,
        realm_allowed: Callable[[str], str | None],
        login: Login | None = None,
        login_hint: str | None = None,
    ) -> None:
        self.host = host
        self.credentials = credentials
        self._realm_allowed = realm_allowed
        self._login = login
        self._login_hint = login_hint
        self._logged_in = False  # credentials came from ``login``
        self._login_tried = False
        self._renewed = False
        self._login_lock = threading.Lock()
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
                first = self._challenge is None
                self._challenge = challenge
            if first:
                self._settle_credentials()
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
                try:
                    token = self._fetch_token(challenge, scope, fetch)
                except CredentialsRejected:
                    if not self._renew_login():
                        raise
                    token = self._fetch_token(challenge, scope, fetch)
                with self._lock:
                    self._tokens[scope] = token
                    self._issued.add(token.value)
        return {"Authorization": f"Bearer {token.value}"}

    # ------------------------------------------------------------------------------- credentials

    def _settle_credentials(self) -> None:
        """On the first challenge: without credentials, ask the login (once); say which source is used."""
        with self._login_lock:
            if self.credentials.anonymous and self._login is not None and not self._login_tried:
                self._login_tried = True
                found = self._login(False)
                if found.anonymous:
                    self.credentials = Credentials(notes=(*self.credentials.notes, *found.notes))
                else:
                    self.credentials, self._logged_in = found, True
        if self.credentials.anonymous:
            log.info("registry %s asks for credentials; none found (%s)", self.host, "; ".join(self.credentials.notes))
        else:
            log.info("registry %s: using credentials from %s", self.host, self.credentials.source)

    def _renew_login(self) -> bool:
        """The token service refused what the login gave: ask it again, once (an expired session)."""
        with self._login_lock:
            if not self._logged_in or self._login is None or self._renewed:
                return False
            self._renewed = True
            found = self._login(True)
            if found.anonymous:
                return False
            with self._lock:
                self.credentials = found
        log.info("registry %s: renewed credentials from %s", self.host, found.source)
        return True

    def missing_credentials(self) -> RegistryError:
        tried = "; ".join(self.credentials.notes)
        hint = (
            "set REGISTRY_USERNAME and REGISTRY_PASSWORD, add registry.username/password to the "
            "environment file, or log in with docker"
        )
        if self._login_hint:
            hint = f"{self._login_hint}; or {hint}"
        return RegistryError(
            f"registry {self.host} requires authentication and no credentials were found"
            + (f" (tried: {tried})" if tried else ""),
            hint=hint,
        )

    def rejected(self) -> RegistryError:
        if self.credentials.anonymous:
            return self.missing_credentials()
        return CredentialsRejected(
            f"authentication to registry {self.host} failed: the credentials from "
            f"{self.credentials.describe()} were rejected",
            hint=self.credentials.hint or "check the user name and password (or run docker login again)",
        )

    # ------------------------------------------------------------------------------------ tokens

    def _fetch_token(self, challenge: Challenge, scope: str, fetch: TokenFetch) -> _Token:
        realm = challenge.realm
        if not realm:
            raise RegistryError(f"registry {self.host} sent a Bearer challenge without a realm")
        refusal = self._realm_allowed(realm)
        if refusal:
            raise RegistryError(refusal)
        creds = self.credentials
        if creds.realm_host and _realm_host(realm) != creds.realm_host:
            raise RegistryError(
                f"refusing to send the credentials from {creds.source} to the token service {_realm_origin(realm)} "
                f"of registry {self.host}: it is not on {creds.realm_host}"
            )
        service = challenge.params.get("service")
        params = {"scope": scope} if scope else {}
        if service:
            params["service"] = service
        headers = {"Accept": "application/json"}
        if creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": "modelops-bundle",
                **params,
            }
            status, body = fetch("POST", realm, headers, {}, form)
            if status in (404, 405):
                # A token service without the OAuth2 POST endpoint: the refresh token as a password of
                # the null-GUID user, as `docker login -u 00000000-... -p <token>` sends it.
                basic = {"Authorization": f"Basic {creds.token_basic_value()}"}
                status, body = fetch("GET", realm, {**headers, **basic}, params, None)
        else:
            basic_value = creds.basic_value()
            if basic_value is not None:
                headers["Authorization"] = f"Basic {basic_value}"
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
        seconds = (
            float(lifetime)
            if isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool) and lifetime > 0
            else jwt_lifetime(value) or DEFAULT_TOKEN_LIFETIME
        )
        log.debug("token for %s scope %s, valid %.0f s", self.host, scope, seconds)
        return _Token(value, time.monotonic() + max(seconds - EXPIRY_MARGIN, seconds / 2))


def jwt_lifetime(token: str) -> float | None:
    """Seconds until a JWT's ``exp`` claim (ACR's access tokens carry no ``expires_in``), if it has one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    expires = payload.get("exp") if isinstance(payload, dict) else None
    if not isinstance(expires, (int, float)) or isinstance(expires, bool):
        return None
    left = float(expires) - time.time()
    return left if left > 0 else None


def _realm_host(realm: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(realm).hostname or "").lower()


def _realm_origin(realm: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(realm)
    return f"{parts.scheme}://{parts.netloc}"
