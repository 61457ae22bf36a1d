"""Applying a pull to the working tree: all or nothing, with a journal.

A pull runs in named phases (:func:`modelops_bundle.core.pull.pull`): plan, stage and check, apply,
commit. This module is the last two. When apply starts, every new file is already downloaded and verified
in the pull's staging folder (``.modelops-bundle/staging/pull-*``, the same file system as the project),
every name fits the file system, every folder on the way is a real, writable folder, and the new tracked
list and sync state are written into the staging folder too. Then:

1. a journal, ``.modelops-bundle/pull-journal.json``, lists every step (a file to place or to delete);
2. each step checks that the file it replaces or deletes is still exactly what the plan saw -- its
   ``(device, inode, size, mtime_ns)``, or that no file is there -- then moves that file into the staging
   folder (``old/<step>``) and renames the new one into place. Placements run first, deletes last (a file
   in the way of a new folder is moved first);
3. commit writes the tracked list and the sync state, removes the journal, then the staging folder.

Any failure during apply or commit -- a file saved while the pull downloaded, an I/O error -- rolls every
step back (new files out, created folders removed, old files back) and nothing changed. A process killed
during apply leaves the journal behind: the next command that opens the project (:func:`recover`, called by
``Workspace``) finishes the steps and commits, or, when a step cannot be finished, rolls them all back; in
either case ``status`` never sees half a pull as local deletions.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat as stat_module
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops_bundle.core.errors import BundleError, ConfigError, ConflictError
from modelops_bundle.core.fsutil import (
    atomic_write_bytes,
    describe_os_error,
    exclusive_lock,
    require_real_folder,
    symlink_on_the_way,
)
from modelops_bundle.core.paths import shown_path

JOURNAL = "pull-journal.json"
JOURNAL_FORMAT = 1
STAGED_TRACKED = "tracked.txt"
STAGED_STATE = "state.json"
OLD = "old"

#: ``[device, inode, size, mtime_ns]`` of a file as the plan saw it; ``None``: no file there.
Signature = list[int] | None


@dataclass
class Step:
    """One change to the working tree: place the staged file ``new`` at ``path`` (mode ``mode``), or
    delete ``path`` (``new`` is ``None``); ``expect`` is what must be at ``path`` right before."""

    path: str
    new: str | None
    mode: int
    expect: Signature

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "new": self.new, "mode": self.mode, "expect": self.expect}


@dataclass
class Journal:
    """What an apply does: ``staging`` (a folder name below ``.modelops-bundle/staging``), the steps,
    the folders the steps create (shallowest first; removed again by a roll-back), and the staged
    tracked list and sync state that commit writes."""

    staging: str
    steps: list[Step] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": JOURNAL_FORMAT,
            "staging": self.staging,
            "folders": self.folders,
            "steps": [step.to_json() for step in self.steps],
        }

    @classmethod
    def from_json(cls, data: Any, path: Path) -> Journal:
        try:
            if data.get("format") != JOURNAL_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            staging = str(data["staging"])
            if "/" in staging or not staging.startswith("pull-"):
                raise ValueError(f"staging {staging!r}")
            steps = [
                Step(str(s["path"]), s["new"] if s["new"] is None else str(s["new"]), int(s["mode"]), s["expect"])
                for s in data["steps"]
            ]
            for step in steps:
                if step.new is not None and "/" in step.new:
                    raise ValueError(f"staged name {step.new!r}")
                expect = step.expect
                if expect is not None and not (
                    isinstance(expect, list) and len(expect) == 4 and all(isinstance(v, int) for v in expect)
                ):
                    raise ValueError(f"signature {expect!r}")
            return cls(staging, steps, [str(folder) for folder in data["folders"]])
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{path}: not a pull journal this version can read ({exc})",
                hint="check the working tree, then delete the journal and its .modelops-bundle/staging folder",
            ) from None


class RollbackIncomplete(BundleError):
    """A failed apply could not put every file back; the journal stays for the next command."""

    def __init__(self, meta: Path, staging: Path, failed: list[str]) -> None:
        super().__init__(
            f"the pull failed and {len(failed)} file(s) could not be put back yet: "
            f"{', '.join(shown_path(rel) for rel in failed[:10])}; their bytes are kept in {staging / OLD}",
            hint=f"the next command in this project finishes the pull from {meta / JOURNAL}",
        )


class ChangedDuringPull(ConflictError):
    """A file the plan replaces or deletes changed (or appeared) after the plan was made."""


def signature_of(path: Path) -> Signature:
    """``[device, inode, size, mtime_ns]`` of ``path`` (of its target for a symlink to a file, as the
    scan hashes it), or ``None`` when nothing is there."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise BundleError(describe_os_error("inspect", path, exc)) from exc
    if stat_module.S_ISLNK(st.st_mode):
        try:
            st = os.stat(path)
        except OSError:
            return [-1, -1, -1, -1]
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def order_steps(placements: list[Step], deletes: list[Step]) -> list[Step]:
    """Placements first and deletes last -- except a deleted file that stands where a placement needs a
    folder (``a`` deleted, ``a/b`` placed), which goes first."""
    needed_folders: set[str] = set()
    for step in placements:
        parts = step.path.split("/")
        needed_folders.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    blocking = [step for step in deletes if step.path in needed_folders]
    rest = [step for step in deletes if step.path not in needed_folders]
    return [*blocking, *sorted(placements, key=lambda s: s.path), *rest]


