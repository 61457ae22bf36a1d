"""Shapes of the named providers that plugins contribute (storage providers, registry backends).

Only protocols live here; implementations are plugins. Selection by name, with the override rules, is
:func:`modelops_bundle.core.plugins.collect_named`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol


class NamedProvider(Protocol):
    """Anything a named-provider hook returns: a class with a unique ``name``."""

    name: ClassVar[str]


class StorageProviderClass(NamedProvider, Protocol):
    """A blob-storage provider class; instances are made from an environment's ``storage:`` section."""

    def __call__(self, settings: dict[str, Any]) -> Any: ...


class RegistryBackendClass(NamedProvider, Protocol):
    """An OCI registry backend class; instances are made for one repository reference."""

    def __call__(self, settings: dict[str, Any]) -> Any: ...
