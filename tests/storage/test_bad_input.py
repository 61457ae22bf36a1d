"""Bad input against real services: refused credentials must be reported without ever echoing them."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_bundle.core.errors import StorageError
from modelops_bundle.core.storage import blob_key
from modelops_bundle.storage_conformance import write_random_file
from tests.storage.conftest import OpenStorage
from tests.storage.services import Service, azure_connection_string

WRONG_KEY = "U2VjcmV0LXNob3VsZC1uZXZlci1iZS1wcmludGVkLWFueXdoZXJlIQ=="
WRONG_SECRET = "s3-secret-that-must-never-be-printed"


def _failures(
    provider_open: OpenStorage, yaml: str, tmp_path: Path, environ: dict[str, str] | None = None
) -> list[str]:
    provider = provider_open(yaml, environ=environ)
    source = tmp_path / "f.bin"
    digest = write_random_file(source, 100)
    key = blob_key(provider.prefix, digest)
    messages = []
    for action in (
        lambda: provider.exists(key),
        lambda: provider.put_file(key, source, 100),
        lambda: provider.get_to_file(key, tmp_path / "out.bin", 100, digest),
    ):
        with pytest.raises(StorageError) as caught:
            action()
        messages.append(f"{caught.value} {caught.value.hint or ''}")
    assert not (tmp_path / "out.bin").exists()
    return messages


def test_azure_wrong_key_is_reported_without_the_key(
    open_env_storage: OpenStorage, azurite_service: Service, tmp_path: Path
) -> None:
    connection = azure_connection_string(azurite_service.url, WRONG_KEY)
    yaml = f'provider: azure\ncontainer: bundles\nconnection_string: "{connection}"'
    for message in _failures(open_env_storage, yaml, tmp_path):
        assert "access denied" in message and "'bundles'" in message
        assert WRONG_KEY not in message and connection not in message


def test_s3_wrong_secret_is_reported_without_the_secret(
    open_env_storage: OpenStorage, moto_auth_service: Service, tmp_path: Path
) -> None:
    yaml = (
        f"provider: s3\ncontainer: bundles\nendpoint: {moto_auth_service.url}\n"
        f"access_key: AKIDEXAMPLE\nsecret_key: {WRONG_SECRET}"
    )
    for message in _failures(open_env_storage, yaml, tmp_path, environ={"AWS_DEFAULT_REGION": "us-east-1"}):
        assert "access denied" in message and "'bundles'" in message
        assert WRONG_SECRET not in message


def test_credentials_from_environ_are_scrubbed_too(
    open_env_storage: OpenStorage, azurite_service: Service, tmp_path: Path
) -> None:
    connection = azure_connection_string(azurite_service.url, WRONG_KEY)
    environ = {"AZURE_STORAGE_CONNECTION_STRING": connection}
    for message in _failures(open_env_storage, "provider: azure\ncontainer: bundles", tmp_path, environ):
        assert "access denied" in message and WRONG_KEY not in message
