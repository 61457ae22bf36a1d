"""The typed hook facade (``host.hook``, core/hooks.py): every hook goes through pluggy.

A ``wrapper=True`` implementation on each hook is called once, with the arguments the core passed, and
what it returns is what the core gets; old-style ``hookwrapper`` implementations, ``tryfirst`` and pluggy's
tracing work for the collecting hooks too; a failing implementation of an isolated hook is reported and
hides nothing, wrappers included.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle.core.hooks import ISOLATED
from modelops_bundle.core.plugins import PluginHost, build_plugin_host
from modelops_bundle.plugin import (
    BundleIndex,
    CodeDependencies,
    DiscoveredModel,
    DiscoveredTarget,
    IndexEntry,
    LayerPlan,
    PlannedLayer,
    Project,
    RunnableModel,
    SourceFile,
    StoragePolicy,
    hookimpl,
)
from tests.meta.hooks import hookspec_names

NO_AUTOLOAD = {"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"}
DIGEST = "sha256:" + "0" * 64


class Named:
    """A provider/backend class added by a wrapper."""

    name = "wrapped"
    schemes: tuple[str, ...] = ()
    is_registry_tier = False


class WrappedRunner:
    def run(self, target: Any, request: Any) -> Any:
        raise AssertionError("never run here")


class EveryHookWrapper:
    """A new-style wrapper on every hook: records the arguments of each call and changes the result."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _seen(self, hook: str, **arguments: Any) -> None:
        self.calls.append((hook, arguments))

    @hookimpl(wrapper=True)
    def mops_add_commands(self, registry: Any) -> Generator[None, list[Any], list[Any]]:
        self._seen("mops_add_commands", registry=registry)
        return [*(yield), "wrapped"]

    @hookimpl(wrapper=True)
    def mops_discover_models(self, source: Any) -> Generator[None, list[Any], list[Any]]:
        self._seen("mops_discover_models", source=source)
        return [*(yield), [DiscoveredModel("Wrapped", source.rel, "wrapped", line=99)]]

    @hookimpl(wrapper=True)
    def mops_discover_targets(self, source: Any) -> Generator[None, list[Any], list[Any]]:
        self._seen("mops_discover_targets", source=source)
        return [*(yield), [DiscoveredTarget("wrapped", "wrapped", source.rel)]]

    @hookimpl(wrapper=True)
    def mops_code_dependencies(self, model: Any, project: Any) -> Generator[None, list[Any], list[Any]]:
        self._seen("mops_code_dependencies", model=model, project=project)
        return [*(yield), CodeDependencies(files={"wrapped.txt"})]

    @hookimpl(wrapper=True)
    def mops_model_runner(self, model: Any) -> Generator[None, Any, Any]:
        self._seen("mops_model_runner", model=model)
        result = yield
        assert result is None  # no built-in runs framework "wrapped"
        return WrappedRunner()

    @hookimpl(wrapper=True)
    def mops_file_hasher(self, algorithm: Any) -> Generator[None, Any, Any]:
        self._seen("mops_file_hasher", algorithm=algorithm)
        hasher = yield
        return ("wrapped", hasher)

    @hookimpl(wrapper=True)
    def mops_code_fingerprint(self, path: Any, source: Any) -> Generator[None, Any, Any]:
        self._seen("mops_code_fingerprint", path=path, source=source)
        return "wrapped+" + (yield)

    @hookimpl(wrapper=True)
    def mops_storage_providers(self) -> Generator[None, list[Any], list[Any]]:
        self._seen("mops_storage_providers")
        return [*(yield), [Named]]

    @hookimpl(wrapper=True)
    def mops_registry_backends(self) -> Generator[None, list[Any], list[Any]]:
        self._seen("mops_registry_backends")
        return [*(yield), [Named]]

    @hookimpl(wrapper=True)
    def mops_storage_tier(self, entry: Any, policy: Any, blob_available: Any) -> Generator[None, Any, Any]:
        self._seen("mops_storage_tier", entry=entry, policy=policy, blob_available=blob_available)
        assert (yield) == "oci"
        return "blob"

    @hookimpl(wrapper=True)
    def mops_plan_layers(self, entries: Any, policy: Any) -> Generator[None, Any, Any]:
        self._seen("mops_plan_layers", entries=entries, policy=policy)
        yield
        return LayerPlan((PlannedLayer("raw", ("wrapped.bin",), "wrapped.bin"),))

    @hookimpl(wrapper=True)
    def mops_manifest_annotations(self, index: Any, project: Any) -> Generator[None, list[Any], list[Any]]:
        self._seen("mops_manifest_annotations", index=index, project=project)
        return [{"org.example.wrapped": "yes"}, *(yield)]

    @hookimpl(wrapper=True)
    def mops_extra_files(self, project: Any) -> Generator[None, list[Any], list[Any]]:
        self._seen("mops_extra_files", project=project)
        return [*(yield), ["wrapped.txt"]]

    @hookimpl(wrapper=True)
    def mops_signers(self) -> Generator[None, list[Any], list[Any]]:
        self._seen("mops_signers")
        return [*(yield), [Named]]

    @hookimpl(wrapper=True)
    def mops_push_finished(self, result: Any) -> Generator[None, list[Any], list[Any]]:
        self._seen("mops_push_finished", result=result)
        return [*(yield), "wrapped"]

    @hookimpl(wrapper=True)
    def mops_pull_finished(self, result: Any) -> Generator[None, list[Any], list[Any]]:
        self._seen("mops_pull_finished", result=result)
        return [*(yield), "wrapped"]


