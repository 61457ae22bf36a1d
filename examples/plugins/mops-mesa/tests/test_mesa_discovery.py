"""Mesa models found by ``register-model``, with their parameters and reporters, without importing Mesa."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from modelops_bundle.plugin import SourceFile
from modelops_bundle.testing import BundleProject

from mops_mesa import plugin

# Test the module of this checkout: an installed copy of the plugin (same name) is disabled.
pytestmark = pytest.mark.mops_env(MOPS_DISABLE_PLUGINS="mesa")

# The Boltzmann wealth model of Mesa's tutorial, as a project would hold it.
WEALTH = """
import mesa

from models.agents import MoneyAgent


def compute_gini(model):
    wealths = sorted(agent.wealth for agent in model.agents)
    return 1 - 2 * sum((i + 1) * w for i, w in enumerate(wealths)) / (len(wealths) * sum(wealths) or 1)


class BoltzmannWealth(mesa.Model):
    def __init__(self, n=100, width=10, height=10, seed=None):
        super().__init__(seed=seed)
        self.grid = mesa.space.MultiGrid(width, height, True)
        MoneyAgent.create_agents(model=self, n=n)
        self.datacollector = mesa.DataCollector(
            model_reporters={"Gini": compute_gini, "Total": lambda m: len(m.agents)},
            agent_reporters={"Wealth": "wealth"},
        )

    def step(self):
        self.agents.shuffle_do("step")
        self.datacollector.collect(self)
"""

AGENTS = """
import mesa


class MoneyAgent(mesa.Agent):
    def __init__(self, model):
        super().__init__(model)
        self.wealth = 1
"""

VARIANT = """
from mesa.model import Model as MesaModel
from models.wealth import BoltzmannWealth


class TaxedWealth(BoltzmannWealth):
    def __init__(self, n=100, width=10, height=10, tax=0.1, seed=None):
        super().__init__(n, width, height, seed)


class Other(MesaModel):
    pass
"""


@pytest.fixture
def project(bundle_project: BundleProject) -> BundleProject:
    bundle_project.extra_plugins.append(("mesa", plugin))
    bundle_project.write("models/__init__.py", "")
    bundle_project.write("models/agents.py", AGENTS)
    bundle_project.write("models/wealth.py", WEALTH)
    bundle_project.write("models/variants.py", VARIANT)
    bundle_project.write("data/initial_wealth.csv", "agent,wealth\n0,1\n")
    return bundle_project


def test_register_model_finds_the_mesa_model(project: BundleProject) -> None:
    result = project.run("register-model", "models/wealth.py", "--data", "data/initial_wealth.csv", "--json")
    assert result.exit_code == 0, result
    (model,) = result.json()["models"]
    assert (model["class_name"], model["framework"]) == ("BoltzmannWealth", "mesa")
    assert model["parameters"] == ["n", "width", "height"]
    assert model["outputs"] == ["Gini", "Total"]
    assert set(model["code"]) >= {"models/wealth.py", "models/agents.py"}  # its imports are dependencies
    assert model["data"] == ["data/initial_wealth.csv"]


def test_subclasses_through_the_project_and_any_alias(project: BundleProject) -> None:
    result = project.run("register-model", "models/variants.py", "--json")
    assert result.exit_code == 0, result
    models = {model["class_name"]: model for model in result.json()["models"]}
    assert set(models) == {"TaxedWealth", "Other"}
    assert models["TaxedWealth"]["parameters"] == ["n", "width", "height", "tax"]
    assert models["TaxedWealth"]["outputs"] == ["Gini", "Total"]  # inherited reporters


def test_agents_are_not_models(project: BundleProject) -> None:
    result = project.run("register-model", "models/agents.py")
    assert result.exit_code == 2
    assert "no model classes found in models/agents.py" in result.stderr


def test_status_shows_the_model_ready_then_stale(project: BundleProject) -> None:
    assert project.run("register-model", "models/wealth.py").exit_code == 0
    status = project.run("status", "--json", "--offline").json()
    assert [(m["name"], m["status"]) for m in status["models"]] == [("BoltzmannWealth", "ready")]
    project.write("models/agents.py", AGENTS.replace("self.wealth = 1", "self.wealth = 2"))
    status = project.run("status", "--json", "--offline").json()
    assert [(m["name"], m["status"]) for m in status["models"]] == [("BoltzmannWealth", "stale")]


def test_mesa_itself_is_never_imported(tmp_path: Path) -> None:
    text = "import mesa\n\n\nclass M(mesa.Model):\n    def __init__(self, rate, *, rng=None):\n        pass\n"
    source = SourceFile("m.py", tmp_path / "m.py", text, ast.parse(text))
    (found,) = plugin.mops_discover_models(source)
    assert (found.class_name, found.parameters) == ("M", ("rate",))
