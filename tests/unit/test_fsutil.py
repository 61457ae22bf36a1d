"""core/fsutil.py: atomic writes and the project lock."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelops_bundle.core import fsutil
from modelops_bundle.core.errors import BundleError, LockedError, UsageError
from modelops_bundle.core.fsutil import atomic_write_bytes, atomic_write_text, describe_os_error, exclusive_lock


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_creates_and_replaces_without_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write_bytes(target, b"one")
    assert target.read_bytes() == b"one"
    atomic_write_text(target, "two ✓")
    assert target.read_text(encoding="utf-8") == "two ✓"
    assert _leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_atomic_write_keeps_the_inode_semantics_of_a_rename(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    reader = open(target, "rb")  # noqa: SIM115 - an open reader keeps seeing the old file
    try:
        atomic_write_bytes(target, b"new")
        assert reader.read() == b"old"
    finally:
        reader.close()
    assert target.read_bytes() == b"new"


def test_failed_write_leaves_old_content_and_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "tracked.txt"
    target.write_bytes(b"a.txt\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil.os, "fsync", broken_fsync)
    with pytest.raises(BundleError, match="no space left on device"):
        atomic_write_bytes(target, b"b.txt\n")
    monkeypatch.undo()
    assert target.read_bytes() == b"a.txt\n"
    assert _leftovers(tmp_path) == []


def test_interrupted_write_leaves_old_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fsutil.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_write_onto_a_folder_fails_cleanly(tmp_path: Path) -> None:
    target = tmp_path / "folder"
    target.mkdir()
    (target / "inside").write_text("keep")
    with pytest.raises(BundleError, match=f"cannot write {target}"):
        atomic_write_bytes(target, b"x")
    assert (target / "inside").read_text() == "keep"
    assert _leftovers(tmp_path) == []


def test_write_into_a_missing_folder_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "f"
    with pytest.raises(BundleError, match=r"cannot write .*missing/f"):
        atomic_write_bytes(target, b"x")


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.EACCES, "permission denied"), (errno.EROFS, "read-only file system"), (errno.ENOSPC, "no space left")],
)
def test_describe_os_error_in_words(code: int, words: str) -> None:
    message = describe_os_error("write", "/p/f", OSError(code, os.strerror(code)))
    assert message.startswith("cannot write /p/f: ")
    assert words in message


def test_second_non_waiting_lock_raises(tmp_path: Path) -> None:
    lock_path = tmp_path / "lock"
    with (
        exclusive_lock(lock_path),
        pytest.raises(LockedError, match="another modelops-bundle command"),
        exclusive_lock(lock_path, wait=False),
    ):
        pytest.fail("the second lock must not be granted")
    with exclusive_lock(lock_path, wait=False):  # released at the end of the first block
        pass


def test_lock_held_on_another_descriptor_blocks(tmp_path: Path) -> None:
    lock_path = tmp_path / "lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(LockedError), exclusive_lock(lock_path, wait=False):
            pass
    finally:
        os.close(fd)


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    lock_path = tmp_path / "lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(lock_path)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\nsys.stdin.readline()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError), exclusive_lock(lock_path, wait=False):
            pass
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    # the lock dies with the process: no stale lock
    with exclusive_lock(lock_path, wait=False):
        pass


def test_waiting_lock_waits_for_the_holder(tmp_path: Path) -> None:
    lock_path = tmp_path / "lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, time\n"
            f"fd = os.open({str(lock_path)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(0.4)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with exclusive_lock(lock_path):
            waited = time.monotonic() - started
            assert holder.poll() is not None or waited > 0.1
    finally:
        holder.wait(timeout=10)
    assert waited > 0.1


def test_lock_in_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot lock the project"), exclusive_lock(tmp_path / "no" / "lock"):
        pass


def test_temp_files_are_new_private_and_uniquely_named(tmp_path: Path) -> None:
    from modelops_bundle.core.fsutil import create_temp_file

    made = []
    for _ in range(50):
        fd, name = create_temp_file(tmp_path, ".state.json.", ".tmp")
        os.write(fd, b"x")
        os.close(fd)
        made.append(name)
    assert len(set(made)) == 50
    for name in made:
        path = Path(name)
        assert path.parent == tmp_path and path.name.startswith(".state.json.") and path.name.endswith(".tmp")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b"x"
