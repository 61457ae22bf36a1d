"""``scripts/quickstart.sh`` runs green, end to end, and shows what its header promises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelops_bundle.testing import isolated_environ

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("diff") is None, reason="needs bash and diff")
def test_the_quick_start_runs_green(tmp_path: Path) -> None:
    # This test run's own virtualenv has the package: the script uses it instead of installing one.
    env = {**isolated_environ(tmp_path), "QUICKSTART_VENV": sys.prefix, "TMPDIR": str(tmp_path), "NO_COLOR": "1"}
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    assert Path(sys.prefix, "bin", "mops").exists(), "the test environment has the mops executable"
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "quickstart.sh")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
    assert "Installing" not in out  # nothing installed: the given virtualenv was used
    # the main job: push twice (same digest), get it back by short digest, byte for byte, and run it
    assert "Everything up to date: seir-demo:latest" in out
    assert "$ mops bundle ensure --dest" in out and "every byte matches" in out
    assert "peak reported cases:" in out
    # the git-like loop: a second clone pulls; changes to different files meet; the same file is refused
    assert "$ mops bundle pull --overwrite" in out and "overwritten: pyproject.toml" in out
    assert "  updated: data/demographics.csv" in out  # their change, pulled in beside yours
    assert out.count("(refused with exit code 1: nothing was changed)") == 2
    assert "pull would overwrite or delete local changes in 1 file(s): data/demographics.csv" in done.stderr
    assert "Changed here and in the registry: data/demographics.csv" in out
    # and where to go next
    assert "Next steps" in out and "QUICKSTART_KEEP=1" in out
    assert not list(tmp_path.glob("mops-quickstart.*"))  # its folder removed (not kept)
