"""Every built-in blob provider against the conformance suite, each through ``open_storage`` with an
environment file like the ones users and ``mops infra`` write, against real services on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import pytest

from modelops_bundle.core.storage import StorageProvider
from modelops_bundle.storage_conformance import (
    MIB,
    FullConformance,
    PermissionDeniedChecks,
    StorageProviderConformance,
)
from tests.storage.conftest import OpenStorage
from tests.storage.services import (
    AZURITE_KEY,
    Service,
    azure_connection_string,
    gcs_forbidding_endpoint,
)
from tests.support.servers import free_port

#: Moderate by default so the whole storage suite stays well under a minute on two cores.
BIG_FILE_BYTES = int(os.environ.get("MOPS_STORAGE_BIG_FILE_MB", "96")) * MIB
WRONG_AZURE_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleQ=="


class SuiteSettings(StorageProviderConformance):
    big_file_bytes: ClassVar[int] = BIG_FILE_BYTES


class ServiceSuite(FullConformance):
    """Object stores behind a service: every failure check applies."""

    big_file_bytes: ClassVar[int] = BIG_FILE_BYTES


@contextmanager
def unwritable_folder(path: Path) -> Iterator[Path]:
    """A folder nobody may write into -- root included (the immutable attribute binds root too)."""
    path.mkdir(mode=0o500)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True)
    try:
        yield path
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)
        path.chmod(0o700)


# ------------------------------------------------------------------------------------------- local


class TestLocalConformance(SuiteSettings, PermissionDeniedChecks):
    # A folder store has no server to lose, and its folder is created on the first upload: the
    # server-gone and missing-container checks do not apply.
    @pytest.fixture
    def provider(self, open_env_storage: OpenStorage, tmp_path: Path) -> StorageProvider:
        return open_env_storage(f"provider: local\npath: {tmp_path / 'blobs'}")

    @pytest.fixture
    def denied_provider(self, open_env_storage: OpenStorage, tmp_path: Path) -> Iterator[StorageProvider]:
        with unwritable_folder(tmp_path / "read-only") as folder:
            yield open_env_storage(f"provider: local\npath: {folder}")


# ---------------------------------------------------------------------------------- generic fsspec


class TestFsspecFileConformance(SuiteSettings):
    @pytest.fixture
    def provider(self, open_env_storage: OpenStorage, tmp_path: Path) -> StorageProvider:
        return open_env_storage(f"provider: fsspec\ncontainer: file://{tmp_path / 'store'}")


class TestFsspecMemoryConformance(StorageProviderConformance):
    # An in-memory store holds the bytes by design: stream a small file and skip the memory check.
    big_file_bytes: ClassVar[int] = 8 * MIB
    max_memory_growth_bytes: ClassVar[int | None] = None

    @pytest.fixture
    def provider(self, open_env_storage: OpenStorage, tmp_path: Path) -> StorageProvider:
        return open_env_storage(f"provider: fsspec\ncontainer: memory://conformance/{tmp_path.name}")


# ------------------------------------------------------------------------------------------- azure


def azure_yaml(endpoint: str, *, container: str = "bundles", key: str = AZURITE_KEY) -> str:
    # 4 MiB first GETs: the default (the SDK's 32 MiB) holds more than the suite's memory bound.
    connection = azure_connection_string(endpoint, key)
    return f'provider: azurite\ncontainer: {container}\nconnection_string: "{connection}"\nsingle_get_mib: 4'


class TestAzureConformance(ServiceSuite):
    @pytest.fixture
    def provider(self, open_env_storage: OpenStorage, azurite_service: Service) -> StorageProvider:
        return open_env_storage(azure_yaml(azurite_service.url))

    @pytest.fixture
    def denied_provider(self, open_env_storage: OpenStorage, azurite_service: Service) -> StorageProvider:
        return open_env_storage(azure_yaml(azurite_service.url, key=WRONG_AZURE_KEY))

    @pytest.fixture
    def dead_provider(self, open_env_storage: OpenStorage) -> StorageProvider:
        return open_env_storage(azure_yaml(f"http://127.0.0.1:{free_port()}/devstoreaccount1"))

    @pytest.fixture
    def missing_container_provider(self, open_env_storage: OpenStorage, azurite_service: Service) -> StorageProvider:
        return open_env_storage(azure_yaml(azurite_service.url, container="no-such-container"))


# ---------------------------------------------------------------------------------------------- s3


def s3_yaml(endpoint: str, *, bucket: str = "bundles", secret: str = "testing") -> str:
    return f"provider: s3\ncontainer: {bucket}\nendpoint: {endpoint}\naccess_key: testing\nsecret_key: {secret}"


S3_ENVIRON = {"AWS_DEFAULT_REGION": "us-east-1"}


class TestS3Conformance(ServiceSuite):
    @pytest.fixture
    def provider(self, open_env_storage: OpenStorage, moto_service: Service) -> StorageProvider:
        return open_env_storage(s3_yaml(moto_service.url), environ=S3_ENVIRON)

    @pytest.fixture
    def denied_provider(self, open_env_storage: OpenStorage, moto_auth_service: Service) -> StorageProvider:
        return open_env_storage(s3_yaml(moto_auth_service.url, secret="not-the-secret"), environ=S3_ENVIRON)

    @pytest.fixture
    def dead_provider(self, open_env_storage: OpenStorage) -> StorageProvider:
        return open_env_storage(s3_yaml(f"http://127.0.0.1:{free_port()}"), environ=S3_ENVIRON)

    @pytest.fixture
    def missing_container_provider(self, open_env_storage: OpenStorage, moto_service: Service) -> StorageProvider:
        return open_env_storage(s3_yaml(moto_service.url, bucket="no-such-bucket"), environ=S3_ENVIRON)


# --------------------------------------------------------------------------------------------- gcs


def gcs_yaml(endpoint: str, *, bucket: str = "bundles") -> str:
    # 8 MiB chunks: the default (gcsfs's 50 MiB) holds about 146 MiB per transfer, beyond the suite's
    # 64 MiB bound; streaming itself is what the big-file check proves, at a memory-conscious setting.
    return f"provider: gcs\ncontainer: {bucket}\nendpoint: {endpoint}\npart_size_mib: 8"


class TestGcsConformance(ServiceSuite):
    @pytest.fixture
    def provider(self, open_env_storage: OpenStorage, gcs_service: Service) -> StorageProvider:
        return open_env_storage(gcs_yaml(gcs_service.url))

    @pytest.fixture
    def denied_provider(self, open_env_storage: OpenStorage) -> Iterator[StorageProvider]:
        # fake-gcs-server does no authorisation; a loopback endpoint answering GCS's 403 stands in.
        with gcs_forbidding_endpoint() as url:
            yield open_env_storage(gcs_yaml(url))

    @pytest.fixture
    def dead_provider(self, open_env_storage: OpenStorage) -> StorageProvider:
        return open_env_storage(gcs_yaml(f"http://127.0.0.1:{free_port()}"))

    @pytest.fixture
    def missing_container_provider(self, open_env_storage: OpenStorage, gcs_service: Service) -> StorageProvider:
        return open_env_storage(gcs_yaml(gcs_service.url, bucket="no-such-bucket"))