class _Registry:
    def __init__(self) -> None:
        self.added: list[Any] = []

    def add(self, command: Any) -> bool:
        self.added.append(command)
        return True


def _project(tmp_path: Path) -> Project:
    (tmp_path / ".modelops-bundle").mkdir(exist_ok=True)
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "models" / "m.py").write_text("RATE = 1\n")
    return Project(tmp_path)


def _source(project: Project) -> SourceFile:
    text = "RATE = 1\n"
    return SourceFile("models/m.py", project.root / "models" / "m.py", text, ast.parse(text))


#: Per hook: ``(arguments, check)`` -- the arguments the facade method is called with (made from the test's
#: project) and a check of what the facade returned, showing the wrapper's change arrived.
Case = tuple[Callable[[Project], dict[str, Any]], Callable[[Any, dict[str, Any]], None]]


def _values(answers: Any) -> list[Any]:
    return list(answers.values)


def _last_is_unattributed(answers: Any) -> Any:
    assert answers.plugins[-1] is None  # a wrapper's value is nobody's answer
    return answers.values[-1]


CASES: dict[str, Case] = {
    "mops_add_commands": (
        lambda p: {"registry": _Registry()},
        lambda got, kw: (
            (_last_is_unattributed(got) == "wrapped" and len(kw["registry"].added) > 5) or pytest.fail(repr(got))
        ),
    ),
    "mops_discover_models": (
        lambda p: {"source": _source(p)},
        lambda got, kw: _last_is_unattributed(got)[0].class_name == "Wrapped" or pytest.fail(repr(got)),
    ),
    "mops_discover_targets": (
        lambda p: {"source": _source(p)},
        lambda got, kw: _last_is_unattributed(got)[0].name == "wrapped" or pytest.fail(repr(got)),
    ),
    "mops_code_dependencies": (
        lambda p: {"model": DiscoveredModel("M", "models/m.py", "calabaria"), "project": p},
        lambda got, kw: (
            (
                _last_is_unattributed(got).files == {"wrapped.txt"} and "models/m.py" in got.values[0].files
            )  # the built-in's own answer came first
            or pytest.fail(repr(got))
        ),
    ),
    "mops_model_runner": (
        lambda p: {"model": RunnableModel("m", "wrapped", "models.m:M", None, p.root)},
        lambda got, kw: isinstance(got, WrappedRunner) or pytest.fail(repr(got)),
    ),
    "mops_file_hasher": (
        lambda p: {"algorithm": "sha256"},
        lambda got, kw: (got[0] == "wrapped" and got[1].algorithm == "sha256") or pytest.fail(repr(got)),
    ),
    "mops_code_fingerprint": (
        lambda p: {"path": p.root / "models" / "m.py", "source": b"RATE = 1\n"},
        lambda got, kw: got.startswith("wrapped+pyast1-sha256:") or pytest.fail(repr(got)),
    ),
    "mops_storage_providers": (
        lambda p: {},
        lambda got, kw: (got["wrapped"] is Named and "local" in got) or pytest.fail(repr(got)),
    ),
    "mops_registry_backends": (
        lambda p: {},
        lambda got, kw: (got["wrapped"] is Named and "oci-layout" in got) or pytest.fail(repr(got)),
    ),
    "mops_storage_tier": (
        lambda p: {
            "entry": IndexEntry(path="data.csv", size=10, digest=DIGEST, algorithm="sha256"),
            "policy": StoragePolicy(),
            "blob_available": True,
        },
        lambda got, kw: got == "blob" or pytest.fail(repr(got)),
    ),
    "mops_plan_layers": (
        lambda p: {
            "entries": [IndexEntry(path="data.csv", size=10, digest=DIGEST, algorithm="sha256")],
            "policy": StoragePolicy(),
        },
        lambda got, kw: got.layers[0].paths == ("wrapped.bin",) or pytest.fail(repr(got)),
    ),
    "mops_manifest_annotations": (
        lambda p: {"index": BundleIndex(), "project": p},
        lambda got, kw: (
            (
                (got.values[0], got.plugins[0]) == ({"org.example.wrapped": "yes"}, None) and "packaging" in got.plugins
            )  # the built-in's git annotations, attributed
            or pytest.fail(repr(got))
        ),
    ),
    "mops_extra_files": (
        lambda p: {"project": p},
        lambda got, kw: _last_is_unattributed(got) == ["wrapped.txt"] or pytest.fail(repr(got)),
    ),
    "mops_signers": (
        lambda p: {},
        lambda got, kw: got == {"wrapped": Named} or pytest.fail(repr(got)),  # no built-in signer
    ),
    "mops_push_finished": (
        lambda p: {"result": {"reference": "r", "digest": DIGEST}},
        lambda got, kw: _values(got) == ["wrapped"] or pytest.fail(repr(got)),
    ),
    "mops_pull_finished": (
        lambda p: {"result": {"reference": "r", "digest": DIGEST, "destination": "/tmp/x"}},
        lambda got, kw: _values(got) == ["wrapped"] or pytest.fail(repr(got)),
    ),
}


