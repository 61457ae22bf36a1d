"""Generated plugins, installed as real distributions into a fresh virtualenv, are listed and work.

How the virtualenv gets modelops-bundle without a network: it is created empty (``venv --without-pip``)
and a ``.pth`` file adds this test run's site-packages (modelops-bundle, its dependencies, pip, hatchling,
pytest) behind its own. The four generated packages are then built and installed by pip
(``--no-deps --no-build-isolation --no-index``: nothing is downloaded) into the fresh environment's own
site-packages, as ``*.dist-info`` distributions with their entry points -- exactly what ``pip install``
of a published plugin leaves. One environment serves all four plugins; the whole test takes seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops_bundle.core.plugin_scaffold import KINDS
from modelops_bundle.testing import isolated_environ, run_command

pytestmark = pytest.mark.slow

LAUNCHER = "import sys; from modelops_bundle.cli.main import mops_main; sys.exit(mops_main())"


@dataclass
class Installed:
    python: Path
    plugins: Path
    env: dict[str, str]

    def mops(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.python), "-c", LAUNCHER, "bundle", *args],
            env=self.env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if check:
            assert done.returncode == 0, f"mops bundle {' '.join(args)}: {done.stdout}{done.stderr}"
        return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    pytest.importorskip("hatchling", reason="the test extras install hatchling: pip install -e '.[test]'")
    base = tmp_path_factory.mktemp("plugin-install")
    plugins = base / "plugins"
    env = isolated_environ(base)
    for kind in KINDS:
        result = run_command(["-C", str(plugins), "plugin", "new", f"lab-{kind}", "--kind", kind], env)
        assert result.exit_code == 0, result
    venv.EnvBuilder(with_pip=False).create(base / "venv")
    python = base / "venv" / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    outer = sysconfig.get_paths()["purelib"]
    Path(site, "_outer_environment.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", *(str(plugins / f"mops-lab-{kind}") for kind in KINDS)],
        env={**env, "PIP_NO_INPUT": "1"}, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    yield Installed(python, plugins, env)


def test_the_plugins_are_distributions_of_the_fresh_environment(installed: Installed) -> None:
    site = Path(
        subprocess.run(
            [str(installed.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()
    )  # fmt: skip
    for kind in KINDS:
        (info,) = site.glob(f"mops_lab_{kind}-0.1.0.dist-info")
        assert f"lab-{kind} = mops_lab_{kind}.plugin" in (info / "entry_points.txt").read_text()
    assert sys.prefix not in str(site)


def test_plugins_lists_them_with_distribution_and_version(installed: Installed) -> None:
    listed = {p["name"]: p for p in json.loads(installed.mops("plugins", "--json").stdout)}
    expected_hooks = {
        "discovery": ["mops_discover_models"],
        "storage": ["mops_storage_providers"],
        "registry": ["mops_registry_backends"],
        "packaging": ["mops_manifest_annotations", "mops_storage_tier"],
    }
    for kind in KINDS:
        entry = listed[f"lab-{kind}"]
        assert (entry["distribution"], entry["version"], entry["status"]) == (f"mops-lab-{kind}", "0.1.0", "loaded")
        assert entry["builtin"] is False and entry["hooks"] == expected_hooks[kind]
    table = installed.mops("plugins").stdout
    assert any(line.startswith("lab-storage ") and "mops-lab-storage 0.1.0" in line for line in table.splitlines())


def test_the_generated_tests_pass_in_the_fresh_environment(installed: Installed) -> None:
    env = {**installed.env, "MOPS_STORAGE_BIG_FILE_MB": "96"}
    env.pop("PYTEST_ADDOPTS", None)
    for kind in KINDS:
        done = subprocess.run(
            [str(installed.python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=installed.plugins / f"mops-lab-{kind}", env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"{kind}: {done.stdout[-3000:]}{done.stderr[-2000:]}"
        if kind == "storage":
            assert "TestLabStorageConformance::" in done.stdout or " passed" in done.stdout


def test_end_to_end_through_the_installed_entry_points(installed: Installed, tmp_path: Path) -> None:
    """One lab set-up using all four: its registry backend and storage provider (named in an environment
    file), its packaging rules, and its model discovery."""
    home = Path(installed.env["MODELOPS_HOME"])
    (home / "bundle-env").mkdir(parents=True, exist_ok=True)
    (home / "bundle-env" / "lab.yaml").write_text(
        f"environment: lab\nregistry:\n  provider: lab-registry\n  path: {tmp_path / 'registry'}\n"
        f"storage:\n  provider: lab-storage\n  path: {tmp_path / 'store'}\n"
    )  # fmt: skip
    project = tmp_path / "mine" / "outbreak"
    installed.mops("init", str(project), "--env", "lab")
    (project / "models").mkdir()
    (project / "models" / "sim.py").write_text(
        "import lab_discovery\n\n\nclass Outbreak(lab_discovery.Model):\n    pass\n"
    )
    (project / "data").mkdir()
    payload = os.urandom(50_000)
    (project / "data" / "cases.parquet").write_bytes(payload)

    registered = json.loads(installed.mops("register-model", "models/sim.py", "--json", cwd=project).stdout)
    assert [(m["class_name"], m["framework"]) for m in registered["models"]] == [("Outbreak", "lab-discovery")]
    installed.mops("add", ".", cwd=project)
    installed.mops("push", "--tag", "v1.0.0", cwd=project)

    manifest = json.loads(installed.mops("manifest", "v1.0.0", "--json", cwd=project).stdout)
    assert manifest["annotations"]["org.example.lab-packaging.lab"] == "lab-packaging"
    files = {entry["path"]: entry for entry in manifest["files"]}
    pointer = files["data/cases.parquet"]["blobRef"]["uri"]
    assert files["data/cases.parquet"]["storage"] == "blob" and pointer.startswith("lab-storage://")
    assert (tmp_path / "store" / pointer.removeprefix("lab-storage://")).read_bytes() == payload

    (project / "models" / "sim.py").write_text(
        "import lab_discovery\n\n\nclass Outbreak(lab_discovery.Model):\n    R0 = 2\n"
    )
    refused = installed.mops("push", "--tag", "v1.0.0", cwd=project, check=False)
    assert refused.returncode == 1 and "is immutable" in refused.stderr

    colleague = tmp_path / "theirs" / "outbreak"
    installed.mops("init", str(colleague), "--env", "lab")
    installed.mops("pull", "--ref", "v1.0.0", cwd=colleague)
    assert (colleague / "data" / "cases.parquet").read_bytes() == payload
    assert "class Outbreak" in (colleague / "models" / "sim.py").read_text()
