"""Environment names and files, and a light view of an environment's registry and storage sections.

Everything here avoids pydantic: ``status`` asks the registry where the project's tag stands on every run,
and push and pull open the blob store; importing and building the pydantic models costs more than
100 ms. The full, validated models are in :mod:`.environment`; :func:`registry_environment` uses them
the first time it sees an environment file in a given state and remembers (in the project's stat
cache) that the file validated -- and the view itself where it holds no secret --, so later runs read
the file with yaml alone, or not at all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from modelops_bundle.core.errors import UsageError

if TYPE_CHECKING:
    from modelops_bundle.core.environment import EnvironmentConfig
    from modelops_bundle.core.hashing import StatCache

LOCAL_ENV = "local"
#: The ``local`` storage provider's default folder, under ``$MODELOPS_HOME``.
LOCAL_BLOBS = "blobs"
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


class SecretValue(Protocol):
    """A credential that hides itself in reprs: pydantic's ``SecretStr``, or :class:`Secret` below."""

    def get_secret_value(self) -> str: ...


class Secret:
    """A secret string that never shows itself in a repr (pydantic's ``SecretStr`` interface)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


#: The default of ``model_extra`` below: shared, so never mutated (views are built with their own dict).
_NO_EXTRA: dict[str, Any] = {}

# The views are NamedTuples, not frozen dataclasses: a frozen dataclass costs 0.3-0.4 ms to define
# (generated methods, each compiled), a NamedTuple 0.06 ms, and every status defines them.


class RegistryView(NamedTuple):
    """The ``registry:`` section, as :class:`~.environment.RegistrySettings` reads it."""

    provider: str = "docker"
    login_server: str | None = None
    path: str | None = None
    username: str | None = None
    password: Secret | None = None
    requires_auth: bool = False
    insecure: bool = False
    model_extra: dict[str, Any] = _NO_EXTRA


class StorageView(NamedTuple):
    """The ``storage:`` section, as :class:`~.environment.StorageEnvSettings` reads it."""

    provider: str | None = None
    container: str | None = None
    path: str | None = None
    connection_string: Secret | None = None
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: Secret | None = None
    model_extra: dict[str, Any] = _NO_EXTRA


class EnvironmentView(NamedTuple):
    """What selecting a registry backend and opening the blob store need of an environment.

    ``storage`` is the ``storage:`` section (``None`` when absent -- or, from :func:`registry_environment`,
    when it was not read); ``storage_provider`` is always known.
    """

    environment: str
    registry: RegistryView
    storage: StorageView | None = None
    storage_provider: str | None = None


_REGISTRY_FIELDS = ("provider", "login_server", "path", "username", "password", "requires_auth", "insecure")
_STORAGE_FIELDS = ("provider", "container", "path", "connection_string", "endpoint", "access_key", "secret_key")
_STORAGE_SECRETS = ("connection_string", "secret_key")
#: Option names that say they may hold a credential: never remembered, scrubbed from every message.
SECRET_NAME = re.compile(r"(key|secret|token|password|sas|credential|connection)", re.I)
_TRUE = frozenset({"1", "true", "yes", "on", "t", "y"})


def _as_bool(value: Any) -> bool:
    # pydantic's lax bool: the file validated, so a string here is one of its accepted spellings
    return value.strip().lower() in _TRUE if isinstance(value, str) else bool(value)


def _secret(value: Any) -> Secret | None:
    return Secret(str(value)) if value is not None else None


def _storage_view(storage: Mapping[str, Any] | None) -> StorageView | None:
    if storage is None:
        return None
    return StorageView(
        **{key: storage.get(key) for key in _STORAGE_FIELDS if key not in _STORAGE_SECRETS},
        connection_string=_secret(storage.get("connection_string")),
        secret_key=_secret(storage.get("secret_key")),
        model_extra={k: v for k, v in storage.items() if k not in _STORAGE_FIELDS},
    )


def _view(name: str, registry: Mapping[str, Any], storage: Mapping[str, Any] | None = None) -> EnvironmentView:
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
        _storage_view(storage),
        (storage.get("provider") or None) if storage is not None else None,
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
    storage: dict[str, Any] | None = None
    if config.storage is not None:
        section = config.storage
        storage = {**(section.model_extra or {}), **{key: getattr(section, key) for key in _STORAGE_FIELDS}}
        for key in _STORAGE_SECRETS:
            if storage[key] is not None:
                storage[key] = storage[key].get_secret_value()
    return _view(config.environment, data, storage)


def local_sections(environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The ``registry:`` and ``storage:`` sections of the embedded ``local`` environment: an OCI layout
    and a blob folder under ``$MODELOPS_HOME``, no server needed."""
    home = modelops_home(environ)
    return (
        {"provider": "oci-layout", "path": str(home / "registry")},
        {"provider": "local", "path": str(home / LOCAL_BLOBS)},
    )


