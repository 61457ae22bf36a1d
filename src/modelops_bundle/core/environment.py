"""Environments: ``$MODELOPS_HOME/bundle-env/<name>.yaml`` (registry + storage), and the embedded ``local``.

The ModelOps infrastructure writes these files (``mops infra up``); a project pins one by name in
``.modelops-bundle/env``. When no file exists for ``local``, an embedded default is used: an OCI Image
Layout directory and a blob folder under ``$MODELOPS_HOME``, so that the tool works with no server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

# Names and paths of environments live in the light ``envfiles`` module (no pydantic); re-exported here.
from modelops_bundle.core.envfiles import (
    ENV_NAME,
    LOCAL_ENV,
    check_env_name,
    default_environment_name,
    environment_exists,
    environment_file,
    environments_dir,
    expand_path,
    list_environments,
    local_sections,
    modelops_home,
)
from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.validation import load_yaml_model

__all__ = [
    "ENV_NAME",
    "LOCAL_ENV",
    "EnvironmentConfig",
    "RegistrySettings",
    "StorageEnvSettings",
    "check_env_name",
    "default_environment_name",
    "embedded_local",
    "environment_exists",
    "environment_file",
    "environments_dir",
    "expand_path",
    "list_environments",
    "load_environment",
    "masked",
    "modelops_home",
]


class RegistrySettings(BaseModel):
    """``registry:`` section. ``provider`` is docker|acr|ecr|gcr|ghcr (HTTP registries) or oci-layout."""

    model_config = ConfigDict(extra="allow")

    provider: str = "docker"
    login_server: str | None = None
    path: str | None = None  # oci-layout: the layout directory
    username: str | None = None
    password: SecretStr | None = None
    requires_auth: bool = False
    insecure: bool = False


class StorageEnvSettings(BaseModel):
    """``storage:`` section: azure|s3|gcs|azurite|minio|local, container/bucket and credentials."""

    model_config = ConfigDict(extra="allow")

    provider: str | None = None
    container: str | None = None
    path: str | None = None  # local provider: the blob folder
    connection_string: SecretStr | None = None
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: SecretStr | None = None


class EnvironmentConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    environment: str
    registry: RegistrySettings
    storage: StorageEnvSettings | None = None


def embedded_local(environ: Mapping[str, str]) -> EnvironmentConfig:
    """The built-in ``local`` environment: everything under ``$MODELOPS_HOME``, no server needed."""
    registry, storage = local_sections(environ)
    return EnvironmentConfig(
        environment=LOCAL_ENV, registry=RegistrySettings(**registry), storage=StorageEnvSettings(**storage)
    )


def load_environment(name: str, environ: Mapping[str, str]) -> EnvironmentConfig:
    """The named environment: its file when present, the embedded default for ``local``."""
    path = environment_file(name, environ)
    if path.is_file():
        return load_yaml_model(path, EnvironmentConfig, what="environment file")
    if name == LOCAL_ENV:
        return embedded_local(environ)
    from modelops_bundle.core.suggest import did_you_mean

    names = list_environments(environ)
    raise ConfigError(
        f"environment {name!r} not found: no file {path}{did_you_mean(name, names)}",
        hint=f"available: {', '.join(names)}",
    )


def masked(config: EnvironmentConfig) -> dict[str, Any]:
    """The environment as plain data with every secret replaced by ``********``."""
    masked_data: dict[str, Any] = _mask(config.model_dump(mode="json", exclude_none=True))
    return masked_data


_SECRET_KEYS = re.compile(r"(password|secret|token|connection_string|account_key|sas|credential)", re.I)


def _mask(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, key) for v in value]
    if value and _SECRET_KEYS.search(key):
        return "********"
    return value
