"""The journalled apply of a pull (core/pull_apply.py) on real files: a failing step rolls every step back,
a changed file refuses before anything moves, and an interrupted apply is finished by ``recover``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelops_bundle.core.errors import ConfigError, ConflictError
from modelops_bundle.core.pull_apply import (
    JOURNAL,
    ChangedDuringPull,
    Journal,
    Step,
    apply_steps,
    check_unchanged,
    folders_to_create,
    order_steps,
    recover,
    run_step,
    signature_of,
    stage_metadata,
    write_journal,
)


def _setup(tmp_path: Path) -> tuple[Path, Path, Path, Journal]:
    """A tree with ``a.txt`` (to update) and ``gone.txt`` (to delete); ``new/c.txt`` to add."""
    root = tmp_path / "root"
    meta = root / ".modelops-bundle"
    staging = meta / "staging" / "pull-test"
    staging.mkdir(parents=True)
    (root / "a.txt").write_text("a old\n")
    (root / "gone.txt").write_text("gone\n")
    (staging / "f0").write_text("a new\n")
    (staging / "f1").write_text("c new\n")
    steps = order_steps(
        [
            Step("a.txt", "f0", 0o644, signature_of(root / "a.txt")),
            Step("new/c.txt", "f1", 0o755, None),
        ],
        [Step("gone.txt", None, 0, signature_of(root / "gone.txt"))],
    )
    return root, meta, staging, Journal(staging.name, steps, folders_to_create(root, steps))


def test_apply_places_and_deletes_with_modes(tmp_path: Path) -> None:
    root, _, staging, journal = _setup(tmp_path)
    assert [step.path for step in journal.steps] == ["a.txt", "new/c.txt", "gone.txt"]  # deletes last
    assert journal.folders == ["new"]
    apply_steps(root, staging, journal)
    assert (root / "a.txt").read_text() == "a new\n"
    assert (root / "new/c.txt").read_text() == "c new\n" and os.stat(root / "new/c.txt").st_mode & 0o777 == 0o755
    assert not (root / "gone.txt").exists()
    assert (staging / "old" / "0").read_text() == "a old\n"  # kept until commit removes staging


def test_a_failing_step_rolls_every_step_back(tmp_path: Path) -> None:
    root, _, staging, journal = _setup(tmp_path)
    (root / "blocker").write_text("a file where the last step needs a folder\n")
    (staging / "f2").write_text("x\n")
    journal.steps.append(Step("blocker/x.txt", "f2", 0o644, None))
    with pytest.raises(ConflictError, match="blocker"):
        apply_steps(root, staging, journal)
    assert (root / "a.txt").read_text() == "a old\n"
    assert (root / "gone.txt").read_text() == "gone\n"
    assert not (root / "new").exists()  # the folder the apply created is gone again
    assert (staging / "f0").read_text() == "a new\n" and (staging / "f1").exists()


def test_a_file_changed_since_the_plan_refuses_before_anything_moves(tmp_path: Path) -> None:
    root, _, staging, journal = _setup(tmp_path)
    (root / "a.txt").write_text("saved while the pull downloaded\n")
    with pytest.raises(ChangedDuringPull, match=r"a\.txt.*kept"):
        check_unchanged(root, journal.steps)
    (root / "new").mkdir()
    (root / "new/c.txt").write_text("appeared meanwhile\n")
    with pytest.raises(ChangedDuringPull, match="2 file"):
        check_unchanged(root, journal.steps)
    # and a step re-checks by itself (the pass before apply cannot close the window completely)
    with pytest.raises(ChangedDuringPull):
        apply_steps(root, staging, journal)
    assert (root / "a.txt").read_text() == "saved while the pull downloaded\n"
    assert (root / "new/c.txt").read_text() == "appeared meanwhile\n"


def test_recover_finishes_an_interrupted_apply_and_commits(tmp_path: Path) -> None:
    root, meta, staging, journal = _setup(tmp_path)
    (meta / "lock").touch()
    stage_metadata(staging, "a.txt\nnew/c.txt\n", {"last_pull_digest": "sha256:" + "1" * 64})
    write_journal(meta, journal)
    (staging / "old").mkdir()
    run_step(root, staging, 0, journal.steps[0], {})  # the process was killed after the first step
    os.rename(root / "gone.txt", staging / "old" / "2")  # ... and halfway through the last
    assert recover(root, meta, meta / "lock") == "finished"
    assert (root / "a.txt").read_text() == "a new\n" and (root / "new/c.txt").exists()
    assert not (root / "gone.txt").exists()
    assert (meta / "tracked.txt").read_text() == "a.txt\nnew/c.txt\n"
    assert json.loads((meta / "state.json").read_text())["last_pull_digest"] == "sha256:" + "1" * 64
    assert not (meta / JOURNAL).exists() and not staging.exists()
    assert recover(root, meta, meta / "lock") is None


def test_recover_rolls_back_when_a_step_cannot_be_finished(tmp_path: Path) -> None:
    root, meta, staging, journal = _setup(tmp_path)
    (meta / "lock").touch()
    stage_metadata(staging, "x\n", {})
    write_journal(meta, journal)
    (staging / "old").mkdir()
    run_step(root, staging, 0, journal.steps[0], {})
    (root / "gone.txt").write_text("edited after the crash\n")  # the delete step must not take this
    assert recover(root, meta, meta / "lock") == "rolled back"
    assert (root / "a.txt").read_text() == "a old\n"
    assert (root / "gone.txt").read_text() == "edited after the crash\n"
    assert not (root / "new").exists() and not (meta / "tracked.txt").exists()
    assert not (meta / JOURNAL).exists()


def test_a_journal_that_is_not_one_is_a_config_error(tmp_path: Path) -> None:
    root, meta, _, _ = _setup(tmp_path)
    (meta / "lock").touch()
    (meta / JOURNAL).write_text(json.dumps({"format": 1, "staging": "../../etc", "steps": [], "folders": []}))
    with pytest.raises(ConfigError, match=JOURNAL):
        recover(root, meta, meta / "lock")
    (meta / JOURNAL).write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable pull journal"):
        recover(root, meta, meta / "lock")