def folders_to_create(root: Path, steps: Iterable[Step]) -> list[str]:
    """Folders the placements need that are not real folders yet (shallowest first)."""
    wanted: set[str] = set()
    for step in steps:
        if step.new is None:
            continue
        parts = step.path.split("/")
        wanted.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    missing = []
    for folder in sorted(wanted, key=lambda rel: (rel.count("/"), rel)):
        try:
            if stat_module.S_ISDIR(os.lstat(root / folder).st_mode):
                continue
        except FileNotFoundError:
            pass
        except OSError:
            pass
        missing.append(folder)
    return missing


def check_writable(root: Path, steps: Iterable[Step], staging: Path) -> None:
    """Before the first change: every folder a step writes in (or the nearest one that exists) can be
    written and lies on the staging folder's file system (a rename cannot cross file systems). Raises
    :class:`BundleError` naming the folder."""
    staging_device = os.stat(staging).st_dev
    seen: dict[str, str | None] = {}
    problems: list[str] = []
    for step in steps:
        folder = step.path.rpartition("/")[0]
        if folder not in seen:
            seen[folder] = _folder_unwritable(root, folder, staging_device)
        if seen[folder]:
            problems.append(f"{shown_path(step.path)}: {seen[folder]}")
    if problems:
        shown = "; ".join(problems[:10]) + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
        raise BundleError(f"cannot pull: {len(problems)} file(s) cannot be written: {shown}; nothing was changed")


def _folder_unwritable(root: Path, folder: str, device: int) -> str | None:
    path = root / folder if folder else root
    while True:
        try:
            st = os.stat(path)
            break
        except FileNotFoundError:
            if path == root:
                return f"{root} does not exist"
            path = path.parent
        except OSError as exc:
            return describe_os_error("inspect", path, exc)
    if not stat_module.S_ISDIR(st.st_mode):
        return None  # a file in the way of a folder: a delete step moves it, else check_destinations refused
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable"
    if st.st_dev != device:
        return f"{path} is on another file system than {root}/.modelops-bundle (pull stages files there)"
    return None


# ------------------------------------------------------------------------------------------- apply


def write_journal(meta: Path, journal: Journal) -> None:
    atomic_write_bytes(meta / JOURNAL, json.dumps(journal.to_json(), separators=(",", ":")).encode())


def apply_steps(root: Path, staging: Path, journal: Journal) -> None:
    """Run every step (see the module docstring); on any failure roll all of them back and re-raise."""
    checked: dict[str, str | None] = {}
    try:
        (staging / OLD).mkdir(exist_ok=True)
        for number, step in enumerate(journal.steps):
            run_step(root, staging, number, step, checked)
    except BaseException:
        failed = roll_back(root, staging, journal)
        if failed:
            raise RollbackIncomplete(root / ".modelops-bundle", staging, failed) from None
        raise


def check_unchanged(root: Path, steps: Iterable[Step]) -> None:
    """Every file a step replaces or deletes is still as the plan saw it (a pass of ``lstat`` before the
    first change, so a file saved during a long download refuses the pull before anything moves)."""
    changed = [step.path for step in steps if signature_of(root / step.path) != step.expect]
    if changed:
        raise _changed(changed)


def _changed(paths: list[str]) -> ChangedDuringPull:
    more = f" and {len(paths) - 10} more" if len(paths) > 10 else ""
    shown = ", ".join(shown_path(rel) for rel in paths[:10]) + more
    return ChangedDuringPull(
        f"{len(paths)} file(s) changed in the working tree while pulling: {shown}; "
        "they were kept and nothing was changed",
        hint="run the pull again: it then sees these changes and tells what to do with them",
    )


