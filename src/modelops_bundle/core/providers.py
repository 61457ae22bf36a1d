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


class LazyProviderClass:
    """Stands for a built-in provider class until it is used: a named-provider hook may return it in
    place of the class, so that collecting every backend's name does not import every backend (the
    layout backend's module costs a push to an HTTP registry several milliseconds for nothing).

    Calling it constructs an instance of the real class; any other attribute is the real class's.
    """

    def __init__(self, name: str, target: str) -> None:
        self.name = name
        self._target = target  # "package.module:ClassName"
        self._cls: Any = None

    def load(self) -> Any:
        if self._cls is None:
            from modelops_bundle.core.entrypoints import load_object

            cls = load_object(self._target)
            if getattr(cls, "name", None) != self.name:
                raise RuntimeError(f"{self._target} is named {getattr(cls, 'name', None)!r}, not {self.name!r}")
            self._cls = cls
        return self._cls

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.load(), attribute)

    def __repr__(self) -> str:
        return f"<lazy provider {self.name!r} ({self._target})>"
