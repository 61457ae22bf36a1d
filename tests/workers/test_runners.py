"""Running registered models through the ``mops_model_runner`` hook: the project's own templates (SEIR,
Calabaria-style; Starsim, with the real ``starsim`` package) by digest through ``api.run_model``, sim
factories, a model no plugin runs, and runners from plugins (replacing a built-in, or broken)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelops_bundle import api, hookimpl
from modelops_bundle.core.errors import PluginError, UsageError
from modelops_bundle.core.runner import NoRunnerError, RunnableModel, RunOutput, RunRequest
from modelops_bundle.runner_conformance import canonical
from modelops_bundle.testing import BundleProject, ModelRunnerConformance
from tests.bundle.conftest import ok

ss = pytest.importorskip("starsim", reason="the test extras install starsim: pip install -e '.[test]'")


def succeeded(result: Any) -> None:
    assert result.exit_code == 0, result


def pushed_ref(project: BundleProject) -> str:
    return f"{project.root.name}@{project.push_digest()}"


# ---------------------------------------------------------------------------------------- templates


@pytest.fixture
def starsim_project(mops_env: dict[str, str], tmp_path: Path) -> BundleProject:
    project = BundleProject.create(tmp_path / "sir", mops_env, "--template", "starsim")
    succeeded(project.run("add", "."))
    return project


def test_the_starsim_template_registers_one_model_and_runs_by_digest(starsim_project: BundleProject) -> None:
    registered = ok(starsim_project.run("register-model", "models/sir.py", "--data", "data/demographics.csv", "--json"))
    (model,) = registered["models"]
    assert (model["id"], model["entrypoint"], model["framework"]) == (
        "sir_starsimsir",
        "models.sir:StarsimSIR",
        "starsim",
    )
    ref = pushed_ref(starsim_project)
    digest = ref.rpartition("@")[2]

    params = {"n_agents": 800, "days": 40, "beta": 0.08}
    result = api.run_model(ref, "sir_starsimsir", params, seed=3, environ=starsim_project.env)
    assert (result.bundle_digest, result.model_id, result.seed) == (digest, "sir_starsimsir", 3)
    assert result.tags["bundle.digest"] == digest and result.tags["model.id"] == "sir_starsimsir"
    assert result.tags["model.digest"] == model["model_digest"]
    # The sim's results as named arrays, one value a day; the constructor's defaults fill in the parameters.
    assert {"timevec", "n_alive", "sir.new_infections", "sir.n_infected", "randomnet.n_edges"} <= set(result.outputs)
    assert list(result.outputs["timevec"]) == [float(day) for day in range(41)]
    assert result.outputs["n_alive"][0] == 800
    assert result.params == {**params, "dur_inf": 7.0, "init_prev": 0.005, "n_contacts": 6.0}

    again = api.run_model(ref, "sir_starsimsir", params, seed=3, environ=starsim_project.env)
    other = api.run_model(ref, "sir_starsimsir", params, seed=4, environ=starsim_project.env)
    assert canonical(again.outputs) == canonical(result.outputs)  # deterministic for a seed
    assert canonical(other.outputs) != canonical(result.outputs)  # and the seed is the sim's rand_seed


def test_the_seir_template_runs_by_digest(mops_env: dict[str, str], tmp_path: Path) -> None:
    project = BundleProject.create(tmp_path / "seir", mops_env, "--template", "seir")
    succeeded(project.run("add", "."))
    succeeded(project.run("register-model", "models/seir.py", "--data", "data/demographics.csv", "--data",
                   "data/contact_patterns.csv"))  # fmt: skip
    ref = pushed_ref(project)
    result = api.run_model(ref, "seir_seirmodel", {"R0": 2.5}, seed=1, environ=project.env)
    assert result.tags["bundle.digest"] == ref.rpartition("@")[2] and result.tags["model.id"] == "seir_seirmodel"
    assert sorted(result.outputs) == ["attack_rate", "compartments", "incidence"]
    assert result.params["R0"] == 2.5 and result.params["latent_period"] == 3.0  # defaults filled in


# --------------------------------------------------------------------------------- sim factories

FACTORIES = """
import starsim as ss

from models.parts import Seasonal


