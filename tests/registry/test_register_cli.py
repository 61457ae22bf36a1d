"""``register-model``, ``register-target``, ``target-set`` and ``list`` through the real CLI."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from modelops_bundle.testing import BundleProject

SEIR = '''
"""An SEIR model."""
from modelops_calabaria import BaseModel, model_output
from models.helpers import load

class SEIRModel(BaseModel):
    @model_output("incidence")
    def incidence(self, raw, seed):
        return load()

class SEIRVariant(SEIRModel):
    pass
'''

TARGET = """
from modelops_calabaria import calibration_target

@calibration_target(name="incidence", model_output="incidence", data={"observed": "data/observed.csv"})
def incidence_target(data_paths):
    return data_paths
"""


def make_project(project: BundleProject) -> None:
    project.write("models/__init__.py", "")
    project.write("models/seir.py", SEIR)
    project.write("models/helpers.py", "from .numerics import step\n\ndef load():\n    return step()\n")
    project.write("models/numerics.py", "def step():\n    return 1\n")
    project.write("data/demographics.csv", "age,n\n0,10\n")
    project.write("data/contacts/home.csv", "a,b\n1,2\n")
    project.write("data/contacts/work.csv", "a,b\n3,4\n")
    project.write("data/contacts/scratch.tmp", "ignored\n")
    project.write("data/observed.csv", "week,cases\n1,3\n")
    project.write("targets/__init__.py", "")
    project.write("targets/incidence.py", TARGET)
    project.write(".modelopsignore", project.read(".modelopsignore") + "*.tmp\n")


def registry(project: BundleProject) -> dict:
    return yaml.safe_load(project.read(".modelops-bundle/registry.yaml"))


def test_register_model_discovers_records_and_tracks_everything(bundle_project: BundleProject) -> None:
    make_project(bundle_project)
    result = bundle_project.run(
        "register-model", "models/seir.py", "--class", "SEIRModel", "--data", "data/demographics.csv",
        "--data", "data/contacts", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    payload = result.json()
    assert [model["id"] for model in payload["models"]] == ["seir_seirmodel"]
    entry = registry(bundle_project)["models"]["seir_seirmodel"]
    assert entry["entrypoint"] == "models.seir:SEIRModel"
    assert entry["outputs"] == ["incidence"]
    assert entry["code"] == ["models/__init__.py", "models/helpers.py", "models/numerics.py", "models/seir.py"]
    # the folder's files, without the one .modelopsignore excludes
    assert entry["data"] == ["data/demographics.csv", "data/contacts/home.csv", "data/contacts/work.csv"]
    assert set(entry["code_digests"]) == set(entry["code"]) and set(entry["data_digests"]) == set(entry["data"])
    assert entry["model_digest"].startswith("sha256:")
    assert set(bundle_project.tracked()) == set(entry["code"]) | set(entry["data"])

    # auto-discovery without --class: both classes, the default id is <stem>_<class> lower-cased
    again = bundle_project.run("register-model", "models/seir.py", "--json")
    assert again.exit_code == 0, again.stderr
    assert [(m["id"], m["updated"]) for m in again.json()["models"]] == [
        ("seir_seirmodel", True),
        ("seir_seirvariant", False),
    ]
    # re-registering without --data keeps the data given before
    assert registry(bundle_project)["models"]["seir_seirmodel"]["data"] == entry["data"]

    listed = bundle_project.run("list", "--json").json()
    assert [model["id"] for model in listed["models"]] == ["seir_seirmodel", "seir_seirvariant"]
    text = bundle_project.run("list")
    assert "seir_seirmodel" in text.stdout and "models.seir:SEIRVariant" in text.stdout


def test_register_target_and_target_sets(bundle_project: BundleProject) -> None:
    make_project(bundle_project)
    result = bundle_project.run("register-target", "targets/incidence.py")
    assert result.exit_code == 0, result.stderr
    target = registry(bundle_project)["targets"]["incidence"]
    assert target["entrypoint"] == "targets.incidence:incidence_target"
    assert target["model_output"] == "incidence"
    assert target["data"] == ["data/observed.csv"]
    assert "targets/incidence.py" in bundle_project.tracked()

    assert bundle_project.run("target-set", "set", "main", "--target", "incidence", "--weight", "incidence=0.5").ok
    assert registry(bundle_project)["target_sets"] == {
        "main": {"targets": ["incidence"], "weights": {"incidence": 0.5}}
    }
    listed = bundle_project.run("target-set", "list", "--json").json()
    assert listed == {"target_sets": [{"name": "main", "targets": ["incidence"], "weights": {"incidence": 0.5}}]}
    unknown = bundle_project.run("target-set", "set", "other", "--target", "nope")
    assert unknown.exit_code == 2 and "unknown target 'nope'" in unknown.stderr
    assert bundle_project.run("target-set", "delete", "main").ok
    assert registry(bundle_project)["target_sets"] == {}
    assert bundle_project.run("target-set", "delete", "main").exit_code == 2


@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        (["models/absent.py"], {}, "model file not found: models/absent.py"),
        (["models/bad.py"], {"models/bad.py": "class X(BaseModel)\n    pass\n"}, "models/bad.py:1: syntax error"),
        (["models/seir.py", "--class", "Nope"], {}, "class 'Nope' not found in models/seir.py"),
        (["models/seir.py", "--id", "one"], {}, "--id names one model, but 2 are selected"),
        (["models/seir.py", "--data", "data/absent.csv"], {}, "data path not found: data/absent.csv"),
        (["models/helpers.py"], {}, "no model classes found in models/helpers.py"),
        (["models/other/seir.py"], {"models/other/seir.py": SEIR}, "model id 'seir_seirmodel' is already registered"),
    ],
)
def test_bad_input_changes_nothing(
    bundle_project: BundleProject, args: list[str], files: dict[str, str], message: str
) -> None:
    make_project(bundle_project)
    assert bundle_project.run("register-model", "models/seir.py", "--class", "SEIRModel").ok
    for rel, text in files.items():
        bundle_project.write(rel, text)
    before = (bundle_project.read(".modelops-bundle/registry.yaml"), bundle_project.tracked())
    result = bundle_project.run("register-model", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert (bundle_project.read(".modelops-bundle/registry.yaml"), bundle_project.tracked()) == before


def test_class_not_found_lists_the_classes(bundle_project: BundleProject) -> None:
    make_project(bundle_project)
    result = bundle_project.run("register-model", "models/seir.py", "--class", "SIR")
    assert "model classes found there: SEIRModel, SEIRVariant" in result.stderr


def test_hand_broken_registry_is_reported_with_file_and_line(bundle_project: BundleProject) -> None:
    make_project(bundle_project)
    assert bundle_project.run("register-model", "models/seir.py", "--class", "SEIRModel").ok
    path = bundle_project.meta / "registry.yaml"
    broken = path.read_text().replace("class_name: SEIRModel", "class_name: [SEIRModel")
    path.write_text(broken)
    result = bundle_project.run("list")
    assert result.exit_code == 2
    assert "registry.yaml, line" in result.stderr and "invalid YAML" in result.stderr
    assert bundle_project.run("register-model", "models/seir.py").exit_code == 2
    assert path.read_text() == broken

    path.write_text(textwrap.dedent("""\
        version: '1.0'
        models:
          m:
            entrypoint: not an entrypoint
            path: models/seir.py
            class_name: SEIRModel
        """))  # fmt: skip
    invalid = bundle_project.run("list")
    assert invalid.exit_code == 2
    assert "models.m.entrypoint (line 4)" in invalid.stderr


def test_upstream_registry_round_trips(bundle_project: BundleProject) -> None:
    """A registry written by the upstream tool (modelops_contracts layout) is read, kept and extended."""
    make_project(bundle_project)
    upstream = {
        "version": "1.0",
        "models": {
            "legacy": {
                "entrypoint": "models.seir:SEIRModel",
                "path": "models/seir.py",
                "class_name": "SEIRModel",
                "scenarios": ["baseline"],
                "parameters": ["beta"],
                "outputs": ["incidence"],
                "data": ["data/demographics.csv"],
                "data_digests": {"data/demographics.csv": "sha256:" + "0" * 64},
                "code": ["models/seir.py"],
                "code_digests": {"models/seir.py": "sha256:" + "1" * 64},
                "model_digest": "sha256:" + "2" * 64,
                "owner": "someone else's key",
            }
        },
        "targets": {
            "incidence": {
                "path": "targets/incidence.py",
                "entrypoint": "targets.incidence:incidence_target",
                "model_output": "incidence",
                "data": ["data/observed.csv"],
                "target_digest": None,
            }
        },
    }
    (bundle_project.meta / "registry.yaml").write_text(yaml.safe_dump(upstream, sort_keys=False))
    assert bundle_project.run("list", "--json").json()["models"][0]["id"] == "legacy"
    assert bundle_project.run("register-model", "models/seir.py", "--class", "SEIRVariant").ok
    after = registry(bundle_project)
    legacy = after["models"]["legacy"]
    for key, value in upstream["models"]["legacy"].items():
        assert legacy[key] == value, key  # untouched, unknown key included
    assert after["targets"]["incidence"]["model_output"] == "incidence"
    variant = after["models"]["seir_seirvariant"]
    # every key upstream readers require, in the upstream layout
    assert list(variant)[:3] == ["entrypoint", "path", "class_name"]
    for key in ("scenarios", "parameters", "outputs", "data", "data_digests", "code", "code_digests", "model_digest"):
        assert key in variant


@pytest.mark.parametrize(
    ("args", "source", "message"),
    [
        (["--target", "prevalence"], TARGET, "target 'prevalence' not found in targets/incidence.py"),
        ([], "def plain():\n    pass\n", "no calibration targets found in targets/incidence.py"),
        ([], TARGET.replace("data/observed.csv", "data/absent.csv"), "data path not found: data/absent.csv"),
        ([], TARGET.replace('model_output="incidence", ', ""), "target 'incidence' names no model_output"),
    ],
)
def test_register_target_bad_input_changes_nothing(
    bundle_project: BundleProject, args: list[str], source: str, message: str
) -> None:
    make_project(bundle_project)
    bundle_project.write("targets/incidence.py", source)
    before = bundle_project.tracked()
    result = bundle_project.run("register-target", "targets/incidence.py", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert not (bundle_project.meta / "registry.yaml").exists() and bundle_project.tracked() == before
