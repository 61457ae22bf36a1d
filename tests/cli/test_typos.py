"""Help on typos: commands, options, choices, environment names, model and target ids and tags get a
"did you mean", in the usage of the command they were given to, and as JSON with ``--json``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from modelops_bundle.cli.main import mops_main
from modelops_bundle.testing import BundleProject, CliRunner

MODEL = "from modelops_calabaria import BaseModel\n\n\nclass SEIR(BaseModel):\n    pass\n"
TARGET = (
    "from modelops_calabaria import calibration_target\n\n\n"
    "@calibration_target(model_output='incidence')\ndef incidence_target(data):\n    return data\n"
)


def usage_of(stderr: str) -> str:
    """The command whose usage ``stderr`` starts with ("" for the top level: ``usage: PROG [-h] ...``)."""
    first = stderr.splitlines()[0]
    assert first.startswith("usage: "), stderr
    words = first.split()[1:]
    words = words[1:] if words[0] == "mops" else words  # "mops bundle" or "modelops-bundle"
    return "" if words[1].startswith("[") else words[1]


def test_an_unknown_command(run_cli: CliRunner) -> None:
    result = run_cli("psuh")
    assert result.exit_code == 2
    assert usage_of(result.stderr) == ""  # the top-level usage: the command itself is unknown
    assert "error: unknown command 'psuh'; did you mean 'push'?\n" in result.stderr
    assert "--help' lists the commands" in result.stderr
    assert result.stdout == ""
    nothing_close = run_cli("frobnicate")
    assert nothing_close.exit_code == 2 and "error: unknown command 'frobnicate'\n" in nothing_close.stderr


def test_an_unknown_option_is_shown_in_the_sub_commands_usage(bundle_project: BundleProject) -> None:
    result = bundle_project.run("push", "--tga", "v2")
    assert result.exit_code == 2
    assert usage_of(result.stderr) == "push"  # not the top-level usage
    assert "error: unknown option '--tga'; did you mean '--tag'?" in result.stderr
    assert "push --help' shows every option, with examples" in result.stderr
    assert bundle_project.run("status", "--ofline").stderr.count("did you mean '--offline'?") == 1
    stray = bundle_project.run("status", "extra", "words")
    assert stray.exit_code == 2 and "error: unexpected arguments: extra words" in stray.stderr
    assert usage_of(stray.stderr) == "status"


def test_usage_errors_as_json(bundle_project: BundleProject) -> None:
    for argv in (("push", "--tga", "v2", "--json"), ("--json", "psuh"), ("ensure", "--json")):
        result = bundle_project.run(*argv)
        assert result.exit_code == 2, argv
        payload = json.loads(result.stdout)  # the documented error document, and nothing else
        assert payload["ok"] is False and payload["exit_code"] == 2
        assert payload["error"] and payload["hint"]
        assert "usage:" in result.stderr
    assert "required: --dest" in bundle_project.run("ensure", "--json").json()["error"]
    nothing = bundle_project.run("--json")
    assert nothing.exit_code == 2 and nothing.json()["error"] == "no command given"


def test_a_mistyped_choice(run_cli: CliRunner) -> None:
    result = run_cli("plugin", "new", "x", "--kind", "stroage")
    assert result.exit_code == 2 and usage_of(result.stderr) == "plugin"
    assert "invalid choice: 'stroage' (choose from discovery, storage, registry, packaging)" in result.stderr
    assert "did you mean 'storage'?" in result.stderr
    assert "did you mean 'list'?" in run_cli("env", "lst").stderr


def test_a_mistyped_group_of_mops(capsys: pytest.CaptureFixture[str]) -> None:
    assert mops_main(["bundel", "status"]) == 2
    captured = capsys.readouterr()
    assert "error: unknown command group 'bundel'; did you mean 'bundle'?" in captured.err
    assert captured.out.startswith("usage: mops [--version] bundle COMMAND")


def test_mistyped_environment_model_target_and_tag(bundle_project: BundleProject, tmp_path: Path) -> None:
    home = Path(bundle_project.env["MODELOPS_HOME"])
    (home / "bundle-env").mkdir(parents=True, exist_ok=True)
    (home / "bundle-env" / "staging.yaml").write_text("environment: staging\nregistry:\n  provider: docker\n")
    env = bundle_project.run("env", "show", "stagin")
    assert env.exit_code == 2 and "environment 'stagin' not found" in env.stderr
    assert "did you mean 'staging'?" in env.stderr
    assert "did you mean 'staging'?" in bundle_project.run("env", "switch", "stagign").stderr

    bundle_project.write("models/seir.py", MODEL)
    assert bundle_project.run("register-model", "models/seir.py").ok
    explain = bundle_project.run("status", "--offline", "--explain", "seir_seri")
    assert explain.exit_code == 2 and "did you mean 'seir_seir'?" in explain.stderr

    assert bundle_project.run("add", ".").ok
    assert bundle_project.run("push", "--tag", "v1.0.0").ok
    tag = bundle_project.run("pull", "v1.0")
    assert tag.exit_code == 1 and "tag v1.0 not found" in tag.stderr and "did you mean 'v1.0.0'?" in tag.stderr
    model = bundle_project.run("ensure", "--dest", str(tmp_path / "out"), "v1.0.0", "--model", "seir_sier")
    assert model.exit_code == 2 and "no model or target 'seir_sier'; did you mean 'seir_seir'?" in model.stderr

    bundle_project.write("targets/incidence.py", TARGET)
    assert bundle_project.run("register-target", "targets/incidence.py").ok
    target_set = bundle_project.run("target-set", "set", "main", "--target", "incidence_targte")
    assert target_set.exit_code == 2
    assert "unknown target 'incidence_targte'; did you mean 'incidence_target'?" in target_set.stderr


def test_main_run_reports_through_the_console_streams(bundle_project: BundleProject) -> None:
    """In-process runs (tests, ``modelops_bundle.testing``) get the usage error on their own streams."""
    from modelops_bundle.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main.run(["psuh"], prog="mops bundle", environ=bundle_project.env, stdout=out, stderr=err)
    assert code == 2 and out.getvalue() == "" and "did you mean 'push'?" in err.getvalue()
