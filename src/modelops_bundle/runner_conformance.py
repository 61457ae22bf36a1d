"""The conformance suite of a framework plugin: its discovery finds a model, its runner runs it from a bundle.

Subclass :class:`ModelRunnerConformance` in a ``Test...`` class and provide the project the suite should
work with; everything runs through the real commands and :func:`modelops_bundle.api.run_model` (by
digest, through the shared cache, with the model's code imported in isolation) -- the path every worker
takes::

    import pytest

    from modelops_bundle.testing import ModelRunnerConformance
    from mops_tinyabm import plugin


    class TestTinyABM(ModelRunnerConformance):
        @pytest.fixture
        def model_files(self):
            return {"models/walk.py": WALK_MODEL}        # project-relative path -> source

        @pytest.fixture
        def model_path(self):
            return "models/walk.py"                      # the file register-model reads

        @pytest.fixture
        def params(self):
            return {"n": 20}                             # parameters of one run

        @pytest.fixture
        def plugins(self):
            return [("tinyabm", plugin)]                 # [] once the plugin is installed

It checks that ``register-model PATH`` registers exactly one model, of a framework that is not
``unknown``; that a ``mops_model_runner`` answers for that framework; that a run by digest returns
named outputs, the parameters used (those given among them) and the provenance tags (bundle digest and
model id); that the same seed gives the same outputs; and that the run used only what the model's
registration brought into the bundle (a partial materialisation with ``models=[id]``).

Optional fixtures: ``register_args`` (extra ``register-model`` arguments, e.g. ``["--data", "data/x.csv"]``),
``model_kwargs`` (constructor arguments), ``seed`` (default 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from modelops_bundle.core.runner import ModelResult
    from modelops_bundle.testing import BundleProject

__all__ = ["ModelRunnerConformance", "canonical"]


def canonical(value: Any) -> Any:
    """A comparable form of model outputs: arrays and tables as nested lists, mappings as dicts."""
    if isinstance(value, Mapping):
        return {str(key): canonical(item) for key, item in value.items()}
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):  # pandas / polars tables
        try:
            return canonical(to_dict(as_series=False))
        except TypeError:
            return canonical(to_dict(orient="list"))
    to_list = getattr(value, "tolist", None)
    if callable(to_list):  # numpy arrays and scalars
        return to_list()
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


class ModelRunnerConformance:
    """What every framework plugin's discovery and runner must do (see the module docstring)."""

    # Required fixtures of a subclass: ``model_files`` and ``model_path`` (pytest names a missing one).

    @pytest.fixture
    def params(self) -> Mapping[str, Any]:
        return {}

    @pytest.fixture
    def plugins(self) -> list[tuple[str, object]]:
        return []

    @pytest.fixture
    def register_args(self) -> list[str]:
        return []

    @pytest.fixture
    def model_kwargs(self) -> Mapping[str, Any]:
        return {}

    @pytest.fixture
    def seed(self) -> int:
        return 1

    # ------------------------------------------------------------------------------------- fixtures

    @pytest.fixture
    def runner_project(
        self,
        bundle_project: BundleProject,
        model_files: Mapping[str, str],
        model_path: str,
        plugins: list[tuple[str, object]],
        register_args: list[str],
    ) -> tuple[BundleProject, str, dict[str, Any]]:
        """The project with the model registered and pushed: ``(project, ref, registered model)``."""
        bundle_project.extra_plugins.extend(plugins)
        for rel, text in model_files.items():
            bundle_project.write(rel, text)
        added = bundle_project.run("add", ".")
        assert added.exit_code == 0, added
        registered = bundle_project.run("register-model", model_path, *register_args, "--json")
        assert registered.exit_code == 0, registered
        models = registered.json()["models"]
        assert len(models) == 1, f"register-model {model_path} should register one model, got {models}"
        digest = bundle_project.push_digest()
        return bundle_project, f"{bundle_project.root.name}@{digest}", models[0]

    @pytest.fixture
    def result(
        self,
        runner_project: tuple[BundleProject, str, dict[str, Any]],
        params: Mapping[str, Any],
        model_kwargs: Mapping[str, Any],
        seed: int,
    ) -> ModelResult:
        project, ref, model = runner_project
        return project.run_model(ref, model["id"], dict(params), seed, model_kwargs=dict(model_kwargs))

    # ---------------------------------------------------------------------------------------- checks

    def test_discovery_names_a_framework_a_runner_answers_for(
        self, runner_project: tuple[BundleProject, str, dict[str, Any]]
    ) -> None:
        from modelops_bundle.core.plugins import build_plugin_host
        from modelops_bundle.core.runner import RunnableModel, find_runner

        project, _, model = runner_project
        assert model["framework"] not in (None, "", "unknown"), model
        host = build_plugin_host(project.env, extra_plugins=project.extra_plugins)
        record = _record(project, model["id"])
        runnable = RunnableModel(model["id"], model["framework"], model["entrypoint"], record, project.root)
        assert callable(getattr(find_runner(host, runnable), "run", None))

    def test_a_run_by_digest_returns_named_outputs_and_provenance(
        self, runner_project: tuple[BundleProject, str, dict[str, Any]], result: ModelResult, seed: int
    ) -> None:
        _, ref, model = runner_project
        digest = ref.rpartition("@")[2]
        assert result.outputs and all(isinstance(name, str) for name in result.outputs), result.outputs
        assert (result.bundle_digest, result.model_id, result.seed) == (digest, model["id"], seed)
        assert result.tags["bundle.digest"] == digest and result.tags["model.id"] == model["id"]
        assert result.tags["model.digest"] == model["model_digest"]

    def test_the_parameters_given_are_the_parameters_used(self, result: ModelResult, params: Mapping[str, Any]) -> None:
        assert {name: result.params.get(name) for name in params} == dict(params), result.params

    def test_the_same_seed_gives_the_same_outputs(
        self,
        runner_project: tuple[BundleProject, str, dict[str, Any]],
        result: ModelResult,
        params: Mapping[str, Any],
        model_kwargs: Mapping[str, Any],
        seed: int,
    ) -> None:
        project, ref, model = runner_project
        again = project.run_model(ref, model["id"], dict(params), seed, model_kwargs=dict(model_kwargs))
        assert canonical(again.outputs) == canonical(result.outputs)

    def test_the_outputs_survive_pickling(self, result: ModelResult) -> None:
        """Dask sends results between processes: outputs must pickle and come back equal."""
        import pickle

        assert canonical(pickle.loads(pickle.dumps(result)).outputs) == canonical(result.outputs)


def _record(project: BundleProject, model_id: str) -> Any:
    from modelops_bundle.api import load_registry

    return load_registry(project.root).models[model_id]
