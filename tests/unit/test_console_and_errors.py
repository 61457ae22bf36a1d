"""The one output helper (progress only on a TTY, never with --json) and exit codes in one place."""

from __future__ import annotations

import io
import json

import pytest

from modelops_bundle.cli import console as console_module
from modelops_bundle.cli.console import Console, DelayedProgress, NullProgress, human_bytes
from modelops_bundle.core.errors import (
    AlreadyInitializedError,
    BundleError,
    ConfigError,
    ConflictError,
    ExitCode,
    IntegrityError,
    LockedError,
    NotInitializedError,
    PluginError,
    RegistryError,
    StorageError,
    UsageError,
    exit_code_for,
)


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_non_tty_output_is_plain_and_never_shows_progress() -> None:
    out = io.StringIO()
    console = Console(stdout=out, stderr=io.StringIO(), environ={})
    assert not console.interactive
    assert isinstance(console.progress("hashing"), NullProgress)
    console.line("hello", style="bold")
    assert out.getvalue() == "hello\n"


def test_tty_gets_a_delayed_progress_bar() -> None:
    console = Console(stdout=FakeTty(), stderr=io.StringIO(), environ={})
    assert console.interactive
    assert isinstance(console.progress("hashing"), DelayedProgress)


@pytest.mark.parametrize(
    ("kwargs", "environ"), [({"json_mode": True}, {}), ({"quiet": True}, {}), ({}, {"TERM": "dumb"})]
)
def test_no_progress_with_json_quiet_or_dumb_terminal(kwargs: dict[str, bool], environ: dict[str, str]) -> None:
    console = Console(stdout=FakeTty(), stderr=io.StringIO(), environ=environ, **kwargs)
    assert isinstance(console.progress("hashing"), NullProgress)


def test_progress_bar_appears_only_after_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(console_module.time, "monotonic", lambda: clock[0])
    out = FakeTty()
    console = Console(stdout=out, stderr=io.StringIO(), environ={"NO_COLOR": "1"})
    progress = console.progress("hashing")
    assert isinstance(progress, DelayedProgress)
    progress.start(10, 1000)
    progress.advance(1, 100)
    clock[0] += 0.5
    progress.advance(1, 100)
    assert progress._bar is None  # fast work never shows a bar
    clock[0] += 1.0
    progress.advance(1, 100)
    assert progress._bar is not None
    progress.close()
    assert progress._bar is None


def test_json_mode_prints_only_json() -> None:
    out = io.StringIO()
    console = Console(json_mode=True, stdout=out, stderr=io.StringIO(), environ={})
    console.line("human text")
    console.table("T", ["a"], [["1"]])
    console.emit_json({"ok": True})
    assert json.loads(out.getvalue()) == {"ok": True}


def test_errors_and_warnings_go_to_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    console = Console(quiet=True, stdout=out, stderr=err, environ={})
    console.line("hidden")
    console.warn("careful")
    console.error("broken", hint="do this")
    assert out.getvalue() == ""
    assert err.getvalue() == "warning: careful\nerror: broken\nhint: do this\n"


def test_plain_table_alignment() -> None:
    out = io.StringIO()
    Console(stdout=out, stderr=io.StringIO(), environ={}).table("Title", ["A", "Long"], [["xyz", "1"], ["q", "22"]])
    assert out.getvalue().splitlines() == ["Title", "A    Long", "xyz  1", "q    22"]


@pytest.mark.parametrize(("count", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (5 * 1024**3, "5.0 GiB")])
def test_human_bytes(count: int, text: str) -> None:
    assert human_bytes(count) == text


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BundleError("x"), ExitCode.FAILED),
        (UsageError("x"), ExitCode.USAGE),
        (ConfigError("x"), ExitCode.USAGE),
        (NotInitializedError("x"), ExitCode.USAGE),
        (AlreadyInitializedError("x"), ExitCode.USAGE),
        (PluginError("x"), ExitCode.USAGE),
        (RegistryError("x"), ExitCode.FAILED),
        (StorageError("x"), ExitCode.FAILED),
        (IntegrityError("x"), ExitCode.FAILED),
        (ConflictError("x"), ExitCode.FAILED),
        (LockedError("x"), ExitCode.FAILED),
        (ValueError("a bug"), ExitCode.FAILED),
        (KeyboardInterrupt(), ExitCode.INTERRUPTED),
    ],
)
def test_exit_codes_in_one_place(error: BaseException, code: ExitCode) -> None:
    assert exit_code_for(error) == code
    assert (int(ExitCode.OK), int(ExitCode.FAILED), int(ExitCode.USAGE)) == (0, 1, 2)


def test_bundle_error_carries_a_hint() -> None:
    error = UsageError("bad", hint="try this")
    assert str(error) == "bad" and error.message == "bad" and error.hint == "try this"
