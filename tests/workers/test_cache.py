"""The cache under damage: corrupted objects and trees, a worker killed mid-download, a full disk,
``verify --cache`` and ``gc``."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelops_bundle import api
from modelops_bundle.core.cache import BundleCache
from modelops_bundle.core.errors import BundleError
from modelops_bundle.testing import run_command
from tests.bundle.conftest import ok
from tests.workers.conftest import Pushed


def _object_of(cache: BundleCache, tree: Path, rel: str) -> Path:
    st = os.stat(tree / rel)
    for path, _digest in cache._all_objects():
        if os.stat(path).st_ino == st.st_ino:
            return path
    raise AssertionError(f"{rel} is not linked to an object")


def test_corrupted_object_and_tree_are_detected_and_refetched(layout_bundle: Pushed) -> None:
    tree = api.materialize(layout_bundle.ref, environ=layout_bundle.env)
    cache = api.open_cache(environ=layout_bundle.env)
    original = (tree / "models/seir.py").read_bytes()
    obj = _object_of(cache, tree, "models/seir.py")
    with open(obj, "r+b") as handle:  # root writes through read-only modes: the mtime signature catches it
        handle.write(b"import os; os.system('rm -rf /')  # corrupted\n")
    report = api.materialize_report(layout_bundle.ref, environ=layout_bundle.env)
    assert not report.from_cache and report.stats["repaired_objects"] == 1
    assert (tree / "models/seir.py").read_bytes() == original
    assert cache.verify_object(_object_of(cache, tree, "models/seir.py"), "sha256:" + _sha(original))
    (tree / "data/demographics.csv").unlink()  # a worker deleted a file of its tree
    again = api.materialize_report(layout_bundle.digest, environ=layout_bundle.env)
    assert not again.from_cache and (tree / "data/demographics.csv").exists()


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_verify_cache_finds_corruption_that_keeps_size_and_mtime(layout_bundle: Pushed) -> None:
    tree = api.materialize(layout_bundle.ref, environ=layout_bundle.env)
    cache = api.open_cache(environ=layout_bundle.env)
    obj = _object_of(cache, tree, "data/demographics.csv")
    before = os.stat(obj)
    data = bytearray(obj.read_bytes())
    data[0] ^= 0xFF
    with open(obj, "r+b") as handle:
        handle.write(bytes(data))
    os.utime(obj, ns=(before.st_atime_ns, before.st_mtime_ns))  # a sly corruption: size and mtime kept
    clean = ok(layout_bundle.project.run("verify", "--json"))
    assert clean["ok"]
    result = layout_bundle.project.run("verify", "--cache", "--json", input_env=layout_bundle.env)
    assert result.exit_code == 1
    kinds = {finding["kind"] for finding in result.json()["findings"]}
    assert kinds == {"corrupt-object", "damaged-tree"}
    fixed = api.materialize_report(layout_bundle.ref, environ=layout_bundle.env)
    assert fixed.stats["fetched_objects"] >= 1
    assert ok(layout_bundle.project.run("verify", "--cache", "--json", input_env=layout_bundle.env))["ok"]


def test_verify_worktree_reports_modified_and_missing(layout_bundle: Pushed) -> None:
    project = layout_bundle.project
    project.write("models/numerics.py", "# changed\n")
    (project.root / "data/contact_patterns.csv").unlink()
    result = project.run("verify", "--json")
    assert result.exit_code == 1
    found = {(f["kind"], f["path"]) for f in result.json()["findings"]}
    assert found == {("modified", "models/numerics.py"), ("missing", "data/contact_patterns.csv")}
    text = project.run("verify")
    assert text.exit_code == 1 and "modified: models/numerics.py" in text.stdout


KILLED_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from modelops_bundle import api
    from modelops_bundle.core import materialize as m

    real = m.Materializer._fetch

    def stalled(self, version, entries):
        with self.cache.staging() as staging:
            (staging / "partial").write_bytes(b"half a download")
            Path(sys.argv[1]).write_text("stalled")
            time.sleep(600)  # killed here, holding the version lock and its staging folder

    m.Materializer._fetch = stalled
    api.materialize(sys.argv[2])
    """
)


