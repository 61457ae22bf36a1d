"""The forked stat probe (core/stat_probe.py, decision 0018): the child's answers, and scans with it
giving exactly the result of scans without it -- changed, missing, symlinked and unreadable paths
included -- also when the child fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelops_bundle.core.hashing import signature
from modelops_bundle.core.stat_probe import ASK_AGAIN, MIN_PATHS, StatProbe, cache_hit_modes, can_fork
from modelops_bundle.core.workspace import walk_share

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the probe forks on Linux only")


def _entry(path: Path) -> tuple[object, ...]:
    return (*signature(os.stat(path)), "ab" * 32)


def test_the_child_answers_only_what_it_is_sure_of(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "elsewhere")
    for rel in ("top.txt", "real/same.txt", "real/changed.txt", "elsewhere/via-link.txt", "real/not-cached.txt"):
        (tmp_path / rel).write_text(rel)
    os.chmod(tmp_path / "real/same.txt", 0o751)
    (tmp_path / "real/link.txt").symlink_to(tmp_path / "top.txt")
    entries = {rel: _entry(tmp_path / rel) for rel in ("top.txt", "real/same.txt", "real/changed.txt")}
    entries["real/link.txt"] = _entry(tmp_path / "top.txt")  # a symlink is never the probe's to judge
    entries["linked/via-link.txt"] = _entry(tmp_path / "elsewhere/via-link.txt")
    entries["real/gone.txt"] = entries["top.txt"]
    (tmp_path / "real/changed.txt").write_text("longer than before")
    rels = [
        "top.txt",
        "real/same.txt",
        "real/changed.txt",
        "real/link.txt",
        "linked/via-link.txt",  # the folder is a symlink: not in the walk's real folders
        "real/gone.txt",
        "real/not-cached.txt",
    ]
    modes = cache_hit_modes(rels, f"{tmp_path}/", entries, {"real"})  # "linked" is no real folder
    assert list(modes) == [0o644 & ~_umask(), 0o751] + [ASK_AGAIN] * 5


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_no_fork_for_few_paths_or_with_threads_running() -> None:
    assert not can_fork(MIN_PATHS - 1)
    import threading

    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()
    try:
        assert not can_fork(MIN_PATHS * 10)
    finally:
        stop.set()
        worker.join()


SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from modelops_bundle.core import stat_probe
    from modelops_bundle.core.project import Project
    from modelops_bundle.core.workspace import Workspace
    from modelops_bundle.plugins.hashing_sha256 import Sha256Hasher

    root, mode = Path(sys.argv[1]), sys.argv[2]
    stat_probe.MIN_PATHS = 10
    if mode == "sequential":
        stat_probe.can_fork = lambda paths: False
    elif mode == "failing-child":
        def broken(*args, **kwargs):
            raise RuntimeError("the child fails")
        stat_probe.cache_hit_modes = broken
    import modelops_bundle.core.workspace as workspace
    workspace.can_fork = stat_probe.can_fork
    started = []
    original = stat_probe.StatProbe.start.__func__
    def start(cls, *args, **kwargs):
        probe = original(cls, *args, **kwargs)
        started.append(probe is not None)
        return probe
    stat_probe.StatProbe.start = classmethod(start)
    answered = []
    original_collect = stat_probe.StatProbe.collect
    def collect(self):
        modes = original_collect(self)
        answered.append(None if modes is None else sum(mode != stat_probe.ASK_AGAIN for mode in modes))
        return modes
    stat_probe.StatProbe.collect = collect
    workspace.StatProbe = stat_probe.StatProbe
    import modelops_bundle.core.walk as walk
    walk.LISTING_MARGIN_NS = 0  # cache the folder listings of the fresh test tree, as of an older one
    warm_up = Workspace(Project(root))
    warm_up.scan(Sha256Hasher(), include_untracked=True)
    warm_up.save_caches()
    started.clear()
    answered.clear()
    swap = sys.argv[3] if len(sys.argv) > 3 else ""
    if swap:  # a cached folder moved out and replaced by a symlink to it: same files, same inodes
        (root / swap).rename(root.parent / "moved")
        (root / swap).symlink_to(root.parent / "moved")
    ws = Workspace(Project(root))
    scan = ws.scan(Sha256Hasher(), include_untracked=True)
    if swap:
        (root / swap).unlink()
        (root.parent / "moved").rename(root / swap)
    print(json.dumps({
        "forked": started,
        "answered": answered,
        "files": [list(info) for info in scan.files.values()],
        "missing": scan.missing,
        "skipped": scan.skipped,
        "untracked": scan.untracked,
        "hashed": scan.hashed_files,
    }))
    """
)


