"""``mops bundle pull`` and ``api.materialize`` killed with SIGKILL at many points.

Two ways to pick the moment, both seeded and bounded:

* **file-system kill points**: the child (the real CLI entry point, or ``api.materialize``) runs with an
  audit hook (:pep:`578`) that counts every mutating file-system call (open for writing, rename/replace,
  unlink, mkdir, rmdir, chmod, utime, link) and SIGKILLs its own process at the k-th one. A dry run
  counts them first; k is drawn from that range, so kills land in downloading, unpacking, placing and
  state writing alike;
* **transfer kill points**: the test SIGKILLs the child's process group when a seeded number of bytes
  has passed through the fault proxy in front of the registry.

After every kill: no file in the working tree (or materialisation destination) holds bytes that are
neither the old nor the new version, local edits are intact, state files parse, no cache tree carries
a completion marker over wrong content, and the re-run converges and cleans up its leftovers.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops_bundle import api
from modelops_bundle.core.cache import BundleCache, read_marker, version_specs
from modelops_bundle.testing import BundleProject
from tests.oci.registries import FaultProxy, RunningRegistry
from tests.reliability.conftest import Trial
from tests.reliability.support import fill, new_project, ok, sha, tree_files, write_env

#: The child: install the kill-point audit hook, then run the CLI or ``api.materialize``.
CHILD = r"""
import json, os, signal, sys
mode, kill_at, count_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
args = json.loads(sys.argv[4])
MUTATING = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.utime", "os.link",
            "os.truncate", "shutil.copyfile", "shutil.rmtree"}
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
seen = 0
armed = False

def hook(event, details):
    global seen
    if not armed:
        return
    if event == "open":
        flags = details[2] if len(details) > 2 and isinstance(details[2], int) else 0
        mode_text = details[1] if len(details) > 1 and isinstance(details[1], str) else ""
        if not (flags & WRITE or any(ch in mode_text for ch in "wax+")):
            return
    elif event not in MUTATING:
        return
    seen += 1
    if seen == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(hook)
if mode == "cli":
    from modelops_bundle.cli.main import bundle_main
    armed = True
    code = bundle_main(args)
else:
    from modelops_bundle import api
    armed = True
    api.materialize(args["ref"], args.get("dest"), environ=dict(os.environ))
    code = 0
armed = False
with open(count_file, "w") as out:
    out.write(str(seen))
