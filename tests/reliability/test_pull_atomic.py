"""A pull is all or nothing for the working tree, and an ``ensure`` into one folder is safe to repeat and to
run twice at once (issue 15, items 3, 4, 4b, 6b and 17), against CNCF distribution.

* a version whose new file cannot be written here (a name over ``NAME_MAX``, a path over ``PATH_MAX``
  once joined with the project's folder) is refused before anything changes -- also with ``--overwrite``;
* a local edit saved while a slowed pull downloads is a conflict: kept, reported, exit 1, nothing else
  changed;
* two ``ensure --dest D`` (one with ``--mirror``) at once both succeed; a re-run after a killed one leaves
  no staging behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from modelops_bundle.testing import BundleProject
from tests.oci.registries import FaultProxy, RunningRegistry
from tests.reliability.conftest import Trial
from tests.reliability.support import (
    direct_backend,
    failed_cleanly,
    new_project,
    ok,
    publish,
    raw_files,
    tree_files,
    write_env,
)

BIN = Path(sys.executable).parent / "modelops-bundle"


def _observable(project: BundleProject) -> tuple[dict[str, bytes], bytes, bytes]:
    return (
        tree_files(project.root),
        (project.meta / "state.json").read_bytes(),
        (project.meta / "tracked.txt").read_bytes(),
    )


def _no_staging(project: BundleProject) -> None:
    staging = project.meta / "staging"
    assert not staging.exists() or not list(staging.iterdir()), list(staging.iterdir())
    assert not (project.meta / "pull-journal.json").exists()


def test_a_pull_that_cannot_write_a_name_changes_nothing(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """v1 = {keep.txt, gone.txt}; v2 = {keep.txt (changed), <a new file that cannot be written>}. A clone at
    v1 pulls v2 (and, with a local edit of keep.txt, ``pull --overwrite v2``): refused naming the path,
    ``gone.txt`` still there, the edit kept, state and tracked list unchanged, no staging left."""
    write_env(mops_env, "atomic", reliability_registry.host)
    repository = f"atomic-{uuid.uuid4().hex[:8]}"
    backend = direct_backend(reliability_registry.host)
    publish(backend, repository, "v1", *raw_files(("keep.txt", b"keep v1\n"), ("gone.txt", b"gone\n")))
    # a root deep enough that a 3,000-byte path (within every file system's rules) passes PATH_MAX
    deep_root = tmp_path.joinpath(*(["r" * 200] * 6)) / "clone"
    variants = {
        "a 300-byte name (over NAME_MAX)": ("new/" + "n" * 300 + ".txt", tmp_path / "clone"),
        "a 3,000-byte path that passes PATH_MAX joined with the project folder": (
            "/".join(["p" * 240] * 12) + "/f.txt",
            deep_root,
        ),
    }
    runs = 0
    for label, (long_path, root) in variants.items():
        tag = f"v2-{runs}"
        publish(backend, repository, tag, *raw_files(("keep.txt", b"keep v2\n"), (long_path, b"far\n")))
        clone = new_project(mops_env, root, "atomic", ref=repository)
        ok(clone.run("pull", "v1", "--json"))
        before = _observable(clone)
        result = clone.run("pull", tag)
        stderr = failed_cleanly(result, code=result.exit_code if result.exit_code in (1, 2) else 1)
        assert "bytes" in stderr, stderr
        assert _observable(clone) == before and (clone.root / "gone.txt").exists()
        _no_staging(clone)
        clone.write("keep.txt", "my local edit\n")
        before = _observable(clone)
        result = clone.run("pull", tag, "--overwrite")
        failed_cleanly(result, code=result.exit_code if result.exit_code in (1, 2) else 1)
        assert _observable(clone) == before and clone.read("keep.txt") == "my local edit\n"
        _no_staging(clone)
        runs += 2
        trial.record(
            "hostile input",
            f"pull of a version adding {label}, from a clone holding a file the version deletes",
            "pull, pull --overwrite (with a local edit)",
            "refused before any change, naming the path; the deleted file, the edit, state and tracked list "
            "untouched; no staging left",
        )
    backend.close()


def test_an_edit_saved_during_a_slow_pull_is_never_overwritten(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """Clone at v1; v2 changes ``notes/x.txt`` and adds large files. The pull's download is slowed through
    the fault proxy, and ``notes/x.txt`` is saved while it runs: exit 1 naming it, the edit kept, nothing
    else changed; the next pull reports the file as changed on both sides."""
    proxy = FaultProxy(reliability_registry.port).start()
    try:
        write_env(mops_env, "slow", proxy.host)
        repository = f"slow-{uuid.uuid4().hex[:8]}"
        author = new_project(mops_env, tmp_path / repository, "slow")
        author.write("notes/x.txt", "v1 notes\n")
        author.write("keep.txt", "unchanged\n")
        ok(author.run("add", ".", "--json"))
        ok(author.run("push", "--json"))
        clone = new_project(mops_env, tmp_path / "clone", "slow", ref=repository)
        ok(clone.run("pull", "--json"))
        past = time.time() - 10
        os.utime(clone.root / "notes/x.txt", (past, past))
        author.write("notes/x.txt", "v2 notes\n")
        rng = random.Random(4)
        for number in range(3):
            author.write(f"big/b{number}.bin", rng.randbytes(1_500_000))
        ok(author.run("add", ".", "--json"))
        ok(author.run("push", "--json"))
        before = _observable(clone)

        edited = threading.Event()

        def slow_and_edit(_in: int, out: int) -> None:
            time.sleep(0.02)  # about 3 MB/s: the download takes a couple of seconds
            if out > 1_000_000 and not edited.is_set():
                edited.set()
                (clone.root / "notes/x.txt").write_text("my edit, saved during the pull\n")

        proxy.on_bytes = slow_and_edit
        result = clone.run("pull")
        proxy.on_bytes = None
        assert edited.is_set(), "the edit was not made during the download"
        stderr = failed_cleanly(result, "notes/x.txt", "changed", code=1)
        assert "kept" in stderr
        assert clone.read("notes/x.txt") == "my edit, saved during the pull\n"
        files, state, tracked = _observable(clone)
        assert files == {**before[0], "notes/x.txt": b"my edit, saved during the pull\n"}
        assert (state, tracked) == before[1:]
        _no_staging(clone)
        again = clone.run("pull")
        failed_cleanly(again, "notes/x.txt", "changed locally and in the version", code=1)
        assert clone.read("notes/x.txt") == "my edit, saved during the pull\n"
    finally:
        proxy.stop()
    trial.record(
        "concurrency",
        "a local edit saved while `pull` downloads (transfer slowed through the fault proxy)",
        "1 pull of 4.5 MB at about 3 MB/s, the edit made after 1 MB",
        "exit 1 naming the file as changed during the pull; the edit kept; nothing else changed; the next "
        "pull reports it changed on both sides",
    )


def _start(root: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN), "-C", str(root), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def test_two_ensures_into_one_folder_at_once(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """``ensure --dest D`` slowed through the proxy, and ``ensure --dest D --mirror`` started while the first
    downloads: both exit 0 (they take turns), and D holds exactly the version."""
    proxy = FaultProxy(reliability_registry.port).start()
    try:
        write_env(mops_env, "direct", reliability_registry.host)
        write_env(mops_env, "slowed", proxy.host)
        repository = f"twice-{uuid.uuid4().hex[:8]}"
        author = new_project(mops_env, tmp_path / repository, "direct")
        rng = random.Random(6)
        for number in range(3):
            author.write(f"big/b{number}.bin", rng.randbytes(1_000_000))
        for number in range(20):
            author.write(f"src/m{number}.py", f"X = {number}\n")
        ok(author.run("add", ".", "--json"))
        ok(author.run("push", "--json"))
        expected = tree_files(author.root)
        slow = new_project(mops_env, tmp_path / "slow", "slowed", ref=repository)
        fast = new_project(mops_env, tmp_path / "fast", "direct", ref=repository)
        dest = tmp_path / "dest"
        proxy.on_bytes = lambda _in, _out: time.sleep(0.02)
        first = _start(slow.root, mops_env, "ensure", "--dest", str(dest))
        deadline = time.monotonic() + 60
        while not (dest.exists() and any(p.name.startswith(".mops-ensure-") for p in dest.iterdir())):
            assert time.monotonic() < deadline and first.poll() is None, first.communicate()
            time.sleep(0.01)
        second = _start(fast.root, mops_env, "ensure", "--dest", str(dest), "--mirror")
        results = [process.communicate(timeout=120) for process in (first, second)]
        proxy.on_bytes = None
        codes = [first.returncode, second.returncode]
        assert codes == [0, 0], (codes, [err.decode() for _, err in results])
        assert tree_files(dest) == expected
        assert not [p.name for p in dest.iterdir() if p.name.startswith(".mops-ensure-")]
    finally:
        proxy.stop()
    trial.record(
        "concurrency",
        "`ensure --dest D` (slowed) and `ensure --dest D --mirror` at once",
        "1 race, the second started while the first downloads",
        "both exit 0 (an flock on D: they take turns); D holds exactly the version; no staging left",
    )


CHILD_KILLED_AFTER_STAGING = r"""
import json, os, signal, sys
args = json.loads(sys.argv[1])
staged = False

