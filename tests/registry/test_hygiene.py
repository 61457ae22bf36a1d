"""Registry hygiene: ``unregister-model`` / ``unregister-target`` (``--all-missing``), re-registering a file
drops the ids it no longer defines, and ``push --dry-run`` and ``push`` plan the registry the same way
(what they refuse, what they re-track; a push that fails leaves the tracked list as it was)."""

from __future__ import annotations

import pytest
import yaml

from modelops_bundle.testing import BundleProject
from tests.registry.test_register_cli import make_project


def registry(project: BundleProject) -> dict:
    return yaml.safe_load(project.read(".modelops-bundle/registry.yaml"))


@pytest.fixture
def project(bundle_project: BundleProject) -> BundleProject:
    make_project(bundle_project)
    assert bundle_project.run("register-model", "models/seir.py", "--data", "data/demographics.csv").ok
    assert bundle_project.run("register-target", "targets/incidence.py").ok
    assert bundle_project.run("target-set", "set", "main", "--target", "incidence").ok
    return bundle_project


# ---------------------------------------------------------------------------------- unregister


def test_unregister_model_by_id(project: BundleProject) -> None:
    tracked = project.tracked()
    result = project.run("unregister-model", "seir_seirvariant", "--json")
    assert result.exit_code == 0, result
    assert result.json() == {
        "removed": [{"id": "seir_seirvariant", "reason": "named"}],
        "target_sets": [],
        "warnings": [],
    }
    assert set(registry(project)["models"]) == {"seir_seirmodel"}
    assert project.tracked() == tracked  # the files stay tracked

    text = project.run("unregister-model", "seir_seirmodel")
    assert text.stdout == "Unregistered model seir_seirmodel\n"
    assert "target incidence compares against output 'incidence', which no registered model provides now" in (
        text.stderr
    )


def test_an_unknown_id_changes_nothing(project: BundleProject) -> None:
    before = project.read(".modelops-bundle/registry.yaml")
    result = project.run("unregister-model", "seir_seirmodel", "nope")
    assert result.exit_code == 2
    assert "error: no registered model 'nope'" in result.stderr
    assert "registered models: seir_seirmodel, seir_seirvariant" in result.stderr
    assert project.read(".modelops-bundle/registry.yaml") == before
    assert project.run("unregister-target").exit_code == 2  # neither ids nor --all-missing


def test_unregister_target_leaves_the_target_sets(project: BundleProject) -> None:
    result = project.run("unregister-target", "incidence", "--json")
    assert result.exit_code == 0, result
    assert result.json()["target_sets"] == ["target set main: deleted (it held only incidence)"]
    assert registry(project)["targets"] == {} and registry(project)["target_sets"] == {}
    assert project.run("push", "--dry-run").exit_code == 0  # no dangling target set blocks a push


def test_all_missing_removes_entries_whose_file_or_class_is_gone(project: BundleProject) -> None:
    # A deleted class blocks every push until its entry goes (the problem the command exists for).
    project.write("models/seir.py", project.read("models/seir.py").replace("class SEIRVariant(SEIRModel):", "if 0:"))
    assert project.run("remove", "--rm", "targets/incidence.py").ok
    refused = project.run("push")
    assert refused.exit_code == 2 and "no class 'SEIRVariant'" in refused.stderr
    assert "target incidence: code dependency missing: targets/incidence.py" in refused.stderr

    result = project.run("unregister-model", "--all-missing", "--json")
    assert result.json()["removed"] == [
        {"id": "seir_seirvariant", "reason": "SEIRVariant is no longer defined in models/seir.py"}
    ]
    targets = project.run("unregister-target", "--all-missing")
    assert targets.stdout.splitlines() == [
        "Unregistered target incidence (targets/incidence.py no longer exists)",
        "  target set main: deleted (it held only incidence)",
    ]
    assert project.run("unregister-model", "--all-missing").stdout.startswith("No models to unregister")
    assert project.run("push").exit_code == 0


def test_re_registering_a_file_drops_the_ids_it_no_longer_defines(project: BundleProject) -> None:
    project.write("models/seir.py", project.read("models/seir.py").replace("SEIRVariant", "SEIRRenamed"))
    result = project.run("register-model", "models/seir.py")
    assert result.exit_code == 0, result
    assert result.stdout.splitlines()[0] == (
        "Dropped model seir_seirvariant: SEIRVariant is no longer defined in models/seir.py"
    )
    assert set(registry(project)["models"]) == {"seir_seirmodel", "seir_seirrenamed"}

    project.write(
        "targets/incidence.py", project.read("targets/incidence.py").replace('name="incidence"', 'name="cases"')
    )
    targets = project.run("register-target", "targets/incidence.py", "--json").json()
    assert targets["dropped"] == [
        {"id": "incidence", "reason": "targets/incidence.py no longer defines target 'incidence'"}
    ]
    assert targets["target_sets"] == ["target set main: deleted (it held only incidence)"]
    assert set(registry(project)["targets"]) == {"cases"}


# ------------------------------------------------------------------------------------ push plan


HELPER_IMPORT = "from .numerics import step\nfrom .extra import bonus\n\ndef load():\n    return step() + bonus()\n"


def test_dry_run_and_push_agree_on_what_they_re_track(project: BundleProject) -> None:
    assert project.run("add", ".").ok
    project.write("models/extra.py", "def bonus():\n    return 1\n")
    project.write("models/helpers.py", HELPER_IMPORT)  # a new import since registration
    tracked = project.tracked()

    dry = project.run("push", "--dry-run", "--json")
    assert dry.exit_code == 0, dry  # not refused as "dependency not tracked": the push would track it
    assert dry.json()["tracked"] == ["models/extra.py"]
    assert "models/extra.py" in dry.json()["changes"]["added"]
    assert project.tracked() == tracked  # a dry run changes nothing
    text = project.run("push", "--dry-run")
    assert "Would track 1 file registered models now depend on:\n  models/extra.py\n" in text.stdout

    pushed = project.run("push", "--json")
    assert pushed.exit_code == 0, pushed
    assert pushed.json()["tracked"] == dry.json()["tracked"]
    assert pushed.json()["changes"]["added"] == dry.json()["changes"]["added"]
    assert project.tracked() == sorted([*tracked, "models/extra.py"])


def test_dry_run_and_push_refuse_the_same(project: BundleProject) -> None:
    assert project.run("add", ".").ok
    assert project.run("remove", "--rm", "data/demographics.csv").ok
    dry, real = project.run("push", "--dry-run", "--json"), project.run("push", "--json")
    assert dry.exit_code == real.exit_code == 2
    assert dry.json()["error"] == real.json()["error"]
    assert "data dependency missing: data/demographics.csv" in real.json()["error"]


def test_a_failed_push_leaves_the_tracked_list_as_it_was(project: BundleProject) -> None:
    assert project.run("add", ".").ok
    project.write("models/extra.py", "def bonus():\n    return 1\n")
    project.write("models/helpers.py", HELPER_IMPORT)
    tracked = project.tracked()
    # Nothing listens on port 9 of the loopback: the registry cannot be reached.
    failed = project.run("push", input_env={"REGISTRY_URL": "127.0.0.1:9"})
    assert failed.exit_code == 1, failed
    assert project.tracked() == tracked
    assert project.run("push").exit_code == 0
    assert "models/extra.py" in project.tracked()
