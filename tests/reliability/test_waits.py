"""Bounded waits and honest retries (issue 16, item 3), through the fault proxy in front of the real registry:
a black-holed registry (``status`` gives up at its time limit and says so; ``push`` fails in seconds), a
registry that throttles with ``Retry-After`` (honoured, reported once, each retry in ``-v``), and
transfers that stall half-way (given up after the read timeout, not minutes). Also the broken docker
``config.json`` files of issue 15 item 16, which must stop a command with exit 2 naming the file."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle import hookimpl
from modelops_bundle.plugins.registry_layout import OciLayoutRegistry
from modelops_bundle.testing import BundleProject
from tests.oci.registries import FaultProxy, RunningRegistry
from tests.reliability.conftest import Trial
from tests.reliability.support import failed_cleanly, fill, new_project, ok, tree_files, write_env

#: Registry settings for the stall tests: a silence of 1.5 s fails an attempt; 6 s without progress
#: fails a request or transfer (the legacy ``timeout`` key of FAST_REGISTRY is replaced).
QUICK = {"read_timeout": 1.5, "connect_timeout": 2, "deadline": 6}


@pytest.fixture
def proxy(reliability_registry: RunningRegistry) -> Iterator[FaultProxy]:
    started = FaultProxy(reliability_registry.port, stall_seconds=60).start()
    yield started
    started.stop()


def _black_hole(proxy: FaultProxy) -> None:
    """Every request is read and never answered (the connection stays open): a hung registry."""
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        proxy.inject(method, ".", "stall", 10_000)


def _env_file(environ: dict[str, str], name: str, host: str, **registry: Any) -> None:
    """An environment with the *default* timeouts (``write_env`` always shortens them)."""
    folder = Path(environ["MODELOPS_HOME"]) / "bundle-env"
    folder.mkdir(parents=True, exist_ok=True)
    extra = "".join(f"  {key}: {value}\n" for key, value in registry.items())
    (folder / f"{name}.yaml").write_text(
        f"environment: {name}\nregistry:\n  provider: docker\n  login_server: {host}\n{extra}"
    )


def _project(mops_env: dict[str, str], tmp_path: Path, env_name: str, seed: int = 1) -> tuple[BundleProject, str]:
    name = f"waits-{uuid.uuid4().hex[:10]}"
    project = new_project(mops_env, tmp_path / name, env_name)
    fill(project, seed, small=6, large=1)
    ok(project.run("add", ".", "--json"))
    return project, name


# ------------------------------------------------------------------------------------ black hole


def test_status_gives_up_on_a_black_holed_registry_at_its_limit(
    mops_env: dict[str, str], tmp_path: Path, proxy: FaultProxy, trial: Trial
) -> None:
    _env_file(mops_env, "hole", proxy.host)
    project, _ = _project(mops_env, tmp_path, "hole")
    _black_hole(proxy)

    started = time.monotonic()
    result = project.run("status")
    default_seconds = time.monotonic() - started
    assert result.exit_code == 0, result
    assert re.search(
        r"Remote: unknown \(no answer from registry 127\.0\.0\.1:\d+ \(plain HTTP\) within 8 s "
        r"\(MOPS_STATUS_TIMEOUT\)\)",
        result.stdout,
    ), result.stdout
    assert 7.5 <= default_seconds < 12, default_seconds  # the default limit, with a generous margin

    started = time.monotonic()
    short = project.run("status", "--json", input_env={"MOPS_STATUS_TIMEOUT": "2"})
    short_seconds = time.monotonic() - started
    remote = short.json()["remote"]
    assert remote["state"] == "unknown" and "within 2 s (MOPS_STATUS_TIMEOUT)" in remote["error"]
    assert short_seconds < 5, short_seconds
    trial.record(
        "faults",
        "status against a black-holed registry (every request read, never answered)",
        "default limit and MOPS_STATUS_TIMEOUT=2",
        f"exit 0, 'Remote: unknown (no answer ... within 8 s (MOPS_STATUS_TIMEOUT))' after "
        f"{default_seconds:.1f} s; {short_seconds:.1f} s with the 2 s limit",
    )


def test_status_as_a_process_on_a_terminal_spins_and_returns_in_time(
    mops_env: dict[str, str], tmp_path: Path, proxy: FaultProxy, trial: Trial
) -> None:
    """The real executable on a pseudo-terminal: a spinner while it waits, then the answer, and the process
    ends at the limit (its waiting thread does not hold it)."""
    _env_file(mops_env, "hole", proxy.host)
    project, _ = _project(mops_env, tmp_path, "hole")
    _black_hole(proxy)
    mops = Path(sys.executable).parent / "mops"
    env = {**mops_env, "MOPS_STATUS_TIMEOUT": "3", "TERM": "xterm", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    leader, follower = pty.openpty()
    started = time.monotonic()
    process = subprocess.Popen(
        [str(mops), "bundle", "status"],
        cwd=project.root,
        env=env,
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    output = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 20)
            if not ready:
                break
            try:
                piece = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not piece:
                break
            output += piece
        process.wait(timeout=20)
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
    seconds = time.monotonic() - started
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0, text
    assert re.search(r"Asking registry 127\.0\.0\.1:\d+ \(plain HTTP\), up to 3 s", text), text  # the spinner
    assert "within 3 s (MOPS_STATUS_TIMEOUT)" in text, text
    assert seconds < 7, seconds
    trial.record(
        "faults",
        "`mops bundle status` process on a terminal, black-holed registry, MOPS_STATUS_TIMEOUT=3",
        "1 run",
        f"spinner while waiting; exit 0 after {seconds:.1f} s (start-up and hashing included)",
    )


class _HangingRegistry(OciLayoutRegistry):
    """A third-party backend that ignores every time limit (as a DNS lookup that hangs would)."""

    name = "hanging"

    def resolve(self, repository: str, reference: str) -> str | None:
        time.sleep(30)
        return None


class _HangingPlugin:
    @hookimpl
    def mops_registry_backends(self) -> list[type]:
        return [_HangingRegistry]


def test_status_does_not_wait_for_a_backend_that_ignores_limits(
    mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    folder = Path(mops_env["MODELOPS_HOME"]) / "bundle-env"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hang.yaml").write_text(
        f"environment: hang\nregistry:\n  provider: hanging\n  path: {tmp_path / 'layout'}\n"
    )
    project = BundleProject.create(tmp_path / "proj", mops_env, "--env", "hang")
    project.extra_plugins.append(("hanging-backend", _HangingPlugin()))
    started = time.monotonic()
    result = project.run("status", "--json", input_env={"MOPS_STATUS_TIMEOUT": "1.5"})
    seconds = time.monotonic() - started
    remote = result.json()["remote"]
    assert remote["state"] == "unknown" and "within 1.5 s (MOPS_STATUS_TIMEOUT)" in remote["error"], remote
    assert seconds < 5, seconds
    trial.record(
        "faults",
        "status with a plugin's registry backend that hangs 30 s and honours no limit",
        "MOPS_STATUS_TIMEOUT=1.5",
        f"'unknown (no answer ... within 1.5 s)' after {seconds:.1f} s",
    )


def test_push_and_pull_fail_fast_on_a_black_holed_registry(
    mops_env: dict[str, str], tmp_path: Path, proxy: FaultProxy, trial: Trial
) -> None:
    """The first request (the connection check, ``GET /v2/``) waits only the connect timeout for an
    answer, twice: a hung registry fails a command in seconds even with a long read timeout."""
    write_env(mops_env, "hole", proxy.host, registry={**QUICK, "connect_timeout": 1, "read_timeout": 20})
    project, _ = _project(mops_env, tmp_path, "hole")
    _black_hole(proxy)
    for command in (("push",), ("pull",)):
        started = time.monotonic()
        stderr = failed_cleanly(project.run(*command), "no data moved for 1 s", "(2 attempts)")
        seconds = time.monotonic() - started
        assert "registry.connect_timeout or MOPS_REGISTRY_CONNECT_TIMEOUT" in stderr
        assert seconds < 5, (command, seconds, stderr)
        trial.record(
            "faults",
            f"{command[0]} against a black-holed registry (connect timeout 1 s, read timeout 20 s)",
            "1 run",
            f"exit 1 after {seconds:.1f} s naming the connect timeout (the connection check: 2 attempts)",
        )


# ------------------------------------------------------------------------------------ throttling


def test_throttling_is_honoured_reported_once_and_logged_with_v(
    mops_env: dict[str, str], tmp_path: Path, proxy: FaultProxy, reliability_registry: RunningRegistry, trial: Trial
) -> None:
    write_env(mops_env, "busy", proxy.host)
    project, _ = _project(mops_env, tmp_path, "busy")
    proxy.clear()
    proxy.inject("HEAD", r"/blobs/sha256:", "429@1", 2)
    proxy.inject("PUT", r"/manifests/", "503@1", 1)
    started = time.monotonic()
    result = project.run("push", "--json")
    seconds = time.monotonic() - started
    assert result.exit_code == 0, result
    # at least 1 s for the blob checks (they run concurrently, their waits may overlap) and 1 s before
    # the manifest is stored again
    assert seconds >= 2.0, seconds
    warnings = [line for line in result.stderr.splitlines() if "is throttling requests" in line]
    assert len(warnings) == 1, result.stderr
    assert re.match(
        r"warning: registry 127\.0\.0\.1:\d+ \(plain HTTP\) is throttling requests \(HTTP 429\); "
        r"waiting 1 s as it asks \(Retry-After\), then retrying",
        warnings[0],
    ), warnings
    assert "info:" not in result.stderr  # retries themselves only with -v

    project.write("data/more.txt", "more\n")
    ok(project.run("add", ".", "--json"))
    proxy.clear()
    proxy.inject("HEAD", r"/blobs/sha256:", "429@0", 2)
    proxy.inject("GET", r"/manifests/", "503", 1)
    verbose = project.run("push", "-v")
    assert verbose.exit_code == 0, verbose
    retries = [line for line in verbose.stderr.splitlines() if line.startswith("info: retrying")]
    assert len(retries) == 3, verbose.stderr
    assert sum("HTTP 429" in line for line in retries) == 2 and sum("HTTP 503" in line for line in retries) == 1
    assert all(re.search(r"in \d+\.\d s \(attempt [23] of 4\): HTTP", line) for line in retries), retries
    trial.record(
        "faults",
        "registry throttling: HEAD blob answered `429` with Retry-After 1 (2x), manifest PUT `503` Retry-After 1",
        "1 push, then 3 throttled requests with -v",
        f"waited as asked (push took {seconds:.1f} s), push succeeded; one 'is throttling' warning; "
        "-v logged each retry",
    )


def test_v_logs_retries_and_mops_debug_adds_their_tracebacks(
    mops_env: dict[str, str], tmp_path: Path, proxy: FaultProxy
) -> None:
    write_env(mops_env, "flaky", proxy.host)
    project, name = _project(mops_env, tmp_path, "flaky")
    ok(project.run("push", "--json"))
    clone = new_project(mops_env, tmp_path / "clone", "flaky", ref=name)
    for flags, env, traceback in ((("-v",), {}, False), ((), {"MOPS_DEBUG": "1"}, True)):
        proxy.clear()
        proxy.inject("GET", r"/manifests/", "drop", 1)
        result = clone.run("pull", "--dry-run", *flags, input_env=env)
        assert result.exit_code == 0, result
        retries = [line for line in result.stderr.splitlines() if line.startswith("info: retrying GET")]
        assert len(retries) == 1 and "the connection was dropped" in retries[0], result.stderr
        assert ("Traceback (most recent call last)" in result.stderr) is traceback, result.stderr
    proxy.clear()
    proxy.inject("GET", r"/manifests/", "drop", 1)
    quiet = clone.run("pull", "--dry-run")
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet  # without -v a retry that worked is silent


def test_throttling_beyond_the_deadline_fails_at_once(
    mops_env: dict[str, str], tmp_path: Path, proxy: FaultProxy, trial: Trial
) -> None:
    write_env(mops_env, "busy", proxy.host, registry=QUICK)
    project, _ = _project(mops_env, tmp_path, "busy")
    proxy.clear()
    proxy.inject("POST", r"/blobs/uploads/", "429@3600", 10_000)
    started = time.monotonic()
    stderr = failed_cleanly(project.run("push"), "HTTP 429", "it asked to wait 3600 s")
    seconds = time.monotonic() - started
    assert seconds < 5, (seconds, stderr)
    trial.record(
        "faults",
        "registry answers `429` with Retry-After 3600 to every upload",
        "every attempt",
        f"exit 1 after {seconds:.1f} s: the wait is beyond the deadline (6 s), said so",
    )


# ------------------------------------------------------------------------------ stalled transfers


def test_a_transfer_that_stalls_half_way(
    mops_env: dict[str, str], tmp_path: Path, proxy: FaultProxy, reliability_registry: RunningRegistry, trial: Trial
) -> None:
    proxy.stall_seconds = 30  # far longer than the read timeout: only the client's own limit ends a stall
    write_env(mops_env, "stally", proxy.host, registry=QUICK)
    project, name = _project(mops_env, tmp_path, "stally", seed=5)

    proxy.clear()
    proxy.inject("PUT", r"/blobs/uploads/", "stall-upload", 1)
    started = time.monotonic()
    ok(project.run("push", "--json"))
    once = time.monotonic() - started
    assert once < 8, once

    clone = new_project(mops_env, tmp_path / "clone", "stally", ref=name)
    proxy.clear()
    proxy.inject("GET", r"/blobs/sha256:", "stall-half", 1)
    started = time.monotonic()
    ok(clone.run("pull", "--json"))
    pulled_once = time.monotonic() - started
    assert tree_files(clone.root) == tree_files(project.root)
    assert pulled_once < 8, pulled_once

    project.write("big/blob0.bin", os.urandom(1_200_000))
    ok(project.run("add", ".", "--json"))
    proxy.clear()
    proxy.inject("PUT", r"/blobs/uploads/", "stall-upload", 10_000)
    started = time.monotonic()
    stderr = failed_cleanly(project.run("push"), "upload of", "no data moved for 1.5 s")
    push_failed = time.monotonic() - started
    assert push_failed < 20, (push_failed, stderr)

    proxy.clear()
    ok(project.run("push", "--json"))
    before = tree_files(clone.root)
    proxy.inject("GET", r"/blobs/sha256:", "stall-half", 10_000)
    started = time.monotonic()
    stderr = failed_cleanly(clone.run("pull"), "no data moved for 1.5 s")
    pull_failed = time.monotonic() - started
    assert tree_files(clone.root) == before
    assert pull_failed < 20, (pull_failed, stderr)
    trial.record(
        "faults",
        "transfers that stall half-way (upload: half the body read, then silence; download: half the body "
        "sent, then silence), read timeout 1.5 s",
        "once, then always",
        f"once: retried, push {once:.1f} s / pull {pulled_once:.1f} s; always: exit 1 after "
        f"{push_failed:.1f} s (push) / {pull_failed:.1f} s (pull) naming the read timeout, tree unchanged",
    )


def test_timeout_settings_are_validated(mops_env: dict[str, str], tmp_path: Path, proxy: FaultProxy) -> None:
    write_env(mops_env, "odd", proxy.host, registry={"read_timeout": -1})
    project, _ = _project(mops_env, tmp_path, "odd")
    failed_cleanly(project.run("push"), "registry.read_timeout must be a number of seconds", code=2)
    failed_cleanly(project.run("status", input_env={"MOPS_STATUS_TIMEOUT": "soon"}), "MOPS_STATUS_TIMEOUT", code=2)
    # the variable wins over the environment file
    assert ok(project.run("push", "--json", input_env={"MOPS_REGISTRY_READ_TIMEOUT": "20"}))["digest"]


# ------------------------------------------------------------------------- broken docker config.json


def test_broken_docker_config_is_exit_2_naming_the_file(
    mops_env: dict[str, str], tmp_path: Path, reliability_registry: RunningRegistry, trial: Trial
) -> None:
    """Issue 15, item 16: these were silently ignored ("no credentials were found", exit 1)."""
    write_env(mops_env, "plain", reliability_registry.host)
    project, _ = _project(mops_env, tmp_path, "plain")
    ok(project.run("push", "--json"))
    docker = tmp_path / "docker"
    config = docker / "config.json"
    no_colon = base64.b64encode(b"just-a-user-name").decode()
    cases = {
        "auths is a list": lambda: config.write_text(json.dumps({"auths": []})),
        "config.json is a folder": lambda: config.mkdir(),
        "an auths entry without a colon": lambda: config.write_text(
            json.dumps({"auths": {"elsewhere.example.com": {"auth": no_colon}}})
        ),
        "credHelpers is a string": lambda: config.write_text(json.dumps({"credHelpers": "pass"})),
    }
    for label, make in cases.items():
        docker.mkdir(exist_ok=True)
        make()
        for command in (("push", "--tag", "other"), ("pull",)):
            stderr = failed_cleanly(project.run(*command, input_env={"DOCKER_CONFIG": str(docker)}), code=2)
            assert str(config) in stderr, (label, stderr)
        if config.is_dir():
            config.rmdir()
        else:
            config.unlink()
    trial.record(
        "hostile input",
        "docker config.json: `auths` a list, the file a folder, an `auth` value without a colon, "
        "`credHelpers` a string",
        f"{len(cases) * 2} runs (push, pull)",
        "exit 2 naming the file; no traceback",
    )
