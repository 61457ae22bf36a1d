"""core/plugins.py: built-ins, entry points, disabling, broken plugins, named providers, hookspecs."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest

from modelops_bundle import PROJECT_NAME, __version__, hookimpl, hookspecs
from modelops_bundle.core.errors import PluginError
from modelops_bundle.core.plugins import (
    BUILTIN_DISTRIBUTION,
    BUILTIN_PLUGINS,
    build_plugin_host,
    describe_plugin,
    disabled_names,
)

NO_AUTOLOAD = {"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"}

HELLO_MODULE = """
from modelops_bundle import hookimpl
from modelops_bundle.core.commands import Command


def _run(ctx, args):
    ctx.out.line("hello from a plugin")
    return 0


@hookimpl
def mops_add_commands(registry):
    registry.add(Command(name="hello", help="say hello", run=_run))
"""


def test_every_builtin_is_registered_like_a_plugin() -> None:
    host = build_plugin_host(NO_AUTOLOAD)
    for name, module in BUILTIN_PLUGINS:
        info = host.infos[name]
        assert info.status == "loaded", (name, info.error)
        assert info.builtin and info.module == module
        assert (info.distribution, info.version) == (BUILTIN_DISTRIBUTION, __version__)
        assert host.pm.get_plugin(name) is not None
        assert info.hooks, f"built-in {name} implements no hook"
    assert host.infos["sha256"].hooks == ["mops_file_hasher"]
    assert "mops_add_commands" in host.infos["commands"].hooks
    assert host.errors == []


def test_builtins_fit_the_hook_specs() -> None:
    """Built-ins skip the compatibility check at start-up (it costs ~1 ms a command); this is where
    they get it: every built-in implements hooks that exist, asking only for arguments they pass."""
    from modelops_bundle.core.plugins import incompatible_hooks

    host = build_plugin_host(NO_AUTOLOAD)
    for name, _module in BUILTIN_PLUGINS:
        assert incompatible_hooks(host.pm, host.pm.get_plugin(name)) == [], name


def test_a_fresh_host_every_time() -> None:
    first, second = build_plugin_host(NO_AUTOLOAD), build_plugin_host(NO_AUTOLOAD)
    assert first.pm is not second.pm


def test_entry_point_plugin_is_loaded_with_its_distribution(make_dist: Callable[..., Path]) -> None:
    make_dist("mops-hello", "1.2.3", entry_points={"hello": "mops_hello_mod"}, modules={"mops_hello_mod": HELLO_MODULE})
    host = build_plugin_host({})
    info = host.infos["hello"]
    assert info.status == "loaded", info.error
    assert (info.distribution, info.version, info.builtin) == ("mops-hello", "1.2.3", False)
    assert info.hooks == ["mops_add_commands"]
    assert describe_plugin(host, "hello") == "'hello' (mops-hello 1.2.3)"


def test_entry_point_with_attribute(make_dist: Callable[..., Path]) -> None:
    make_dist(
        "mops-obj",
        entry_points={"obj": "mops_obj_mod:PLUGIN"},
        modules={
            "mops_obj_mod": """
            from modelops_bundle import hookimpl

            class _Plugin:
                @hookimpl
                def mops_file_hasher(self, algorithm):
                    return None

            PLUGIN = _Plugin()
            """
        },
    )
    host = build_plugin_host({})
    assert host.infos["obj"].status == "loaded"
    assert host.infos["obj"].hooks == ["mops_file_hasher"]


def test_broken_entry_point_is_reported_with_its_distribution(make_dist: Callable[..., Path]) -> None:
    make_dist(
        "mops-broken",
        "0.9",
        entry_points={"broken": "mops_broken_mod"},
        modules={"mops_broken_mod": "import a_module_that_does_not_exist_anywhere\n"},
    )
    make_dist(
        "mops-missing-attr",
        "2.0",
        entry_points={"noattr": "mops_hello2:nothing_here"},
        modules={"mops_hello2": HELLO_MODULE},
    )
    host = build_plugin_host({})
    broken = host.infos["broken"]
    assert broken.status == "error"
    assert broken.distribution == "mops-broken" and broken.version == "0.9"
    assert "a_module_that_does_not_exist_anywhere" in (broken.error or "")
    assert host.infos["noattr"].status == "error"
    assert "nothing_here" in (host.infos["noattr"].error or "")
    assert {info.name for info in host.errors} == {"broken", "noattr"}
    # everything else still works
    assert host.hook.mops_file_hasher(algorithm="sha256") is not None


def test_plugin_raising_anything_at_import_is_contained(make_dist: Callable[..., Path]) -> None:
    make_dist(
        "mops-boom",
        entry_points={"boom": "mops_boom_mod"},
        modules={"mops_boom_mod": "raise RuntimeError('boom at import')\n"},
    )
    host = build_plugin_host({})
    assert host.infos["boom"].error == "RuntimeError: boom at import"


def test_disable_autoload_skips_entry_points(make_dist: Callable[..., Path]) -> None:
    make_dist("mops-hello", entry_points={"hello": "mops_hello_mod"}, modules={"mops_hello_mod": HELLO_MODULE})
    for value in ("1", "true", "YES", "on"):
        host = build_plugin_host({"MOPS_DISABLE_PLUGIN_AUTOLOAD": value})
        assert "hello" not in host.infos
        assert host.infos["sha256"].status == "loaded"
    assert "hello" in build_plugin_host({"MOPS_DISABLE_PLUGIN_AUTOLOAD": "0"}).infos


def test_disable_plugins_by_name(make_dist: Callable[..., Path]) -> None:
    make_dist("mops-hello", entry_points={"hello": "mops_hello_mod"}, modules={"mops_hello_mod": HELLO_MODULE})
    host = build_plugin_host({"MOPS_DISABLE_PLUGINS": "hello, sha256"})
    assert host.infos["hello"].status == "disabled"
    assert host.infos["sha256"].status == "disabled"
    assert host.pm.get_plugin("sha256") is None and host.pm.get_plugin("hello") is None
    assert host.hook.mops_file_hasher(algorithm="sha256") is None
    assert host.infos["commands"].status == "loaded"


def test_disabled_names_parsing() -> None:
    assert disabled_names({"MOPS_DISABLE_PLUGINS": "a,b c ,, d"}) == {"a", "b", "c", "d"}
    assert disabled_names({}) == set()


class _BadSignature:
    @hookimpl
    def mops_add_commands(self, registry: Any, not_a_hook_argument: Any) -> None:
        raise AssertionError("never called")


def test_incompatible_hook_signature_is_refused_not_fatal() -> None:
    host = build_plugin_host(NO_AUTOLOAD, extra_plugins=[("badsig", _BadSignature())])
    info = host.infos["badsig"]
    assert info.status == "error"
    assert "not_a_hook_argument" in (info.error or "")
    assert host.pm.get_plugin("badsig") is None
    assert host.infos["commands"].status == "loaded"


def test_second_plugin_with_a_taken_name_is_refused() -> None:
    class Impostor:
        @hookimpl
        def mops_file_hasher(self, algorithm: str) -> None:
            return None

    host = build_plugin_host(NO_AUTOLOAD, extra_plugins=[("sha256", Impostor())])
    assert host.infos["sha256"].status == "loaded" and host.infos["sha256"].builtin
    refused = [info for info in host.errors if info.name == "sha256"]
    assert refused and "already loaded" in (refused[0].error or "")


class _Raiser:
    @hookimpl
    def mops_add_commands(self, registry: Any) -> None:
        raise RuntimeError("cannot add my commands")


class _Recorder:
    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def mops_add_commands(self, registry: Any) -> None:
        self.calls += 1
        registry.add("recorded")


def test_a_failing_implementation_of_an_isolated_hook_is_reported_and_the_others_run() -> None:
    recorder = _Recorder()
    host = build_plugin_host(NO_AUTOLOAD, extra_plugins=[("raiser", _Raiser()), ("recorder", recorder)])
    added: list[Any] = []

    class Registry:
        def add(self, command: Any) -> bool:
            added.append(command)
            return True

    answers = host.hook.mops_add_commands(registry=Registry())
    assert [(name, type(error)) for name, error in answers.failures] == [("raiser", RuntimeError)]
    assert recorder.calls == 1
    # third-party plugins first (LIFO), built-ins (trylast) last: the recorder's command came first
    assert added[0] == "recorded" and len(added) > 1


# ------------------------------------------------------------------------- named providers


def _provider(provider_name: str, tag: str) -> type:
    return type(f"Provider_{tag}", (), {"name": provider_name, "tag": tag})


def _provider_plugin(*classes: type) -> object:
    class Plugin:
        @hookimpl
        def mops_storage_providers(self) -> list[type]:
            return list(classes)

    return Plugin()


@pytest.fixture
def builtin_provider_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module loaded as a *built-in* plugin that provides the ``local`` and ``s3`` storage classes."""
    import sys

    folder = tmp_path / "builtin_mod"
    folder.mkdir()
    (folder / "mops_test_builtin_provider.py").write_text(
        "from modelops_bundle import hookimpl\n"
        "class Local:\n    name = 'local'\n    tag = 'builtin-local'\n"
        "class S3:\n    name = 's3'\n    tag = 'builtin-s3'\n"
        "@hookimpl(trylast=True)\ndef mops_storage_providers():\n    return [Local, S3]\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "mops_test_builtin_provider", raising=False)
    return "mops_test_builtin_provider"


def _host(module: str, *extra: tuple[str, object]) -> Any:
    return build_plugin_host(NO_AUTOLOAD, builtins=[("fake-builtin", module)], extra_plugins=list(extra))


def test_named_providers_builtins_alone(builtin_provider_module: str) -> None:
    chosen = _host(builtin_provider_module).hook.mops_storage_providers()
    assert {name: cls.tag for name, cls in chosen.items()} == {"local": "builtin-local", "s3": "builtin-s3"}


def test_third_party_replaces_a_builtin_of_the_same_name(builtin_provider_module: str) -> None:
    host = _host(builtin_provider_module, ("mine", _provider_plugin(_provider("local", "mine"), _provider("gcs", "g"))))
    chosen = host.hook.mops_storage_providers()
    assert {name: cls.tag for name, cls in chosen.items()} == {"local": "mine", "s3": "builtin-s3", "gcs": "g"}


def test_two_third_party_providers_with_one_name_is_an_error(builtin_provider_module: str) -> None:
    host = _host(
        builtin_provider_module,
        ("first", _provider_plugin(_provider("azure", "1"))),
        ("second", _provider_plugin(_provider("azure", "2"))),
    )
    with pytest.raises(PluginError) as info:
        host.hook.mops_storage_providers()
    assert "'first'" in info.value.message and "'second'" in info.value.message
    assert "'azure'" in info.value.message
    assert info.value.hint is not None and "MOPS_DISABLE_PLUGINS=" in info.value.hint


def test_provider_without_a_name_is_an_error(builtin_provider_module: str) -> None:
    nameless = type("Nameless", (), {})
    host = _host(builtin_provider_module, ("nameless", _provider_plugin(nameless)))
    with pytest.raises(PluginError, match=r"'nameless'.*without a name"):
        host.hook.mops_storage_providers()


# ----------------------------------------------------------------------------- hookspecs


def _hookspecs() -> list[tuple[str, Callable[..., Any]]]:
    return [(name, fn) for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("mops_")]


def test_hookspec_module_declares_every_area() -> None:
    names = {name for name, _ in _hookspecs()}
    for required in (
        "mops_add_commands",
        "mops_discover_models",
        "mops_file_hasher",
        "mops_storage_providers",
        "mops_registry_backends",
        "mops_storage_tier",
        "mops_manifest_annotations",
        "mops_extra_files",
        "mops_push_finished",
        "mops_pull_finished",
    ):
        assert required in names


@pytest.mark.parametrize(("name", "spec"), _hookspecs(), ids=[name for name, _ in _hookspecs()])
def test_every_hook_is_typed_documented_and_callable(name: str, spec: Callable[..., Any]) -> None:
    doc = inspect.getdoc(spec) or ""
    assert "When:" in doc, f"{name}: the docstring must say when the hook is called"
    opts = getattr(spec, f"{PROJECT_NAME}_spec")
    if opts.get("firstresult"):
        assert "first-result" in doc.lower() or "first result" in doc.lower()
    else:
        assert "first-result hook" not in doc.lower()
    signature = inspect.signature(spec)
    assert "return" in spec.__annotations__
    for parameter in signature.parameters.values():
        assert parameter.name in spec.__annotations__, f"{name}({parameter.name}) has no type"

    # A plugin implementing the hook with its full signature is accepted and called.
    argnames = list(signature.parameters)
    namespace: dict[str, Any] = {}
    exec(f"def {name}({', '.join(argnames)}):\n    return 'answer'\n", namespace)
    plugin = type("P", (), {name: staticmethod(hookimpl(namespace[name]))})
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="p")
    result = getattr(pm.hook, name)(**dict.fromkeys(argnames))
    assert result == ("answer" if opts.get("firstresult") else ["answer"])


def test_a_lazy_provider_class_imports_its_module_only_when_used() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from modelops_bundle.core.providers import LazyProviderClass\n"
        "lazy = LazyProviderClass('oci-layout', 'modelops_bundle.plugins.registry_layout:OciLayoutRegistry')\n"
        "assert lazy.name == 'oci-layout'\n"
        "assert 'modelops_bundle.plugins.registry_layout' not in sys.modules\n"
        "assert lazy.describe is lazy.load().describe  # other attributes are the real class's\n"
        "assert 'modelops_bundle.plugins.registry_layout' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_lazy_provider_class_whose_target_has_another_name_is_refused() -> None:
    from modelops_bundle.core.providers import LazyProviderClass

    lazy = LazyProviderClass("oci-layout", "modelops_bundle.plugins.registry_distribution:OciDistributionRegistry")
    with pytest.raises(RuntimeError, match="oci-distribution"):
        lazy.load()