def make_sim(beta=0.1, n_agents=300, days=20, rand_seed=0):
    sim = ss.Sim(
        n_agents=n_agents,
        diseases=ss.SIR(beta=ss.perday(beta)),
        networks=ss.RandomNet(),
        interventions=Seasonal(),
        start=ss.days(0),
        stop=ss.days(days),
        dt=ss.days(1),
        rand_seed=rand_seed,
        verbose=0,
    )
    return sim


class Builder:
    def __init__(self, n_agents=200):
        self.n_agents = n_agents

    def __call__(self, beta=0.1):
        return ss.Sim(n_agents=self.n_agents, diseases=ss.SIR(beta=ss.perday(beta)), networks=ss.RandomNet(),
                      start=ss.days(0), stop=ss.days(10), dt=ss.days(1), verbose=0)


def prepared():
    sim = ss.Sim(n_agents=100, diseases="sir", networks="random", rand_seed=99, verbose=0)
    sim.init()
    return sim
"""

PARTS = """
import starsim as ss


class Seasonal(ss.Intervention):
    def step(self):
        pass


class Household(ss.RandomNet):
    pass
"""


@pytest.fixture
def factory_project(bundle_project: BundleProject) -> BundleProject:
    bundle_project.write("models/__init__.py", "")
    bundle_project.write("models/parts.py", PARTS)
    bundle_project.write("models/factories.py", FACTORIES)
    succeeded(bundle_project.run("add", "."))
    return bundle_project


def test_sim_factories_are_models_and_their_components_are_recorded(factory_project: BundleProject) -> None:
    registered = ok(factory_project.run("register-model", "models/factories.py", "--json"))
    models = {model["id"]: model for model in registered["models"]}
    assert set(models) == {"factories_make_sim", "factories_builder", "factories_prepared"}
    assert models["factories_make_sim"]["entrypoint"] == "models.factories:make_sim"
    assert models["factories_make_sim"]["components"] == ["models.parts:Household", "models.parts:Seasonal"]
    assert "models/parts.py" in models["factories_make_sim"]["code"]  # a component is a code dependency
    listed = ok(factory_project.run("list", "--json"))["models"]
    assert {model["id"]: model.get("components") for model in listed}["factories_make_sim"] == models[
        "factories_make_sim"
    ]["components"]

    ref = pushed_ref(factory_project)
    made = factory_project.run_model(ref, "factories_make_sim", {"beta": 0.2}, seed=5)
    assert made.params == {"beta": 0.2, "n_agents": 300, "days": 20}
    assert len(made.outputs["sir.n_infected"]) == 21
    again = factory_project.run_model(ref, "factories_make_sim", {"beta": 0.2}, seed=5)
    assert canonical(again.outputs) == canonical(made.outputs)

    built = factory_project.run_model(ref, "factories_builder", {"beta": 0.3}, seed=2, model_kwargs={"n_agents": 150})
    assert built.outputs["n_alive"][0] == 150 and built.params == {"beta": 0.3}

    with pytest.raises(UsageError, match="already initialised with rand_seed 99, so it cannot run with seed 1"):
        factory_project.run_model(ref, "factories_prepared", seed=1)
    assert factory_project.run_model(ref, "factories_prepared", seed=99).outputs["n_alive"][0] == 100


def test_components_are_not_models_unless_named(factory_project: BundleProject) -> None:
    refused = factory_project.run("register-model", "models/parts.py")
    assert refused.exit_code == 2
    assert "no model classes found in models/parts.py" in refused.stderr
    assert "Seasonal (starsim intervention), Household (starsim network)" in refused.stderr

    named = factory_project.run("register-model", "models/parts.py", "--class", "Seasonal", "--json")
    assert ok(named)["models"][0]["framework"] == "starsim"
    assert "Seasonal is a starsim intervention, a part of models rather than a model" in named.stderr
    ref = pushed_ref(factory_project)
    with pytest.raises(UsageError, match=r"models.parts:Seasonal does not build a Starsim sim"):
        factory_project.run_model(ref, "parts_seasonal")


# ----------------------------------------------------------------------------------- no runner

UNKNOWN = """
from pathlib import Path

Path(__file__).with_name("IMPORTED").write_text("the model module was imported")


class Lab:
    pass
