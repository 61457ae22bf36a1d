"""Build the plugin manager: built-ins first, then entry points, each loaded the same way.

There is no module-global manager: the CLI's ``main()`` builds one :class:`PluginHost` per process and
passes it down; tests build a fresh one each time.

Environment:
    ``MOPS_DISABLE_PLUGINS=a,b``   do not load the plugins named ``a`` and ``b`` (built-in or third-party)
    ``MOPS_DISABLE_PLUGIN_AUTOLOAD=1``   skip the ``modelops_bundle`` entry points entirely
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Mapping
from types import CodeType, TracebackType
from typing import Any, NamedTuple

import pluggy

from modelops_bundle import ENTRY_POINT_GROUP, PLUGIN_API, PROJECT_NAME, __version__, hookspecs
from modelops_bundle.core.flags import env_flag
from modelops_bundle.core.hooks import Hooks, guard_implementations, implementation_of

#: Built-in plugins: (name, module). They are loaded through the same path as third-party ones.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("commands", "modelops_bundle.cli.builtin_commands"),
    ("sha256", "modelops_bundle.plugins.hashing_sha256"),
    ("storage", "modelops_bundle.plugins.storage"),
    ("packaging", "modelops_bundle.plugins.packaging"),
    ("basemodel", "modelops_bundle.plugins.discovery_basemodel"),
    ("starsim", "modelops_bundle.plugins.discovery_starsim"),
    ("calabaria", "modelops_bundle.plugins.targets_calabaria"),
    ("calabaria-runner", "modelops_bundle.plugins.runner_calabaria"),
    ("starsim-runner", "modelops_bundle.plugins.runner_starsim"),
    ("code-fingerprint", "modelops_bundle.plugins.code_fingerprint"),
    ("oci-layout", "modelops_bundle.plugins.oci_layout"),
    ("oci-distribution", "modelops_bundle.plugins.oci_distribution"),
)

BUILTIN_DISTRIBUTION = "modelops-bundle"


class PluginInfo:
    """What ``mops bundle plugins`` shows for one plugin (loaded, disabled or broken). A plain class (a
    record every command defines: decision 0017)."""

    def __init__(
        self,
        name: str,
        module: str,
        distribution: str,
        version: str,
        builtin: bool,
        status: str = "loaded",  # loaded | disabled | error
        error: str | None = None,
        hooks: list[str] | None = None,
    ) -> None:
        self.name = name
        self.module = module
        self.distribution = distribution
        self.version = version
        self.builtin = builtin
        self.status = status
        self.error = error
        self.hooks: list[str] = [] if hooks is None else hooks

    def __repr__(self) -> str:
        return f"PluginInfo(name={self.name!r}, distribution={self.distribution!r}, status={self.status!r})"


def disabled_names(environ: Mapping[str, str]) -> set[str]:
    """Plugin names blocked by ``MOPS_DISABLE_PLUGINS`` (comma or whitespace separated)."""
    raw = environ.get("MOPS_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.replace(",", " ").split() if part.strip()}


class PluginHost:
    """A pluggy manager plus what was learnt while loading plugins (for reporting).

    ``hook`` is the typed facade the core calls hooks through (:class:`~.hooks.Hooks`); ``pm`` is the
    pluggy manager itself (``pm.hook`` is pluggy's untyped relay, ``pm.trace`` its tracing).
    """

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.hook = Hooks(self)

    @property
    def errors(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.status == "error"]

    def is_builtin(self, plugin_name: str) -> bool:
        info = self.infos.get(plugin_name)
        return bool(info and info.builtin)

    def register(self, plugin: object, info: PluginInfo) -> None:
        """Register one plugin object; a failure is recorded on ``info``, never raised.

        A plugin built for another version of the hooks -- an implementation asking for an argument its
        hook does not pass, or a ``mops_*`` implementation of a hook that does not exist -- is refused
        here, with a message naming the hook, rather than failing (or silently doing nothing) later.
        """
        if info.name in self.infos and self.infos[info.name].status == "loaded":
            info.status, info.error = "error", f"a plugin named {info.name!r} is already loaded"
            self.infos[f"{info.name} ({info.distribution})"] = info
            return
        # Built-ins are made for these hooks (tests/meta checks them against the specs): only a third-party
        # plugin, perhaps built for another version, is examined (0.8 ms of every command otherwise).
        problems = [] if info.builtin else [*api_mismatch(plugin), *incompatible_hooks(self.pm, plugin)]
        if problems:
            info.status = "error"
            info.error = f"incompatible with modelops-bundle {__version__}: " + "; ".join(problems)
            self.infos[info.name] = info
            return
        try:
            self.pm.register(plugin, name=info.name)
        except Exception as exc:  # PluginValidationError, ValueError: refuse the plugin, keep going
            info.status, info.error = "error", _describe(exc)
        else:
            callers = self.pm.get_hookcallers(plugin) or []
            guard_implementations(callers, plugin)
            info.hooks = sorted(caller.name for caller in callers)
        self.infos[info.name] = info

    def versions(self, hooks: Iterable[str] | None = None) -> dict[str, str]:
        """``{plugin name: "distribution version"}`` of every loaded plugin, for provenance records.

        With ``hooks``, only the plugins implementing at least one of them (those that can have shaped
        a push, say).
        """
        wanted = None if hooks is None else set(hooks)
        return {
            name: f"{info.distribution} {info.version}".strip()
            for name, info in sorted(self.infos.items())
            if info.status == "loaded" and (wanted is None or wanted & set(info.hooks))
        }

    def record_failure(self, info: PluginInfo, exc: BaseException) -> None:
        info.status, info.error = "error", _describe(exc)
        self.infos[info.name] = info


def api_mismatch(plugin: object) -> list[str]:
    """Why ``plugin``'s declared plugin API (``MOPS_PLUGIN_API = "MAJOR.MINOR"``) is not provided here
    (empty when it is, or when the plugin declares none).

    The API a plugin imports from :mod:`modelops_bundle.plugin` is versioned ``MAJOR.MINOR``
    (:data:`modelops_bundle.PLUGIN_API`): a minor release only adds, so a plugin written against 1.0 works
    with 1.3; a plugin that needs 1.3 is refused by 1.0, and one written for another major is refused by
    every release of this one (docs/plugins.md, "Compatibility").
    """
    declared = getattr(plugin, "MOPS_PLUGIN_API", None)
    if declared is None:
        return []
    provided = ".".join(map(str, PLUGIN_API))
    wanted = parse_api_version(declared)
    if wanted is None:
        return [f'MOPS_PLUGIN_API = {declared!r} is not a plugin API version (expected a string like "1" or "1.0")']
    if wanted[0] != PLUGIN_API[0]:
        return [
            f"it needs plugin API {declared}, and this version provides {provided} "
            f"(install a release of the plugin made for plugin API {PLUGIN_API[0]})"
        ]
    if wanted[1] > PLUGIN_API[1]:
        return [f"it needs plugin API {declared}, and this version provides {provided} (upgrade modelops-bundle)"]
    return []


def parse_api_version(value: object) -> tuple[int, int] | None:
    """``"1"`` -> ``(1, 0)``, ``"1.2"`` -> ``(1, 2)``; anything else -> ``None``."""
    if not isinstance(value, str):
        return None
    parts = value.strip().split(".")
    if not 1 <= len(parts) <= 2 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[0]), int(parts[1]) if len(parts) == 2 else 0


def incompatible_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Why ``plugin`` does not fit this version's hooks (empty when it does).

    pluggy itself rejects an implementation asking for an argument the hook lacks (with a message about
    "hookimpl definitions"), and accepts an implementation of an unknown hook until ``check_pending()``;
    both are checked here, for one plugin at a time, in words a plugin author can act on.
    """
    problems: list[str] = []
    for attr in sorted(dir(plugin)):
        try:
            opts = pm.parse_hookimpl_opts(plugin, attr)
        except Exception:  # an attribute that cannot even be read: pluggy's register reports it
            continue
        if opts is None:
            continue
        caller = getattr(pm.hook, attr, None)
        spec = getattr(caller, "spec", None)
        if spec is None:
            if not opts.get("optionalhook"):
                problems.append(f"{attr} is not a hook of modelops-bundle (misspelt, or made for another version?)")
            continue
        function = getattr(plugin, attr)
        extra = [name for name in _required_arguments(function) if name not in spec.argnames]
        if extra:
            offered = ", ".join(spec.argnames) or "nothing"
            problems.append(
                f"{attr}() asks for {', '.join(extra)}, which the hook does not pass (it passes: {offered})"
            )
    return problems


def _required_arguments(function: Any) -> list[str]:
    """Parameters pluggy would pass by name: those without a default (``self`` excluded)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return []
    return [
        name
        for name, parameter in signature.parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and name not in ("self", "cls")
    ]


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
    if not env_flag(environ, "MOPS_DISABLE_PLUGIN_AUTOLOAD"):
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


def describe_plugin(host: PluginHost, plugin_name: str) -> str:
    """``'name' (distribution version)`` for messages about a plugin."""
    info = host.infos.get(plugin_name)
    if info is None:
        return repr(plugin_name)
    version = f" {info.version}" if info.version else ""
    return f"{plugin_name!r} ({info.distribution}{version})"


class PluginFailure(NamedTuple):
    """Which third-party plugin an unexpected exception came from, and in which hook (if one)."""

    plugin: str
    hook: str | None

    def describe(self, host: PluginHost, exc: BaseException) -> str:
        where = f" in {self.hook}" if self.hook else ""
        return f"plugin {describe_plugin(host, self.plugin)} failed{where}: {_describe(exc)}"


def failing_plugin(host: PluginHost, exc: BaseException) -> PluginFailure | None:
    """The third-party plugin whose code raised ``exc``, found from the frames of its traceback.

    First-result hooks (``mops_storage_tier``, ``mops_file_hasher``, ...) are called through pluggy
    deep inside the core, and provider classes run on worker threads; rather than wrapping every call
    site, the CLI asks this at its one error boundary. The innermost frame that is a hook implementation
    names the plugin and the hook; failing that, the innermost frame in a plugin's own package (a
    provider class or a command's ``run``) names the plugin. Built-ins are not blamed: a failure there
    is a bug of modelops-bundle and is reported as one.
    """
    implementations: dict[CodeType, tuple[str, str]] = {}
    packages: dict[str, str] = {}
    for plugin in host.pm.get_plugins():
        name = host.pm.get_name(plugin)
        if name is None or host.is_builtin(name):
            continue
        module = plugin.__name__ if inspect.ismodule(plugin) else type(plugin).__module__
        packages.setdefault(module.split(".")[0], name)
        for caller in host.pm.get_hookcallers(plugin) or ():
            for impl in caller.get_hookimpls():
                code = _code_of(implementation_of(impl.function))
                if impl.plugin is plugin and code is not None:
                    implementations[code] = (name, caller.name)
    if not packages:
        return None
    found_hook: PluginFailure | None = None
    found_module: PluginFailure | None = None
    for frame_code, module_name in _frames(exc.__traceback__):
        if frame_code in implementations:
            found_hook = PluginFailure(*implementations[frame_code])
        owner = packages.get(module_name.split(".")[0])
        if owner is not None:
            found_module = PluginFailure(owner, None)
    return found_hook or found_module


def _code_of(function: Any) -> CodeType | None:
    code = getattr(function, "__code__", None) or getattr(getattr(function, "__func__", None), "__code__", None)
    return code if isinstance(code, CodeType) else None


def _frames(tb: TracebackType | None) -> Iterable[tuple[CodeType, str]]:
    while tb is not None:
        yield tb.tb_frame.f_code, str(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
