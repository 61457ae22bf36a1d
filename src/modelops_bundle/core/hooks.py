"""Typed calls of every hook: what the core uses instead of hook names (in the manner of tox's plugin manager).

:class:`Hooks` has one method per hookspec, with the hook's own parameters, and is what
``PluginHost.hook`` returns. Every call goes through pluggy's ``HookCaller``, so hook wrappers
(``wrapper=True`` and old-style ``hookwrapper=True``), ``tryfirst``/``trylast`` and ``pm.trace`` apply to
all hooks alike (decision 0031).

Collecting hooks keep two things a plain pluggy call loses, for messages that name a plugin:

* *who answered what*: each implementation's answer is recorded with its plugin's name while the call
  runs, and matched (by identity) to the result list pluggy returns after the wrappers have had their say;
  an item a wrapper put there is attributed to no plugin (``None``);
* *failure isolation* (:data:`ISOLATED`): an implementation that raises is recorded as a
  :class:`HookFailure` and contributes nothing, so one broken plugin cannot hide the others' commands,
  discoveries, annotations or notifications. Wrappers see the answers of the implementations that worked.

Both are done by :func:`guard_implementations`, which wraps each plain (non-wrapper) implementation of a
collecting hook once, when its plugin is registered: the guard is transparent unless a :class:`Hooks`
call of that very hook is in progress on this thread. First-result hooks are called as they are -- the
per-file ``mops_storage_tier`` pays one method call and nothing more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from modelops_bundle.core.errors import PluginError

if TYPE_CHECKING:
    from pathlib import Path

    import pluggy

    from modelops_bundle.core.commands import CommandRegistry
    from modelops_bundle.core.discovery import CodeDependencies, DiscoveredModel, DiscoveredTarget, SourceFile
    from modelops_bundle.core.hashing import Hasher
    from modelops_bundle.core.index import BundleIndex, IndexEntry
    from modelops_bundle.core.keys import Signer
    from modelops_bundle.core.packaging import LayerPlan
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.project import Project
    from modelops_bundle.core.providers import RegistryBackendClass, StorageProviderClass
    from modelops_bundle.core.runner import ModelRunner, RunnableModel
    from modelops_bundle.core.settings import StoragePolicy

T = TypeVar("T")

#: Collecting hooks whose implementations are called in isolation: one that raises is reported (a
#: :class:`HookFailure`) and the others still run. Everywhere else an exception propagates, and the CLI
#: names the plugin it came from (``core.plugins.failing_plugin``).
ISOLATED = frozenset(
    {
        "mops_add_commands",
        "mops_discover_models",
        "mops_discover_targets",
        "mops_code_dependencies",
        "mops_manifest_annotations",
        "mops_extra_files",
        "mops_push_finished",
        "mops_pull_finished",
    }
)


class HookFailure(NamedTuple):
    """An implementation of an isolated hook that raised: its plugin and the exception."""

    plugin: str
    error: Exception


class Answers(Generic[T]):
    """What a collecting hook returned, after any hook wrappers: the values that are not ``None``, in
    pluggy's call order (third-party plugins before the built-ins), each with the plugin that gave it
    (``None`` for a value a hook wrapper added), and the implementations that failed. Iterating gives
    ``(plugin, value)`` pairs. (A plain class: every command defines it, and a dataclass costs ~0.5 ms to
    define; decision 0017.)"""

    __slots__ = ("failures", "plugins", "values")

    def __init__(self, failures: list[HookFailure] | None = None) -> None:
        self.values: list[T] = []
        self.plugins: list[str | None] = []
        self.failures: list[HookFailure] = failures if failures is not None else []

    def __iter__(self) -> Iterator[tuple[str | None, T]]:
        return iter(zip(self.plugins, self.values, strict=True))

    def __repr__(self) -> str:
        return f"Answers(values={self.values!r}, plugins={self.plugins!r}, failures={self.failures!r})"


class _Call:
    """One :class:`Hooks` call of a collecting hook in progress: what each implementation answered."""

    __slots__ = ("answered", "failures", "hook", "isolate")

    def __init__(self, hook: str, isolate: bool) -> None:
        self.hook = hook
        self.isolate = isolate
        self.answered: list[tuple[str, object]] = []
        self.failures: list[HookFailure] = []

    def answers(self, results: Sequence[Any]) -> Answers[Any]:
        """Attribute each result to the implementation that returned that very object (the first one not
        yet used: two plugins may return the same constant); the rest came from a wrapper."""
        answers: Answers[Any] = Answers(failures=self.failures)
        unused = list(self.answered)
        for value in results:
            owner = None
            for position, (plugin, answered) in enumerate(unused):
                if answered is value:
                    owner = plugin
                    del unused[position]
                    break
            answers.values.append(value)
            answers.plugins.append(owner)
        return answers


#: The facade call in progress on this thread (``call``), if any. Hook calls nest (an implementation may
#: call another hook), so each call restores the one it found.
_CURRENT = threading.local()


def guard_implementations(callers: Iterable[pluggy.HookCaller], plugin: object) -> None:
    """Wrap ``plugin``'s plain implementations of collecting hooks (see the module docstring); ``callers``
    are the hook callers it is registered with (``pm.get_hookcallers(plugin)``).

    Called once per plugin, right after ``pm.register``. pluggy's ``_multicall`` calls
    ``HookImpl.function``; replacing it keeps pluggy's ordering, wrappers and tracing around the guard,
    and the original function stays reachable as ``__wrapped__`` (for :func:`implementation_of`).
    """
    for caller in callers:
        spec = caller.spec
        if spec is None or spec.opts.get("firstresult"):
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
                # HookImpl.function is declared Final for pluggy's users; the manager that owns the
                # implementation may still decorate it (this is the one place that does).
                impl.function = _guard(caller.name, impl.plugin_name, impl.function)  # type: ignore[misc]


def _guard(hook: str, plugin: str, function: Callable[..., object]) -> Callable[..., object]:
    def guarded(*args: object) -> object:
        call: _Call | None = getattr(_CURRENT, "call", None)
        if call is None or call.hook != hook:  # called by someone else: stay out of the way
            return function(*args)
        try:
            value = function(*args)
        except Exception as exc:
            if not call.isolate:
                raise
            call.failures.append(HookFailure(plugin, exc))
            return None
        call.answered.append((plugin, value))
        return value

    guarded.__wrapped__ = function  # type: ignore[attr-defined]
    return guarded


def implementation_of(function: Callable[..., object]) -> Callable[..., object]:
    """The plugin's own function behind a guard (itself when not guarded)."""
    inner: Callable[..., object] = getattr(function, "__wrapped__", function)
    return inner


