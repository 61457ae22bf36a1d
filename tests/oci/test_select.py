"""Backend selection from environment files, references and REGISTRY_URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_bundle.core.errors import ConfigError, ExitCode
from modelops_bundle.core.oci_http.hosts import parse_endpoint
from modelops_bundle.core.plugins import build_plugin_host
from modelops_bundle.core.reference import parse_reference
from modelops_bundle.core.registry_select import (
    DISTRIBUTION,
    LAYOUT,
    backend_settings,
    open_reference,
    open_registry,
    reference_target,
    resolve_target,
)
from modelops_bundle.core.secrecy import Secret
from modelops_bundle.core.settings import Environment, RegistrySection
from modelops_bundle.plugins.registry_distribution import OciDistributionRegistry
from modelops_bundle.plugins.registry_layout import OciLayoutRegistry

ENVIRON = {"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1", "HOME": "/nonexistent"}


def env(**registry: object) -> Environment:
    return Environment(environment="test", registry=RegistrySection(**registry))  # type: ignore[arg-type]


def test_layout_environment(tmp_path: Path) -> None:
    host = build_plugin_host(ENVIRON)
    layout_env = env(provider="oci-layout", path=str(tmp_path / "reg"))
    target = resolve_target(layout_env, ENVIRON)
    assert (target.backend, target.address, target.source) == (LAYOUT, str(tmp_path / "reg"), "environment 'test'")
    assert target.display() == f"OCI layout {tmp_path / 'reg'}"
    backend = open_registry(host, target, ENVIRON)
    assert isinstance(backend, OciLayoutRegistry) and backend.root == tmp_path / "reg"
    remote = open_reference(host, layout_env, parse_reference("localhost:5555/proj:v1"), ENVIRON)
    assert isinstance(remote, OciDistributionRegistry) and remote.describe() == "localhost:5555 (plain HTTP)"


def test_the_registry_comes_from_registry_url_then_the_pin_then_the_environment() -> None:
    acr = env(provider="acr", login_server="team.azurecr.io/models", username="u", password=Secret("p"))
    from_env = resolve_target(acr, ENVIRON)
    assert (from_env.backend, from_env.address, from_env.source) == (
        DISTRIBUTION,
        "team.azurecr.io/models",
        "environment 'test'",
    )
    pinned = resolve_target(acr, ENVIRON, pinned="ghcr.io/lab")
    assert (pinned.address, pinned.source) == ("ghcr.io/lab", "the project's config.yaml (registry)")
    override = {**ENVIRON, "REGISTRY_URL": "http://localhost:5555", "MODELOPS_BUNDLE_INSECURE": "true"}
    for chosen in (resolve_target(acr, override), resolve_target(acr, override, pinned="ghcr.io/lab")):
        assert (chosen.address, chosen.source) == ("http://localhost:5555", "$REGISTRY_URL")
        assert chosen.display() == "localhost:5555 (plain HTTP)"
    layout = env(provider="oci-layout", path="/srv/reg")
    assert resolve_target(layout, override).backend == DISTRIBUTION  # REGISTRY_URL replaces the layout too


def test_the_environments_credentials_go_to_its_own_host_only() -> None:
    host = build_plugin_host(ENVIRON)
    acr = env(provider="acr", login_server="team.azurecr.io/models", username="u", password=Secret("p"))
    own = backend_settings(resolve_target(acr, ENVIRON), ENVIRON)
    assert (own["username"], own["password"], own["url"]) == ("u", "p", "team.azurecr.io/models")
    for target in (
        resolve_target(acr, ENVIRON, pinned="ghcr.io/lab"),
        resolve_target(acr, {**ENVIRON, "REGISTRY_URL": "localhost:5555"}),
        reference_target(acr, ENVIRON, parse_reference("ghcr.io/o/p")),
    ):
        settings = backend_settings(target, ENVIRON)
        assert settings["username"] is None and settings["password"] is None, target
    same = reference_target(acr, ENVIRON, parse_reference("team.azurecr.io/models/p"))
    assert backend_settings(same, ENVIRON)["username"] == "u"
    backend = open_registry(host, resolve_target(acr, ENVIRON), ENVIRON)
    assert isinstance(backend, OciDistributionRegistry)
    assert backend.describe() == "team.azurecr.io/models" and backend.endpoint.repository("proj") == "models/proj"


def test_configuration_errors_exit_2() -> None:
    host = build_plugin_host(ENVIRON)
    harbour = resolve_target(env(provider="harbour"), ENVIRON)  # a plugin's backend needs no login_server
    with pytest.raises(ConfigError, match="unknown registry provider 'harbour'") as caught:
        open_registry(host, harbour, ENVIRON)
    assert caught.value.exit_code == ExitCode.USAGE and "oci-layout" in (caught.value.hint or "")
    assert "the embedded default" in caught.value.message  # where the environment came from
    with pytest.raises(ConfigError, match="login_server is missing") as caught:
        resolve_target(env(provider="docker"), ENVIRON)
    assert caught.value.exit_code == ExitCode.USAGE
    # ...but a reference that names its host needs no login_server
    assert reference_target(env(provider="docker"), ENVIRON, parse_reference("ghcr.io/o/p")).address == "ghcr.io"


def test_a_third_party_backend_is_chosen_by_name() -> None:
    from modelops_bundle import hookimpl

    class Harbour(OciLayoutRegistry):
        name = "harbour"

    class Plugin:
        @hookimpl
        def mops_registry_backends(self) -> list[type]:
            return [Harbour]

    host = build_plugin_host(ENVIRON, extra_plugins=[("harbour-plugin", Plugin())])
    target = resolve_target(env(provider="harbour", path="/tmp/x", login_server="h.example.com"), ENVIRON)
    backend = open_registry(host, target, ENVIRON)
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