sys.exit(code)
"""


@dataclass
class Child:
    returncode: int
    killed: bool
    count: int | None
    stderr: str


def run_child(
    mode: str,
    args: object,
    env: dict[str, str],
    tmp: Path,
    *,
    kill_at: int = 0,
    proxy: FaultProxy | None = None,
    kill_after_bytes: int | None = None,
) -> Child:
    """Run the child; SIGKILL it at file-system event ``kill_at`` (0: never) or, with ``proxy``, once
    ``kill_after_bytes`` bytes went out through the proxy. Bounded by a 120 s timeout."""
    count_file = tmp / f"count-{uuid.uuid4().hex}"
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(kill_at), str(count_file), json.dumps(args)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    fired = threading.Event()
    if proxy is not None and kill_after_bytes is not None:

        def watch(_in: int, out: int) -> None:
            if out >= kill_after_bytes and not fired.is_set():
                fired.set()
                os.killpg(process.pid, signal.SIGKILL)

        proxy.on_bytes = watch
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    finally:
        if proxy is not None:
            proxy.on_bytes = None
    count = int(count_file.read_text()) if count_file.exists() else None
    return Child(process.returncode, process.returncode == -signal.SIGKILL, count, err.decode(errors="replace"))


def kill_points(total: int, how_many: int, seed: int) -> list[int]:
    """``how_many`` distinct kill points in ``1..total`` (all of them when there are fewer)."""
    points = list(range(1, total + 1))
    return sorted(random.Random(seed).sample(points, min(how_many, len(points))))


# ------------------------------------------------------------------------------------------- fixtures


@dataclass
class Versions:
    project: BundleProject
    name: str
    v1: dict[str, bytes]
    v2: dict[str, bytes]
    digest1: str
    digest2: str
    env: dict[str, str]
    proxy: FaultProxy


@pytest.fixture
def versions(mops_env: dict[str, str], tmp_path: Path, reliability_registry: RunningRegistry) -> Iterator[Versions]:
    """Two pushed versions: v2 changes, adds and deletes small and large files of v1."""
    proxy = FaultProxy(reliability_registry.port).start()
    write_env(mops_env, "kills", proxy.host)
    name = f"kills-{uuid.uuid4().hex[:8]}"
    project = new_project(mops_env, tmp_path / name, "kills")
    fill(project, 1, small=45, large=3, large_size=900_000)
    ok(project.run("add", ".", "--json"))
    digest1 = ok(project.run("push", "--json"))["digest"]
    v1 = tree_files(project.root)
    rng = random.Random(2)
    for number in range(0, 45, 3):
        project.write(f"{('data', 'src', 'conf')[number % 3]}/f{number:03d}.txt", f"v2 {number}\n".encode() * 30)
    for number in range(1, 45, 9):
        (project.root / f"{('data', 'src', 'conf')[number % 3]}/f{number:03d}.txt").unlink()
    for number in range(10):
        project.write(f"data/new/n{number}.txt", f"new {number}\n".encode() * 20)
    project.write("big/blob1.bin", rng.randbytes(900_000))
    project.write("big/blob9.bin", rng.randbytes(1_000_000))
    ok(project.run("add", ".", "--json"))
    tracked = set(project.tracked())
    gone = [rel for rel in tracked if not (project.root / rel).exists()]
    if gone:
        ok(project.run("remove", *gone, "--json"))
    digest2 = ok(project.run("push", "--json"))["digest"]
    v2 = tree_files(project.root)
    yield Versions(project, name, v1, v2, digest1, digest2, dict(mops_env), proxy)
    proxy.stop()


def _victim(versions: Versions, root: Path) -> tuple[BundleProject, dict[str, bytes]]:
    """A clone at v1 with local edits that a pull to v2 keeps."""
    clone = new_project(versions.env, root, "kills", ref=versions.name)
    ok(clone.run("pull", "--ref", versions.digest1, "--json"))
    assert versions.v1["src/f004.txt"] == versions.v2["src/f004.txt"]
    local = {"src/f004.txt": b"edited locally, unchanged remotely\n", "notes/mine.txt": b"untracked notes\n"}
    for rel, data in local.items():
        clone.write(rel, data)
    past = time.time() - 10
    for rel in local:
        os.utime(clone.root / rel, (past, past))
    return clone, local


def _check_after_kill(clone: BundleProject, versions: Versions, local: dict[str, bytes]) -> None:
    for rel, data in tree_files(clone.root).items():
        if rel in local:
            assert data == local[rel], f"local edit {rel} lost"
            continue
        allowed = [v[rel] for v in (versions.v1, versions.v2) if rel in v]
        assert allowed, f"{rel}: a file of neither version in the working tree"
        assert data in allowed, f"{rel}: partial or foreign bytes in the working tree"
    json.loads((clone.meta / "state.json").read_text())  # valid JSON, whatever the moment
    assert all(line and not line.startswith("/") for line in (clone.meta / "tracked.txt").read_text().splitlines())


def _converged(clone: BundleProject, versions: Versions, local: dict[str, bytes]) -> None:
    ok(clone.run("pull", "--json"))
    expected = {**versions.v2, **local}
    assert tree_files(clone.root) == expected
    state = json.loads((clone.meta / "state.json").read_text())
    assert state["last_pull_digest"] == versions.digest2
    staging = clone.meta / "staging"
    assert not staging.exists() or not list(staging.iterdir()), list(staging.iterdir())
    assert not [p.name for p in clone.meta.iterdir() if p.name.endswith(".tmp")]


def test_pull_killed_at_random_points(versions: Versions, tmp_path: Path, trial: Trial) -> None:
    dry, local = _victim(versions, tmp_path / "dry")
    counted = run_child("cli", ["-C", str(dry.root), "pull", "--json"], versions.env, tmp_path)
    assert counted.returncode == 0 and counted.count, counted.stderr
    _converged(dry, versions, local)
    points = kill_points(counted.count, 20, seed=7)
    for point in points:
        clone, local = _victim(versions, tmp_path / f"fs-{point}")
        child = run_child("cli", ["-C", str(clone.root), "pull", "--json"], versions.env, tmp_path, kill_at=point)
        assert child.killed, (point, child.returncode, child.stderr)
        _check_after_kill(clone, versions, local)
        _converged(clone, versions, local)
    trial.record(
        "kills",
        f"`mops bundle pull` (v1 -> v2, {len(versions.v2)} files, local edits) SIGKILLed at the k-th "
        f"mutating file-system call (of {counted.count})",
        f"{len(points)} kill points (seed 7)",
        "every file old or new bytes, local edits kept, state.json valid; re-run converged and removed staging",
    )
    total = sum(len(data) for data in versions.v2.values())
    byte_points = sorted(random.Random(8).sample(range(20_000, total), 6))
    for threshold in byte_points:
        clone, local = _victim(versions, tmp_path / f"net-{threshold}")
        child = run_child(
            "cli",
            ["-C", str(clone.root), "pull", "--json"],
            versions.env,
            tmp_path,
            proxy=versions.proxy,
            kill_after_bytes=threshold,
        )
        assert child.killed or child.returncode == 0, child.stderr
        _check_after_kill(clone, versions, local)
        _converged(clone, versions, local)
    trial.record(
        "kills",
        "`mops bundle pull` SIGKILLed (process group) after a random number of downloaded bytes",
        f"{len(byte_points)} byte counts (seed 8)",
        "no partial file in the tree; local edits kept; re-run converged",
    )


def _check_cache(cache: BundleCache) -> int:
    """No completed tree over wrong bytes; every object that passes the cheap test has the right bytes.
    Returns the number of completed trees."""
    completed = 0
    for digest in cache.cached_versions():
        loaded = cache.load_version_bytes(digest)
        if loaded is None:
            continue
        specs = version_specs(loaded[1])
        for tree in cache.trees_of(digest):
            completed += 1
            listed = read_marker(cache.marker_path(tree))
            assert listed is not None and set(listed) == set(specs)
            for rel in listed:
                assert sha((tree / rel).read_bytes()) == specs[rel].digest, f"completed tree has wrong {rel}"
    for path, digest in cache._all_objects():
        from modelops_bundle.core.cache import ObjectSpec

        if cache.object_ok(ObjectSpec(digest, path.stat().st_size)):
            assert cache.verify_object(path, digest), f"object {digest} passes the cheap test with wrong bytes"
    return completed


def test_materialize_killed_at_random_points(versions: Versions, tmp_path: Path, trial: Trial) -> None:
    ref = f"{versions.proxy.host}/{versions.name}@{versions.digest2}"
    env = {**versions.env, "MOPS_ENV": "kills"}
    dry_cache = tmp_path / "dry-cache"
    counted = run_child("api", {"ref": ref}, {**env, "MODELOPS_BUNDLE_CACHE": str(dry_cache)}, tmp_path)
    assert counted.returncode == 0 and counted.count, counted.stderr
    points = kill_points(counted.count, 14, seed=11)
    for point in points:
        cache_dir = tmp_path / f"cache-{point}"
        child_env = {**env, "MODELOPS_BUNDLE_CACHE": str(cache_dir)}
        child = run_child("api", {"ref": ref}, child_env, tmp_path, kill_at=point)
        assert child.killed, (point, child.stderr)
        cache = BundleCache(cache_dir)
        assert _check_cache(cache) == 0
        report = api.materialize_report(ref, environ=child_env)
        assert tree_files(report.path) == versions.v2
        assert _check_cache(cache) == 1
        assert [p.name for p in (cache_dir / "tmp").iterdir()] == []
    trial.record(
        "kills",
        f"`api.materialize` into the shared cache SIGKILLed at the k-th mutating file-system call (of {counted.count})",
        f"{len(points)} kill points (seed 11)",
        "no completion marker, no object passing the cheap check with wrong bytes; re-run built a verified "
        "tree and removed the dead staging folder",
    )

    # Into a destination that holds v1: every file stays v1 or becomes v2, never torn.
    v1_ref = f"{versions.proxy.host}/{versions.name}@{versions.digest1}"
    dry_dest, dry_env = tmp_path / "dry-dest", {**env, "MODELOPS_BUNDLE_CACHE": str(tmp_path / "c0")}
    api.materialize(v1_ref, dry_dest, environ=dry_env)  # the same starting point as every killed run
    counted = run_child("api", {"ref": ref, "dest": str(dry_dest)}, dry_env, tmp_path)
    assert counted.returncode == 0 and counted.count, counted.stderr
    points = kill_points(counted.count, 8, seed=12)
    for point in points:
        dest = tmp_path / f"dest-{point}"
        child_env = {**env, "MODELOPS_BUNDLE_CACHE": str(tmp_path / f"dcache-{point}")}
        api.materialize(v1_ref, dest, environ=child_env)
        child = run_child("api", {"ref": ref, "dest": str(dest)}, child_env, tmp_path, kill_at=point)
        assert child.killed, (point, child.stderr)
        temps = 0
        for rel, data in tree_files(dest).items():
            if re.fullmatch(r"(.*/)?\.[^/]+\.mops-\d+\.tmp", rel):
                temps += 1  # the dead checkout's hidden temporary (removed by the next run, checked below)
                continue
            allowed = [v[rel] for v in (versions.v1, versions.v2) if rel in v]
            assert allowed and data in allowed, f"{rel}: torn or foreign file in the destination"
        assert temps <= 1
        api.materialize(ref, dest, environ=child_env)
        after = tree_files(dest)
        assert {rel: after[rel] for rel in versions.v2} == versions.v2
        assert set(after) <= set(versions.v1) | set(versions.v2), sorted(
            set(after) - set(versions.v1) - set(versions.v2)
        )
    trial.record(
        "kills",
        "`api.materialize(ref, dest)` over a destination holding v1, SIGKILLed at the k-th mutating call",
        f"{len(points)} kill points (seed 12)",
        "every visible file v1 or v2 bytes (at most the one hidden `.NAME.mops-PID.tmp` in flight); "
        "the re-run placed v2 and removed the dead process's temporary",
    )
    byte_points = sorted(random.Random(13).sample(range(20_000, sum(map(len, versions.v2.values()))), 4))
    for threshold in byte_points:
        cache_dir = tmp_path / f"ncache-{threshold}"
        child_env = {**env, "MODELOPS_BUNDLE_CACHE": str(cache_dir)}
        child = run_child("api", {"ref": ref}, child_env, tmp_path, proxy=versions.proxy, kill_after_bytes=threshold)
        assert child.killed or child.returncode == 0, child.stderr
        _check_cache(BundleCache(cache_dir))
        assert tree_files(api.materialize(ref, environ=child_env)) == versions.v2
    trial.record(
        "kills",
        "`api.materialize` SIGKILLed after a random number of downloaded bytes",
        f"{len(byte_points)} byte counts (seed 13)",
        "no tree marked complete; re-run converged",
    )


#: The child for kills during a pull's apply phase: counts ``os.rename`` calls (``os.replace`` too) after
#: the one that put the journal in place and before the journal is removed, and SIGKILLs itself at the k-th.
CHILD_APPLY = r"""
import json, os, signal, sys
kill_at, count_file = int(sys.argv[1]), sys.argv[2]
args = json.loads(sys.argv[3])
seen = 0
armed = False

