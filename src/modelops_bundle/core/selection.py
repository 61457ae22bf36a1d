"""What a selection of models and targets needs of a version: their code and data as the version's
``registry.yaml`` records them, the registry itself, and the project's root metadata -- for partial
pulls (``pull --model``) and selective materialisation (``api.materialize(models=...)``) alike.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelops_bundle.core.errors import IntegrityError, UsageError
from modelops_bundle.core.project import REGISTRY_REL

if TYPE_CHECKING:
    from modelops_bundle.core.model_registry import Registry

#: Root-level files every selection keeps: how to install and describe the project.
PROJECT_METADATA = (
    "pyproject.toml",
    "setup.cfg",
    "setup.py",
    "uv.lock",
    "poetry.lock",
    "Pipfile",
    "Pipfile.lock",
    "requirements*.txt",
    "environment.yml",
    "environment.yaml",
    ".python-version",
)


def select_paths(paths: Sequence[str], registry: Registry | None, ids: Sequence[str], *, source: str) -> list[str]:
    """The paths of a version that the models/targets ``ids`` need (see the module docstring)."""
    if registry is None:
        raise UsageError(f"{source} has no model registry ({REGISTRY_REL}); it cannot be materialised by model")
    present = set(paths)
    wanted = {REGISTRY_REL}
    for ident in ids:
        record = registry.models.get(ident) or registry.targets.get(ident)
        if record is None:
            from modelops_bundle.core.suggest import did_you_mean

            known = ", ".join(sorted(registry.models)) or "none"
            similar = did_you_mean(ident, [*registry.models, *registry.targets])
            raise UsageError(f"{source}: no model or target {ident!r}{similar}", hint=f"models: {known}")
        wanted.update(rel for rel, _kind in record.dependencies())
    missing = sorted(wanted - present)
    if missing:
        raise IntegrityError(
            f"{source}: the registry names {len(missing)} file(s) the version lacks, e.g. {missing[0]}"
        )
    for rel in present:
        if "/" not in rel and any(fnmatch.fnmatchcase(rel, pattern) for pattern in PROJECT_METADATA):
            wanted.add(rel)
    return sorted(wanted)
