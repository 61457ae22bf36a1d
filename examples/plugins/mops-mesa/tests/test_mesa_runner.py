"""The Mesa runner end to end: a Mesa model registered, pushed and run by digest through
``modelops_bundle.api.run_model``, as a ModelOps worker or a Dask task runs it -- the conformance suite of
``modelops_bundle.testing`` plus what is particular to Mesa."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from modelops_bundle.plugin import NoRunnerError
from modelops_bundle.testing import BundleProject, ModelRunnerConformance

from mops_mesa import plugin

# Test the module of this checkout: an installed copy of the plugin (same name) is disabled.
pytestmark = pytest.mark.mops_env(MOPS_DISABLE_PLUGINS="mesa")

# A random walk of money between agents (Mesa's tutorial model, without a grid).
WEALTH = """
import mesa


class MoneyAgent(mesa.Agent):
    def __init__(self, model):
        super().__init__(model)
        self.wealth = 1

    def step(self):
        if self.wealth > 0:
            other = self.random.choice(list(self.model.agents))
            other.wealth += 1
            self.wealth -= 1


def gini(model):
    wealths = sorted(agent.wealth for agent in model.agents)
    return 1 - 2 * sum((i + 1) * w for i, w in enumerate(wealths)) / (len(wealths) * sum(wealths) or 1)


class Wealth(mesa.Model):
    max_steps = 25

    def __init__(self, n=30, seed=None):
        super().__init__(seed=seed)
        for _ in range(n):
            MoneyAgent(self)
        self.datacollector = mesa.DataCollector(model_reporters={"Gini": gini, "Agents": lambda m: len(m.agents)})

    def step(self):
        self.agents.shuffle_do("step")
        self.datacollector.collect(self)
"""


class TestMesaRunner(ModelRunnerConformance):
    @pytest.fixture
    def model_files(self) -> Mapping[str, str]:
        return {"models/__init__.py": "", "models/wealth.py": WEALTH}

    @pytest.fixture
    def model_path(self) -> str:
        return "models/wealth.py"

    @pytest.fixture
    def params(self) -> Mapping[str, Any]:
        return {"n": 40, "max_steps": 10}

    @pytest.fixture
    def plugins(self) -> list[tuple[str, object]]:
        return [("mesa", plugin)]


@pytest.fixture
def pushed(bundle_project: BundleProject) -> tuple[BundleProject, str]:
    bundle_project.extra_plugins.append(("mesa", plugin))
    bundle_project.write("models/__init__.py", "")
    bundle_project.write("models/wealth.py", WEALTH)
    assert bundle_project.run("add", ".").exit_code == 0
    assert bundle_project.run("register-model", "models/wealth.py").exit_code == 0
    return bundle_project, f"{bundle_project.root.name}@{bundle_project.push_digest()}"


def test_outputs_are_the_model_reporters_one_value_per_step(pushed: tuple[BundleProject, str]) -> None:
    project, ref = pushed
    result = project.run_model(ref, "wealth_wealth", {"n": 10}, seed=3)
    assert sorted(result.outputs) == ["Agents", "Gini"]
    assert result.outputs["Agents"] == [10] * 25  # the class's max_steps
    assert result.params == {"n": 10, "max_steps": 25}
    other_seed = project.run_model(ref, "wealth_wealth", {"n": 10}, seed=4)
    assert other_seed.outputs["Gini"] != result.outputs["Gini"]


def test_without_the_plugin_the_model_cannot_run_and_the_error_says_why(pushed: tuple[BundleProject, str]) -> None:
    project, ref = pushed
    project.extra_plugins.clear()
    with pytest.raises(NoRunnerError) as raised:
        project.run_model(ref, "wealth_wealth")
    assert "no plugin runs mesa models: model wealth_wealth (models.wealth:Wealth)" in str(raised.value)
    assert raised.value.hint is not None and "mops_model_runner" in raised.value.hint
