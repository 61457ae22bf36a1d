"""``pip install '.[all]'`` into a fresh virtualenv gives a working ``mops`` and every provider.

Offline, as tests/meta/test_plugin_install.py does it: the virtualenv is created empty and a ``.pth``
file puts this test run's site-packages behind its own, so the requirements of the package and of its
``all`` extra are found installed there (pip checks every one of them: a requirement that is misnamed,
or an extra that does not exist, fails the install), and pip builds and installs modelops-bundle
itself from this checkout into the fresh environment (``--no-index --no-build-isolation``: nothing is
downloaded).
"""

from __future__ import annotations

import json
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from modelops_bundle.testing import isolated_environ

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
#: What each provider (and the Dask integration) imports when it is used.
PROVIDER_IMPORTS = {
    "azure": ["adlfs", "azure.storage.blob.aio"],
    "s3": ["s3fs"],
    "gcs": ["gcsfs", "aiohttp"],
    "dask": ["distributed", "modelops_bundle.dask"],
}
PROBE = """
import importlib, json, sys
import modelops_bundle
from importlib.metadata import distribution
from modelops_bundle.core.plugins import build_plugin_host
from modelops_bundle.core.storage import available_providers

imported = {}
for extra, modules in json.loads(sys.argv[1]).items():
    imported[extra] = [importlib.import_module(name).__name__ for name in modules]
providers = sorted(available_providers(build_plugin_host({"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"})))
dist = distribution("modelops-bundle")
print(json.dumps({"package": modelops_bundle.__file__, "imported": imported, "providers": providers,
                  "requires": dist.requires, "direct_url": dist.read_text("direct_url.json")}))
"""


def test_pip_install_all_then_mops_and_every_provider(tmp_path: Path) -> None:
    pytest.importorskip("hatchling", reason="the test extras install hatchling: pip install -e '.[test]'")
    venv.EnvBuilder(with_pip=False).create(tmp_path / "venv")
    python = tmp_path / "venv" / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    outer = sysconfig.get_paths()["purelib"]
    Path(site, "_outer_environment.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    env = isolated_environ(tmp_path)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-build-isolation",
         "--disable-pip-version-check", f"{ROOT}[all]"],
        env={**env, "PIP_NO_INPUT": "1"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    mops = tmp_path / "venv" / "bin" / "mops"
    helped = subprocess.run([str(mops), "bundle", "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: mops bundle") and "push" in helped.stdout

    probe = subprocess.run(
        [str(python), "-c", PROBE, json.dumps(PROVIDER_IMPORTS)],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["package"].startswith(site)  # the fresh environment's own copy, not this checkout
    assert found["direct_url"] is None or '"editable": true' not in found["direct_url"]
    assert found["imported"] == PROVIDER_IMPORTS
    assert {"local", "azure", "s3", "gcs", "oci"} <= set(found["providers"])
    extras = {
        requirement.split("extra == ")[-1].strip("'\"") for requirement in found["requires"] if "extra" in requirement
    }
    assert {"all", "azure", "s3", "gcs", "dask"} <= extras
