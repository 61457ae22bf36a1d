"""Registry fixtures: CNCF distribution (plain, with htpasswd, and with token auth behind a token server of
the suite's own) for the whole session, backends per test.

Every backend gets an explicit ``environ`` with an empty HOME and DOCKER_CONFIG, so a developer's own
docker login or ``REGISTRY_*`` variables never leak into a test.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle.core.registry import BlobSource, RegistryBackend
from modelops_bundle.plugins.registry_distribution import OciDistributionRegistry
from modelops_bundle.plugins.registry_layout import OciLayoutRegistry
from tests.oci.registries import FaultProxy, RunningRegistry, start_distribution
from tests.oci.token_server import TokenServer

USER, PASSWORD = "tester", "s3cret-Pa55word-never-shown"


@pytest.fixture(scope="session")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    registry = start_distribution(tmp_path_factory.mktemp("registry"))
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def auth_distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    registry = start_distribution(tmp_path_factory.mktemp("registry-auth"), username=USER, password=PASSWORD)
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def token_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TokenServer, RunningRegistry]]:
    """A token server and a registry in ``auth: token`` mode that trusts it (reset per test by
    :func:`token_registry`)."""
    server = TokenServer(tmp_path_factory.mktemp("token-server")).start()
    registry = start_distribution(tmp_path_factory.mktemp("registry-token"), token=server)
    yield server, registry
    registry.stop()
    server.stop()


@pytest.fixture
def token_registry(token_service: tuple[TokenServer, RunningRegistry]) -> Iterator[tuple[TokenServer, RunningRegistry]]:
    """The token-auth registry with its token server in a known state: user ``USER``/``PASSWORD``, no
    refresh tokens, tokens valid 300 s; and the Azure CLI logins this process remembered forgotten."""
    from modelops_bundle.core.acr import forget_logins

    server, registry = token_service
    with server.lock:
        server.users, server.refresh_tokens = {USER: PASSWORD}, set()
        server.registry_lifetime, server.advertised_lifetime, server.oauth_post = 300.0, 300.0, True
        server.grants.clear()
    forget_logins()
    yield server, registry
    forget_logins()


@pytest.fixture
def clean_environ(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "DOCKER_CONFIG": str(home / ".docker"), "PATH": os.environ.get("PATH", "")}


@pytest.fixture
def make_distribution(clean_environ: dict[str, str]) -> Iterator[Callable[..., OciDistributionRegistry]]:
    """``make_distribution(host, **settings)``: a backend with fast retries, closed after the test."""
    made: list[OciDistributionRegistry] = []

    def _make(host: str, **settings: Any) -> OciDistributionRegistry:
        settings.setdefault("environ", clean_environ)
        settings.setdefault("retry_base", 0.01)
        backend = OciDistributionRegistry({"url": host, **settings})
        made.append(backend)
        return backend

    yield _make
    for backend in made:
        backend.close()


@pytest.fixture
def proxy_for(distribution: RunningRegistry) -> Iterator[Callable[..., FaultProxy]]:
    started: list[FaultProxy] = []

    def _start(**options: Any) -> FaultProxy:
        proxy = FaultProxy(distribution.port, **options).start()
        started.append(proxy)
        return proxy

    yield _start
    for proxy in started:
        proxy.stop()


@pytest.fixture(params=["oci-layout", "oci-distribution"])
def backend_case(
    request: pytest.FixtureRequest, tmp_path: Path, make_distribution: Callable[..., OciDistributionRegistry]
) -> tuple[RegistryBackend, Callable[[str, str], Path]]:
    """A backend of each kind, plus ``blob_file(repository, digest)``: where its storage keeps a blob."""
    if request.param == "oci-layout":
        layout = OciLayoutRegistry({"path": str(tmp_path / "layout")})
        return layout, layout.blob_path
    registry: RunningRegistry = request.getfixturevalue("distribution")
    return make_distribution(registry.host), lambda _repository, digest: registry.blob_data_path(digest)


@pytest.fixture
def repo() -> str:
    """A repository name of its own per test (the registry lives for the whole session)."""
    return f"conformance/{uuid.uuid4().hex[:12]}"


def blob(data: bytes, description: str = "") -> BlobSource:
    return BlobSource("sha256:" + hashlib.sha256(data).hexdigest(), len(data), lambda: io.BytesIO(data), description)
