"""Storage test fixtures: real services (session-scoped) and providers opened the way a user's
environment file and project config would open them."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelops_bundle.core.plugins import PluginHost, build_plugin_host
from modelops_bundle.core.settings import StoragePolicy
from modelops_bundle.core.settings_files import load_environment
from modelops_bundle.core.storage import StorageProvider, open_storage
from tests.storage.services import (
    Service,
    azurite,
    create_azure_container,
    create_gcs_bucket,
    create_s3_bucket,
    fake_gcs,
    moto_s3,
)

BUCKET = "bundles"

OpenStorage = Callable[..., StorageProvider]


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("storage-services")


@pytest.fixture(scope="session")
def azurite_service(services_dir: Path) -> Iterator[Service]:
    with azurite(services_dir) as service:
        create_azure_container(service.url, BUCKET)
        yield service


@pytest.fixture(scope="session")
def moto_service(services_dir: Path) -> Iterator[Service]:
    with moto_s3(services_dir) as service:
        create_s3_bucket(service.url, BUCKET)
        yield service


@pytest.fixture(scope="session")
def moto_auth_service(services_dir: Path) -> Iterator[Service]:
    with moto_s3(services_dir, require_auth=True) as service:
        yield service


@pytest.fixture(scope="session")
def gcs_service(services_dir: Path) -> Iterator[Service]:
    with fake_gcs(services_dir) as service:
        create_gcs_bucket(service.url, BUCKET)
        yield service


@pytest.fixture(scope="session")
def plugin_host() -> PluginHost:
    return build_plugin_host({"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"})


@pytest.fixture(scope="session")
def open_env_storage(plugin_host: PluginHost, tmp_path_factory: pytest.TempPathFactory) -> OpenStorage:
    """``open_env_storage(storage_yaml, prefix=..., environ=...)``: write an environment file whose
    ``storage:`` section is ``storage_yaml`` under a fresh ``$MODELOPS_HOME``, load it like the CLI does
    and open its storage with a project policy of ``prefix``."""

    def _open(
        storage_yaml: str, *, prefix: str = "conformance", environ: dict[str, str] | None = None
    ) -> StorageProvider:
        home = tmp_path_factory.mktemp("modelops-home")
        env_dir = home / "bundle-env"
        env_dir.mkdir()
        body = textwrap.indent(textwrap.dedent(storage_yaml).strip(), "  ")
        (env_dir / "test.yaml").write_text(
            f"environment: test\nregistry:\n  provider: docker\n  login_server: 127.0.0.1:5000\nstorage:\n{body}\n"
        )
        full_environ = {"MODELOPS_HOME": str(home), "HOME": str(home), **(environ or {})}
        env = load_environment("test", full_environ)
        return open_storage(plugin_host, env.storage, StoragePolicy(prefix=prefix), full_environ)

    return _open
