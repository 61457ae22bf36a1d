"""Environments: ``$MODELOPS_HOME/bundle-env/<name>.yaml`` (registry + storage), and the embedded ``local``.

The ModelOps infrastructure writes these files (``mops infra up``); a project pins one by name in
``.modelops-bundle/env``. When no file exists for ``local``, an embedded default is used: an OCI Image
Layout directory and a blob folder under ``$MODELOPS_HOME``, so that the tool works with no server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from modelops_bundle.core.errors import ConfigError, UsageError
from modelops_bundle.core.validation import load_yaml_model

LOCAL_ENV = "local"
ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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


def modelops_home(environ: Mapping[str, str]) -> Path:
    """``$MODELOPS_HOME``, defaulting to ``~/.modelops``."""
    raw = environ.get("MODELOPS_HOME")
    if raw:
        return Path(raw).expanduser()
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".modelops"


def environments_dir(environ: Mapping[str, str]) -> Path:
    return modelops_home(environ) / "bundle-env"


def check_env_name(name: str) -> str:
    if not ENV_NAME.match(name):
        raise UsageError(f"invalid environment name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


def environment_file(name: str, environ: Mapping[str, str]) -> Path:
    return environments_dir(environ) / f"{check_env_name(name)}.yaml"


def list_environments(environ: Mapping[str, str]) -> list[str]:
    """Names with a file in ``bundle-env/``, plus ``local`` (always available)."""
    folder = environments_dir(environ)
    names = {LOCAL_ENV}
    try:
        names.update(p.stem for p in folder.glob("*.yaml") if ENV_NAME.match(p.stem))
    except OSError:
        pass
    return sorted(names)


def embedded_local(environ: Mapping[str, str]) -> EnvironmentConfig:
    """The built-in ``local`` environment: everything under ``$MODELOPS_HOME``, no server needed."""
    home = modelops_home(environ)
    return EnvironmentConfig(
        environment=LOCAL_ENV,
        registry=RegistrySettings(provider="oci-layout", path=str(home / "registry")),
        storage=StorageEnvSettings(provider="local", path=str(home / "blobs")),
    )


def environment_exists(name: str, environ: Mapping[str, str]) -> bool:
    return name == LOCAL_ENV or environment_file(name, environ).is_file()


def load_environment(name: str, environ: Mapping[str, str]) -> EnvironmentConfig:
    """The named environment: its file when present, the embedded default for ``local``."""
    path = environment_file(name, environ)
    if path.is_file():
        return load_yaml_model(path, EnvironmentConfig, what="environment file")
    if name == LOCAL_ENV:
        return embedded_local(environ)
    available = ", ".join(list_environments(environ))
    raise ConfigError(f"environment {name!r} not found: no file {path}", hint=f"available: {available}")


def default_environment_name(environ: Mapping[str, str]) -> str:
    """What ``init`` pins without ``--env``: ``$MOPS_ENV``, else ``dev`` when provisioned, else ``local``."""
    explicit = environ.get("MOPS_ENV")
    if explicit:
        return explicit
    if environment_file("dev", environ).is_file():
        return "dev"
    return LOCAL_ENV


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


def expand_path(raw: str) -> Path:
    return Path(os.path.expandvars(raw)).expanduser()
