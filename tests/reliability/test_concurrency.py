"""Concurrency: two pushes to one tag at once (separate projects, separate processes), and many commands
in one project at once (the project lock holds; state files always parse; no update is lost)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.oci.registries import RunningRegistry
from tests.reliability.conftest import Trial
from tests.reliability.support import complete_version, fill, new_project, ok, write_env

BIN = Path(sys.executable).parent / "modelops-bundle"


def _start(root: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN), "-C", str(root), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _finish(process: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out.decode(), err.decode()


def test_two_pushes_to_one_tag(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """Two projects that both pulled the current version push different changes to the same tag at the
    same moment, in separate processes: one wins, the other exits 1 with the moved tag; the tag points
    at a complete version -- the winner's."""
    write_env(mops_env, "race", reliability_registry.host)
    rounds = 6
    outcomes: list[str] = []
    for number in range(rounds):
        name = f"race-{number}-{uuid.uuid4().hex[:6]}"
        base = new_project(mops_env, tmp_path / name, "race")
        fill(base, number, small=20, large=1)
        ok(base.run("add", ".", "--json"))
        ok(base.run("push", "--json"))
        racers = []
        for side in ("a", "b"):
            racer = new_project(mops_env, tmp_path / f"{name}-{side}", "race", ref=name)
            ok(racer.run("pull", "--json"))
            racer.write(f"data/{side}.txt", f"{side} was here ({number})\n" * 100)
            racer.write("big/blob0.bin", f"{side}{number}".encode() * 300_000)
            ok(racer.run("add", ".", "--json"))
            racers.append(racer)
        processes = [_start(racer.root, mops_env, "push", "--json") for racer in racers]
        results = [_finish(process) for process in processes]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 1], results
        winner = next(json.loads(out) for code, out, _ in results if code == 0)
        loser_err = next(err for code, _, err in results if code == 1)
        assert any(word in loser_err for word in ("moved", "points at", "someone else", "elsewhere")), loser_err
        assert "Traceback" not in loser_err
        assert complete_version(reliability_registry.host, name, "latest") == winner["digest"]
        outcomes.append("moved while uploading" if "while this push was uploading" in loser_err else "moved before")
    trial.record(
        "concurrency",
        "two pushes of different changes to one tag at the same moment (two projects, two processes)",
        f"{rounds} races ({outcomes.count('moved while uploading')} caught at the final check, "
        f"{outcomes.count('moved before')} at the first)",
        "always exactly one exit 0 and one exit 1 (ConflictError naming the moved tag); the tag at the "
        "winner's complete version",
    )


def test_concurrent_commands_in_one_project(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """add, status and push from several processes at once, in rounds: every add is kept, every push
    succeeds in turn (the lock serialises them), state.json and tracked.txt always parse."""
    write_env(mops_env, "busy", reliability_registry.host)
    name = f"busy-{uuid.uuid4().hex[:6]}"
    project = new_project(mops_env, tmp_path / name, "busy")
    fill(project, 3, small=10, large=0)
    ok(project.run("add", ".", "--json"))
    rounds, adds = 3, 4
    expected = set(project.tracked())
    runs = 0
    for number in range(rounds):
        names = [f"new/r{number}-{index}.txt" for index in range(adds)]
        for rel in names:
            project.write(rel, f"{rel}\n")
        time.sleep(0.05)
        processes = [_start(project.root, mops_env, "add", rel, "--json") for rel in names]
        processes += [_start(project.root, mops_env, "status", "--json") for _ in range(2)]
        processes += [_start(project.root, mops_env, "push", "--json") for _ in range(2)]
        state_snapshots = []
        while any(process.poll() is None for process in processes):
            for rel in ("state.json", "tracked.txt"):
                text = (project.meta / rel).read_text()
                state_snapshots.append(json.loads(text) if rel.endswith(".json") else text.splitlines())
            time.sleep(0.01)
        for process in processes:
            code, out, err = _finish(process)
            runs += 1
            assert code == 0, (process.args, err)
            json.loads(out)
        expected |= set(names)
        assert set(project.tracked()) == expected  # no lost update
        assert state_snapshots
    final = ok(project.run("push", "--json"))
    assert complete_version(reliability_registry.host, name, "latest") == final["digest"]
    state = json.loads((project.meta / "state.json").read_text())
    assert state["last_push_digest"] == final["digest"]
    assert set(state["last_synced_files"]) == expected
    trial.record(
        "concurrency",
        f"{adds} `add`, 2 `status` and 2 `push` processes at once in one project, state files read while they run",
        f"{rounds} rounds, {runs} processes",
        "all exit 0; no add lost; state.json/tracked.txt parsed at every read; final tag complete",
    )
