"""The public plugin API of modelops-bundle: the one module a plugin imports.

Everything a hook receives or returns, the base classes and protocols a plugin implements, the errors it
raises and the helpers the built-in plugins themselves are written with -- nothing more. What is here is
versioned (:data:`API_VERSION`) and kept compatible within a major version; everything else under
``modelops_bundle`` (``core``, ``cli``, ``plugins``) is internal and may change in any release. The
policy, and what each name is for: docs/plugins.md, "Public API" and "Compatibility".

A plugin declares the version it was written against, and is refused at load by a modelops-bundle that
does not provide it (another major, or an older minor)::

    from modelops_bundle.plugin import hookimpl

    MOPS_PLUGIN_API = "1.0"


    @hookimpl
    def mops_extra_files(project):
        return ["uv.lock"] if (project.root / "uv.lock").is_file() else None

Importing this module costs nothing: every name but :data:`hookimpl` and the version is loaded on first
use (``from modelops_bundle.plugin import StorageProvider`` loads the storage core then).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modelops_bundle import PLUGIN_API, hookimpl

if TYPE_CHECKING:
    from modelops_bundle.core.commands import Command, CommandRegistry, LazyCommand, lazy_command
    from modelops_bundle.core.context import CommandContext, Reporter
    from modelops_bundle.core.dependencies import code_closure, python_dependencies
    from modelops_bundle.core.discovery import (
        ROLE_COMPONENT,
        ROLE_MODEL,
        ClassMatch,
        CodeDependencies,
        DiscoveredModel,
        DiscoveredTarget,
        ImportTable,
        ProjectSources,
        SourceFile,
        decorator_call,
        find_project_class,
        find_subclasses,
        import_table,
        last_name,
        module_functions,
        module_level_defs,
        module_name_for,
        string_arg,
    )
    from modelops_bundle.core.envfiles import expand_path, modelops_home
    from modelops_bundle.core.errors import (
        BundleError,
        ConfigError,
        IntegrityError,
        PluginError,
        RegistryError,
        StorageError,
        UsageError,
    )
    from modelops_bundle.core.gitinfo import git_annotations
    from modelops_bundle.core.hashing import Hasher
    from modelops_bundle.core.hooks import Answers, HookFailure, Hooks
    from modelops_bundle.core.index import BundleIndex, IndexEntry
    from modelops_bundle.core.keys import Signer
    from modelops_bundle.core.model_registry import ModelRecord
    from modelops_bundle.core.oci_http.digests import sha256_digest, split_digest, verify_bytes, write_verified
    from modelops_bundle.core.packaging import LayerPlan, PlannedLayer, decide_tier, pattern_matches, plan_layers
    from modelops_bundle.core.plugins import PluginHost, PluginInfo
    from modelops_bundle.core.project import META_DIR, Project, find_project
    from modelops_bundle.core.providers import LazyProviderClass, RegistryBackendClass, StorageProviderClass
    from modelops_bundle.core.reference import Reference, parse_reference
    from modelops_bundle.core.registry import (
        OCI_INDEX,
        OCI_MANIFEST,
        BlobSource,
        ManifestRecord,
        RegistryBackend,
        TransferProgress,
        TransferStats,
    )
    from modelops_bundle.core.runner import (
        ModelResult,
        ModelRunner,
        NoRunnerError,
        RunnableModel,
        RunOutput,
        RunRequest,
    )
    from modelops_bundle.core.secrecy import is_secret_name
    from modelops_bundle.core.settings import (
        Environment,
        ProjectConfig,
        RegistrySection,
        StoragePolicy,
        StorageSection,
    )
    from modelops_bundle.core.storage import ByteCounter, ProviderSettings, StorageProvider, blob_key, check_key
    from modelops_bundle.plugins.registry_layout import OciLayoutRegistry

#: The plugin API this modelops-bundle provides, ``"MAJOR.MINOR"``. A minor release only adds to it.
API_VERSION = ".".join(map(str, PLUGIN_API))

#: Where each lazily loaded name lives (internal: import the names from this module, never from there).
_SOURCES: dict[str, tuple[str, ...]] = {
    "modelops_bundle.core.commands": ("Command", "CommandRegistry", "LazyCommand", "lazy_command"),
    "modelops_bundle.core.context": ("CommandContext", "Reporter"),
    "modelops_bundle.core.dependencies": ("code_closure", "python_dependencies"),
    "modelops_bundle.core.discovery": (
        "ROLE_COMPONENT",
        "ROLE_MODEL",
        "ClassMatch",
        "CodeDependencies",
        "DiscoveredModel",
        "DiscoveredTarget",
        "ImportTable",
        "ProjectSources",
        "SourceFile",
        "decorator_call",
        "find_project_class",
        "find_subclasses",
        "import_table",
        "last_name",
        "module_functions",
        "module_level_defs",
        "module_name_for",
        "string_arg",
    ),
    "modelops_bundle.core.envfiles": ("expand_path", "modelops_home"),
    "modelops_bundle.core.errors": (
        "BundleError",
        "ConfigError",
        "IntegrityError",
        "PluginError",
        "RegistryError",
        "StorageError",
        "UsageError",
    ),
    "modelops_bundle.core.gitinfo": ("git_annotations",),
    "modelops_bundle.core.hashing": ("Hasher",),
    "modelops_bundle.core.hooks": ("Answers", "HookFailure", "Hooks"),
    "modelops_bundle.core.index": ("BundleIndex", "IndexEntry"),
    "modelops_bundle.core.keys": ("Signer",),
    "modelops_bundle.core.model_registry": ("ModelRecord",),
    "modelops_bundle.core.oci_http.digests": ("sha256_digest", "split_digest", "verify_bytes", "write_verified"),
    "modelops_bundle.core.packaging": ("LayerPlan", "PlannedLayer", "decide_tier", "pattern_matches", "plan_layers"),
    "modelops_bundle.core.plugins": ("PluginHost", "PluginInfo"),
    "modelops_bundle.core.project": ("META_DIR", "Project", "find_project"),
    "modelops_bundle.core.providers": ("LazyProviderClass", "RegistryBackendClass", "StorageProviderClass"),
    "modelops_bundle.core.reference": ("Reference", "parse_reference"),
    "modelops_bundle.core.registry": (
        "OCI_INDEX",
        "OCI_MANIFEST",
        "BlobSource",
        "ManifestRecord",
        "RegistryBackend",
        "TransferProgress",
        "TransferStats",
    ),
    "modelops_bundle.core.runner": (
        "ModelResult",
        "ModelRunner",
        "NoRunnerError",
        "RunOutput",
        "RunRequest",
        "RunnableModel",
    ),
    "modelops_bundle.core.secrecy": ("is_secret_name",),
    "modelops_bundle.core.settings": (
        "Environment",
        "ProjectConfig",
        "RegistrySection",
        "StoragePolicy",
        "StorageSection",
    ),
    "modelops_bundle.core.storage": ("ByteCounter", "ProviderSettings", "StorageProvider", "blob_key", "check_key"),
    "modelops_bundle.plugins.registry_layout": ("OciLayoutRegistry",),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}


def tracked_files(project: Project) -> list[str]:
    """The project's tracked paths (``tracked.txt``), sorted, POSIX, relative to ``project.root``."""
    from modelops_bundle.core.workspace import Workspace

    return list(Workspace(project).tracked())


