"""The settings files on disk: ``config.yaml`` and environment files, read into :mod:`.settings` records.

Each file has one reader: YAML through the memo (:mod:`.memo`; data holding a credential is never
remembered), then :func:`.settings.build`, whose problems become a :class:`ConfigError` naming the file,
the key and the line. Writing ``config.yaml`` is :func:`save_config` (atomic; callers hold the project
lock).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from modelops_bundle.core.envfiles import (
    LOCAL_BLOBS,
    LOCAL_ENV,
    environment_file,
    list_environments,
    modelops_home,
)
from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.legacy_formats import config_markers, refuse
from modelops_bundle.core.secrecy import holds_secret
from modelops_bundle.core.settings import (
    Environment,
    ProjectConfig,
    RegistrySection,
    SettingsError,
    StorageSection,
    build,
    to_plain,
)

if TYPE_CHECKING:
    from modelops_bundle.core.memo import Memo

R = TypeVar("R", bound=tuple[Any, ...])

CONFIG_HEADER = "# modelops-bundle configuration (see docs/formats.md)\n"
#: Keys of ``config.yaml`` files written by earlier releases, read and migrated (:class:`ConfigFile`).
LEGACY_REGISTRY_REF = "registry_ref"


def read_settings(path: Path, cls: type[R], *, what: str, memo: Memo | None = None, key: str = "") -> R:
    """The record ``cls`` from the YAML file ``path``; its parsed data remembered in ``memo`` (under
    ``key``) unless it holds a credential."""
    data = _read_data(path, what, memo, key)
    return build_from_file(cls, {} if data is None else data, path)


def build_from_file(cls: type[R], data: Any, path: Path) -> R:
    """:func:`.settings.build`, with its problems told as a :class:`ConfigError` naming ``path`` and lines."""
    try:
        return build(cls, data)
    except SettingsError as exc:
        raise _config_error(path, exc) from None


def _read_data(path: Path, what: str, memo: Memo | None, key: str) -> Any:
    def parse() -> Any:
        from modelops_bundle.core.validation import parse_yaml, read_text

        return parse_yaml(read_text(path, what=what), path)  # None for an empty document

    if memo is None:
        return parse()
    return memo.cached(key or f"settings:{path}", path, parse, keep=_rememberable)


def _rememberable(data: Any) -> bool:
    """Only plain, credential-free data goes to the memo (a file on disk)."""
    if holds_secret(data):
        return False
    try:
        json.dumps(data)
    except (TypeError, ValueError):  # e.g. a YAML date
        return False
    return True


def _config_error(path: Path, exc: SettingsError) -> ConfigError:
    from modelops_bundle.core.validation import read_text, yaml_line_of

    try:
        text: str | None = read_text(path)
    except ConfigError:
        text = None
    problems = []
    for loc, message in exc.problems[:5]:
        line = yaml_line_of(text, loc) if text is not None else None
        where = f" (line {line})" if line else ""
        problems.append(f"{'.'.join(loc) or '(top level)'}{where}: {message}")
    more = f" (and {len(exc.problems) - 5} more)" if len(exc.problems) > 5 else ""
    return ConfigError(f"{path}: invalid: " + "; ".join(problems) + more)


# ------------------------------------------------------------------------------------- environments


def embedded_local(environ: Mapping[str, str]) -> Environment:
    """The built-in ``local`` environment: an OCI layout and a blob folder under ``$MODELOPS_HOME``."""
    home = modelops_home(environ)
    return Environment(
        environment=LOCAL_ENV,
        registry=RegistrySection(provider="oci-layout", path=str(home / "registry")),
        storage=StorageSection(provider="local", path=str(home / LOCAL_BLOBS)),
    )


def load_environment(name: str, environ: Mapping[str, str], memo: Memo | None = None) -> Environment:
    """Environment ``name``: its file when present, the embedded default for ``local``."""
    path = environment_file(name, environ)
    if not path.is_file():
        if name == LOCAL_ENV and not path.exists():
            return embedded_local(environ)
        if path.exists():
            raise ConfigError(f"environment file {path} is not a regular file")
        from modelops_bundle.core.suggest import did_you_mean

        names = list_environments(environ)
        raise ConfigError(
            f"environment {name!r} not found: no file {path}{did_you_mean(name, names)}",
            hint=f"available: {', '.join(names)}",
        )
    return read_settings(path, Environment, what="environment file", memo=memo, key=f"environment:{path}")


def environment_source(name: str, environ: Mapping[str, str]) -> str:
    """Where environment ``name`` comes from, for messages: its file, or the embedded default."""
    path = environment_file(name, environ)
    return str(path) if path.is_file() else "the embedded default"


# ------------------------------------------------------------------------------------ config.yaml


class ConfigFile(NamedTuple):
    """``config.yaml`` as read: the record, and -- for a file written by an earlier release -- the
    ``registry_ref`` it held (``HOST/REPOSITORY`` or ``REPOSITORY``), which the session migrates once
    it knows the environment (:func:`.session.Session.config`)."""

    config: ProjectConfig
    legacy_registry_ref: str | None = None


def read_config(path: Path, memo: Memo | None = None) -> ConfigFile:
    data = _read_data(path, "bundle configuration", memo, "config")
    markers = config_markers(data)
    if markers:  # written by v0.1.1: 'mops bundle migrate' converts it, nothing else may read it
        raise refuse(path, markers)
    if data is None:  # an empty document: a truncated file (a file of only defaults says {})
        raise ConfigError(
            f"{path}: empty (a truncated file?); it holds at least 'repository: NAME'",
            hint="write the project's repository name into it, e.g. 'repository: my-model'",
        )
    legacy: str | None = None
    if isinstance(data, Mapping) and LEGACY_REGISTRY_REF in data:
        data = dict(data)
        raw = data.pop(LEGACY_REGISTRY_REF)
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigError(f"{path}: {LEGACY_REGISTRY_REF}: must be a reference such as HOST/REPOSITORY")
        legacy = raw.strip()
        if "repository" not in data and "registry" not in data:
            data.update(split_legacy_ref(legacy, path))
    return ConfigFile(build_from_file(ProjectConfig, data, path), legacy)


def split_legacy_ref(ref: str, path: Path) -> dict[str, str]:
    """``registry_ref`` as the keys that replace it: ``repository``, and ``registry`` when it named a host."""
    from modelops_bundle.core.errors import UsageError
    from modelops_bundle.core.reference import parse_reference

    try:
        reference = parse_reference(ref)
    except UsageError as exc:
        raise ConfigError(f"{path}: {LEGACY_REGISTRY_REF}: {exc.message}") from None
    keys = {"repository": reference.repository}
    if reference.registry:
        keys["registry"] = reference.registry
    return keys


def render_config(config: ProjectConfig) -> str:
    from modelops_bundle.core.validation import dump_yaml

    return CONFIG_HEADER + dump_yaml(to_plain(config, reveal_secrets=True))


def save_config(path: Path, config: ProjectConfig, memo: Memo | None = None) -> None:
    """Write ``config.yaml`` atomically (under the project lock), remembering what it now holds."""
    from modelops_bundle.core.fsutil import atomic_write_text

    atomic_write_text(path, render_config(config))
    if memo is not None:
        memo.remember("config", path, to_plain(config))
