"""``config.yaml`` files of earlier releases: ``registry_ref`` becomes ``repository`` (+ ``registry``).

Release 0.2.0 (and the upstream v0.1.1) wrote ``registry_ref: HOST/REPOSITORY`` at ``init``, copying the
environment's registry host into the project: after ``env switch prod`` a push still went to dev. Now the
host is the environment's unless the user pins one. On first read such a file is migrated:

* ``registry_ref`` naming no host, or the host (and namespace) of the project's environment: the host
  is dropped silently -- the project follows its environment from now on;
* any other host stays pinned (``registry:``), and the user is told once, with how to unpin it.

The migrated file is written back atomically when the project lock is free (a command that holds it
simply uses the migrated settings in memory; the next one writes them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops_bundle.core.errors import BundleError
from modelops_bundle.core.reference import parse_reference
from modelops_bundle.core.settings import Environment, ProjectConfig, is_http_provider, split_address

if TYPE_CHECKING:
    from modelops_bundle.core.settings_files import ConfigFile
    from modelops_bundle.core.workspace import Workspace


def migrate_registry_ref(
    ws: Workspace, file: ConfigFile, environment: Environment, env_name: str
) -> tuple[ProjectConfig, str | None]:
    """The migrated settings of ``file`` and, when a host stays pinned, what to tell the user."""
    assert file.legacy_registry_ref is not None
    legacy = parse_reference(file.legacy_registry_ref)  # read_config checked it parses
    config = file.config._replace(repository=legacy.repository, registry=None)
    notice = None
    if legacy.registry is not None:
        repository = _within_environment(legacy.registry, legacy.repository, environment)
        if repository is not None:
            config = config._replace(repository=repository)
        else:
            config = config._replace(registry=legacy.registry)
            notice = (
                f"{ws.project.config_path}: this project pins its registry to {legacy.registry} (its registry_ref, "
                f"written by an earlier release), not environment {env_name!r}'s; 'env switch' does not change it. "
                "Unpin it with: mops bundle config --unset registry"
            )
    _save_if_free(ws, config)
    return config, notice


def _within_environment(host: str, repository: str, environment: Environment) -> str | None:
    """``repository`` relative to the environment's registry when ``host`` is that registry (and the
    repository is under its namespace); ``None`` when it is another registry."""
    registry = environment.registry
    if not registry.login_server or not is_http_provider(registry.provider):
        return None
    env_host, namespace = split_address(registry.login_server)
    if env_host != host.lower():
        return None
    if not namespace:
        return repository
    prefix = namespace + "/"
    return repository[len(prefix) :] if repository.startswith(prefix) else None


def _save_if_free(ws: Workspace, config: ProjectConfig) -> None:
    from modelops_bundle.core.settings_files import save_config

    try:
        with ws.lock(wait=False):
            save_config(ws.project.config_path, config, ws.memo)
    except (BundleError, OSError):
        pass  # in use, or read-only: the migrated settings hold in memory, the next command writes them
