"""Environments by name: ``$MODELOPS_HOME``, the ``bundle-env/<name>.yaml`` files, the default choice.

The ModelOps infrastructure writes these files (``mops infra up``); a project pins one by name in
``.modelops-bundle/env``. Reading one into a record is :func:`.settings_files.load_environment`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from modelops_bundle.core.errors import UsageError
from modelops_bundle.core.patterns import LazyPattern

LOCAL_ENV = "local"
#: The environment variable naming the environment to use.
ENV_VARIABLE = "MOPS_ENV"
#: The ``local`` storage provider's default folder, under ``$MODELOPS_HOME``.
LOCAL_BLOBS = "blobs"
ENV_NAME = LazyPattern(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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


def chosen_environment(explicit: str | None, environ: Mapping[str, str]) -> str:
    """The environment of a command outside a project (the API, workers, ``sign --env``): ``explicit``
    (``--env``, ``env=``), else ``$MOPS_ENV``, else ``local``."""
    return explicit or environ.get(ENV_VARIABLE) or LOCAL_ENV


def default_environment_name(environ: Mapping[str, str]) -> str:
    """What ``init`` pins without ``--env``: ``$MOPS_ENV``, else ``dev`` when provisioned, else ``local``."""
    explicit = environ.get(ENV_VARIABLE)
    if explicit:
        return explicit
    if environment_file("dev", environ).is_file():
        return "dev"
    return LOCAL_ENV


def expand_path(raw: str) -> Path:
    return Path(os.path.expandvars(raw)).expanduser()
