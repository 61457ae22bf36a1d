"""The example plugins in ``examples/plugins/`` stay green: their own tests, lint and types, and each one
found through its entry point as an installed distribution would be.

Their tests run in a subprocess with the example's ``src`` on ``PYTHONPATH`` (each example is its own
project, with its own pytest configuration). The entry-point check needs no install step: a
``*.dist-info`` folder with the example's real metadata and entry points, beside its ``src`` on
``PYTHONPATH``, is what ``pip install`` would leave for modelops-bundle's entry-point reader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelops_bundle.testing import isolated_environ

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "plugins"
NAMES = sorted(path.name for path in EXAMPLES.iterdir() if (path / "pyproject.toml").is_file())
BIN = Path(sys.executable).parent
LAUNCHER = "import sys; from modelops_bundle.cli.main import mops_main; sys.exit(mops_main())"


def test_there_are_two_examples() -> None:
    assert NAMES == ["mops-mesa", "mops-shardstore"]


@pytest.mark.parametrize("name", NAMES)
def test_the_example_tests_pass(name: str, tmp_path: Path) -> None:
    folder = EXAMPLES / name
    env = isolated_environ(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(folder / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "pytest")],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout


@pytest.mark.parametrize("name", NAMES)
def test_the_example_builds_as_a_wheel(name: str, tmp_path: Path) -> None:
    """What `pip install examples/plugins/<name>` needs: the build backend accepts the project (offline,
    with the hatchling the test extra installs), and the wheel declares the entry point."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp_path), str(EXAMPLES / name)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheels = list(tmp_path.glob("*.whl"))
    assert len(wheels) == 1
    import zipfile

    with zipfile.ZipFile(wheels[0]) as wheel:
        entry_points = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
        assert "[modelops_bundle]" in wheel.read(entry_points).decode()


@pytest.mark.parametrize("name", NAMES)
def test_the_example_is_lint_and_type_clean(name: str, tmp_path: Path) -> None:
    folder = EXAMPLES / name
    for command in (["ruff", "check", "--select", "E,F,W,I,B,UP,SIM,RUF", "."], ["ruff", "format", "--check", "."]):
        done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=folder, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    typed = subprocess.run(
        [str(BIN / "mypy"), "--strict", "--cache-dir", str(tmp_path / "mypy"), "src", "tests"],
        cwd=folder, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MYPYPATH": str(folder / "src")},
    )  # fmt: skip
    assert typed.returncode == 0, typed.stdout + typed.stderr


def fake_install(name: str, site: Path) -> tuple[str, str]:
    """The dist-info ``pip install`` would write for the example; returns (entry-point name, version)."""
    project = tomllib.loads((EXAMPLES / name / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    ((entry_name, target),) = project["entry-points"]["modelops_bundle"].items()
    (info / "entry_points.txt").write_text(f"[modelops_bundle]\n{entry_name} = {target}\n")
    return entry_name, project["version"]


def test_the_examples_load_through_their_entry_points(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = isolated_environ(tmp_path)
    names = {name: fake_install(name, site) for name in NAMES}
    env["PYTHONPATH"] = os.pathsep.join([str(site), *(str(EXAMPLES / name / "src") for name in NAMES)])

    def mops(*args: str, cwd: Path | None = None) -> str:
        done = subprocess.run([sys.executable, "-c", LAUNCHER, "bundle", *args], env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    listed = {p["name"]: p for p in json.loads(mops("plugins", "--json"))}
    for name, (entry_name, version) in names.items():
        entry = listed[entry_name]
        assert (entry["distribution"], entry["version"], entry["status"]) == (name, version, "loaded")
    assert listed["mesa"]["hooks"] == ["mops_discover_models", "mops_model_runner"]
    assert listed["shardstore"]["hooks"] == ["mops_storage_providers"]

    # Both at work in one project: a Mesa model registered, its large input pushed to the shard store.
    home = Path(env["MODELOPS_HOME"])
    (home / "bundle-env").mkdir(parents=True, exist_ok=True)
    (home / "bundle-env" / "lab.yaml").write_text(
        f"environment: lab\nregistry:\n  provider: oci-layout\n  path: {tmp_path / 'registry'}\n"
        f"storage:\n  provider: shardstore\n  path: {tmp_path / 'shards'}\n"
    )  # fmt: skip
    project = tmp_path / "wealth"
    mops("init", str(project), "--env", "lab")
    (project / "model.py").write_text(
        "import mesa\n\n\nclass Wealth(mesa.Model):\n"
        "    def __init__(self, n=10, seed=None):\n"
        "        super().__init__(seed=seed)\n"
        "        self.datacollector = mesa.DataCollector(model_reporters={'n': lambda m: n})\n"
        "\n    def step(self):\n        self.datacollector.collect(self)\n"
    )
    (project / "data").mkdir()
    (project / "data" / "grid.bin").write_bytes(os.urandom(2048))
    mops("config", "storage.force_blob_patterns", "*.bin", cwd=project)
    registered = json.loads(mops("register-model", "model.py", "--json", cwd=project))
    assert [(m["class_name"], m["framework"], m["parameters"]) for m in registered["models"]] == [
        ("Wealth", "mesa", ["n"])
    ]
    mops("add", ".", cwd=project)
    digest = json.loads(mops("push", "--json", cwd=project))["digest"]
    stored = [p for p in (tmp_path / "shards").rglob("*") if p.is_file()]
    assert len(stored) == 1 and len(stored[0].parent.name) == 3  # one object, in a 3-hex-digit shard

    # ... and run by digest through the Python API, with the installed plugin's runner (as a worker would).
    script = (
        "import json, sys; from modelops_bundle import api\n"
        "r = api.run_model(sys.argv[1], 'model_wealth', {'n': 7, 'max_steps': 3}, seed=5, env='lab')\n"
        "print(json.dumps([r.outputs, r.params, r.tags['bundle.digest'], r.tags['model.id']]))\n"
    )
    ran = subprocess.run([sys.executable, "-c", script, f"wealth@{digest}"], env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout) == [{"n": [7, 7, 7]}, {"n": 7, "max_steps": 3}, digest, "model_wealth"]