def hook(event, details):
    global seen, armed
    if event == "os.remove" and str(details[0]).endswith("pull-journal.json"):
        armed = False  # committed: what follows (caches) is not the apply
        return
    if event != "os.rename":
        return
    if not armed:
        armed = str(details[1]).endswith("pull-journal.json")
        return
    seen += 1
    if seen == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

sys.addaudithook(hook)
from modelops_bundle.cli.main import bundle_main
code = bundle_main(args)
with open(count_file, "w") as out:
    out.write(str(seen))
sys.exit(code)
"""


def _apply_child(clone: BundleProject, env: dict[str, str], tmp: Path, kill_at: int) -> Child:
    count_file = tmp / f"count-{uuid.uuid4().hex}"
    argv = json.dumps(["-C", str(clone.root), "pull", "--json"])
    done = subprocess.run(
        [sys.executable, "-c", CHILD_APPLY, str(kill_at), str(count_file), argv],
        env=env,
        capture_output=True,
        timeout=120,
    )
    count = int(count_file.read_text()) if count_file.exists() else None
    return Child(done.returncode, done.returncode == -signal.SIGKILL, count, done.stderr.decode(errors="replace"))


def test_pull_killed_while_applying_is_finished_by_the_next_command(
    versions: Versions, tmp_path: Path, trial: Trial
) -> None:
    """SIGKILL between the journal and the commit -- among the renames that move old files aside and new
    ones in: the next command (a plain ``status``) finishes the pull before it looks, so it never reports
    half a pull as local deletions; the tree is v2 (with the local edits), the state says v2, and neither
    journal nor staging is left."""
    dry, local = _victim(versions, tmp_path / "apply-dry")
    counted = _apply_child(dry, versions.env, tmp_path, kill_at=0)
    assert counted.returncode == 0 and counted.count, counted.stderr
    points = kill_points(counted.count, 8, seed=21)
    for point in points:
        clone, local = _victim(versions, tmp_path / f"apply-{point}")
        child = _apply_child(clone, versions.env, tmp_path, kill_at=point)
        assert child.killed, (point, child.returncode, child.stderr)
        assert (clone.meta / "pull-journal.json").exists()
        status = ok(clone.run("status", "--offline", "--json"))
        assert status["changes"]["deleted"] == [] and status["changes"]["removed"] == [], status["changes"]
        assert status["changes"]["modified"] == ["src/f004.txt"], status["changes"]  # the local edit only
        assert tree_files(clone.root) == {**versions.v2, **local}
        assert json.loads((clone.meta / "state.json").read_text())["last_pull_digest"] == versions.digest2
        assert not (clone.meta / "pull-journal.json").exists()
        staging = clone.meta / "staging"
        assert not staging.exists() or not list(staging.iterdir())
    trial.record(
        "kills",
        f"`mops bundle pull` SIGKILLed while applying (at the k-th rename after the journal, of {counted.count})",
        f"{len(points)} kill points (seed 21)",
        "the next command (status) finished the pull from the journal: tree v2 with the local edits, "
        "state v2, no deletions reported, no journal or staging left",
    )
