"""Model and target discovery from source, never importing it: aliases, inheritance, several files."""

from __future__ import annotations

from tests.registry.conftest import Tree
from tests.registry.sources import models_in, targets_in


def test_basemodel_under_every_alias_and_through_chains(tree: Tree) -> None:
    root = tree(
        {
            "models/m.py": """
                import modelops_calabaria as mc
                from modelops_calabaria import BaseModel as BM, model_output as out
                from pydantic import BaseModel as Settings

                class Direct(BM):
                    PARAMS = mc.ParameterSpace([mc.ParameterSpec("R0", 0, 5), mc.ParameterSpec(name="gamma")])

                    @out("incidence")
                    def a(self, raw, seed): ...

                class ViaModule(mc.BaseModel):
                    @mc.model_output(name="prevalence")
                    def b(self, raw, seed): ...

                class Child(Direct):
                    @out("deaths")
                    def c(self, raw, seed): ...

                class Grandchild(Child):
                    pass

                class Config(Settings):
                    pass

                class Cycle1(Cycle2):
                    pass

                class Cycle2(Cycle1):
                    pass

                def factory():
                    class Hidden(BM):  # not reachable through an entrypoint
                        pass
            """
        }
    )
    found = models_in(root, "models/m.py")
    assert sorted(found) == ["Child", "Direct", "Grandchild", "ViaModule"]
    assert found["Direct"].outputs == ("incidence",)
    assert found["Direct"].parameters == ("R0", "gamma")
    assert found["ViaModule"].outputs == ("prevalence",)
    assert found["Grandchild"].outputs == ("deaths", "incidence")  # inherited, nearest first
    assert found["Grandchild"].entrypoint == "models.m:Grandchild"
    assert {model.framework for model in found.values()} == {"calabaria"}


def test_basemodel_fallback_import_and_local_stand_in(tree: Tree) -> None:
    root = tree(
        {
            "models/__init__.py": "",
            "models/base.py": "class BaseModel:\n    pass\n",
            "models/seir.py": """
                try:
                    from modelops_calabaria import BaseModel, model_output
                except ImportError:
                    from models.base import BaseModel, model_output

                class SEIR(BaseModel):
                    @model_output("incidence")
                    def x(self, raw, seed): ...
            """,
        }
    )
    assert list(models_in(root, "models/seir.py")) == ["SEIR"]
    assert models_in(root, "models/base.py") == {}  # the stand-in base itself is no model


def test_basemodel_through_project_local_bases(tree: Tree) -> None:
    root = tree(
        {
            "src/proj/__init__.py": "from .core.base import CommonBase as Exported\n",
            "src/proj/core/__init__.py": "",
            "src/proj/core/base.py": """
                from modelops_calabaria import BaseModel, model_output

                class CommonBase(BaseModel):
                    @model_output("shared")
                    def s(self, raw, seed): ...
            """,
            "src/proj/models/__init__.py": "",
            "src/proj/models/a.py": """
                from ..core.base import CommonBase
                from proj import Exported
                import proj.core.base as b

                class Relative(CommonBase):
                    pass

                class ReExported(Exported):
                    pass

                class ByModule(b.CommonBase):
                    pass

                class Plain:
                    pass
            """,
        }
    )
    found = models_in(root, "src/proj/models/a.py")
    assert sorted(found) == ["ByModule", "ReExported", "Relative"]
    assert found["Relative"].outputs == ("shared",)
    assert found["Relative"].entrypoint == "proj.models.a:Relative"  # src/ is an import root, not a package