def _scan(root: Path, mode: str, swap: str = "") -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), mode, swap], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@linux_only
@pytest.mark.parametrize("tree", ["as-listed", "with-a-symlink", "folder-swapped"])
@pytest.mark.parametrize("mode", ["forked", "failing-child"])
def test_a_scan_with_the_probe_is_the_scan_without_it(bundle_project, mode: str, tree: str) -> None:  # type: ignore[no-untyped-def]
    """Both ways the probe runs: during the walk, while every folder it took as real still is one (the
    child checks every path; folders read again -- here one holding a symlink, which is never cached --
    do not matter); after it, on half the paths, when a folder it took as real is a symlink now."""
    root = bundle_project.root
    for index in range(60):
        bundle_project.write(f"d{index % 7}/sub{index % 3}/f{index:03d}.txt", f"content {index}\n")
    old = os.stat(root).st_mtime_ns - 100 * 10**9  # files older than the racy window: the cache holds them
    for path in root.rglob("*"):  # the scaffold's files too: none is re-hashed for being recent
        if path.is_file() and ".modelops-bundle" not in path.parts:
            os.utime(path, ns=(old, old))
    assert bundle_project.run("add", ".").exit_code == 0
    for index in (5, 33, 59):  # edited after the add
        edited = root / f"d{index % 7}/sub{index % 3}/f{index:03d}.txt"
        edited.write_text(f"edited {index}, longer\n")
        os.utime(edited, ns=(old + 10**9, old + 10**9))
    (root / "d5/sub0/f012.txt").unlink()
    symlinked = []
    if tree == "with-a-symlink":
        (root / "d6/sub1/f013.txt").unlink()
        (root.parent / "outside.txt").write_text("not the project's")
        (root / "d6/sub1/f013.txt").symlink_to(root.parent / "outside.txt")  # never followed out of the project
        symlinked = ["d6/sub1/f013.txt"]
    swap = "d4/sub2" if tree == "folder-swapped" else ""
    (root / "untracked.txt").write_text("new")
    expected = _scan(root, "sequential", swap)
    got = _scan(root, mode, swap)
    started, answered = got.pop("forked"), got.pop("answered")
    assert expected.pop("forked") == [] and expected.pop("answered") == []
    assert got == expected
    assert expected["missing"] == ["d5/sub0/f012.txt"] and expected["hashed"] == 0  # hashed by the warm-up
    assert expected["untracked"] == ["untracked.txt"]
    skipped = [rel for rel, _ in expected["skipped"]]  # type: ignore[attr-defined]
    if swap:
        symlinked = sorted(f"d4/sub2/f{index:03d}.txt" for index in range(60) if (index % 7, index % 3) == (4, 2))
        assert symlinked and sorted(skipped) == symlinked
    else:
        assert skipped == symlinked
    if mode == "failing-child":
        assert started and all(started) and set(answered) == {None}  # type: ignore[arg-type]
    elif tree == "folder-swapped":  # the child of the walk was dropped, a second one took half of the paths
        assert started == [True, True] and answered[-1] > 20  # type: ignore[index,operator]
    else:
        # the child checked the paths after the walk's share (workspace.walk_share), the parent the rest
        assert started == [True] and answered[0] > 30  # type: ignore[index,operator]


@linux_only
def test_the_probe_reaps_its_child_when_not_asked(tmp_path: Path) -> None:
    for index in range(20):
        (tmp_path / f"f{index}").write_text(str(index))
    rels = [f"f{index}" for index in range(20)]
    probe = StatProbe.start(rels, f"{tmp_path}/", {}, {})
    assert probe is not None
    modes = probe.collect()
    assert modes is not None and list(modes) == [ASK_AGAIN] * 20  # nothing cached: ask again
    with pytest.raises(ChildProcessError):
        os.waitpid(probe.pid, os.WNOHANG)  # already reaped


@linux_only
def test_the_child_works_from_the_project_folder_and_answers_as_the_parent_would(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    rels = [f"sub/f{index}" for index in range(10)] + ["top.txt", "sub/uncached"]
    for rel in rels:
        (tmp_path / rel).write_text(rel)
    entries = {rel: _entry(tmp_path / rel) for rel in rels[:-1]}
    here = os.getcwd()
    probe = StatProbe.start(rels, f"{tmp_path}/", entries, {"sub"})
    assert probe is not None
    answered = probe.collect()
    assert answered is not None
    assert list(answered) == list(cache_hit_modes(rels, f"{tmp_path}/", entries, {"sub"}))
    assert list(answered).count(ASK_AGAIN) == 1  # only the uncached file
    assert os.getcwd() == here  # the child's chdir is its own


def test_the_walk_share_balances_the_parent_and_the_child() -> None:
    """The parent's share grows with the files per folder: its walk of the cached folders runs beside the
    child's checks, so the more folders, the fewer files it takes on; never more than half."""
    assert walk_share(10_002, 6_916) == 1_398  # the workspace bench's tree
    assert walk_share(10_000, 100) == 4_485
    assert walk_share(4_000, 4_000) == 0  # the walk alone takes as long as the child's checks
    assert walk_share(5_000, 0) == 2_265 and walk_share(0, 0) == 0
    assert all(walk_share(paths, 10) <= paths // 2 for paths in range(0, 300, 7))