def hook(event, details):
    global staged
    if event == "os.mkdir" and ".mops-ensure-" in str(details[0]):
        staged = True
        return
    if staged and event == "open" and len(details) > 2 and isinstance(details[2], int) and details[2] & os.O_CREAT:
        os.kill(os.getpid(), signal.SIGKILL)  # the first file written into the staging folder

sys.addaudithook(hook)
from modelops_bundle.cli.main import bundle_main
sys.exit(bundle_main(args))
"""


def test_a_rerun_of_ensure_removes_what_a_killed_one_left(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """``ensure --dest D`` SIGKILLed once its staging folder exists, then run again: exit 0, D holds the
    version and no ``.mops-ensure-*`` folder."""
    write_env(mops_env, "rerun", reliability_registry.host)
    repository = f"rerun-{uuid.uuid4().hex[:8]}"
    author = new_project(mops_env, tmp_path / repository, "rerun")
    author.write("big/b.bin", random.Random(8).randbytes(800_000))
    author.write("src/m.py", "X = 1\n")
    ok(author.run("add", ".", "--json"))
    ok(author.run("push", "--json"))
    user = new_project(mops_env, tmp_path / "user", "rerun", ref=repository)
    dest = tmp_path / "dest"
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD_KILLED_AFTER_STAGING,
            json.dumps(["-C", str(user.root), "ensure", "--dest", str(dest)]),
        ],
        env=mops_env,
        capture_output=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert [p.name for p in dest.iterdir() if p.name.startswith(".mops-ensure-")], "the killed run left no staging"
    ok(user.run("ensure", "--dest", str(dest), "--json"))
    assert tree_files(dest) == tree_files(author.root)
    assert not [p.name for p in dest.iterdir() if p.name.startswith(".mops-ensure-")]
    trial.record(
        "kills",
        "`ensure --dest D` SIGKILLed once its staging folder exists, then run again",
        "1 kill, 1 re-run",
        "the re-run exits 0, D holds the version, no `.mops-ensure-*` left",
    )
