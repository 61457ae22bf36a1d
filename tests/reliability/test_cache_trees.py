"""Trees of the shared cache hold exactly the version's files, and trees in use stay (issue 15, items 6
and 7), with a real ``api.materialize`` and real imports; and a damaged blob of the embedded registry is
repaired by pushing the same content again."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from modelops_bundle import api
from modelops_bundle.core.runner import call_in_tree
from modelops_bundle.testing import BundleProject, run_command
from tests.reliability.conftest import Trial
from tests.reliability.support import new_project, ok, sha

SOURCE = "VALUE = 'from the version'\n"


def _pushed(env: dict[str, str], root: Path) -> tuple[BundleProject, str]:
    project = BundleProject.create(root, env)
    project.write("src/m0.py", SOURCE)
    project.write("data/table.csv", "a,b\n1,2\n")
    ok(project.run("add", ".", "--json"))
    return project, ok(project.run("push", "--json"))["digest"]


def _plant(tree: Path) -> Path:
    """Bytecode compiled from other code, stamped with the source's size and mtime, where Python looks."""
    source = tree / "src" / "m0.py"
    st = source.stat()
    pyc = Path(importlib.util.cache_from_source(str(source)))
    code = compile("VALUE = 'planted'\n", str(source), "exec")
    data = importlib._bootstrap_external._code_to_timestamp_pyc(  # type: ignore[attr-defined]
        code, int(st.st_mtime), st.st_size
    )
    pyc.parent.mkdir(exist_ok=True)
    pyc.write_bytes(bytes(data))
    return pyc


def _imported(tree: Path) -> str:
    """``m0.VALUE`` as a fresh interpreter imports it from the tree (writing no bytecode of its own)."""
    code = f"import sys; sys.path.insert(0, {str(tree / 'src')!r}); import m0; print(m0.VALUE)"
    done = subprocess.run([sys.executable, "-B", "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_pyc_planted_in_a_cached_tree_is_never_executed(
    mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    project, digest = _pushed(mops_env, tmp_path / "project")
    cache = tmp_path / "cache"
    env = {**mops_env, "MODELOPS_BUNDLE_CACHE": str(cache)}
    ref = f"project@{digest}"
    tree = api.materialize(ref, environ=env)
    pyc = _plant(tree)
    assert _imported(tree) == "planted"  # the attack works on a tree nobody checks

    again = api.materialize(ref, environ=env)  # the next hand-out removes what the version does not have
    assert again == tree and not pyc.exists() and not pyc.parent.exists()
    assert _imported(again) == "from the version"

    _plant(tree)
    result = project.run("verify", "--cache", "--json", input_env={"MODELOPS_BUNDLE_CACHE": str(cache)})
    assert result.exit_code == 1, result
    findings = result.json()["findings"]
    assert any(f["kind"] == "extra-files" and "__pycache__" in f["detail"] for f in findings), findings
    assert not pyc.exists()

    _plant(tree)  # planted after the hand-out, before the run: the runner ignores bytecode
    assert call_in_tree(tree, "m0", "VALUE", lambda value: value) == "from the version"
    assert pyc.read_bytes()[16:] != b"" and _imported_planted_still(pyc)
    trial.record(
        "integrity",
        "a `.pyc` compiled from other code, stamped with the source's size and time, planted in a tree "
        "`api.materialize` returned",
        "3 plants: before the next materialize, before verify --cache, before a run",
        "the next materialize removes it (a fresh import gets the version's code); verify --cache reports "
        "'extra-files' (exit 1) and removes it; runs ignore bytecode in trees",
    )


def _imported_planted_still(pyc: Path) -> bool:
    """The runner neither removed nor rewrote the planted file (it only never reads it)."""
    return pyc.exists()


def test_gc_keeps_a_tree_a_worker_was_handed(mops_env: dict[str, str], tmp_path: Path, trial: Trial) -> None:
    """A worker process materialises a tree and keeps running; ``gc --keep-days 0`` keeps that version
    (busy) and its tree intact; once the worker exits, the same ``gc`` removes it."""
    _, digest = _pushed(mops_env, tmp_path / "project")
    cache = tmp_path / "cache"
    env = {**mops_env, "MODELOPS_BUNDLE_CACHE": str(cache)}
    outside = tmp_path / "elsewhere"  # gc run here keeps no project's synced versions
    outside.mkdir()
    gc_argv = ["-C", str(outside), "gc", "--keep-days", "0", "--json"]
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys; from modelops_bundle import api; "
            f"print(api.materialize('project@{digest}', environ=dict(os.environ)), flush=True); sys.stdin.read()",
        ],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        tree = Path(worker.stdout.readline().strip())
        assert (tree / "src" / "m0.py").exists()
        gc: dict[str, Any] = ok(run_command(gc_argv, env))
        assert digest in gc["busy_versions"] and gc["removed_versions"] == [], gc
        assert (tree / "src" / "m0.py").read_text() == SOURCE
    finally:
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait(timeout=60)
    gc = ok(run_command(gc_argv, env))
    assert gc["removed_versions"] == [digest] and not tree.exists(), gc
    trial.record(
        "concurrency",
        "`gc --keep-days 0` while a worker process runs from a tree it was handed",
        "1 worker, 2 gc runs",
        "kept (busy: the worker holds a lease until it exits), tree intact; removed once the worker exited",
    )


def test_a_damaged_blob_of_the_embedded_registry_is_repaired_by_pushing_again(
    mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    project, digest = _pushed(mops_env, tmp_path / "project")
    project.write("data/big.bin", os.urandom(2_000_000))
    ok(project.run("add", ".", "--json"))
    digest = ok(project.run("push", "--json"))["digest"]
    blob = Path(mops_env["MODELOPS_HOME"]) / "registry" / "project" / "blobs" / "sha256"
    layer = next(path for path in blob.iterdir() if path.stat().st_size == 2_000_000)
    data = bytearray(layer.read_bytes())
    data[1000] ^= 0xFF
    layer.write_bytes(bytes(data))  # same size, other bytes
    pushed = ok(project.run("push", "--json"))
    assert pushed["up_to_date"] and pushed["digest"] == digest
    assert any("repaired 1 damaged blob" in warning for warning in pushed["warnings"]), pushed
    assert sha(layer.read_bytes()) == "sha256:" + layer.name
    clone = new_project(mops_env, tmp_path / "clone", ref="project")
    ok(clone.run("pull", "--json"))
    assert (clone.root / "data/big.bin").read_bytes() == (project.root / "data/big.bin").read_bytes()
    assert json.loads((clone.meta / "state.json").read_text())["last_pull_digest"] == digest
    trial.record(
        "integrity",
        "a layer blob of the embedded OCI layout overwritten with same-size wrong bytes, then the same "
        "content pushed again",
        "1 blob, 1 push",
        "push finds it by its broken seal, re-hashes it, writes it again (warning 'repaired'); a fresh "
        "clone pulls the right bytes",
    )