def test_the_cases_and_the_wrapper_cover_every_hook() -> None:
    assert sorted(CASES) == sorted(hookspec_names())
    assert sorted(name for name in vars(EveryHookWrapper) if name.startswith("mops_")) == sorted(hookspec_names())


def test_the_facade_has_a_method_per_hook_with_the_hook_arguments() -> None:
    import inspect

    from modelops_bundle import hookspecs
    from modelops_bundle.core.hooks import Hooks

    for name in hookspec_names():
        method = getattr(Hooks, name, None)
        assert method is not None, f"Hooks has no method for {name}"
        wanted = list(inspect.signature(getattr(hookspecs, name)).parameters)
        assert list(inspect.signature(method).parameters)[1:] == wanted, name


@pytest.fixture
def wrapped(tmp_path: Path) -> Iterator[tuple[PluginHost, EveryHookWrapper, Project]]:
    wrapper = EveryHookWrapper()
    host = build_plugin_host(NO_AUTOLOAD, extra_plugins=[("wrapper", wrapper)])
    assert host.infos["wrapper"].status == "loaded", host.infos["wrapper"].error
    yield host, wrapper, _project(tmp_path)


@pytest.mark.parametrize("hook", sorted(CASES))
def test_a_wrapper_on_every_hook_is_called_once_with_the_arguments_and_changes_the_result(
    wrapped: tuple[PluginHost, EveryHookWrapper, Project], hook: str
) -> None:
    host, wrapper, project = wrapped
    make_arguments, check = CASES[hook]
    arguments = make_arguments(project)
    got = getattr(host.hook, hook)(**arguments)
    assert [name for name, _ in wrapper.calls] == [hook]  # once
    (_, seen), *_ = wrapper.calls
    assert seen.keys() == arguments.keys()
    assert all(seen[key] is arguments[key] for key in arguments)  # the very objects the core passed
    check(got, arguments)


def test_pluggy_tracing_sees_every_hook(wrapped: tuple[PluginHost, EveryHookWrapper, Project]) -> None:
    host, _, project = wrapped
    lines: list[str] = []
    host.pm.trace.root.setwriter(lines.append)
    undo = host.pm.enable_tracing()
    try:
        for hook, (make_arguments, _) in CASES.items():
            getattr(host.hook, hook)(**make_arguments(project))
    finally:
        undo()
    traced = "".join(lines)
    assert [hook for hook in CASES if f"{hook} [hook]" not in traced] == []


# ------------------------------------------------------------------------- ordering, isolation, old style


