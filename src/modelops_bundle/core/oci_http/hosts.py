"""Which URL a registry is reached at, and when plain HTTP is allowed.

Plain HTTP is used for loopback hosts (a development registry) and when the user opts in with
``registry.insecure: true`` or ``MODELOPS_BUNDLE_INSECURE=true``; an explicit ``http://`` for any other
host without that opt-in is refused before a connection is made, because credentials and bundle bytes
would cross the network unprotected. Well-known cloud registries never get plain HTTP.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.reference import HOST_RE
from modelops_bundle.core.settings import INSECURE_ENV

_CLOUD_SUFFIXES = (".azurecr.io", ".amazonaws.com", ".pkg.dev", "gcr.io", "ghcr.io", "docker.io", "quay.io")


def host_name(host: str) -> str:
    """``host[:port]`` without the port (and without IPv6 brackets)."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    name = host_name(host).lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_cloud_registry(host: str) -> bool:
    name = host_name(host).lower()
    return any(name == suffix.lstrip(".") or name.endswith(suffix) for suffix in _CLOUD_SUFFIXES)


@dataclass(frozen=True)
class Endpoint:
    """A registry's base: ``scheme://host[:port]`` plus an optional repository namespace."""

    scheme: str
    host: str
    namespace: str = ""

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def repository(self, name: str) -> str:
        return f"{self.namespace}/{name}" if self.namespace else name

    def display(self) -> str:
        where = f"{self.host}/{self.namespace}" if self.namespace else self.host
        return where if self.scheme == "https" else f"{where} (plain HTTP)"


def parse_endpoint(raw: str, *, insecure: bool) -> Endpoint:
    """``[http[s]://]host[:port][/namespace]`` -> :class:`Endpoint`, applying the plain-HTTP policy."""
    text = raw.strip().rstrip("/")
    scheme: str | None = None
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ConfigError(f"registry address {raw!r} is not [http[s]://]host[:port][/namespace]")
        scheme, text = parts.scheme, parts.netloc + parts.path.rstrip("/")
    host, _, namespace = text.partition("/")
    if not host or not HOST_RE.match(host) or "@" in text:
        raise ConfigError(f"registry address {raw!r} is not [http[s]://]host[:port][/namespace]")
    host = host.lower()
    loopback = is_loopback(host)
    if scheme is None:
        scheme = "http" if loopback or (insecure and not is_cloud_registry(host)) else "https"
    if scheme == "http" and not loopback:
        if is_cloud_registry(host):
            raise ConfigError(f"refusing plain HTTP to {host}: this registry is only served over HTTPS")
        if not insecure:
            raise ConfigError(
                f"refusing plain HTTP to {host}: only loopback registries may be used without TLS",
                hint=f"use https://, or set registry.insecure: true or {INSECURE_ENV}=true if you mean it",
            )
    return Endpoint(scheme=scheme, host=host, namespace=namespace.strip("/"))


def realm_refusal(realm: str, endpoint: Endpoint) -> str | None:
    """Why a token realm must not be contacted (credentials over plain HTTP off loopback), or ``None``."""
    parts = urlsplit(realm)
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and (is_loopback(parts.netloc) or endpoint.scheme == "http"):
        return None
    return f"refusing to send credentials to the token service {parts.scheme}://{parts.netloc} without TLS"
