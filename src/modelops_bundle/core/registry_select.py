"""Where a version goes -- decided in this one place -- and the registry backend that takes it there.

The registry comes from, in order:

1. ``$REGISTRY_URL`` (``[http[s]://]host[:port][/namespace]``): a per-invocation override, for the
   embedded ``local`` environment too (its layout directory is then replaced by that HTTP registry);
2. the project's pinned ``registry`` in ``config.yaml`` (set only when the user asks:
   ``init --registry``, ``mops bundle config registry HOST``);
3. the project's environment: ``registry.login_server`` of an HTTP registry (docker, acr, ecr, gcr, ghcr),
   the layout directory of ``oci-layout``, or a third-party backend named by ``registry.provider``;

and the repository is the project's (``repository`` in ``config.yaml``, else the folder's name), under
the registry's namespace. A reference that names a host (``--ref host/repo:tag``, ``api.resolve``) goes
to that host. The environment file's credentials are sent only to the environment's own host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from modelops_bundle.core.envfiles import expand_path
from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.reference import Reference
from modelops_bundle.core.secrecy import reveal
from modelops_bundle.core.settings import (
    INSECURE_ENV,
    REGISTRY_URL_ENV,
    Environment,
    is_http_provider,
    split_address,
)

if TYPE_CHECKING:
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.registry import RegistryBackend

LAYOUT = "oci-layout"
DISTRIBUTION = "oci-distribution"


class RegistryTarget(NamedTuple):
    """A registry to read versions from or push them to, and why it was chosen.

    ``address`` is an HTTP registry's ``[scheme://]host[:port][/namespace]``, or the layout folder of
    the ``oci-layout`` backend; ``source`` says which setting won (``env show`` prints it).
    """

    backend: str
    address: str
    source: str
    environment: Environment
    #: Plain HTTP allowed beyond loopback hosts (``registry.insecure`` or ``$MODELOPS_BUNDLE_INSECURE``).
    insecure: bool = False

    @property
    def host(self) -> str:
        """``host[:port]`` of an HTTP registry (lower case); empty for a layout folder."""
        return "" if self.backend == LAYOUT else split_address(self.address)[0]

    def display(self) -> str:
        """Where versions go, for output: a host (with ``(plain HTTP)``) or ``OCI layout PATH``."""
        if self.backend == LAYOUT:
            return f"OCI layout {self.address}"
        if self.backend != DISTRIBUTION:
            return f"{self.address} ({self.backend})" if self.address else self.backend
        from modelops_bundle.core.oci_http.hosts import parse_endpoint

        try:
            return parse_endpoint(self.address, insecure=self.insecure).display()
        except ConfigError:
            return self.address


def resolve_target(
    environment: Environment, environ: Mapping[str, str], *, pinned: str | None = None
) -> RegistryTarget:
    """The registry of a project (``pinned``: its ``config.yaml`` ``registry``) in ``environment``."""
    name = environment.environment
    registry = environment.registry
    insecure = _insecure(environment, environ)
    provider = (registry.provider or "docker").strip().lower()
    url = environ.get(REGISTRY_URL_ENV, "").strip()
    if url:
        backend = DISTRIBUTION if provider == LAYOUT or is_http_provider(provider) else provider
        return RegistryTarget(backend, url, f"${REGISTRY_URL_ENV}", environment, insecure)
    if pinned:
        return RegistryTarget(DISTRIBUTION, pinned, "the project's config.yaml (registry)", environment, insecure)
    source = f"environment {name!r}"
    if provider == LAYOUT:
        if not registry.path:
            raise ConfigError(f"environment {name!r} uses an oci-layout registry without registry.path")
        return RegistryTarget(LAYOUT, str(expand_path(registry.path)), source, environment, insecure)
    if not is_http_provider(provider):  # a third-party backend decides for itself what it needs
        address = registry.login_server or (str(expand_path(registry.path)) if registry.path else "")
        return RegistryTarget(provider, address, source, environment, insecure)
    if not registry.login_server:
        raise ConfigError(
            f"environment {name!r} names no registry: registry.login_server is missing",
            hint=f"add registry.login_server to the environment file, set {REGISTRY_URL_ENV}, "
            "or pin one with 'mops bundle config registry HOST'",
        )
    return RegistryTarget(DISTRIBUTION, registry.login_server, source, environment, insecure)


def reference_target(
    environment: Environment, environ: Mapping[str, str], reference: Reference, *, pinned: str | None = None
) -> RegistryTarget:
    """The registry ``reference`` lives on: the project's (:func:`resolve_target`), unless it names
    another host -- then that host (plain HTTP kept for the target's own host, whose address may say
    ``http://``)."""
    if reference.registry is None:
        return resolve_target(environment, environ, pinned=pinned)
    try:
        own: RegistryTarget | None = resolve_target(environment, environ, pinned=pinned)
    except ConfigError:
        own = None  # the environment names no registry: the reference's host is all there is
    if own is not None and own.backend != LAYOUT and own.host == reference.registry.lower():
        return own
    return RegistryTarget(
        DISTRIBUTION, reference.registry, "the reference", environment, _insecure(environment, environ)
    )


def _insecure(environment: Environment, environ: Mapping[str, str]) -> bool:
    from modelops_bundle.core.flags import env_flag

    return environment.registry.insecure or env_flag(environ, INSECURE_ENV)


def backend_settings(target: RegistryTarget, environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings mapping a backend class is constructed with: the environment's registry options,
    its credentials when the target is the environment's own host, the address."""
    registry = target.environment.registry
    settings: dict[str, Any] = dict(registry.options)
    own_host = split_address(registry.login_server)[0] if registry.login_server else ""
    credentials = target.backend != LAYOUT and target.host == own_host
    settings.update(
        provider=registry.provider,
        insecure=registry.insecure,
        username=registry.username if credentials else None,
        password=reveal(registry.password) if credentials else None,
        environ=environ,
        path=target.address
        if target.backend == LAYOUT
        else (str(expand_path(registry.path)) if registry.path else None),
    )
    if target.backend != LAYOUT:
        settings["url"] = target.address or None
    return settings


def open_reference(
    host: PluginHost, environment: Environment, reference: Reference, environ: Mapping[str, str]
) -> RegistryBackend:
    """The backend ``reference`` lives on, in ``environment`` (outside any project: workers, ``api``)."""
    return open_registry(host, reference_target(environment, environ, reference), environ)


def open_registry(host: PluginHost, target: RegistryTarget, environ: Mapping[str, str]) -> RegistryBackend:
    """Construct the backend of ``target`` (no network traffic yet)."""
    from modelops_bundle.core.settings_files import environment_source

    backends = host.hook.mops_registry_backends()
    cls = backends.get(target.backend)
    if cls is None:
        name = target.environment.environment
        available = ", ".join(sorted(backends)) or "none"
        raise ConfigError(
            f"environment {name!r} ({environment_source(name, environ)}): unknown registry provider "
            f"{target.environment.registry.provider!r} (no backend named {target.backend!r} is installed)",
            hint=f"use one of docker, acr, ecr, gcr, ghcr, oci-layout; installed backends: {available}",
        )
    backend: RegistryBackend = cls(backend_settings(target, environ))
    return backend
