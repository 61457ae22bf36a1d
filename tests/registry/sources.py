"""Run the built-in discovery plugins on files of a tree, the way ``register-model`` does."""

from __future__ import annotations

from pathlib import Path

from modelops_bundle.core.discovery import DiscoveredModel, DiscoveredTarget, ProjectSources
from modelops_bundle.plugins import discovery_basemodel, discovery_starsim, targets_calabaria


def models_in(root: Path, rel: str) -> dict[str, DiscoveredModel]:
    """What both built-in model discovery plugins find in ``rel``, by class name."""
    source = ProjectSources(root).get(rel)
    found = (discovery_basemodel.mops_discover_models(source) or []) + (
        discovery_starsim.mops_discover_models(source) or []
    )
    return {model.class_name: model for model in found}


def targets_in(root: Path, rel: str) -> dict[str, DiscoveredTarget]:
    source = ProjectSources(root).get(rel)
    return {target.name: target for target in targets_calabaria.mops_discover_targets(source) or []}