class Hooks:
    """One typed method per hook; ``PluginHost.hook``. Arguments are those of the hookspec
    (:mod:`modelops_bundle.hookspecs` documents each hook)."""

    def __init__(self, host: PluginHost) -> None:
        self._host = host
        self._relay = host.pm.hook

    def _collect(self, hook: str, **kwargs: object) -> Answers[Any]:
        call = _Call(hook, hook in ISOLATED)
        outer = getattr(_CURRENT, "call", None)
        _CURRENT.call = call
        try:
            results = getattr(self._relay, hook)(**kwargs)
        finally:
            _CURRENT.call = outer
        return call.answers(results if isinstance(results, (list, tuple)) else [])

    # ----------------------------------------------------------------------------------------- commands

    def mops_add_commands(self, registry: CommandRegistry) -> Answers[object]:
        """Every plugin adds its commands; ``failures`` are the plugins whose hook raised."""
        return self._collect("mops_add_commands", registry=registry)

    # ---------------------------------------------------------------------------------------- discovery

    def mops_discover_models(self, source: SourceFile) -> Answers[Sequence[DiscoveredModel]]:
        return self._collect("mops_discover_models", source=source)

    def mops_discover_targets(self, source: SourceFile) -> Answers[Sequence[DiscoveredTarget]]:
        return self._collect("mops_discover_targets", source=source)

    def mops_code_dependencies(self, model: DiscoveredModel, project: Project) -> Answers[CodeDependencies]:
        return self._collect("mops_code_dependencies", model=model, project=project)

    # ------------------------------------------------------------------------------------------ running

    def mops_model_runner(self, model: RunnableModel) -> ModelRunner | None:
        runner: ModelRunner | None = self._relay.mops_model_runner(model=model)
        return runner

    # ------------------------------------------------------------------------------------------ hashing

    def mops_file_hasher(self, algorithm: str) -> Hasher | None:
        hasher: Hasher | None = self._relay.mops_file_hasher(algorithm=algorithm)
        return hasher

    def mops_code_fingerprint(self, path: Path, source: bytes) -> str | None:
        fingerprint: str | None = self._relay.mops_code_fingerprint(path=path, source=source)
        return fingerprint

    # ------------------------------------------------------------------------------- named providers

    def mops_storage_providers(self) -> dict[str, StorageProviderClass]:
        """Provider classes by name, after the override rules (:func:`by_name`)."""
        return by_name(self._host, "mops_storage_providers", self._collect("mops_storage_providers"))

    def mops_registry_backends(self) -> dict[str, RegistryBackendClass]:
        """Backend classes by name, after the override rules (:func:`by_name`)."""
        return by_name(self._host, "mops_registry_backends", self._collect("mops_registry_backends"))

    # ---------------------------------------------------------------------------------------- packaging

    def mops_storage_tier(self, entry: IndexEntry, policy: StoragePolicy, blob_available: bool) -> str | None:
        tier: str | None = self._relay.mops_storage_tier(entry=entry, policy=policy, blob_available=blob_available)
        return tier

    def mops_plan_layers(self, entries: Sequence[IndexEntry], policy: StoragePolicy) -> LayerPlan | None:
        plan: LayerPlan | None = self._relay.mops_plan_layers(entries=entries, policy=policy)
        return plan

    def mops_manifest_annotations(self, index: BundleIndex, project: Project) -> Answers[Mapping[str, str]]:
        return self._collect("mops_manifest_annotations", index=index, project=project)

    def mops_extra_files(self, project: Project) -> Answers[Sequence[str]]:
        return self._collect("mops_extra_files", project=project)

    # ------------------------------------------------------------------------------------------ signing

    def mops_signers(self) -> dict[str, type[Signer]]:
        """Signer classes by scheme, after the override rules (:func:`by_name`)."""
        return by_name(self._host, "mops_signers", self._collect("mops_signers"))

    # ------------------------------------------------------------------------------------------- events

    def mops_push_finished(self, result: Mapping[str, Any]) -> Answers[object]:
        return self._collect("mops_push_finished", result=result)

    def mops_pull_finished(self, result: Mapping[str, Any]) -> Answers[object]:
        return self._collect("mops_pull_finished", result=result)