def run_step(root: Path, staging: Path, number: int, step: Step, checked: dict[str, str | None]) -> None:
    """One step, resumable: what a killed run already did is recognised and not done again."""
    target = root / step.path
    old = staging / OLD / str(number)
    new = staging / step.new if step.new is not None else None
    if new is not None and not os.path.lexists(new):
        return  # placed already
    if not os.path.lexists(old):
        if signature_of(target) != step.expect:
            raise _changed([step.path])
        if step.expect is not None:
            _rename(target, old, step.path)
    if new is None:
        return
    parent = step.path.rpartition("/")[0]
    link = symlink_on_the_way(root, parent, checked)
    if link is not None:
        raise ConflictError(f"cannot write {shown_path(step.path)}: {shown_path(link)} is a symlink or not a folder")
    if parent:
        try:
            (root / parent).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BundleError(describe_os_error("create", root / parent, exc)) from exc
    try:
        os.chmod(new, step.mode)
    except OSError as exc:
        raise BundleError(describe_os_error("write", target, exc)) from exc
    _rename(new, target, step.path)


def _rename(source: Path, target: Path, rel: str) -> None:
    try:
        os.rename(source, target)
    except OSError as exc:
        raise BundleError(describe_os_error("write", rel, exc)) from exc


def roll_back(root: Path, staging: Path, journal: Journal) -> list[str]:
    """Undo every step (in three passes: new files back into staging, created folders removed, old
    files back in place); returns the paths that could not be restored (best effort, reported)."""
    steps = list(enumerate(journal.steps))
    failed: list[str] = []
    for _number, step in reversed(steps):
        if step.new is None:
            continue
        new, target = staging / step.new, root / step.path
        if not os.path.lexists(new) and os.path.lexists(target):
            try:
                os.rename(target, new)
            except OSError:
                failed.append(step.path)
    for folder in reversed(journal.folders):
        with contextlib.suppress(OSError):
            os.rmdir(root / folder)
    for number, step in reversed(steps):
        old = staging / OLD / str(number)
        if os.path.lexists(old):
            try:
                (root / step.path).parent.mkdir(parents=True, exist_ok=True)
                os.rename(old, root / step.path)
            except OSError:
                failed.append(step.path)
    return failed


def prune_emptied_folders(root: Path, deleted: Iterable[str]) -> None:
    """After commit: remove the folders deleted files left empty (never the root)."""
    folders: set[str] = set()
    for rel in deleted:
        parts = rel.split("/")
        folders.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    for folder in sorted(folders, key=lambda rel: rel.count("/"), reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(root / folder)


def finish(meta: Path, staging: Path) -> None:
    """The pull is committed or rolled back: remove the journal, then the staging folder."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(meta / JOURNAL)
    shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------- recovery


def recover(root: Path, meta: Path, lock_path: Path) -> str | None:
    """Finish (or roll back) a pull that was killed while applying; ``None`` when there was none.

    Called by every command that opens the project when the journal exists. Takes the project lock, so
    a pull still applying in another process is waited for (it removes its journal when done)."""
    path = meta / JOURNAL
    with exclusive_lock(lock_path):
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{path}: unreadable pull journal ({exc})",
                hint="check the working tree, then delete the journal and .modelops-bundle/staging",
            ) from None
        journal = Journal.from_json(data, path)
        staging = require_real_folder(meta / "staging") / journal.staging
        require_real_folder(staging)
        if not staging.is_dir():
            raise ConfigError(
                f"{path}: its staging folder {staging} is gone; the pull cannot be finished or rolled back",
                hint="check the working tree (status), then delete the journal",
            )
        checked: dict[str, str | None] = {}
        try:
            (staging / OLD).mkdir(exist_ok=True)
            for number, step in enumerate(journal.steps):
                run_step(root, staging, number, step, checked)
            for name, target in ((STAGED_TRACKED, meta / "tracked.txt"), (STAGED_STATE, meta / "state.json")):
                atomic_write_bytes(target, (staging / name).read_bytes())
        except (BundleError, OSError):
            failed = roll_back(root, staging, journal)
            if failed:
                raise ConfigError(
                    f"an interrupted pull could neither be finished nor rolled back: "
                    f"{', '.join(shown_path(rel) for rel in failed[:10])} could not be restored; "
                    f"their earlier bytes are in {staging / OLD} (by step number, see {path})",
                ) from None
            finish(meta, staging)
            return "rolled back"
        prune_emptied_folders(root, [step.path for step in journal.steps if step.new is None])
        finish(meta, staging)
        return "finished"


def stage_metadata(staging: Path, tracked_text: str, state_json: Mapping[str, Any]) -> None:
    """The tracked list and sync state commit writes, kept in staging for a recovery to write."""
    atomic_write_bytes(staging / STAGED_TRACKED, tracked_text.encode("utf-8"))
    atomic_write_bytes(staging / STAGED_STATE, (json.dumps(dict(state_json), indent=2) + "\n").encode())
