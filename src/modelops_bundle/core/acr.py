"""Azure Container Registry login through the Azure CLI, for people and CI jobs without docker.

``az acr login --name NAME --expose-token --output json`` prints ``{"accessToken": ..., "loginServer":
...}`` without touching docker; the "access token" is an ACR *refresh* token, exchanged at the
registry's own OAuth2 token service for access tokens per repository scope (``core/auth.py``: the
``refresh_token`` grant, or ``GET`` with the null-GUID user name where the POST is missing).

It is asked only for a registry that challenges and for which nothing else matched
(``REGISTRY_USERNAME``, the environment file, docker's ``config.json``): a ``*.azurecr.io`` host, or any
host whose environment says ``provider: acr`` (then ``registry.acr_name`` names the registry when its
host does not start with the name). The refresh token is used only with a token service on the same
host name, and only when ``az`` says it is for this registry (``loginServer``). It is kept in this
process's memory until shortly before it expires, so a worker that opens many versions runs ``az``
once; it is never written anywhere.

``az`` missing, failing or slow is not an error by itself: the registry may still allow anonymous
access. Its stderr is summarised in one line into the "no credentials were found" error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from typing import Any

from modelops_bundle.core import deadline
from modelops_bundle.core.auth import NULL_GUID_USER, Credentials, jwt_lifetime, normalize_host
from modelops_bundle.core.oci_http.hosts import host_name

AZ_TIMEOUT_ENV = "MOPS_AZ_TIMEOUT"
DEFAULT_AZ_TIMEOUT = 60.0
ACR_SUFFIX = ".azurecr.io"
#: A refresh token whose expiry cannot be read is reused this long (az's own last about three hours).
DEFAULT_REFRESH_LIFETIME = 30 * 60.0
_SUMMARY_LIMIT = 240

_cache: dict[tuple[str, str], tuple[Credentials, float]] = {}
_cache_lock = threading.Lock()


def is_acr_host(host: str) -> bool:
    return host_name(normalize_host(host)).endswith(ACR_SUFFIX)


def registry_name(host: str, settings: Mapping[str, Any]) -> str:
    """The name ``az acr login --name`` wants: ``registry.acr_name``, else the host's first label."""
    configured = settings.get("acr_name")
    if isinstance(configured, str) and configured.strip():
        return configured.strip()
    return normalize_host(host).split(".", 1)[0].split(":", 1)[0]


def azure_cli_login(host: str, settings: Mapping[str, Any], environ: Mapping[str, str]) -> AzureCliLogin | None:
    """The Azure CLI login for ``host`` when it is an ACR (by name or ``provider: acr``), else ``None``."""
    provider = str(settings.get("provider") or "").strip().lower()
    if not (is_acr_host(host) or provider == "acr"):
        return None
    timeout = deadline.seconds_setting(
        environ, AZ_TIMEOUT_ENV, DEFAULT_AZ_TIMEOUT, value=settings.get("az_timeout"), key="registry.az_timeout"
    )
    return AzureCliLogin(host, registry_name(host, settings), environ, timeout)


def forget_logins() -> None:
    """Drop every refresh token kept in memory (tests; a long-lived process after ``az logout``)."""
    with _cache_lock:
        _cache.clear()


class AzureCliLogin:
    """``login(renew)`` for :class:`~modelops_bundle.core.auth.Authenticator`: credentials from ``az``."""

    def __init__(self, host: str, name: str, environ: Mapping[str, str], timeout: float) -> None:
        self.host = normalize_host(host)
        self.name = name
        self.environ = dict(environ)
        self.timeout = timeout

    @property
    def command(self) -> str:
        return f"az acr login --name {self.name}"

    def hint(self) -> str:
        if shutil.which("az", path=self.environ.get("PATH")) is None:
            return (
                f"install the Azure CLI and sign in with 'az login' ('{self.command} --expose-token' is then "
                "run for you)"
            )
        return f"sign in to Azure with 'az login' (the Azure CLI runs '{self.command} --expose-token')"

    def __call__(self, renew: bool) -> Credentials:
        key = (self.host, self.name)
        with _cache_lock:  # one az run at a time in this process
            cached = _cache.get(key)
            if cached is not None and not renew and cached[1] > time.monotonic():
                return cached[0]
            found, lifetime = self._run()
            if not found.anonymous:
                _cache[key] = (found, time.monotonic() + lifetime)
            else:
                _cache.pop(key, None)
            return found

    def _run(self) -> tuple[Credentials, float]:
        az = shutil.which("az", path=self.environ.get("PATH"))
        if az is None:
            return _nothing("the Azure CLI (az) is not on PATH"), 0.0
        timeout = self.timeout
        limit = deadline.current()
        if limit is not None:
            timeout = max(0.1, min(timeout, limit.remaining()))
        argv = [az, "acr", "login", "--name", self.name, "--expose-token", "--output", "json"]
        try:
            done = subprocess.run(
                argv, capture_output=True, timeout=timeout, env=self.environ, stdin=subprocess.DEVNULL, check=False
            )
        except subprocess.TimeoutExpired:
            return _nothing(f"'{self.command}' did not finish within {timeout:g} s ({AZ_TIMEOUT_ENV})"), 0.0
        except OSError as exc:
            return _nothing(f"az could not be run: {exc.strerror or exc}"), 0.0
        if done.returncode != 0:
            return _nothing(f"'{self.command}' failed: {summarise(done.stderr, done.returncode)}"), 0.0
        try:
            payload = json.loads(done.stdout)
            token, server = payload["accessToken"], payload.get("loginServer")
        except (ValueError, KeyError, TypeError):
            return _nothing(f"'{self.command}' printed no token (expected JSON with accessToken)"), 0.0
        if not isinstance(token, str) or not token:
            return _nothing(f"'{self.command}' printed an empty token"), 0.0
        if isinstance(server, str) and server and normalize_host(server) != self.host:
            return _nothing(
                f"'{self.command}' gave a token for {normalize_host(server)}, not {self.host} "
                "(set registry.acr_name in the environment file)"
            ), 0.0
        credentials = Credentials(
            username=NULL_GUID_USER,
            identity_token=token,
            source=f"the Azure CLI ({self.command})",
            realm_host=host_name(self.host),
            hint=f"run 'az login' again, and check that your account may use registry {self.name} ('{self.command}')",
        )
        return credentials, _refresh_lifetime(token)


def _nothing(note: str) -> Credentials:
    return Credentials(notes=(note,))


def summarise(stderr: bytes, returncode: int) -> str:
    """One line from ``az``'s stderr: its ``ERROR:`` line if there is one, else the last line."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.upper().startswith("ERROR")]
    if errors:
        text = errors[0].split(":", 1)[1].strip() if ":" in errors[0] else errors[0]
    elif lines:
        text = lines[-1]
    else:
        return f"exit {returncode}"
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    if len(text) > _SUMMARY_LIMIT:
        text = text[: _SUMMARY_LIMIT - 3] + "..."
    return f"{text} (exit {returncode})"


def _refresh_lifetime(token: str) -> float:
    """How long to reuse a refresh token: until a minute before its JWT ``exp``, if it has one."""
    left = jwt_lifetime(token)
    return DEFAULT_REFRESH_LIFETIME if left is None else max(0.0, left - 60.0)
