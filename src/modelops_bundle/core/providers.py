"""Shapes of the named providers that plugins contribute (storage providers, registry backends).

Only protocols and the lazy stand-in live here; implementations are plugins. Selection by name, with the
override rules, is :func:`modelops_bundle.core.hooks.by_name` (through ``host.hook.mops_*()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from modelops_bundle.core.storage import ProviderSettings


class NamedProvider(Protocol):
    """Anything a named-provider hook returns: a class with a unique ``name``."""

    name: ClassVar[str]


class StorageProviderClass(NamedProvider, Protocol):
    """A blob-storage provider class (a :class:`modelops_bundle.core.storage.StorageProvider` subclass, or
    a :class:`LazyProviderClass` standing for one); instances are made from the merged ``storage:``
    settings of environment and project. ``schemes`` and ``is_registry_tier`` are read to choose among
    providers, before any is constructed."""

    schemes: ClassVar[tuple[str, ...]]
    is_registry_tier: ClassVar[bool]

    def __call__(self, settings: ProviderSettings) -> Any: ...


class RegistryBackendClass(NamedProvider, Protocol):
    """An OCI registry backend class; instances are made for one repository reference."""

    def __call__(self, settings: dict[str, Any]) -> Any: ...


class LazyProviderClass:
    """Stands for a provider class until it is used: a named-provider hook may return it in place of the
    class, so that collecting every provider's name does not import every provider (the storage SDK
    wrappers, the layout backend: milliseconds of every command for nothing).

    ``declared`` are class attributes known without importing the class -- for a storage provider,
    ``schemes`` and ``is_registry_tier``, which the core reads to choose one -- and checked against the
    real class when it loads. Calling the stand-in constructs an instance of the real class; any other
    attribute is the real class's.
    """

    def __init__(self, name: str, target: str, **declared: Any) -> None:
        self.name = name
        self._target = target  # "package.module:ClassName"
        self._declared = declared
        self._cls: Any = None
        self.__dict__.update(declared)

    def load(self) -> Any:
        """The real class (imported on first use)."""
        if self._cls is None:
            from modelops_bundle.core.entrypoints import load_object

            cls = load_object(self._target)
            if getattr(cls, "name", None) != self.name:
                raise RuntimeError(f"{self._target} is named {getattr(cls, 'name', None)!r}, not {self.name!r}")
            for attribute, value in self._declared.items():
                if getattr(cls, attribute, None) != value:
                    raise RuntimeError(
                        f"{self._target}.{attribute} is {getattr(cls, attribute, None)!r}, "
                        f"but its lazy stand-in declares {value!r}"
                    )
            self._cls = cls
        return self._cls

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("_") and not attribute.startswith("__"):  # our own, never the class's
            raise AttributeError(attribute)
        return getattr(self.load(), attribute)

    def __repr__(self) -> str:
        return f"<lazy provider {self.name!r} ({self._target})>"


def resolve_class(cls: Any) -> Any:
    """The real class behind ``cls`` (``cls`` itself unless it is a :class:`LazyProviderClass`)."""
    return cls.load() if isinstance(cls, LazyProviderClass) else cls
