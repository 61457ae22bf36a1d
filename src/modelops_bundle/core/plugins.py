"""Build the plugin manager: built-ins first, then entry points, each loaded the same way.

There is no module-global manager: the CLI's ``main()`` builds one :class:`PluginHost` per process and
passes it down; tests build a fresh one each time.

Environment:
    ``MOPS_DISABLE_PLUGINS=a,b``   do not load the plugins named ``a`` and ``b`` (built-in or third-party)
    ``MOPS_DISABLE_PLUGIN_AUTOLOAD=1``   skip the ``modelops_bundle`` entry points entirely
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from modelops_bundle import ENTRY_POINT_GROUP, PROJECT_NAME, __version__, hookspecs
from modelops_bundle.core.errors import PluginError

#: Built-in plugins: (name, module). They are loaded through the same path as third-party ones.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("commands", "modelops_bundle.cli.builtin_commands"),
    ("sha256", "modelops_bundle.plugins.hashing_sha256"),
    ("storage", "modelops_bundle.plugins.storage_fsspec"),
    ("packaging", "modelops_bundle.plugins.packaging"),
    ("basemodel", "modelops_bundle.plugins.discovery_basemodel"),
    ("starsim", "modelops_bundle.plugins.discovery_starsim"),
    ("calabaria", "modelops_bundle.plugins.targets_calabaria"),
    ("code-fingerprint", "modelops_bundle.plugins.code_fingerprint"),
    ("oci-layout", "modelops_bundle.plugins.registry_layout"),
    ("oci-distribution", "modelops_bundle.plugins.registry_distribution"),
)

BUILTIN_DISTRIBUTION = "modelops-bundle"


@dataclass
class PluginInfo:
    """What ``mops bundle plugins`` shows for one plugin (loaded, disabled or broken)."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    status: str = "loaded"  # loaded | disabled | error
    error: str | None = None
    hooks: list[str] = field(default_factory=list)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def disabled_names(environ: Mapping[str, str]) -> set[str]:
    """Plugin names blocked by ``MOPS_DISABLE_PLUGINS`` (comma or whitespace separated)."""
    raw = environ.get("MOPS_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.replace(",", " ").split() if part.strip()}


class PluginHost:
    """A pluggy manager plus what was learnt while loading plugins (for reporting)."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}

    @property
    def hook(self) -> Any:
        return self.pm.hook

    @property
    def errors(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.status == "error"]

    def is_builtin(self, plugin_name: str) -> bool:
        info = self.infos.get(plugin_name)
        return bool(info and info.builtin)

    def register(self, plugin: object, info: PluginInfo) -> None:
        """Register one plugin object; a failure is recorded on ``info``, never raised."""
        if info.name in self.infos and self.infos[info.name].status == "loaded":
            info.status, info.error = "error", f"a plugin named {info.name!r} is already loaded"
            self.infos[f"{info.name} ({info.distribution})"] = info
            return
        try:
            self.pm.register(plugin, name=info.name)
        except Exception as exc:  # PluginValidationError, ValueError: refuse the plugin, keep going
            info.status, info.error = "error", _describe(exc)
        else:
            info.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ())
        self.infos[info.name] = info

    def record_failure(self, info: PluginInfo, exc: BaseException) -> None:
        info.status, info.error = "error", _describe(exc)
        self.infos[info.name] = info


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if exc.__class__.__name__ not in text else text


def build_plugin_host(
    environ: Mapping[str, str],
    *,
    builtins: Iterable[tuple[str, str]] = BUILTIN_PLUGINS,
    extra_plugins: Iterable[tuple[str, object]] = (),
) -> PluginHost:
    """Load built-ins, then entry points (unless disabled), then ``extra_plugins`` (tests).

    Never raises for a broken plugin: it is recorded in :attr:`PluginHost.infos` with its distribution,
    and the rest of the tool keeps working.
    """
    host = PluginHost()
    blocked = disabled_names(environ)
    for name, module_name in builtins:
        info = PluginInfo(name, module_name, BUILTIN_DISTRIBUTION, __version__, builtin=True)
        if name in blocked:
            info.status = "disabled"
            host.infos[name] = info
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            host.record_failure(info, exc)
            continue
        host.register(module, info)
    if not _truthy(environ.get("MOPS_DISABLE_PLUGIN_AUTOLOAD")):
        _load_entry_points(host, blocked)
    for name, plugin in extra_plugins:
        info = PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), "(test)", "", builtin=False)
        host.register(plugin, info)
    return host


def _load_entry_points(host: PluginHost, blocked: set[str]) -> None:
    from modelops_bundle.core.entrypoints import entry_points

    seen: set[tuple[str, str]] = set()
    for ep in entry_points(ENTRY_POINT_GROUP):
        if (ep.name, ep.value) in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        info = PluginInfo(ep.name, ep.value, ep.distribution, ep.version, builtin=False)
        if ep.name in blocked:
            info.status = "disabled"
            host.infos.setdefault(ep.name, info)
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            host.record_failure(info, exc)
            continue
        host.register(plugin, info)


def collect_named(host: PluginHost, hook_name: str) -> dict[str, Any]:
    """Call a named-provider hook and resolve names (hatchling style).

    A third-party class replaces a built-in class of the same name; two third-party classes with one
    name raise :class:`PluginError` naming both plugins.
    """
    chosen: dict[str, tuple[Any, str, bool]] = {}
    caller = getattr(host.hook, hook_name)
    for impl in caller.get_hookimpls():
        builtin = host.is_builtin(impl.plugin_name)
        for cls in impl.function() or ():
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {impl.plugin_name!r} returned {cls!r} from {hook_name} without a name")
            if name in chosen:
                _, other_plugin, other_builtin = chosen[name]
                if other_builtin and not builtin:
                    chosen[name] = (cls, impl.plugin_name, builtin)
                elif not other_builtin and not builtin and other_plugin != impl.plugin_name:
                    raise PluginError(
                        f"plugins {other_plugin!r} and {impl.plugin_name!r} both provide {name!r} ({hook_name})",
                        hint=f"disable one with MOPS_DISABLE_PLUGINS={impl.plugin_name}",
                    )
                continue
            chosen[name] = (cls, impl.plugin_name, builtin)
    return {name: cls for name, (cls, _, _) in chosen.items()}


def call_each(host: PluginHost, hook_name: str, **kwargs: Any) -> list[tuple[str, Any, BaseException | None]]:
    """Call every implementation of a hook in pluggy's order, isolating failures.

    Returns ``(plugin_name, result, exception)`` per implementation, so one broken plugin is reported
    (with its name and distribution) instead of aborting the command.
    """
    outcomes: list[tuple[str, Any, BaseException | None]] = []
    caller = getattr(host.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception as exc:
            outcomes.append((impl.plugin_name, None, exc))
        else:
            outcomes.append((impl.plugin_name, result, None))
    return outcomes


def describe_plugin(host: PluginHost, plugin_name: str) -> str:
    """``'name' (distribution version)`` for messages about a plugin."""
    info = host.infos.get(plugin_name)
    if info is None:
        return repr(plugin_name)
    version = f" {info.version}" if info.version else ""
    return f"{plugin_name!r} ({info.distribution}{version})"