def test_starsim_aliases_and_chains(tree: Tree) -> None:
    root = tree(
        {
            "models/sims.py": """
                import starsim as ss
                import starsim as sim
                import starsim
                from starsim import Disease as D, Sim
                import other

                class A(ss.Sim): ...
                class B(sim.Network): ...
                class C(starsim.Analyzer): ...
                class E(D): ...
                class F(Sim): ...
                class G(A): ...
                class H(ss.Intervention, ss.Connector): ...
                class I(ss.Demographics): ...
                class J(ss.Infection): ...
                class K(ss.Module): ...
                class L(ss.RandomNet): ...
                class NotStarsim(other.Sim): ...
            """
        }
    )
    found = models_in(root, "models/sims.py")
    assert {model.framework for model in found.values()} == {"starsim"}
    # Only sims are models; every other Starsim class is a component of them.
    assert sorted(name for name, model in found.items() if model.role == "model") == ["A", "F", "G"]
    kinds = {name: model.kind for name, model in found.items() if model.role == "component"}
    assert kinds == {
        "B": "network",
        "C": "analyzer",
        "E": "disease",
        "H": "intervention",
        "I": "demographics",
        "J": "disease",
        "K": "module",
        "L": "network",
    }
    assert found["A"].kind == "sim"
    assert found["A"].components == tuple(f"models.sims:{name}" for name in "BCEHIJKL")


def test_starsim_sim_factories(tree: Tree) -> None:
    root = tree(
        {
            "models/__init__.py": "",
            "models/parts.py": """
                import starsim as ss

                class Household(ss.DynamicNetwork): ...
                class Campaign(ss.Intervention): ...
            """,
            "models/build.py": """
                import starsim as ss
                from starsim import Sim
                from models.parts import Household

                class Town(ss.Sim): ...

                def make_sim(beta=0.1, n_agents=1000):
                    sim = ss.Sim(n_agents=n_agents, diseases=ss.SIR(beta=beta), networks=Household())
                    return sim

                def make_town(**kwargs):
                    return Town(**kwargs)

                def annotated() -> Sim:
                    return build_somehow()

                class Builder:
                    def __init__(self, n_agents=500):
                        self.n_agents = n_agents

                    def __call__(self, beta=0.1):
                        return ss.Sim(n_agents=self.n_agents, diseases=ss.SIR(beta=beta))

                def run_and_summarise():
                    sim = ss.Sim()
                    sim.run()
                    return sim.results

                def _private_builder():
                    return ss.Sim()

                def main():
                    ss.Sim().run()
            """,
        }
    )
    found = models_in(root, "models/build.py")
    models = {name: model.kind for name, model in found.items() if model.role == "model"}
    assert models == {
        "Town": "sim",
        "make_sim": "sim factory",
        "make_town": "sim factory",
        "annotated": "sim factory",
        "Builder": "sim factory",
    }
    # Components the model's code imports from other project files are recorded with it.
    assert found["make_sim"].components == ("models.parts:Campaign", "models.parts:Household")
    parts = models_in(root, "models/parts.py")
    assert {name: model.role for name, model in parts.items()} == {"Household": "component", "Campaign": "component"}


def test_calibration_targets_any_alias_and_data_forms(tree: Tree) -> None:
    root = tree(
        {
            "targets/t.py": """
                import modelops_calabaria as mc
                from modelops_calabaria import calibration_target as ct

                PATHS = {"obs": "data/x.csv"}

                @ct(name="incidence", model_output="incidence", data={"obs": "data/obs.csv", "pop": "data/pop.csv"})
                def incidence_target(data_paths): ...

                @mc.calibration_target(model_output="deaths", data=["data/deaths.csv"])
                def deaths(data_paths): ...

                @ct(name="dynamic", model_output="prevalence", data=PATHS)
                def dynamic(data_paths): ...

                def undecorated(): ...
            """
        }
    )
    found = targets_in(root, "targets/t.py")
    assert sorted(found) == ["deaths", "dynamic", "incidence"]
    assert found["incidence"].data == ("data/obs.csv", "data/pop.csv")
    assert found["incidence"].entrypoint == "targets.t:incidence_target"
    assert found["deaths"].model_output == "deaths" and found["deaths"].data == ("data/deaths.csv",)
    assert found["dynamic"].unreadable == ("data",)