class _Finds:
    def __init__(self, framework: str) -> None:
        self.framework = framework

    def found(self, source: SourceFile) -> list[DiscoveredModel]:
        return [DiscoveredModel("SEIR", source.rel, self.framework, line=1)]


class FindsFirst(_Finds):
    @hookimpl(tryfirst=True)
    def mops_discover_models(self, source: SourceFile) -> list[DiscoveredModel]:
        return self.found(source)


class FindsToo(_Finds):
    @hookimpl
    def mops_discover_models(self, source: SourceFile) -> list[DiscoveredModel]:
        return self.found(source)


def test_tryfirst_orders_a_collecting_hook(tmp_path: Path) -> None:
    """The first report of a class wins; ``tryfirst`` makes a plugin's report first whatever the load order."""
    from modelops_bundle.core.discovery import discover_models

    host = build_plugin_host(NO_AUTOLOAD, extra_plugins=[("first", FindsFirst("alpha")), ("too", FindsToo("beta"))])
    (model,) = discover_models(host, _source(_project(tmp_path))).models
    assert model.framework == "alpha"
    answers = host.hook.mops_discover_models(source=_source(_project(tmp_path)))
    assert answers.plugins[:2] == ["first", "too"]


class Raises:
    @hookimpl(tryfirst=True)
    def mops_extra_files(self, project: Project) -> list[str]:
        raise RuntimeError("extra files unavailable")

    @hookimpl
    def mops_push_finished(self, result: Any) -> None:
        raise RuntimeError("chat is down")


class SeesResults:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl(wrapper=True)
    def mops_extra_files(self, project: Project) -> Generator[None, list[Any], list[Any]]:
        result = yield
        self.seen.append(result)
        return result


def test_a_failing_implementation_is_isolated_under_a_wrapper(tmp_path: Path) -> None:
    sees = SeesResults()
    host = build_plugin_host(NO_AUTOLOAD, extra_plugins=[("raises", Raises()), ("sees", sees)])
    project = _project(tmp_path)
    (project.root / ".modelops-bundle" / "registry.yaml").write_text("models: {}\n")
    answers = host.hook.mops_extra_files(project=project)
    assert [(plugin, str(error)) for plugin, error in answers.failures] == [("raises", "extra files unavailable")]
    assert list(answers) == [("packaging", [".modelops-bundle/registry.yaml"])]
    assert sees.seen == [[[".modelops-bundle/registry.yaml"]]]  # the wrapper saw what worked
    assert "mops_push_finished" in ISOLATED
    assert [plugin for plugin, _ in host.hook.mops_push_finished(result={}).failures] == ["raises"]


def test_an_exception_of_a_named_provider_hook_propagates() -> None:
    class Broken:
        @hookimpl
        def mops_registry_backends(self) -> list[Any]:
            raise ValueError("backend table corrupt")

    host = build_plugin_host(NO_AUTOLOAD, extra_plugins=[("broken", Broken())])
    with pytest.raises(ValueError, match="backend table corrupt"):
        host.hook.mops_registry_backends()


def test_guards_stay_out_of_direct_pluggy_calls() -> None:
    """Outside a facade call of that hook, a guarded implementation is the plugin's own function."""
    host = build_plugin_host(NO_AUTOLOAD, extra_plugins=[("raises", Raises())])
    with pytest.raises(RuntimeError, match="chat is down"):
        host.pm.hook.mops_push_finished(result={})


class OldStyleWrapper:
    """An old-style ``hookwrapper`` that adds a command around the others (call_each once mis-called these)."""

    @hookimpl(hookwrapper=True)
    def mops_add_commands(self, registry: Any) -> Generator[None, Any, None]:
        from modelops_bundle.plugin import Command

        def run(ctx: Any, args: Any) -> int:
            ctx.out.line("wrapped hello")
            return 0

        registry.add(Command(name="wrapped-hello", help="say hello", run=run, epilog="example:\n  x"))
        outcome = yield
        assert outcome.exception is None


def test_an_old_style_hookwrapper_adds_a_command(tmp_path: Path) -> None:
    from modelops_bundle.testing import run_command

    result = run_command(["-C", str(tmp_path), "wrapped-hello"], {"MODELOPS_HOME": str(tmp_path / "home")},
                         extra_plugins=[("old-style", OldStyleWrapper())])  # fmt: skip
    assert result.exit_code == 0, result
    assert "wrapped hello" in result.stdout