def _local_view(environ: Mapping[str, str]) -> EnvironmentView:
    """The embedded ``local`` environment (:func:`.environment.embedded_local`), without pydantic."""
    return _view(LOCAL_ENV, *local_sections(environ))


def registry_environment(name: str, environ: Mapping[str, str], memo: StatCache | None = None) -> EnvironmentView:
    """Environment ``name`` for selecting its registry: validated with the full model the first time a
    file is seen in a given state (``memo`` remembers that, and the registry view where it holds no
    secret), read with yaml alone -- or not at all -- afterwards. Its ``storage`` may be left unread:
    :func:`storage_section` reads that."""
    return _environment(name, environ, memo, need_storage=False)


def storage_section(name: str, environ: Mapping[str, str], memo: StatCache | None = None) -> StorageView | None:
    """The ``storage:`` section of environment ``name`` (``None`` when it has none), on the same terms as
    :func:`registry_environment`: a section holding a credential is read from the file each time."""
    return _environment(name, environ, memo, need_storage=True).storage


def _environment(
    name: str, environ: Mapping[str, str], memo: StatCache | None, *, need_storage: bool
) -> EnvironmentView:
    from modelops_bundle.core.hashing import file_fingerprint

    path = environment_file(name, environ)
    fingerprint = file_fingerprint(path)
    if fingerprint is None and name == LOCAL_ENV:
        return _local_view(environ)
    key = f"environment.v3:{path}"  # v3 remembers the storage section too, where it holds no secret
    remembered = memo.memo_get(key, fingerprint) if memo is not None and fingerprint is not None else None
    if remembered is None:
        from modelops_bundle.core.environment import load_environment

        config = load_environment(name, environ)  # validates; raises naming the file
        view = _view_of_model(config)
        if memo is not None and fingerprint is not None and file_fingerprint(path) == fingerprint:
            memo.memo_put(key, fingerprint, _memo_of(view))
        return view
    if isinstance(remembered, dict):
        registry, storage = remembered.get("registry"), remembered.get("storage", False)
        if isinstance(registry, dict) and (not need_storage or storage is None or isinstance(storage, dict)):
            view = _view(str(remembered.get("environment") or name), registry, storage or None)
            provider = remembered.get("storage_provider")
            if view.storage is None and isinstance(provider, str):
                view = view._replace(storage_provider=provider)
            return view
    from modelops_bundle.core.validation import parse_yaml, read_text

    data = parse_yaml(read_text(path, what="environment file"), path)
    return _view(str(data.get("environment") or name), data.get("registry") or {}, data.get("storage"))


#: Registry keys that never hold a secret; a view made of these alone may be remembered in the
#: project's stat cache (a file on disk), which must never hold a credential.
_MEMO_SAFE_KEYS = ("provider", "login_server", "path", "username", "requires_auth", "insecure")


def _memo_of(view: EnvironmentView) -> dict[str, Any]:
    """What to remember of a validated environment file: each section's view when it holds no secret
    (``registry``: ``None`` when it does; ``storage``: ``False`` when it does, ``None`` when absent), so
    the next run reads neither yaml nor the file for what it needs."""
    registry, storage = view.registry, view.storage
    remembered_registry: dict[str, Any] | None = None
    if registry.password is None and not registry.model_extra:
        remembered_registry = {key: getattr(registry, key) for key in _MEMO_SAFE_KEYS}
    remembered_storage: dict[str, Any] | bool | None = None
    if storage is not None:
        secret = storage.connection_string is not None or storage.secret_key is not None
        secret = secret or any(SECRET_NAME.search(k) or not _plain(v) for k, v in storage.model_extra.items())
        remembered_storage = False
        if not secret:
            remembered_storage = {
                **storage.model_extra,
                **{key: getattr(storage, key) for key in _STORAGE_FIELDS if key not in _STORAGE_SECRETS},
            }
    return {
        "environment": view.environment,
        "registry": remembered_registry,
        "storage_provider": view.storage_provider,
        "storage": remembered_storage,
    }


def _plain(value: Any) -> bool:
    """A scalar: a nested mapping (``storage_options``) may hide a credential under any name."""
    return value is None or isinstance(value, (str, int, float, bool))