if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name is an error there too

    def __getattr__(name: str) -> Any:
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # next time a plain module attribute
        return value

    def __dir__() -> list[str]:
        return sorted(__all__)


__all__ = [
    "API_VERSION",
    "META_DIR",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "ROLE_COMPONENT",
    "ROLE_MODEL",
    "Answers",
    "BlobSource",
    "BundleError",
    "BundleIndex",
    "ByteCounter",
    "ClassMatch",
    "CodeDependencies",
    "Command",
    "CommandContext",
    "CommandRegistry",
    "ConfigError",
    "DiscoveredModel",
    "DiscoveredTarget",
    "Environment",
    "Hasher",
    "HookFailure",
    "Hooks",
    "ImportTable",
    "IndexEntry",
    "IntegrityError",
    "LayerPlan",
    "LazyCommand",
    "LazyProviderClass",
    "ManifestRecord",
    "ModelRecord",
    "ModelResult",
    "ModelRunner",
    "NoRunnerError",
    "OciLayoutRegistry",
    "PlannedLayer",
    "PluginError",
    "PluginHost",
    "PluginInfo",
    "Project",
    "ProjectConfig",
    "ProjectSources",
    "ProviderSettings",
    "Reference",
    "RegistryBackend",
    "RegistryBackendClass",
    "RegistryError",
    "RegistrySection",
    "Reporter",
    "RunOutput",
    "RunRequest",
    "RunnableModel",
    "Signer",
    "SourceFile",
    "StorageError",
    "StoragePolicy",
    "StorageProvider",
    "StorageProviderClass",
    "StorageSection",
    "TransferProgress",
    "TransferStats",
    "UsageError",
    "blob_key",
    "check_key",
    "code_closure",
    "decide_tier",
    "decorator_call",
    "expand_path",
    "find_project",
    "find_project_class",
    "find_subclasses",
    "git_annotations",
    "hookimpl",
    "import_table",
    "is_secret_name",
    "last_name",
    "lazy_command",
    "modelops_home",
    "module_functions",
    "module_level_defs",
    "module_name_for",
    "parse_reference",
    "pattern_matches",
    "plan_layers",
    "python_dependencies",
    "sha256_digest",
    "split_digest",
    "string_arg",
    "tracked_files",
    "verify_bytes",
    "write_verified",
]