def by_name(host: PluginHost, hook_name: str, answers: Answers[Any]) -> dict[str, Any]:
    """Resolve the answers of a named-provider hook by name (hatchling style).

    A third-party class replaces a built-in class of the same name; two third-party classes with one
    name raise :class:`PluginError` naming both plugins. A class a hook wrapper added counts as
    third-party.
    """
    chosen: dict[str, tuple[Any, str, bool]] = {}
    for plugin, classes in answers:
        owner = plugin if plugin is not None else f"a {hook_name} wrapper"
        builtin = plugin is not None and host.is_builtin(plugin)
        for cls in classes or ():
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {owner!r} returned {cls!r} from {hook_name} without a name")
            if name in chosen:
                _, other_plugin, other_builtin = chosen[name]
                if other_builtin and not builtin:
                    chosen[name] = (cls, owner, builtin)
                elif not other_builtin and not builtin and other_plugin != owner:
                    raise PluginError(
                        f"plugins {other_plugin!r} and {owner!r} both provide {name!r} ({hook_name})",
                        hint=f"disable one with MOPS_DISABLE_PLUGINS={owner if plugin is not None else other_plugin}",
                    )
                continue
            chosen[name] = (cls, owner, builtin)
    return {name: cls for name, (cls, _, _) in chosen.items()}
