"""A framework plugin written from docs/plugins.md alone works end to end.

The files of the guide's section "A framework plugin, end to end" (every code block that starts with a
``# file: PATH`` line) are written out as they stand, the framework and the plugin are installed with pip
into a fresh virtualenv (as ``test_plugin_install`` does: no network, modelops-bundle from this test
run), and then, in that environment: ``mops bundle plugins`` lists the plugin with both hooks; the
project's model is registered with the plugin's framework and pushed; ``api.run_model`` runs it by digest
(same seed, same outputs; provenance tags); a Dask ``LocalCluster`` runs it as tasks on worker processes
that load the installed plugin themselves; and the plugin's own tests -- the runner conformance suite of
``modelops_bundle.testing`` -- pass.
"""

from __future__ import annotations

import json
import re
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from modelops_bundle.testing import isolated_environ
from tests.meta.hooks import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

GUIDE = ROOT / "docs" / "plugins.md"
SECTION = "## A framework plugin, end to end"
LAUNCHER = "import sys; from modelops_bundle.cli.main import mops_main; sys.exit(mops_main())"

RUN = """
import json, sys
from modelops_bundle import api

ref = sys.argv[1]
first = api.run_model(ref, "walk_walk", {"n": 40, "steps": 12}, seed=7)
again = api.run_model(ref, "walk_walk", {"n": 40, "steps": 12}, seed=7)
other = api.run_model(ref, "walk_walk", {"n": 40, "steps": 12}, seed=8)
print(json.dumps({"outputs": first.outputs, "again": again.outputs, "other": other.outputs,
                  "params": first.params, "tags": first.tags}))
"""

ON_DASK = """
import json, sys
from distributed import Client, LocalCluster
from modelops_bundle.dask import BundlePlugin, run_model

ref = sys.argv[1]
with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                  host="127.0.0.1") as cluster, Client(cluster) as client:
    client.register_plugin(BundlePlugin(ref))
    futures = [client.submit(run_model, ref, "walk_walk", {"n": 40, "steps": 12}, seed=seed, pure=False)
               for seed in (7, 8)]
    results = client.gather(futures)
print(json.dumps([[r.outputs, r.tags["bundle.digest"], r.tags["model.id"]] for r in results]))
"""


def guide_files() -> dict[str, str]:
    """``{path: text}`` of the code blocks of the guide's framework-plugin section."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    files = {}
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", section, re.M | re.S):
        first, _, rest = block.partition("\n")
        if first.startswith("# file: "):
            files[first.removeprefix("# file: ").strip()] = rest
    return files


def test_the_guide_shows_every_file_of_the_plugin() -> None:
    assert set(guide_files()) == {
        "walkers/pyproject.toml",
        "walkers/src/walkers/__init__.py",
        "project/models/walk.py",
        "mops-walkers/pyproject.toml",
        "mops-walkers/src/mops_walkers/__init__.py",
        "mops-walkers/src/mops_walkers/plugin.py",
        "mops-walkers/tests/test_walkers.py",
    }


def test_a_plugin_written_from_the_guide_registers_and_runs_its_models(tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="the test extras install hatchling: pip install -e '.[test]'")
    for rel, text in guide_files().items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    env = isolated_environ(tmp_path / "home")
    python = _fresh_environment(tmp_path / "venv", env, [tmp_path / "walkers", tmp_path / "mops-walkers"])

    def run(*argv: str, cwd: Path | None = None, timeout: int = 180) -> str:
        done = subprocess.run([str(python), *argv], env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
        assert done.returncode == 0, f"{argv}: {done.stdout[-4000:]}{done.stderr[-4000:]}"
        return done.stdout

    def mops(*args: str, cwd: Path | None = None) -> str:
        return run("-c", LAUNCHER, "bundle", *args, cwd=cwd)

    listed = {plugin["name"]: plugin for plugin in json.loads(mops("plugins", "--json"))}
    walkers = listed["walkers"]
    assert (walkers["distribution"], walkers["version"], walkers["status"]) == ("mops-walkers", "0.1.0", "loaded")
    assert walkers["hooks"] == ["mops_discover_models", "mops_model_runner"]

    project = tmp_path / "project"
    mops("init", "-q", str(project))
    mops("add", ".", cwd=project)
    registered = mops("register-model", "models/walk.py", cwd=project)
    assert registered.splitlines()[0] == "Registered model walk_walk (models.walk:Walk, walkers)", registered
    digest = json.loads(mops("push", "--json", cwd=project))["digest"]
    ref = f"project@{digest}"

    ran = json.loads(run("-c", RUN, ref))
    assert set(ran["outputs"]) == {"mean", "spread"} and len(ran["outputs"]["mean"]) == 12
    assert ran["again"] == ran["outputs"] and ran["other"] != ran["outputs"]  # the seed decides
    assert ran["params"] == {"n": 40, "p": 0.5, "steps": 12}
    assert (ran["tags"]["bundle.digest"], ran["tags"]["model.id"]) == (digest, "walk_walk")

    on_dask = json.loads(run("-c", ON_DASK, ref, timeout=300))
    assert on_dask[0] == [ran["outputs"], digest, "walk_walk"]  # a worker process runs it just the same
    assert on_dask[1][0] == ran["other"]

    tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "pytest"),
                cwd=tmp_path / "mops-walkers", timeout=300)  # fmt: skip
    assert "5 passed" in tests and "skipped" not in tests, tests


def _fresh_environment(folder: Path, env: dict[str, str], packages: list[Path]) -> Path:
    """A virtualenv that sees this test run's packages (modelops-bundle, distributed, pytest) behind its
    own, with ``packages`` pip-installed into it -- offline, as ``test_plugin_install`` does."""
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    outer = sysconfig.get_paths()["purelib"]
    Path(site, "_outer_environment.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", *map(str, packages)],
        env={**env, "PIP_NO_INPUT": "1"}, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return python
