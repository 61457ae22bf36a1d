"""Choose and construct the registry backend for an environment and a reference.

* ``registry.provider: oci-layout`` (the embedded ``local`` environment) -> the ``oci-layout`` backend
  rooted at ``registry.path``, unless the reference names a registry host.
* ``docker | acr | ecr | gcr | ghcr`` (HTTP registries) -> ``oci-distribution`` at the reference's host,
  else ``$REGISTRY_URL``, else ``registry.login_server``. ``REGISTRY_URL`` overrides the environment
  file as the seed README's Development section shows (``REGISTRY_URL=localhost:5555``); an
  ``http://`` or ``https://`` prefix there decides the scheme.
* Any other provider name is looked up among the backends plugins provide, so a third-party backend
  is selected by naming it in the environment file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from modelops_bundle.core.envfiles import SecretValue, expand_path
from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.plugins import PluginHost, collect_named
from modelops_bundle.core.reference import Reference
from modelops_bundle.core.registry import RegistryBackend


class RegistrySection(Protocol):
    """The ``registry:`` section as selection reads it: the validated pydantic model
    (:class:`~.environment.RegistrySettings`) or its light view (:class:`~.envfiles.RegistryView`)."""

    @property
    def provider(self) -> str: ...
    @property
    def login_server(self) -> str | None: ...
    @property
    def path(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> SecretValue | None: ...
    @property
    def insecure(self) -> bool: ...
    @property
    def model_extra(self) -> dict[str, Any] | None: ...


class EnvironmentConfig(Protocol):
    """An environment as selection reads it (the full model or :class:`~.envfiles.EnvironmentView`)."""

    @property
    def environment(self) -> str: ...
    @property
    def registry(self) -> RegistrySection: ...


LAYOUT = "oci-layout"
DISTRIBUTION = "oci-distribution"
#: Environment-file provider names that all mean "an HTTP registry".
HTTP_PROVIDERS = frozenset({"docker", "acr", "ecr", "gcr", "ghcr", "oci", "distribution", DISTRIBUTION})
REGISTRY_URL_ENV = "REGISTRY_URL"


def backend_name(environment: EnvironmentConfig, reference: Reference, environ: Mapping[str, str]) -> str:
    """The backend name this environment and reference select (before checking it is installed)."""
    provider = (environment.registry.provider or "docker").strip().lower()
    if provider == LAYOUT:
        return DISTRIBUTION if reference.registry or environ.get(REGISTRY_URL_ENV) else LAYOUT
    if provider in HTTP_PROVIDERS:
        return DISTRIBUTION
    return provider


def registry_address(environment: EnvironmentConfig, reference: Reference, environ: Mapping[str, str]) -> str:
    """Where an HTTP registry is: the reference's host, ``$REGISTRY_URL``, or ``registry.login_server``."""
    login_server = environment.registry.login_server
    address = reference.registry or environ.get(REGISTRY_URL_ENV, "").strip() or login_server
    if address and login_server and "://" in login_server and address.lower() == _host_of(login_server):
        # The reference names the environment's own host (references carry no scheme): keep its scheme.
        return f"{login_server.split('://', 1)[0]}://{address}"
    if not address:
        raise ConfigError(
            f"environment {environment.environment!r} names no registry: registry.login_server is missing",
            hint=f"add registry.login_server to the environment file, set {REGISTRY_URL_ENV}, "
            "or use a reference with a registry host",
        )
    return address


def backend_settings(
    name: str, environment: EnvironmentConfig, reference: Reference, environ: Mapping[str, str]
) -> dict[str, Any]:
    """The settings dict a backend class is constructed with."""
    registry = environment.registry
    settings: dict[str, Any] = {
        key: value for key, value in (registry.model_extra or {}).items() if isinstance(key, str)
    }
    settings.update(
        provider=registry.provider,
        insecure=registry.insecure,
        username=registry.username,
        password=registry.password.get_secret_value() if registry.password is not None else None,
        environ=environ,
    )
    if name == LAYOUT and not registry.path:
        raise ConfigError(f"environment {environment.environment!r} uses an oci-layout registry without registry.path")
    settings["path"] = str(expand_path(registry.path)) if registry.path else None
    if name == DISTRIBUTION:
        settings["url"] = registry_address(environment, reference, environ)
    elif name != LAYOUT:  # a third-party backend decides for itself what it needs
        settings["url"] = reference.registry or environ.get(REGISTRY_URL_ENV) or registry.login_server
    if reference.registry:
        # Credentials in the environment file belong to its own registry, not to another host.
        own = (environ.get(REGISTRY_URL_ENV) or registry.login_server or "").strip()
        if not own or _host_of(own) != _host_of(reference.registry):
            settings["username"] = settings["password"] = None
    return settings


def open_registry(
    host: PluginHost, environment: EnvironmentConfig, reference: Reference, environ: Mapping[str, str]
) -> RegistryBackend:
    """Construct the backend for ``reference`` in ``environment`` (no network traffic yet)."""
    name = backend_name(environment, reference, environ)
    backends = collect_named(host, "mops_registry_backends")
    cls = backends.get(name)
    if cls is None:
        available = ", ".join(sorted(backends)) or "none"
        raise ConfigError(
            f"environment {environment.environment!r}: unknown registry provider "
            f"{environment.registry.provider!r} (no backend named {name!r} is installed)",
            hint=f"use one of docker, acr, ecr, gcr, ghcr, oci-layout; installed backends: {available}",
        )
    backend: RegistryBackend = cls(backend_settings(name, environment, reference, environ))
    return backend


def registry_host_display(environment: EnvironmentConfig, reference: Reference, environ: Mapping[str, str]) -> str:
    """Where pushes and pulls go, for status output: a host (with ``(plain HTTP)``) or a layout path.

    Never raises and never contacts anything; a configuration problem shows as ``unconfigured (...)``.
    """
    from modelops_bundle.core.oci_http.hosts import INSECURE_ENV, env_flag, parse_endpoint

    try:
        name = backend_name(environment, reference, environ)
        if name == LAYOUT:
            return f"OCI layout {expand_path(environment.registry.path or '')}"
        address = registry_address(environment, reference, environ)
        if name != DISTRIBUTION:
            return f"{address} ({name})"
        insecure = environment.registry.insecure or env_flag(environ, INSECURE_ENV)
        return parse_endpoint(address, insecure=insecure).display()
    except ConfigError as exc:
        return f"unconfigured ({exc.message})"


def _host_of(address: str) -> str:
    text = address.split("://", 1)[-1]
    return text.split("/", 1)[0].lower()
