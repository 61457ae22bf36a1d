"""Environment names and files, and a light view of an environment's registry section.

Everything here avoids pydantic: ``status`` asks the registry where the project's tag stands on every run,
and that needs only the ``registry:`` section. The full, validated models are in :mod:`.environment`;
:func:`registry_environment` uses them the first time it sees an environment file in a given state and
remembers (in the project's stat cache) that the file validated, so later runs read it with yaml alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.errors import UsageError

if TYPE_CHECKING:
    from modelops_bundle.core.environment import EnvironmentConfig
    from modelops_bundle.core.hashing import StatCache

LOCAL_ENV = "local"
ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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


def environment_exists(name: str, environ: Mapping[str, str]) -> bool:
    return name == LOCAL_ENV or environment_file(name, environ).is_file()


def default_environment_name(environ: Mapping[str, str]) -> str:
    """What ``init`` pins without ``--env``: ``$MOPS_ENV``, else ``dev`` when provisioned, else ``local``."""
    explicit = environ.get("MOPS_ENV")
    if explicit:
        return explicit
    if environment_file("dev", environ).is_file():
        return "dev"
    return LOCAL_ENV


def expand_path(raw: str) -> Path:
    return Path(os.path.expandvars(raw)).expanduser()


class Secret:
    """A secret string that never shows itself in a repr (pydantic's ``SecretStr`` interface)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclass(frozen=True)
class RegistryView:
    """The ``registry:`` section, as :class:`~.environment.RegistrySettings` reads it."""

    provider: str = "docker"
    login_server: str | None = None
    path: str | None = None
    username: str | None = None
    password: Secret | None = None
    requires_auth: bool = False
    insecure: bool = False
    model_extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EnvironmentView:
    """What selecting a registry backend needs of an environment."""

    environment: str
    registry: RegistryView
    #: ``storage.provider``, when the environment names a blob store
    storage_provider: str | None = None


_REGISTRY_FIELDS = ("provider", "login_server", "path", "username", "password", "requires_auth", "insecure")
_TRUE = frozenset({"1", "true", "yes", "on", "t", "y"})


def _as_bool(value: Any) -> bool:
    # pydantic's lax bool: the file validated, so a string here is one of its accepted spellings
    return value.strip().lower() in _TRUE if isinstance(value, str) else bool(value)


def _view(name: str, registry: Mapping[str, Any], storage_provider: str | None = None) -> EnvironmentView:
    password = registry.get("password")
    return EnvironmentView(
        name,
        RegistryView(
            provider=registry.get("provider") or "docker",
            login_server=registry.get("login_server"),
            path=registry.get("path"),
            username=registry.get("username"),
            password=Secret(str(password)) if password is not None else None,
            requires_auth=_as_bool(registry.get("requires_auth", False)),
            insecure=_as_bool(registry.get("insecure", False)),
            model_extra={k: v for k, v in registry.items() if k not in _REGISTRY_FIELDS},
        ),
        storage_provider or None,
    )


def _view_of_model(config: EnvironmentConfig) -> EnvironmentView:
    registry = config.registry
    data: dict[str, Any] = {
        **(registry.model_extra or {}),
        "provider": registry.provider,
        "login_server": registry.login_server,
        "path": registry.path,
        "username": registry.username,
        "requires_auth": registry.requires_auth,
        "insecure": registry.insecure,
        "password": registry.password.get_secret_value() if registry.password is not None else None,
    }
    return _view(config.environment, data, config.storage.provider if config.storage is not None else None)


def registry_environment(name: str, environ: Mapping[str, str], memo: StatCache | None = None) -> EnvironmentView:
    """The registry side of environment ``name``: validated with the full model the first time a file is
    seen in a given state (``memo`` remembers that), read with yaml alone afterwards."""
    from modelops_bundle.core.hashing import file_fingerprint

    path = environment_file(name, environ)
    fingerprint = file_fingerprint(path)
    if fingerprint is None and name == LOCAL_ENV:
        return _view(LOCAL_ENV, {"provider": "oci-layout", "path": str(modelops_home(environ) / "registry")}, "local")
    key = f"environment.v2:{path}"  # v2 remembers the view itself where it holds no secret
    remembered = memo.memo_get(key, fingerprint) if memo is not None and fingerprint is not None else None
    if remembered is None:
        from modelops_bundle.core.environment import load_environment

        config = load_environment(name, environ)  # validates; raises naming the file
        view = _view_of_model(config)
        if memo is not None and fingerprint is not None and file_fingerprint(path) == fingerprint:
            memo.memo_put(key, fingerprint, _memo_of(view))
        return view
    if isinstance(remembered, dict):  # the view itself: the section holds no secret
        registry = remembered.get("registry")
        if isinstance(registry, dict):
            return _view(str(remembered.get("environment") or name), registry, remembered.get("storage_provider"))
    from modelops_bundle.core.validation import parse_yaml, read_text

    data = parse_yaml(read_text(path, what="environment file"), path)
    storage = data.get("storage") or {}
    return _view(str(data.get("environment") or name), data.get("registry") or {}, storage.get("provider"))


#: Registry keys that never hold a secret; a view made of these alone may be remembered in the
#: project's stat cache (a file on disk), which must never hold a credential.
_MEMO_SAFE_KEYS = ("provider", "login_server", "path", "username", "requires_auth", "insecure")


def _memo_of(view: EnvironmentView) -> dict[str, Any] | bool:
    """What to remember of a validated environment file: its registry view when that holds no secret
    (so the next run reads neither yaml nor the file), else only that it validated (``True``)."""
    registry = view.registry
    if registry.password is not None or registry.model_extra:
        return True
    data = {key: getattr(registry, key) for key in _MEMO_SAFE_KEYS}
    return {"environment": view.environment, "registry": data, "storage_provider": view.storage_provider}