"""


def test_a_model_no_plugin_runs_fails_naming_its_framework_before_its_code_is_imported(
    bundle_project: BundleProject, tmp_path: Path
) -> None:
    bundle_project.write("lab.py", UNKNOWN)
    succeeded(bundle_project.run("add", "lab.py"))
    succeeded(bundle_project.run("register-model", "lab.py", "--class", "Lab"))
    ref = pushed_ref(bundle_project)
    cache = tmp_path / "cache"
    with pytest.raises(NoRunnerError) as raised:
        bundle_project.run_model(ref, "lab_lab", cache_dir=cache)
    assert str(raised.value) == (
        "no plugin runs unknown models: model lab_lab (lab:Lab) is registered with framework 'unknown'"
    )
    assert "mops_model_runner" in (raised.value.hint or "") and "docs/plugins.md#mops_model_runner" in (
        raised.value.hint or ""
    )
    assert raised.value.exit_code == 2
    assert not list(cache.rglob("IMPORTED"))  # refused before the model's module ran


# ------------------------------------------------------------------------------- plugin runners

MODEL = """
class Toy:
    def __init__(self, scale=1):
        self.scale = scale

    def simulate(self, params, seed):
        return {"value": [seed * self.scale * params.get("k", 1)]}
"""


class EchoRunner:
    def run(self, target: Any, request: RunRequest) -> RunOutput:
        return RunOutput(outputs={"echo": [target.__name__, request.seed]}, params=dict(request.params))


class TakesOverCalabaria:
    @hookimpl
    def mops_model_runner(self, model: RunnableModel) -> EchoRunner | None:
        return EchoRunner() if model.framework == "calabaria" else None


class BrokenRunner:
    def run(self, target: Any, request: RunRequest) -> Any:
        return {"value": 1}  # not a RunOutput


class ReturnsBroken:
    @hookimpl
    def mops_model_runner(self, model: RunnableModel) -> BrokenRunner:
        return BrokenRunner()


@pytest.fixture
def toy(bundle_project: BundleProject) -> tuple[BundleProject, str]:
    bundle_project.write("toy.py", MODEL)
    succeeded(bundle_project.run("add", "toy.py"))
    succeeded(bundle_project.run("register-model", "toy.py", "--class", "Toy"))
    registry = bundle_project.meta / "registry.yaml"  # an upstream-written entry: no framework key
    registry.write_text(registry.read_text().replace("    framework: unknown\n", ""))
    return bundle_project, pushed_ref(bundle_project)


def test_an_entry_without_a_framework_runs_as_calabaria(toy: tuple[BundleProject, str]) -> None:
    project, ref = toy
    assert project.run_model(ref, "toy_toy", {"k": 3}, seed=2, model_kwargs={"scale": 5}).outputs == {"value": [30]}


def test_a_plugin_runner_takes_over_a_framework(toy: tuple[BundleProject, str]) -> None:
    project, ref = toy
    project.extra_plugins.append(("echo", TakesOverCalabaria()))
    result = project.run_model(ref, "toy_toy", {"k": 3}, seed=2)
    assert result.outputs == {"echo": ["Toy", 2]} and result.params == {"k": 3}


def test_a_runner_returning_the_wrong_thing_is_named(toy: tuple[BundleProject, str]) -> None:
    project, ref = toy
    project.extra_plugins.append(("broken", ReturnsBroken()))
    with pytest.raises(PluginError, match=r"runner tests\.workers\.test_runners\.BrokenRunner returned builtins\.dict"):
        project.run_model(ref, "toy_toy")


# ------------------------------------------------------------------------ the conformance suite


class TestStarsimTemplateConformance(ModelRunnerConformance):
    """The built-in Starsim discovery and runner pass the suite every framework plugin passes."""

    @pytest.fixture
    def model_files(self) -> dict[str, str]:
        folder = Path(__file__).resolve().parents[2] / "src" / "modelops_bundle" / "templates" / "starsim"
        return {
            "models/__init__.py": (folder / "models" / "__init__.py").read_text(),
            "models/sir.py": (folder / "models" / "sir.py").read_text(),
            "data/demographics.csv": (folder / "data" / "demographics.csv").read_text(),
        }

    @pytest.fixture
    def model_path(self) -> str:
        return "models/sir.py"

    @pytest.fixture
    def register_args(self) -> list[str]:
        return ["--data", "data/demographics.csv"]

    @pytest.fixture
    def params(self) -> dict[str, Any]:
        return {"n_agents": 500, "days": 15}
