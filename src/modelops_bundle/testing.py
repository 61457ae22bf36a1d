"""Opt-in pytest plugin for modelops-bundle and its plugin authors.

Enable it with ``-p modelops_bundle.testing`` (command line or ``addopts``), or with
``pytest_plugins = ["modelops_bundle.testing"]`` in a top-level ``conftest.py``. It provides:

``mops_env``
    An isolated environment (a ``dict``): ``HOME`` and ``MODELOPS_HOME`` under ``tmp_path``, every
    ``MOPS_*`` variable of the outer process removed, ``NO_COLOR=1``. ``os.environ`` gets the same
    ``HOME``/``MODELOPS_HOME`` for the duration of the test, so nothing touches the real home folder.
    Entry-point plugins are loaded as usual; pass variables with the ``mops_env`` marker to change that::

        @pytest.mark.mops_env(MOPS_DISABLE_PLUGIN_AUTOLOAD="1")
        def test_builtins_only(bundle_project): ...

``bundle_project``
    A :class:`BundleProject`: a folder under ``tmp_path`` initialised by the real ``init`` command.
    :meth:`BundleProject.run` runs any command in-process (``-C <root>`` is added, so the test's current
    directory does not matter) and returns a :class:`CliResult`.

``run_cli``
    A :class:`CliRunner` that runs a command in any folder -- for ``init`` and for "not a project" cases.

``StorageProviderConformance``
    The conformance suite every blob-storage provider passes (put, get, exists, streaming of large files,
    verification, missing objects) and its failure mixins ``PermissionDeniedChecks``, ``ServerGoneChecks``,
    ``MissingContainerChecks`` (all four: ``FullConformance``). Subclass in a ``Test...`` class and provide
    a ``provider`` fixture; see :mod:`modelops_bundle.storage_conformance`.

``ModelRunnerConformance``
    The conformance suite of a framework plugin (discovery + ``mops_model_runner``): the model it finds
    registers, pushes and runs by digest through :func:`modelops_bundle.api.run_model`, deterministic for
    a seed, with provenance tags. Provide ``model_files`` and ``model_path`` fixtures; see
    :mod:`modelops_bundle.runner_conformance`. :meth:`BundleProject.run_model` runs a model with the
    project's ``extra_plugins``.

``load_plugin(name, plugin)``
    Loads a plugin module or object as an installed one would be (checked against this version's hooks and
    plugin API) and returns its record (``status``, ``error``, ``hooks``).

``open_provider(name, plugins=..., **storage)``
    A storage provider opened as a push opens it, through the plugins and an environment's ``storage:``
    section -- what a provider's conformance tests run against.

Plugins import from :mod:`modelops_bundle.plugin` (the public plugin API) and their tests from here.

Example -- testing a plugin that is not installed yet::

    from modelops_bundle.plugin import Command, hookimpl


    class HelloPlugin:
        @hookimpl
        def mops_add_commands(self, registry):
            registry.add(Command(name="hello", help="say hello", run=self.hello))

        def hello(self, ctx, args):
            ctx.out.line("hi")
            return 0


    def test_hello(bundle_project):
        bundle_project.extra_plugins.append(("hello", HelloPlugin()))
        bundle_project.write("data/a.csv", "x,y\\n1,2\\n")
        assert bundle_project.run("add", "data").exit_code == 0
        result = bundle_project.run("hello")
        assert result.exit_code == 0, result.stderr
        assert result.stdout == "hi\\n"
        assert bundle_project.run("status", "--json").json()["changes"]["added"] == ["data/a.csv"]
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from modelops_bundle.runner_conformance import ModelRunnerConformance
from modelops_bundle.storage_conformance import (
    FullConformance,
    MissingContainerChecks,
    PermissionDeniedChecks,
    ServerGoneChecks,
    StorageProviderConformance,
)

if TYPE_CHECKING:
    from modelops_bundle.core.plugins import PluginInfo
    from modelops_bundle.core.runner import ModelResult
    from modelops_bundle.core.storage import StorageProvider

__all__ = [
    "BundleProject",
    "CliResult",
    "CliRunner",
    "FullConformance",
    "MissingContainerChecks",
    "ModelRunnerConformance",
    "PermissionDeniedChecks",
    "ServerGoneChecks",
    "StorageProviderConformance",
    "bundle_project",
    "isolated_environ",
    "load_plugin",
    "mops_env",
    "open_provider",
    "run_cli",
]

#: ``prog`` the in-process runs use; messages and ``--help`` read as for the ``modelops-bundle`` script.
PROG = "modelops-bundle"

EnvOverrides = Mapping[str, str | None]
PluginSpec = tuple[str, object]


@dataclass(frozen=True)
class CliResult:
    """The outcome of one in-process command: exit code and captured output."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def json(self) -> Any:
        """``stdout`` parsed as JSON (run the command with ``--json``)."""
        try:
            return json.loads(self.stdout)
        except ValueError as exc:
            raise AssertionError(f"stdout of {self!r} is not JSON: {exc}") from None

    def __repr__(self) -> str:
        return (
            f"CliResult(argv={list(self.argv)!r}, exit_code={self.exit_code}, "
            f"stdout={self.stdout!r}, stderr={self.stderr!r})"
        )


