"""Backend selection from environment files, references and REGISTRY_URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_bundle.core.environment import EnvironmentConfig, RegistrySettings
from modelops_bundle.core.errors import ConfigError, ExitCode
from modelops_bundle.core.oci_http.hosts import parse_endpoint
from modelops_bundle.core.plugins import build_plugin_host
from modelops_bundle.core.reference import parse_reference
from modelops_bundle.core.registry_select import open_registry, registry_host_display
from modelops_bundle.plugins.registry_distribution import OciDistributionRegistry
from modelops_bundle.plugins.registry_layout import OciLayoutRegistry

ENVIRON = {"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1", "HOME": "/nonexistent"}


def env(**registry: object) -> EnvironmentConfig:
    return EnvironmentConfig(environment="test", registry=RegistrySettings(**registry))  # type: ignore[arg-type]


def test_layout_environment(tmp_path: Path) -> None:
    host = build_plugin_host(ENVIRON)
    layout_env = env(provider="oci-layout", path=str(tmp_path / "reg"))
    backend = open_registry(host, layout_env, parse_reference("proj:v1"), ENVIRON)
    assert isinstance(backend, OciLayoutRegistry) and backend.root == tmp_path / "reg"
    assert registry_host_display(layout_env, parse_reference("proj"), ENVIRON) == f"OCI layout {tmp_path / 'reg'}"
    remote = open_registry(host, layout_env, parse_reference("localhost:5555/proj:v1"), ENVIRON)
    assert isinstance(remote, OciDistributionRegistry) and remote.describe() == "localhost:5555 (plain HTTP)"


def test_http_environments_and_registry_url() -> None:
    host = build_plugin_host(ENVIRON)
    acr = env(provider="acr", login_server="team.azurecr.io/models", username="u", password="p")
    backend = open_registry(host, acr, parse_reference("proj"), ENVIRON)
    assert isinstance(backend, OciDistributionRegistry)
    assert backend.describe() == "team.azurecr.io/models" and backend.endpoint.repository("proj") == "models/proj"
    override = {**ENVIRON, "REGISTRY_URL": "http://localhost:5555", "MODELOPS_BUNDLE_INSECURE": "true"}
    assert open_registry(host, acr, parse_reference("proj"), override).describe() == "localhost:5555 (plain HTTP)"
    assert registry_host_display(acr, parse_reference("proj"), override) == "localhost:5555 (plain HTTP)"
    assert registry_host_display(acr, parse_reference("ghcr.io/o/p"), ENVIRON) == "ghcr.io"


def test_configuration_errors_exit_2() -> None:
    host = build_plugin_host(ENVIRON)
    with pytest.raises(ConfigError, match="unknown registry provider 'harbour'") as caught:
        open_registry(host, env(provider="harbour", login_server="h.example.com"), parse_reference("p"), ENVIRON)
    assert caught.value.exit_code == ExitCode.USAGE and "oci-layout" in (caught.value.hint or "")
    with pytest.raises(ConfigError, match="login_server is missing") as caught:
        open_registry(host, env(provider="docker"), parse_reference("p"), ENVIRON)
    assert caught.value.exit_code == ExitCode.USAGE
    assert registry_host_display(env(provider="docker"), parse_reference("p"), ENVIRON).startswith("unconfigured")


def test_a_third_party_backend_is_chosen_by_name() -> None:
    from modelops_bundle import hookimpl

    class Harbour(OciLayoutRegistry):
        name = "harbour"

    class Plugin:
        @hookimpl
        def mops_registry_backends(self) -> list[type]:
            return [Harbour]

    host = build_plugin_host(ENVIRON, extra_plugins=[("harbour-plugin", Plugin())])
    backend = open_registry(host, env(provider="harbour", path="/tmp/x"), parse_reference("p"), ENVIRON)
    assert isinstance(backend, Harbour)


@pytest.mark.parametrize(
    ("raw", "insecure", "expected"),
    [
        ("127.0.0.1:5000", False, "http://127.0.0.1:5000"),
        ("localhost", False, "http://localhost"),
        ("[::1]:5000", False, "http://[::1]:5000"),
        ("https://localhost:5000", False, "https://localhost:5000"),
        ("registry.example.com", False, "https://registry.example.com"),
        ("registry.example.com:8443/ns/sub", False, "https://registry.example.com:8443"),
        ("registry.example.com", True, "http://registry.example.com"),
        ("ghcr.io", True, "https://ghcr.io"),
    ],
)
def test_endpoints(raw: str, insecure: bool, expected: str) -> None:
    assert parse_endpoint(raw, insecure=insecure).base_url == expected


@pytest.mark.parametrize("raw", ["ftp://x.example.com", "user:pw@host.example.com", "http://", "a b"])
def test_bad_endpoints(raw: str) -> None:
    with pytest.raises(ConfigError):
        parse_endpoint(raw, insecure=False)
