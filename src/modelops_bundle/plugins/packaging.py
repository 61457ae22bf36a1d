"""Built-in packaging hooks: tier policy, layer plan, git provenance annotations, the model registry file.

All ``trylast``, so an installed plugin overrides any of them. Imports of the packaging core happen inside
the hooks: every command loads this plugin, and only push needs pydantic and tarfile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from modelops_bundle import hookimpl

if TYPE_CHECKING:
    from modelops_bundle.plugin import BundleIndex, IndexEntry, LayerPlan, Project, StoragePolicy

MOPS_PLUGIN_API = "1.0"


@hookimpl(trylast=True)
def mops_storage_tier(entry: IndexEntry, policy: StoragePolicy, blob_available: bool) -> str | None:
    from modelops_bundle.plugin import decide_tier

    return decide_tier(entry, policy, blob_available=blob_available)


@hookimpl(trylast=True)
def mops_plan_layers(entries: Sequence[IndexEntry], policy: StoragePolicy) -> LayerPlan | None:
    from modelops_bundle.plugin import plan_layers

    return plan_layers(entries)


@hookimpl(trylast=True)
def mops_extra_files(project: Project) -> Sequence[str] | None:
    """The model registry travels with every version when it exists."""
    registry = project.registry_path
    return [registry.relative_to(project.root).as_posix()] if registry.is_file() else []


@hookimpl(trylast=True)
def mops_manifest_annotations(index: BundleIndex, project: Project) -> Mapping[str, str] | None:
    from modelops_bundle.plugin import git_annotations

    return git_annotations(project.root)