def test_worker_killed_mid_download_leaves_no_marker_and_the_next_one_finishes(
    layout_bundle: Pushed, tmp_path: Path
) -> None:
    sentinel = tmp_path / "stalled"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, str(sentinel), layout_bundle.ref],
        env=layout_bundle.env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not sentinel.exists():
            assert child.poll() is None, "the child exited early"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cache = api.open_cache(environ=layout_bundle.env)
        assert list((cache.root / "tmp").iterdir())  # its staging folder
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert not list((cache.root / "trees").rglob("*.complete"))
    report = api.materialize_report(layout_bundle.ref, environ=layout_bundle.env)
    assert not report.from_cache and report.stats["fetched_objects"] == report.files
    assert [p.name for p in (cache.root / "tmp").iterdir()] == []  # the dead one's staging was removed
    assert ok(layout_bundle.project.run("verify", "--cache", "--json", input_env=layout_bundle.env))["ok"]


def test_full_disk_is_a_clear_error_and_leaves_no_corrupt_cache(
    layout_bundle: Pushed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC is simulated in-process (no tmpfs or loop device without privileges): the registry
    backend's verified writer fails after writing part of a blob, as a full disk would."""
    import modelops_bundle.plugins.registry_layout as layout

    real = layout.write_verified
    calls = {"n": 0}

    def full_disk(chunks, destination, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 2:
            destination.with_name(destination.name + ".partial-junk").write_bytes(b"x" * 10)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(chunks, destination, *args, **kwargs)

    monkeypatch.setattr(layout, "write_verified", full_disk)
    with pytest.raises(BundleError, match="no space left on device"):
        api.materialize(layout_bundle.ref, environ=layout_bundle.env)
    cache = api.open_cache(environ=layout_bundle.env)
    assert not list((cache.root / "trees").rglob("*.complete"))
    assert [p.name for p in (cache.root / "tmp").iterdir()] == []
    assert ok(layout_bundle.project.run("verify", "--cache", "--json", input_env=layout_bundle.env))["ok"]
    monkeypatch.setattr(layout, "write_verified", real)
    assert api.materialize_report(layout_bundle.ref, environ=layout_bundle.env).files > 0


def test_gc_keeps_pinned_recent_and_synced_and_reports_bytes(layout_bundle: Pushed, tmp_path: Path) -> None:
    env = layout_bundle.env
    project = layout_bundle.project
    api.materialize(layout_bundle.ref, environ=env)
    project.write("models/more.py", "X = 2\n")
    ok(project.run("add", "models/more.py", "--json"))
    second = ok(project.run("push", "--tag", "v2", "--json"))["digest"]
    api.materialize(f"seir@{second}", environ=env)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    recent = run_command(["-C", str(outside), "gc", "--json"], env)
    assert recent.exit_code == 0 and recent.json()["removed_versions"] == []  # both used just now
    dry = run_command(["-C", str(outside), "gc", "--keep-days", "0", "--dry-run", "--json"], env).json()
    assert sorted(dry["removed_versions"]) == sorted([layout_bundle.digest, second]) and dry["freed_bytes"] > 2**21
    assert api.materialize_report(layout_bundle.digest, environ=env).from_cache  # dry run removed nothing
    api.pin(layout_bundle.digest, environ=env)
    done = run_command(["-C", str(outside), "gc", "--keep-days", "0", "--json"], env).json()
    assert done["removed_versions"] == [second] and done["freed_bytes"] > 0
    # only objects unique to the second version went: the pinned tree is intact and verified
    assert api.materialize_report(layout_bundle.digest, environ=env).from_cache
    assert api.unpin(layout_bundle.digest, environ=env)
    api.materialize(f"seir@{second}", environ=env)
    in_project = ok(project.run("gc", "--keep-days", "0", "--json", input_env=env))
    assert in_project["removed_versions"] == [layout_bundle.digest]  # the project's last push is kept
    assert in_project["kept_versions"] == [second]
    final = run_command(["-C", str(outside), "gc", "--keep-days", "0", "--json"], env).json()
    assert final["removed_versions"] == [second]
    cache = api.open_cache(environ=env)
    assert list(cache._all_objects()) == []
