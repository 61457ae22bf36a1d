"""A project on disk: where its root and metadata live, and how to find it from any sub-folder."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from modelops_bundle.core.errors import NotInitializedError, UsageError

META_DIR = ".modelops-bundle"
IGNORE_FILE = ".modelopsignore"
#: The model registry, relative to the project root: the one metadata file that travels in every version.
REGISTRY_REL = f"{META_DIR}/registry.yaml"


class Project(NamedTuple):
    """Paths of one initialised project. Cheap to make; reads nothing. (Immutable: a NamedTuple, which,
    unlike a frozen dataclass, costs next to nothing to define -- every command defines it.)"""

    root: Path

    @property
    def meta(self) -> Path:
        return self.root / META_DIR

    @property
    def config_path(self) -> Path:
        return self.meta / "config.yaml"

    @property
    def env_path(self) -> Path:
        return self.meta / "env"

    @property
    def tracked_path(self) -> Path:
        return self.meta / "tracked.txt"

    @property
    def state_path(self) -> Path:
        return self.meta / "state.json"

    @property
    def registry_path(self) -> Path:
        return self.root / REGISTRY_REL

    @property
    def ignore_path(self) -> Path:
        return self.root / IGNORE_FILE

    @property
    def cache_dir(self) -> Path:
        """Machine-local, disposable data (stat cache); never pushed."""
        return self.meta / "cache"

    @property
    def lock_path(self) -> Path:
        return self.meta / "lock"

    @property
    def name(self) -> str:
        return repository_name(self.root.name)

    def check_folders(self) -> None:
        """``.modelops-bundle/`` and the folders the tool writes and deletes in (``cache/``, ``staging/``)
        are real folders: a project can arrive from someone else's archive, and a symlink planted there
        must not send a write or a delete outside the project (three ``lstat`` calls, every command)."""
        from modelops_bundle.core.fsutil import require_real_folder

        meta = require_real_folder(self.meta)
        require_real_folder(meta / "cache")
        require_real_folder(meta / "staging")


def find_project(start: Path) -> Project:
    """Walk up from ``start`` to the first folder holding ``.modelops-bundle/``."""
    current = Path(os.path.abspath(start))
    for folder in (current, *current.parents):
        if (folder / META_DIR).is_dir():
            return Project(folder)
    if not current.is_dir():  # e.g. -C with a typo: say so, not "no project"
        reason = "not a folder" if current.exists() else "no such folder"
        raise UsageError(f"cannot work in '{current}': {reason}")
    raise NotInitializedError(
        f"not a modelops-bundle project (or any parent up to /): {current}",
        hint="run 'mops bundle init' to create one here",
    )


_REPO_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def repository_name(folder_name: str) -> str:
    """An OCI repository name component from a folder name (lower case, ``[a-z0-9._-]``)."""
    name = _REPO_UNSAFE.sub("-", folder_name.lower()).strip("-._")
    return name or "bundle"