def isolated_environ(base: Path, outer: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for one test: ``outer`` (default ``os.environ``) without ``MOPS_*`` variables,
    with ``HOME`` at ``base/home`` and ``MODELOPS_HOME`` at ``base/home/.modelops`` (both created)."""
    source = os.environ if outer is None else outer
    env = {key: value for key, value in source.items() if not key.startswith("MOPS_")}
    home = base / "home"
    modelops_home = home / ".modelops"
    modelops_home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), MODELOPS_HOME=str(modelops_home), NO_COLOR="1")
    env.pop("FORCE_COLOR", None)
    return env


def _apply(env: Mapping[str, str], overrides: EnvOverrides | None) -> dict[str, str]:
    merged = dict(env)
    for key, value in (overrides or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def run_command(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    extra_plugins: Sequence[PluginSpec] = (),
) -> CliResult:
    """Run ``modelops-bundle ARGV`` in-process with ``environ``; output is captured, never printed."""
    from modelops_bundle.cli.main import run

    stdout, stderr = io.StringIO(), io.StringIO()
    code = run(
        list(argv),
        prog=PROG,
        environ=dict(environ),
        extra_plugins=list(extra_plugins),
        stdout=stdout,
        stderr=stderr,
    )
    return CliResult(tuple(argv), int(code), stdout.getvalue(), stderr.getvalue())


def load_plugin(name: str, plugin: object) -> PluginInfo:
    """Load ``plugin`` under ``name`` as modelops-bundle loads an installed plugin -- checked against this
    version's hooks and plugin API (``MOPS_PLUGIN_API``) -- with an installed plugin of that name
    disabled, so the module of your checkout is the one checked. Returns its record: ``status``
    (``"loaded"`` or ``"error"``), ``error`` and ``hooks`` (the hooks it implements), as
    ``mops bundle plugins --json`` shows them."""
    from modelops_bundle.core.plugins import build_plugin_host

    host = build_plugin_host({**os.environ, "MOPS_DISABLE_PLUGINS": name}, extra_plugins=[(name, plugin)])
    return host.infos[name]


def open_provider(
    provider: str,
    *,
    plugins: Sequence[PluginSpec] = (),
    environ: Mapping[str, str] | None = None,
    prefix: str = "conformance",
    **section: Any,
) -> StorageProvider:
    """The storage provider ``provider`` opened as a push opens it: chosen by name among the plugins'
    providers (the installed plugins, then ``plugins`` -- an installed plugin named like one of them is
    disabled), constructed from an environment whose ``storage:`` section is ``provider`` plus
    ``section`` (``path``, ``container``, ``endpoint``, ``access_key``, ``secret_key``, ...; other keys
    are the provider's options), with the project policy's ``prefix``::

        provider = open_provider("labstore", plugins=[("labstore", plugin)], path=str(tmp_path / "store"))
    """
    from modelops_bundle.core.plugins import build_plugin_host
    from modelops_bundle.core.settings import StoragePolicy, StorageSection, build
    from modelops_bundle.core.storage import open_storage

    outer = dict(os.environ if environ is None else environ)
    disabled = ",".join(filter(None, [outer.get("MOPS_DISABLE_PLUGINS", ""), *(name for name, _ in plugins)]))
    host = build_plugin_host({**outer, "MOPS_DISABLE_PLUGINS": disabled}, extra_plugins=plugins)
    settings = build(StorageSection, {"provider": provider, **section})
    return open_storage(host, settings, StoragePolicy(prefix=prefix), environ=outer)


class CliRunner:
    """Runs commands in any folder (``cwd``, default the test's ``tmp_path``) with an isolated env."""

    def __init__(self, env: dict[str, str], default_cwd: Path) -> None:
        self.env = env
        self.default_cwd = default_cwd
        #: ``(name, plugin)`` pairs registered after the built-ins and entry points, as for a real plugin.
        self.extra_plugins: list[PluginSpec] = []

    def __call__(
        self,
        *args: str,
        cwd: Path | str | None = None,
        input_env: EnvOverrides | None = None,
        extra_plugins: Sequence[PluginSpec] = (),
    ) -> CliResult:
        """Run ``args`` as if started in ``cwd``; ``input_env`` adds variables (``None`` removes one)."""
        folder = Path(cwd) if cwd is not None else self.default_cwd
        return run_command(
            ["-C", str(folder), *args],
            _apply(self.env, input_env),
            extra_plugins=[*self.extra_plugins, *extra_plugins],
        )


class BundleProject:
    """An initialised project in a temporary folder, and a way to run commands in it."""

    def __init__(self, root: Path, env: dict[str, str], extra_plugins: Sequence[PluginSpec] = ()) -> None:
        self.root = root
        self.env = env
        #: ``(name, plugin)`` pairs loaded by every :meth:`run`: test a plugin before it is published.
        self.extra_plugins: list[PluginSpec] = list(extra_plugins)

    @classmethod
    def create(cls, root: Path, env: dict[str, str], *init_args: str) -> BundleProject:
        """Run the real ``init`` on ``root`` (plus ``init_args`` such as ``--env``); raise if it fails."""
        root.mkdir(parents=True, exist_ok=True)
        result = run_command(["-C", str(root), "init", ".", *init_args], env)
        if result.exit_code != 0:
            raise RuntimeError(f"init failed in {root}: {result!r}")
        return cls(root, env)

    @property
    def meta(self) -> Path:
        """The ``.modelops-bundle/`` folder."""
        return self.root / ".modelops-bundle"

    def path(self, rel: str | os.PathLike[str]) -> Path:
        """Absolute path of ``rel`` inside the project."""
        return self.root / rel

    def write(self, rel: str | os.PathLike[str], content: str | bytes) -> Path:
        """Create or replace a file (parents included); ``str`` is written as UTF-8."""
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
        return target

    def read(self, rel: str | os.PathLike[str]) -> str:
        return self.path(rel).read_text(encoding="utf-8")

    def tracked(self) -> list[str]:
        """The lines of ``.modelops-bundle/tracked.txt``."""
        return [line for line in (self.meta / "tracked.txt").read_text(encoding="utf-8").splitlines() if line]

    def run(
        self,
        *args: str,
        input_env: EnvOverrides | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> CliResult:
        """Run a command in the project (or in its sub-folder ``cwd``) in-process.

        ``input_env`` adds environment variables for this run only (``None`` removes one).
        """
        folder = self.root / cwd if cwd is not None else self.root
        return run_command(["-C", str(folder), *args], _apply(self.env, input_env), extra_plugins=self.extra_plugins)

    def run_model(
        self, ref: str, model_id: str, params: Mapping[str, Any] | None = None, seed: int = 0, **options: Any
    ) -> ModelResult:
        """:func:`modelops_bundle.api.run_model` in this project's environment, with its ``extra_plugins``
        (a framework plugin's runner is found before it is installed). ``ref``: e.g. ``"project@sha256:..."``
        from a ``push``; ``options``: ``model_kwargs``, ``cache_dir``, ``env``."""
        from modelops_bundle.api import run_model

        return run_model(
            ref, model_id, params, seed, environ=self.env, extra_plugins=list(self.extra_plugins), **options
        )

    def push_digest(self, *args: str) -> str:
        """``push --json`` (with ``args``); the pushed version's digest, or an error showing the output."""
        result = self.run("push", "--json", *args)
        if result.exit_code != 0:
            raise RuntimeError(f"push failed in {self.root}: {result!r}")
        digest: str = result.json()["digest"]
        return digest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mops_env(**variables): extra environment variables for mops_env (a value of None removes one)",
    )


@pytest.fixture
def mops_env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """An isolated environment for modelops-bundle commands (see the module docstring)."""
    env = isolated_environ(tmp_path)
    for marker in reversed(list(request.node.iter_markers("mops_env"))):
        env = _apply(env, marker.kwargs)
    for key in [key for key in os.environ if key.startswith("MOPS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", env["HOME"])
    monkeypatch.setenv("MODELOPS_HOME", env["MODELOPS_HOME"])
    yield env


@pytest.fixture
def run_cli(mops_env: dict[str, str], tmp_path: Path) -> CliRunner:
    """Run a command in any folder: ``run_cli("init", "proj", cwd=tmp_path)``."""
    return CliRunner(mops_env, tmp_path)


@pytest.fixture
def bundle_project(mops_env: dict[str, str], tmp_path: Path) -> BundleProject:
    """An initialised project at ``tmp_path / "project"``."""
    return BundleProject.create(tmp_path / "project", mops_env)
