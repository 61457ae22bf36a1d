"""modelops-bundle and the ModelOps suite installed in one environment, in either order: every command works.

Both distributions declare a ``mops`` console script and pip keeps the file of whichever was installed
last. A stand-in of the suite (``tests/meta/suite_standin``: distribution ``modelops``, its ``mops`` script
with a few commands of its own, and the suite's ``mops bundle`` proxy to the ``modelops-bundle``
executable) and this package (built from this checkout), plus a probe plugin whose commands make
stdin, exit codes and Ctrl-C visible, are pip-installed into a fresh virtualenv -- one per order, each
shared by the tests of that order. As in ``test_plugin_install.py`` nothing is downloaded: the
virtualenv borrows this run's site-packages for dependencies (``.pth``) and pip installs with
``--no-deps --no-build-isolation --no-index``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops_bundle import __version__
from modelops_bundle.testing import isolated_environ

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
PROJECT = HERE.parents[1]
STANDIN = HERE / "suite_standin"
PROBE = STANDIN / "probe"


@dataclass
class SuiteEnv:
    order: str
    bin: Path
    env: dict[str, str]

    def run(self, *argv: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            input=stdin if stdin is not None else "", env=self.env, cwd=cwd,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def interrupt(self, *argv: str, ready: str) -> tuple[int, str]:
        """Start ``argv`` in a session of its own, wait for ``ready`` on stdout, press Ctrl-C (SIGINT to
        the whole foreground process group, as a terminal does); returns exit code and stderr."""
        process = subprocess.Popen(
            [str(self.bin / argv[0]), *argv[1:]], env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
            preexec_fn=_default_sigint,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert ready in line, line
            os.killpg(process.pid, signal.SIGINT)
            _out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return process.returncode, err


def _default_sigint() -> None:
    """Ctrl-C handled as on a terminal even when these tests run in a background job, whose shell starts
    it with SIGINT ignored (inherited, and then honoured by Python: no KeyboardInterrupt at all)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _pip_install(python: Path, env: dict[str, str], *sources: Path) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", *map(str, sources)],
        env={**env, "PIP_NO_INPUT": "1"}, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip


@pytest.fixture(scope="module", params=["suite-first", "bundle-first"])
def suite_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteEnv]:
    pytest.importorskip("hatchling", reason="the test extras install hatchling: pip install -e '.[test]'")
    base = tmp_path_factory.mktemp(request.param)
    venv.EnvBuilder(with_pip=False).create(base / "venv")
    python = base / "venv" / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    outer = sysconfig.get_paths()["purelib"]
    Path(site, "_outer_environment.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    env = isolated_environ(base)
    # The venv's bin first on PATH, as an activated environment (the suite's proxy looks there too).
    env["PATH"] = f"{base / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    bundle = (PROJECT, PROBE)
    if request.param == "suite-first":
        _pip_install(python, env, STANDIN)
        _pip_install(python, env, *bundle)
    else:
        _pip_install(python, env, *bundle)
        _pip_install(python, env, STANDIN)
    yield SuiteEnv(request.param, base / "venv" / "bin", env)


def test_the_last_installed_distribution_owns_the_mops_file(suite_env: SuiteEnv) -> None:
    """The premise: pip overwrote ``mops`` -- ours when the suite came first, the suite's otherwise."""
    script = (suite_env.bin / "mops").read_text()
    owner = "modelops_bundle.cli.main" if suite_env.order == "suite-first" else "modelops.cli.main"
    assert f"from {owner} import" in script
    assert (suite_env.bin / "modelops-bundle").is_file()


def test_mops_bundle_runs_this_tool(suite_env: SuiteEnv, tmp_path: Path) -> None:
    version = suite_env.run("mops", "bundle", "--version")
    assert (version.returncode, version.stdout) == (0, f"modelops-bundle {__version__}\n")
    created = suite_env.run("mops", "bundle", "init", str(tmp_path / "proj"))
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "proj" / ".modelops-bundle" / "config.yaml").is_file()
    status = suite_env.run("mops", "bundle", "status", "--offline", "--json", cwd=tmp_path / "proj")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["bundle"] == "proj:latest"
    wrong = suite_env.run("mops", "bundle", "nosuch")
    assert wrong.returncode == 2 and "unknown command 'nosuch'" in wrong.stderr
    outside = suite_env.run("mops", "bundle", "status", cwd=tmp_path)
    assert outside.returncode == 2 and "not a modelops-bundle project" in outside.stderr


def test_other_mops_commands_reach_the_suite(suite_env: SuiteEnv) -> None:
    infra = suite_env.run("mops", "infra", "up", "--yes")
    assert (infra.returncode, infra.stdout) == (0, "suite infra: up --yes\n")
    jobs = suite_env.run("mops", "jobs", "exit", "3")
    assert jobs.returncode == 3 and jobs.stdout == "suite jobs: exiting with 3\n"
    cat = suite_env.run("mops", "workspace", "cat", stdin="hello\nsuite\n")
    assert (cat.returncode, cat.stdout) == (0, "HELLO\nSUITE\n")
    assert cat.stderr == "suite workspace: read 12 characters\n"
    assert "stand-in ModelOps suite" in suite_env.run("mops", "--help").stdout


@pytest.mark.parametrize("command", [("mops", "bundle"), ("modelops-bundle",)])
def test_streams_and_exit_codes_pass_through(suite_env: SuiteEnv, command: tuple[str, ...]) -> None:
    done = suite_env.run(*command, "probe-echo", "--exit", "4", stdin="bytes in\n")
    assert (done.returncode, done.stdout) == (4, "BYTES IN\n")
    assert "probe: read 9 characters" in done.stderr


@pytest.mark.parametrize("command", [("mops", "bundle"), ("modelops-bundle",)])
def test_ctrl_c_reaches_the_command(suite_env: SuiteEnv, command: tuple[str, ...]) -> None:
    code, err = suite_env.interrupt(*command, "probe-wait", ready="ready")
    assert code == 130 and "interrupted" in err, err


def test_ctrl_c_reaches_a_suite_command(suite_env: SuiteEnv) -> None:
    code, err = suite_env.interrupt("mops", "wait", ready="suite waiting")
    assert code == 130 and "suite interrupted" in err, err


def test_python_dash_m(suite_env: SuiteEnv, tmp_path: Path) -> None:
    done = suite_env.run("python", "-m", "modelops_bundle", "--version")
    assert (done.returncode, done.stdout) == (0, f"modelops-bundle {__version__}\n")
    usage = suite_env.run("python", "-m", "modelops_bundle", "status", cwd=tmp_path)
    assert usage.returncode == 2 and "not a modelops-bundle project" in usage.stderr


# ------------------------------------------------------------------------------- without the suite


def _own_mops(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """This environment's ``mops`` (no suite installed here)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "mops"), *args], env=isolated_environ(tmp_path),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_without_the_suite_mops_names_the_package_that_provides_a_command(tmp_path: Path) -> None:
    done = _own_mops(tmp_path, "infra", "up")
    assert done.returncode == 2 and done.stdout == ""
    assert "'mops infra' is a command of the ModelOps suite (Python distribution 'modelops')" in done.stderr
    assert "install the ModelOps suite into this environment for 'mops infra'" in done.stderr
    ours = _own_mops(tmp_path, "status")
    assert ours.returncode == 2 and "did you mean 'mops bundle status'?" in ours.stderr
    usage = _own_mops(tmp_path)
    assert usage.returncode == 2 and "bundle" in usage.stdout and "ModelOps suite" in usage.stdout
