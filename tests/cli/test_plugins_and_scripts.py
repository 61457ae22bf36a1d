"""Console scripts, ``plugins``, and third-party plugins reaching the CLI through entry points."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle import __version__, hookimpl
from modelops_bundle.core.commands import CommandRegistry
from modelops_bundle.testing import BundleProject, CliRunner

BIN = Path(sys.executable).parent
CORE_COMMANDS = ("init", "add", "remove", "status", "plugins")

HELLO = """
from modelops_bundle import hookimpl
from modelops_bundle.core.commands import Command


def _run(ctx, args):
    ctx.out.line(f"hello {args.who}")
    return 0


def _configure(parser):
    parser.add_argument("who")


@hookimpl
def mops_add_commands(registry):
    registry.add(Command(name="hello", help="greet someone", run=_run, configure=_configure))
"""


def _script(name: str, *args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / name), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


# ------------------------------------------------------------------------------- console scripts


def test_mops_version(mops_env: dict[str, str]) -> None:
    result = _script("mops", "--version", env=mops_env)
    assert result.returncode == 0
    assert result.stdout.strip() == f"mops (modelops-bundle) {__version__}"
    other = _script("modelops-bundle", "--version", env=mops_env)
    assert other.returncode == 0 and __version__ in other.stdout


@pytest.mark.parametrize("argv", [("mops", "bundle", "--help"), ("modelops-bundle", "--help")])
def test_help_lists_the_commands(mops_env: dict[str, str], argv: tuple[str, ...]) -> None:
    result = _script(argv[0], *argv[1:], env=mops_env)
    assert result.returncode == 0, result.stderr
    prog = "mops bundle" if argv[0] == "mops" else "modelops-bundle"
    assert result.stdout.startswith(f"usage: {prog}")
    for command in CORE_COMMANDS:
        assert f"    {command}" in result.stdout
    assert result.stderr == ""


def test_mops_without_a_group(mops_env: dict[str, str]) -> None:
    result = _script("mops", env=mops_env)
    assert result.returncode == 2
    assert "usage: mops" in result.stdout and "bundle" in result.stdout
    assert _script("mops", "--help", env=mops_env).returncode == 0


def test_real_process_finds_the_root_from_a_sub_folder(bundle_project: BundleProject) -> None:
    bundle_project.write("data/x.csv", "1")
    sub = bundle_project.path("data")
    added = _script("mops", "bundle", "add", "x.csv", env=bundle_project.env, cwd=sub)
    assert added.returncode == 0, added.stderr
    status = _script("modelops-bundle", "status", "--json", env=bundle_project.env, cwd=sub)
    assert status.returncode == 0, status.stderr
    assert '"data/x.csv"' in status.stdout
    assert bundle_project.tracked() == ["data/x.csv"]


def test_real_process_expected_error_has_no_traceback(bundle_project: BundleProject) -> None:
    result = _script("mops", "bundle", "add", "missing.txt", env=bundle_project.env, cwd=bundle_project.root)
    assert result.returncode == 2
    assert result.stderr == "error: pathspec 'missing.txt' did not match any files\n"


# ------------------------------------------------------------------------------------ plugins


def test_plugins_json_lists_builtins(bundle_project: BundleProject) -> None:
    result = bundle_project.run("plugins", "--json")
    assert result.exit_code == 0, result
    plugins = {p["name"]: p for p in result.json()}
    for name in ("commands", "sha256"):
        entry = plugins[name]
        assert entry["distribution"] == "modelops-bundle"
        assert entry["version"] == __version__
        assert entry["builtin"] is True and entry["status"] == "loaded" and entry["error"] is None
    assert plugins["sha256"]["hooks"] == ["mops_file_hasher"]
    assert "mops_add_commands" in plugins["commands"]["hooks"]


def test_plugins_text_table(bundle_project: BundleProject) -> None:
    result = bundle_project.run("plugins")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Plugins"
    assert lines[1].split() == ["Name", "Distribution", "Status", "Hooks"]
    row = next(line for line in lines if line.startswith("sha256 "))
    assert f"modelops-bundle {__version__}" in row and "loaded" in row and "mops_file_hasher" in row


def test_entry_point_plugin_adds_a_command(bundle_project: BundleProject, make_dist: Callable[..., Path]) -> None:
    make_dist("mops-hello", "0.3.1", entry_points={"hello": "mops_hello_cli"}, modules={"mops_hello_cli": HELLO})
    result = bundle_project.run("hello", "world")
    assert result.exit_code == 0, result
    assert result.stdout == "hello world\n"
    listed = {p["name"]: p for p in bundle_project.run("plugins", "--json").json()}["hello"]
    assert listed["distribution"] == "mops-hello" and listed["version"] == "0.3.1"
    assert listed["hooks"] == ["mops_add_commands"] and listed["builtin"] is False
    assert "hello" in bundle_project.run("--help").stdout


def test_disable_plugins_and_autoload(bundle_project: BundleProject, make_dist: Callable[..., Path]) -> None:
    make_dist("mops-hello", entry_points={"hello": "mops_hello_cli"}, modules={"mops_hello_cli": HELLO})
    disabled = bundle_project.run("hello", "x", input_env={"MOPS_DISABLE_PLUGINS": "hello"})
    assert disabled.exit_code == 2 and "unknown command 'hello'" in disabled.stderr
    listed = bundle_project.run("plugins", "--json", input_env={"MOPS_DISABLE_PLUGINS": "hello"}).json()
    assert {p["name"]: p["status"] for p in listed}["hello"] == "disabled"
    no_autoload = bundle_project.run("plugins", "--json", input_env={"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"}).json()
    assert "hello" not in {p["name"] for p in no_autoload}
    assert bundle_project.run("status", input_env={"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"}).ok


def test_disabling_the_hasher_is_a_clear_configuration_error(bundle_project: BundleProject) -> None:
    bundle_project.write("a.txt", "a")
    result = bundle_project.run("add", "a.txt", input_env={"MOPS_DISABLE_PLUGINS": "sha256"})
    assert result.exit_code == 2
    assert "no plugin provides the hash algorithm 'sha256'" in result.stderr
    assert bundle_project.tracked() == []


def test_broken_plugin_is_reported_and_the_cli_still_works(
    bundle_project: BundleProject, make_dist: Callable[..., Path]
) -> None:
    make_dist(
        "mops-broken",
        "6.6",
        entry_points={"broken": "mops_broken_cli"},
        modules={"mops_broken_cli": "import no_such_dependency_xyz\n"},
    )
    bundle_project.write("a.txt", "a")
    added = bundle_project.run("add", "a.txt")
    assert added.exit_code == 0
    assert "plugin 'broken' from mops-broken 6.6 failed to load" in added.stderr
    assert "no_such_dependency_xyz" in added.stderr
    assert bundle_project.tracked() == ["a.txt"]
    listing = bundle_project.run("plugins")
    assert listing.exit_code == 1
    row = next(line for line in listing.stdout.splitlines() if line.startswith("broken "))
    assert "mops-broken 6.6" in row and "error:" in row
    entry = {p["name"]: p for p in bundle_project.run("plugins", "--json").json()}["broken"]
    assert entry["status"] == "error" and "no_such_dependency_xyz" in entry["error"]
    helped = bundle_project.run("--help")
    assert helped.exit_code == 0 and "status" in helped.stdout


class _BadSignature:
    @hookimpl
    def mops_add_commands(self, registry: Any, unknown_argument: Any) -> None:
        raise AssertionError("must never be called")


def test_incompatible_plugin_is_refused_with_a_warning(bundle_project: BundleProject) -> None:
    bundle_project.extra_plugins.append(("badsig", _BadSignature()))
    result = bundle_project.run("status")
    assert result.exit_code == 0
    assert "plugin 'badsig'" in result.stderr and "unknown_argument" in result.stderr
    entry = {p["name"]: p for p in bundle_project.run("plugins", "--json").json()}["badsig"]
    assert entry["status"] == "error"


class _RaisesInAddCommands:
    @hookimpl
    def mops_add_commands(self, registry: CommandRegistry) -> None:
        raise RuntimeError("my commands are broken")


def test_plugin_failing_to_add_commands_does_not_brick_the_cli(bundle_project: BundleProject) -> None:
    bundle_project.extra_plugins.append(("flaky", _RaisesInAddCommands()))
    bundle_project.write("a.txt", "a")
    result = bundle_project.run("add", "a.txt")
    assert result.exit_code == 0, result
    assert "plugin 'flaky' ((test)) failed to add its commands: my commands are broken" in result.stderr
    assert bundle_project.tracked() == ["a.txt"]


class _ReplacesStatus:
    @hookimpl
    def mops_add_commands(self, registry: CommandRegistry) -> None:
        from modelops_bundle.core.commands import Command

        registry.add(Command(name="status", help="custom status", run=lambda ctx, args: ctx.out.line("mine") or 0))


def test_third_party_command_replaces_a_builtin(bundle_project: BundleProject) -> None:
    bundle_project.extra_plugins.append(("mystatus", _ReplacesStatus()))
    result = bundle_project.run("status")
    assert result.exit_code == 0
    assert result.stdout == "mine\n"


def test_commands_without_a_project_still_list_plugins(run_cli: CliRunner) -> None:
    result = run_cli("plugins", "--json")
    assert result.exit_code == 0
    assert {"commands", "sha256"} <= {p["name"] for p in result.json()}
