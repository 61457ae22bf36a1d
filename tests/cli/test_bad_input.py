"""Bad input: broken state files, read-only projects, concurrent commands, tracebacks only on request."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle import hookimpl
from modelops_bundle.core import fsutil
from modelops_bundle.core.commands import Command, CommandRegistry
from modelops_bundle.testing import BundleProject, CliRunner

BIN = Path(sys.executable).parent


@pytest.fixture
def project(bundle_project: BundleProject, age: Callable[..., None]) -> BundleProject:
    age(bundle_project.write("a.txt", "a"), bundle_project.write("b.txt", "b"))
    assert bundle_project.run("add", "a.txt").ok
    return bundle_project


CONFIG_GARBAGE = [
    ("registry_ref: x\nstorage:\n  mode: [\n", "line 4"),  # YAML syntax
    ("registry_ref: x\nstorage:\n  mode: sometimes\n", "line 3"),  # schema
    ("registry_ref: x\nregistry_reff: y\n", "line 2"),  # typo'd key
]


@pytest.mark.parametrize(("garbage", "line"), CONFIG_GARBAGE)
@pytest.mark.parametrize("command", [("status",), ("add", "b.txt"), ("status", "--json")])
def test_broken_config(project: BundleProject, garbage: str, line: str, command: tuple[str, ...]) -> None:
    config = project.meta / "config.yaml"
    config.write_text(garbage)
    tracked_before = (project.meta / "tracked.txt").read_bytes()
    result = project.run(*command)
    assert result.exit_code == 2
    assert str(config) in result.stderr
    assert line in result.stderr
    assert "Traceback" not in result.stderr
    assert config.read_text() == garbage
    assert (project.meta / "tracked.txt").read_bytes() == tracked_before


@pytest.mark.parametrize(
    "command", [("status",), ("add", "b.txt"), ("remove", "a.txt"), ("status", "--untracked-only")]
)
def test_broken_tracked_list(project: BundleProject, command: tuple[str, ...]) -> None:
    tracked = project.meta / "tracked.txt"
    garbage = b"a.txt\n../../etc/passwd\n"
    tracked.write_bytes(garbage)
    result = project.run(*command)
    assert result.exit_code == 2
    assert f"{tracked}, line 2" in result.stderr
    assert "Traceback" not in result.stderr
    assert tracked.read_bytes() == garbage


def test_binary_garbage_in_the_tracked_list(project: BundleProject) -> None:
    tracked = project.meta / "tracked.txt"
    tracked.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    result = project.run("add", "b.txt")
    assert result.exit_code == 2
    assert "tracked.txt" in result.stderr
    assert tracked.read_bytes() == b"\x89PNG\r\n\x1a\n\x00\x00"


@pytest.mark.parametrize(
    ("garbage", "expected"),
    [('{\n  "last_push_digest": oops\n}\n', "line 2"), ('{"last_synced_files": []}', "last_synced_files")],
)
def test_broken_state(project: BundleProject, garbage: str, expected: str) -> None:
    state = project.meta / "state.json"
    state.write_text(garbage)
    result = project.run("status")
    assert result.exit_code == 2
    assert str(state) in result.stderr and expected in result.stderr
    assert state.read_text() == garbage


def test_broken_environment_pin(project: BundleProject) -> None:
    (project.meta / "env").write_text("no spaces allowed\n")
    result = project.run("status")
    assert result.exit_code == 2
    assert "env: invalid environment name" in result.stderr


def test_traceback_only_with_verbose_or_debug(project: BundleProject) -> None:
    (project.meta / "config.yaml").write_text("registry_ref: [\n")
    plain = project.run("status")
    assert plain.exit_code == 2 and "Traceback" not in plain.stderr
    for result in (
        project.run("status", "-v"),
        project.run("-v", "status"),
        project.run("status", input_env={"MOPS_DEBUG": "1"}),
    ):
        assert result.exit_code == 2
        assert "Traceback (most recent call last)" in result.stderr
        assert "config.yaml" in result.stderr


class _Crashing:
    @hookimpl
    def mops_add_commands(self, registry: CommandRegistry) -> None:
        registry.add(Command(name="crash", help="a bug", run=self.crash))

    def crash(self, ctx: Any, args: Any) -> int:
        raise RuntimeError("a bug in a command")


def test_unexpected_error_is_exit_1_with_a_hint(project: BundleProject) -> None:
    project.extra_plugins.append(("crashing", _Crashing()))
    result = project.run("crash")
    assert result.exit_code == 1
    assert "unexpected error: RuntimeError: a bug in a command" in result.stderr
    assert "-v" in result.stderr and "Traceback" not in result.stderr
    verbose = project.run("crash", "-v")
    assert verbose.exit_code == 1 and "Traceback (most recent call last)" in verbose.stderr


def test_json_errors_are_json(project: BundleProject) -> None:
    result = project.run("add", "missing.txt", "--json")
    assert result.exit_code == 2
    payload = result.json()
    assert payload["ok"] is False and payload["exit_code"] == 2
    assert "missing.txt" in payload["error"]


@pytest.mark.parametrize("args", [("add",), ("status", "-j", "0"), ("status", "--no-such-option"), ("frobnicate",)])
def test_command_line_errors_exit_2(project: BundleProject, args: tuple[str, ...]) -> None:
    result = project.run(*args)
    assert result.exit_code == 2
    assert "usage:" in result.stderr


def test_glob_with_a_bracket_is_a_usage_error_not_a_crash(project: BundleProject) -> None:
    """``add '[]x]'`` (no such file, fnmatch-valid pattern) currently ends in "unexpected error" (exit 1)."""
    result = project.run("add", "[]x]")
    assert result.exit_code == 2
    assert "unexpected error" not in result.stderr


def test_corrupt_stat_cache_never_breaks_status(project: BundleProject) -> None:
    cache = project.meta / "cache" / "stat-cache.json"
    delta = project.meta / "cache" / "stat-cache.delta.json"
    assert project.run("status").ok
    (project.root / "b.txt").write_text("b")
    assert project.run("add", "b.txt").ok
    data = json.loads(cache.read_text())
    data["paths"].append("a.txt")  # the base's columns no longer fit together: the cache is dropped
    cache.write_text(json.dumps(data))
    changes = json.loads(delta.read_text())  # the second add's one file went to the delta
    changes["entries"]["b.txt"][4] = 5  # a digest of the wrong type: the delta is ignored
    delta.write_text(json.dumps(changes))
    result = project.run("status", "--json")
    assert result.exit_code == 0, result
    assert result.json()["tracked_files"] == 2
    assert result.json()["changes"]["added"] == ["a.txt", "b.txt"]


def test_a_corrupt_stat_cache_delta_alone_is_ignored(project: BundleProject) -> None:
    delta = project.meta / "cache" / "stat-cache.delta.json"
    assert project.run("status").ok
    for garbage in (b"{not json", b"[]", json.dumps({"version": 3, "base": "other", "entries": {}}).encode()):
        delta.write_bytes(garbage)
        result = project.run("status", "--json")
        assert result.exit_code == 0, result
        assert result.json()["tracked_files"] == 1


def test_garbage_stat_cache_is_rebuilt(project: BundleProject) -> None:
    cache = project.meta / "cache" / "stat-cache.json"
    cache.parent.mkdir(exist_ok=True)
    cache.write_bytes(b"\x00\x01 not json")
    assert project.run("status").ok
    assert json.loads(cache.read_text())["algorithm"] == "sha256"


# --------------------------------------------------------------------------- read-only and disk full


class _OsProxy:
    """``os`` as fsutil sees it, with writes below ``root`` failing with ``code``."""

    def __init__(self, root: Path, code: int) -> None:
        self.root = str(root)
        self.code = code

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def open(self, path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith(self.root) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(self.code, os.strerror(self.code), str(path))
        return os.open(path, flags, *args, **kwargs)


def _failing_mkstemp(monkeypatch: pytest.MonkeyPatch, root: Path, code: int) -> None:
    """Temp files below ``root`` cannot be created (every atomic write makes one with ``create_temp_file``)."""
    original = fsutil.create_temp_file

    def create_temp_file(directory: Path, prefix: str, suffix: str) -> tuple[int, str]:
        if str(directory).startswith(str(root)):
            raise OSError(code, os.strerror(code))
        return original(directory, prefix, suffix)

    monkeypatch.setattr(fsutil, "create_temp_file", create_temp_file)


def test_read_only_project(
    project: BundleProject, monkeypatch: pytest.MonkeyPatch, snapshot: Callable[..., Any]
) -> None:
    monkeypatch.setattr(fsutil, "os", _OsProxy(project.root, errno.EROFS))
    _failing_mkstemp(monkeypatch, project.root, errno.EROFS)
    before = snapshot(project.meta)
    for command in (("add", "b.txt"), ("remove", "a.txt"), ("remove", "--rm", "a.txt")):
        result = project.run(*command)
        assert result.exit_code == 2, (command, result)
        assert "read-only file system" in result.stderr
        assert "Traceback" not in result.stderr
    assert project.path("a.txt").exists()
    status = project.run("status", "--json")  # reading still works; the cache is best effort
    assert status.exit_code == 0, status
    assert status.json()["tracked_files"] == 1
    assert project.tracked() == ["a.txt"]
    assert {k: v for k, v in snapshot(project.meta).items() if not k.startswith("cache")} == {
        k: v for k, v in before.items() if not k.startswith("cache")
    }


def test_disk_full_while_saving_loses_nothing(project: BundleProject, monkeypatch: pytest.MonkeyPatch) -> None:
    assert project.run("status").ok  # create the lock file beforehand
    tracked = project.meta / "tracked.txt"
    before = tracked.read_bytes()
    _failing_mkstemp(monkeypatch, project.root, errno.ENOSPC)
    result = project.run("add", "b.txt")
    assert result.exit_code == 1
    assert "no space left on device" in result.stderr
    assert str(tracked) in result.stderr
    assert tracked.read_bytes() == before
    assert not [p for p in project.meta.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------- locking


def test_command_waits_for_the_project_lock(project: BundleProject) -> None:
    lock = project.meta / "lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, time\n"
            f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(0.5)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        result = project.run("add", "b.txt")
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=10)
    assert result.exit_code == 0, result
    assert waited > 0.2
    assert project.tracked() == ["a.txt", "b.txt"]


def test_concurrent_adds_lose_no_update(project: BundleProject) -> None:
    names = [f"c{index}.txt" for index in range(4)]
    for name in names:
        project.write(name, name)
    processes = [
        subprocess.Popen(
            [str(BIN / "modelops-bundle"), "-C", str(project.root), "add", name],
            env=project.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in names
    ]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    assert project.tracked() == sorted(["a.txt", *names])


def test_a_missing_folder_given_to_dash_c_is_named(run_cli: CliRunner, tmp_path: Path) -> None:
    """Found by hand: ``-C /nonexistent status`` said "not a modelops-bundle project"."""
    missing = run_cli("-C", str(tmp_path / "nowhere"), "status")
    assert missing.exit_code == 2 and f"cannot work in '{tmp_path / 'nowhere'}': no such folder" in missing.stderr
    (tmp_path / "file.txt").write_text("x")
    not_folder = run_cli("-C", str(tmp_path / "file.txt"), "status")
    assert not_folder.exit_code == 2 and "not a folder" in not_folder.stderr
    created = run_cli("-C", str(tmp_path / "new"), "init", ".")  # commands that make their folder still do
    assert created.exit_code == 0 and (tmp_path / "new" / ".modelops-bundle").is_dir()
