"""``from modelops_bundle.cli import app``: the Typer application older ModelOps suites mount as ``bundle``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from modelops_bundle.cli.app import CommandApp  # the argparse module of the same name stays importable


def _suite() -> typer.Typer:
    """A host CLI mounting the tool as an older suite did."""
    from modelops_bundle.cli import app as bundle_app

    root = typer.Typer(name="mops", add_completion=False)

    @root.command()
    def infra() -> None:
        print("infra here")

    root.add_typer(bundle_app, name="bundle")
    return root


def test_app_is_a_typer_application_even_after_the_cli_module_was_imported() -> None:
    from modelops_bundle.cli import app

    assert isinstance(app, typer.Typer)
    assert CommandApp.__module__ == "modelops_bundle.cli.app"
    from modelops_bundle.cli import app as again

    assert again is app


def test_mounted_commands_run_with_their_own_options_and_exit_codes(mops_env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    root = _suite()
    created = runner.invoke(root, ["bundle", "init", str(tmp_path / "proj")], prog_name="mops")
    assert created.exit_code == 0, created.output
    assert (tmp_path / "proj" / ".modelops-bundle").is_dir()
    status = runner.invoke(root, ["bundle", "-C", str(tmp_path / "proj"), "status", "--offline", "--json"])
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["bundle"] == "proj:latest"
    wrong = runner.invoke(root, ["bundle", "nosuch"], prog_name="mops")
    assert wrong.exit_code == 2
    outside = runner.invoke(root, ["bundle", "-C", str(tmp_path), "status"], prog_name="mops")
    assert outside.exit_code == 2 and "not a modelops-bundle project" in outside.output


def test_help_is_the_tools_own_and_the_host_lists_bundle(mops_env: dict[str, str]) -> None:
    runner = CliRunner()
    root = _suite()
    own = runner.invoke(root, ["bundle", "--help"], prog_name="mops")
    assert own.exit_code == 0 and own.output.startswith("usage: mops bundle ")
    host = runner.invoke(root, ["--help"], prog_name="mops")
    assert host.exit_code == 0 and "bundle" in host.output and "infra" in host.output
    assert runner.invoke(root, ["infra"], prog_name="mops").output == "infra here\n"


def test_without_typer_the_import_error_says_so_and_the_cli_is_unaffected() -> None:
    probe = (
        "import sys\n"
        "sys.modules['typer'] = None  # as if Typer were not installed\n"
        "from modelops_bundle.cli.main import bundle_main\n"
        "try:\n"
        "    from modelops_bundle.cli import app\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
        "sys.exit(bundle_main(['--version']))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "ImportError: modelops_bundle.cli.app is a Typer application" in done.stdout
    assert "Typer is not installed" in done.stdout and "modelops-bundle 0." in done.stdout
