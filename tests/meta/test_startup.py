"""Start-up stays light: building the parser (what ``mops bundle --help`` does) imports no heavy library.

Every command pays for what the parser build imports; pydantic, rich, yaml, fsspec and oras are for the
commands that need them, imported inside their ``run``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# typer and click: only a host CLI that mounts ``modelops_bundle.cli.app`` imports them (decision 0021).
HEAVY = (
    "pydantic",
    "rich",
    "yaml",
    "fsspec",
    "oras",
    "requests",
    "importlib.metadata",
    "typer",
    "click",
    "cryptography",
)

PROBE = """
import io, json, sys
from modelops_bundle.cli.main import run
code = run(["--help"], prog="mops bundle", stdout=io.StringIO(), stderr=io.StringIO())
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_help_imports_no_heavy_module() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(done.stdout)
    assert report["code"] == 0
    loaded = {name for name in report["modules"] if name.split(".")[0] in {h.split(".")[0] for h in HEAVY}}
    heavy = sorted(name for name in loaded if any(name == h or name.startswith(h + ".") for h in HEAVY))
    assert heavy == [], f"imported while building the parser: {heavy}"


def test_help_import_time_is_small() -> None:
    # -X importtime reports cumulative microseconds per module; the package's own import must stay small.
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    totals = {}
    for line in done.stderr.splitlines():
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[1].isdigit():
            totals[parts[2]] = int(parts[1])
    # Generous bound (a shared CI machine is noisy); an accidental pydantic/rich import costs more than this.
    assert totals.get("modelops_bundle", 0) < 150_000, totals.get("modelops_bundle")


COMMAND_PROBE = """
import io, json, sys
from modelops_bundle.cli.main import run
code = run(sys.argv[1:], prog="mops bundle", stdout=io.StringIO(), stderr=io.StringIO())
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _command_modules_loaded(*argv: str, cwd: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", COMMAND_PROBE, *argv], capture_output=True, text=True, timeout=60, check=True, cwd=cwd
    )
    report = json.loads(done.stdout)
    from modelops_bundle.cli.builtin_commands import BUILTIN_COMMANDS

    ours = {f"modelops_bundle.cli.{module}" for module, *_ in BUILTIN_COMMANDS}
    return report["code"], ours & set(report["modules"])


def test_a_command_imports_only_its_own_command_module(tmp_path: Path) -> None:
    code, loaded = _command_modules_loaded("-C", str(tmp_path), "--json", "rm", "nothing", cwd=str(tmp_path))
    assert code == 2  # not a project: a usage error, after routing to `remove` through its alias
    assert loaded == {"modelops_bundle.cli.remove"}


def test_top_level_help_loads_every_command(tmp_path: Path) -> None:
    code, loaded = _command_modules_loaded("--help", "status", cwd=str(tmp_path))
    assert code == 0
    assert len(loaded) > 15


@pytest.mark.parametrize(
    ("argv", "chosen"),
    [
        (["status"], "status"),
        (["-C", "status", "push"], "push"),  # -C takes a value, even one that looks like a command
        (["--json", "-q", "rm", "x"], "remove"),
        (["-Cdir", "pull", "--help"], "pull"),  # a command's own help needs only that command
        (["--help", "push"], None),
        (["-h"], None),
        (["nosuch"], None),
        (["--", "status"], None),
        ([], None),
    ],
)
def test_chosen_command(argv: list[str], chosen: str | None) -> None:
    from modelops_bundle.cli.app import chosen_command
    from modelops_bundle.core.commands import lazy_command

    commands = [
        lazy_command("m", "status"),
        lazy_command("m", "push"),
        lazy_command("m", "pull"),
        lazy_command("m", "remove", "rm"),
    ]
    assert chosen_command(argv, commands) == chosen


@pytest.mark.parametrize(
    ("argv", "code", "stream", "text"),
    [
        (["--version"], 0, "stdout", "mops (modelops-bundle)"),
        (["bundle", "nosuch"], 2, "stderr", "unknown command 'nosuch'"),
    ],
)
def test_the_executable_exits_with_the_command_code_and_flushed_output(
    tmp_path: Path, argv: list[str], code: int, stream: str, text: str
) -> None:
    """``mops_console`` ends the process itself (os._exit after the exit handlers and a flush)."""
    probe = (
        "import atexit, sys\n"
        "marker = sys.argv[1]\n"
        "atexit.register(lambda: open(marker, 'w').write('handlers ran'))\n"
        "sys.argv = ['mops', *sys.argv[2:]]\n"
        "from modelops_bundle.cli.main import mops_console\n"
        "mops_console()\n"
    )
    marker = tmp_path / "marker"
    done = subprocess.run(
        [sys.executable, "-c", probe, str(marker), *argv], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == code
    assert text in getattr(done, stream)
    assert marker.read_text() == "handlers ran"


PROVIDER_PROBE = """
import io, json, sys
from modelops_bundle.cli.main import run
code = run(sys.argv[1:], prog="mops bundle", stdout=io.StringIO(), stderr=io.StringIO())
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("argv", [["--help"], ["status"], ["status", "--offline"], ["status", "--files"]], ids=" ".join)
def test_no_storage_provider_or_backend_module_is_imported_to_choose_one(tmp_path: Path, argv: list[str]) -> None:
    """Storage providers and registry backends are lazy stand-ins: choosing one (``status --files`` asks
    whether there is a blob store) imports none of their modules; a status of the embedded local
    environment imports the layout backend it talks to, and nothing else."""
    from modelops_bundle.testing import isolated_environ, run_command

    env = isolated_environ(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "model.py").write_text("RATE = 1\n")
    assert run_command(["-C", str(project), "init", "-q"], env).exit_code == 0
    assert run_command(["-C", str(project), "add", "model.py"], env).exit_code == 0
    done = subprocess.run(
        [sys.executable, "-c", PROVIDER_PROBE, "-C", str(project), *argv],
        capture_output=True, text=True, timeout=60, check=True, env=env,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert report["code"] == 0
    loaded = {name for name in report["modules"] if name.startswith("modelops_bundle.plugins.")}
    assert not {name for name in loaded if name.startswith("modelops_bundle.plugins.storage_")}, loaded
    assert "modelops_bundle.plugins.registry_distribution" not in loaded
