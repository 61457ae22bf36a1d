"""Shapes of the named providers that plugins contribute (storage providers, registry backends).

Only protocols live here; implementations are plugins. Selection by name, with the override rules, is
:func:`modelops_bundle.core.plugins.collect_named`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from modelops_bundle.core.storage import ProviderSettings


class NamedProvider(Protocol):
    """Anything a named-provider hook returns: a class with a unique ``name``."""

    name: ClassVar[str]


class StorageProviderClass(NamedProvider, Protocol):
    """A blob-storage provider class (a :class:`modelops_bundle.core.storage.StorageProvider` subclass);
    instances are made from the merged ``storage:`` settings of environment and project."""

    def __call__(self, settings: ProviderSettings) -> Any: ...


class RegistryBackendClass(NamedProvider, Protocol):
    """An OCI registry backend class; instances are made for one repository reference."""

    def __call__(self, settings: dict[str, Any]) -> Any: ...
