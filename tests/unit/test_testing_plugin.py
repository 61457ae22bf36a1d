"""modelops_bundle.testing: the fixtures plugin authors rely on."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from modelops_bundle import hookimpl
from modelops_bundle.core.commands import Command, CommandRegistry
from modelops_bundle.core.context import CommandContext
from modelops_bundle.testing import BundleProject, CliResult, CliRunner


def test_mops_env_isolates_home(mops_env: dict[str, str], tmp_path: Path) -> None:
    home = Path(mops_env["HOME"])
    assert home.is_dir() and tmp_path in home.parents
    assert Path(mops_env["MODELOPS_HOME"]).is_dir()
    assert Path(mops_env["MODELOPS_HOME"]).parent == home
    assert mops_env["NO_COLOR"] == "1"
    assert os.environ["HOME"] == mops_env["HOME"]
    assert os.environ["MODELOPS_HOME"] == mops_env["MODELOPS_HOME"]
    assert Path("~").expanduser() == home
    assert "MOPS_DISABLE_PLUGIN_AUTOLOAD" not in mops_env


def test_outer_mops_variables_do_not_leak(tmp_path: Path) -> None:
    from modelops_bundle.testing import isolated_environ

    env = isolated_environ(tmp_path, {"MOPS_DEBUG": "1", "MOPS_ENV": "prod", "PATH": "/bin", "FORCE_COLOR": "1"})
    assert env["PATH"] == "/bin"
    assert not any(key.startswith("MOPS_") for key in env)
    assert "FORCE_COLOR" not in env


@pytest.mark.mops_env(MOPS_DISABLE_PLUGIN_AUTOLOAD="1", NO_COLOR=None)
def test_marker_sets_and_removes_variables(mops_env: dict[str, str]) -> None:
    assert mops_env["MOPS_DISABLE_PLUGIN_AUTOLOAD"] == "1"
    assert "NO_COLOR" not in mops_env


def test_bundle_project_is_initialised_by_the_real_init(bundle_project: BundleProject) -> None:
    assert bundle_project.meta.is_dir()
    assert (bundle_project.meta / "config.yaml").is_file()
    assert bundle_project.path(".modelopsignore").is_file()
    assert bundle_project.tracked() == []
    assert bundle_project.root.name == "project"


def test_write_read_and_run(bundle_project: BundleProject) -> None:
    text = bundle_project.write("data/a.csv", "x\n")
    binary = bundle_project.write("data/b.bin", b"\x00\x01")
    assert text == bundle_project.path("data/a.csv") and text.read_text() == "x\n"
    assert binary.read_bytes() == b"\x00\x01"
    assert bundle_project.read("data/a.csv") == "x\n"
    result = bundle_project.run("add", "data")
    assert isinstance(result, CliResult) and result.ok, result
    assert bundle_project.tracked() == ["data/a.csv", "data/b.bin"]
    assert result.argv[:2] == ("-C", str(bundle_project.root))


def test_run_does_not_depend_on_the_current_directory(
    bundle_project: BundleProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert bundle_project.run("status", "--json").json()["project"] == str(bundle_project.root)


def test_run_in_a_sub_folder(bundle_project: BundleProject) -> None:
    bundle_project.write("data/a.csv", "1")
    assert bundle_project.run("add", "a.csv", cwd="data").ok
    assert bundle_project.tracked() == ["data/a.csv"]


def test_input_env_applies_to_one_run(bundle_project: BundleProject) -> None:
    result = bundle_project.run("plugins", "--json", input_env={"MOPS_DISABLE_PLUGINS": "sha256"})
    assert {p["name"]: p["status"] for p in result.json()}["sha256"] == "disabled"
    again = bundle_project.run("plugins", "--json")
    assert {p["name"]: p["status"] for p in again.json()}["sha256"] == "loaded"


def test_cli_result_json_error_is_an_assertion() -> None:
    with pytest.raises(AssertionError, match="not JSON"):
        CliResult(("x",), 0, "plain text", "").json()


def test_run_cli_runs_in_any_folder(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("init", "fresh")
    assert result.exit_code == 0, result
    assert (tmp_path / "fresh" / ".modelops-bundle").is_dir()
    other = tmp_path / "other"
    other.mkdir()
    assert run_cli("init", cwd=other).ok
    assert (other / ".modelops-bundle").is_dir()


# The example of the module docstring, verbatim in spirit: an unpublished plugin adding a command.
class HelloPlugin:
    @hookimpl
    def mops_add_commands(self, registry: CommandRegistry) -> None:
        registry.add(Command(name="hello", help="say hello", run=self.hello))

    def hello(self, ctx: CommandContext, args: argparse.Namespace) -> int:
        ctx.out.line("hi")
        return 0


def test_docstring_example(bundle_project: BundleProject) -> None:
    bundle_project.extra_plugins.append(("hello", HelloPlugin()))
    bundle_project.write("data/a.csv", "x,y\n1,2\n")
    assert bundle_project.run("add", "data").exit_code == 0
    result = bundle_project.run("hello")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "hi\n"
    assert bundle_project.run("status", "--json").json()["changes"]["added"] == ["data/a.csv"]


def test_docstring_mentions_every_fixture() -> None:
    import modelops_bundle.testing as testing

    assert testing.__doc__ is not None
    for name in ("mops_env", "bundle_project", "run_cli", "extra_plugins", "-p modelops_bundle.testing"):
        assert name in testing.__doc__
