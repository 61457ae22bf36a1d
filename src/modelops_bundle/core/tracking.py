"""What ``add`` and ``remove`` select: files, folders (recursively), glob patterns, ``.``.

Selection is computed completely -- and every problem reported -- before anything is written, so a
command that fails changes nothing.
"""

from __future__ import annotations

import os
import stat as stat_module
from dataclasses import dataclass, field
from pathlib import Path

from modelops_bundle.core.errors import UsageError
from modelops_bundle.core.fsutil import delete_below, symlink_on_the_way
from modelops_bundle.core.globs import match_paths
from modelops_bundle.core.paths import has_glob, invalid_reason, shown_path, user_path_to_relpath
from modelops_bundle.core.walk import symlink_verdict
from modelops_bundle.core.workspace import Workspace


@dataclass
class Selection:
    paths: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _display(spec: str) -> str:
    return spec if spec else "."


def select_for_add(ws: Workspace, cwd: Path, specs: list[str], *, force: bool) -> Selection:
    """Resolve ``add`` arguments to project-relative files, or raise naming every bad argument."""
    root = ws.project.root
    rules = ws.ignore_rules()
    root_real = os.path.realpath(root)
    chosen: set[str] = set()
    selection = Selection()
    unmatched: list[str] = []
    ignored: list[str] = []
    everything: list[str] | None = None

    for spec in specs:
        rel = user_path_to_relpath(root, cwd, spec)
        unstorable = rel and invalid_reason(rel)
        if unstorable:
            raise UsageError(f"cannot add '{shown_path(spec)}': {unstorable} (no bundle path can hold it)")
        absolute = root / rel if rel else root
        if rel and rules.is_hard_excluded(rel):
            raise UsageError(f"'{spec}' is inside a metadata or VCS folder, which is never part of a bundle")
        parent_rel = rel.rpartition("/")[0]
        if parent_rel and os.path.realpath(root / parent_rel) != os.path.join(root_real, parent_rel):
            raise UsageError(f"cannot add '{spec}': the path goes through a symlinked folder")
        try:
            st = os.lstat(absolute)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise UsageError(f"cannot access '{spec}': {exc.strerror or exc}") from exc
        if st is None:
            if has_glob(spec):
                if everything is None:
                    everything = ws.walk(honour_ignores=not force).files
                matches = match_paths(rel, everything)
                if matches:
                    chosen.update(matches)
                    continue
            unmatched.append(spec)
            continue
        if stat_module.S_ISDIR(st.st_mode):
            if rel and not force and rules.is_ignored(rel, is_dir=True):
                ignored.append(_display(spec))
                continue
            result = ws.walk(rel, honour_ignores=not force)
            chosen.update(result.files)
            selection.skipped.extend(result.skipped)
            continue
        if stat_module.S_ISLNK(st.st_mode):
            reason = symlink_verdict(root_real, str(absolute))
            if reason:
                raise UsageError(f"cannot add '{spec}': {reason}")
        elif not stat_module.S_ISREG(st.st_mode):
            raise UsageError(f"cannot add '{spec}': not a regular file")
        if not force and rel not in ws.tracked() and rules.is_ignored(rel):
            ignored.append(spec)
            continue
        chosen.add(rel)

    if unmatched:
        raise UsageError("; ".join(f"pathspec '{spec}' did not match any files" for spec in unmatched))
    if ignored:
        listing = "\n  ".join(ignored)
        raise UsageError(
            f"the following paths are ignored by .modelopsignore:\n  {listing}",
            hint="use --force to add them anyway",
        )
    selection.paths = sorted(chosen)
    return selection


def select_for_remove(ws: Workspace, cwd: Path, specs: list[str]) -> list[str]:
    """Tracked files named by ``remove`` arguments; an argument matching nothing tracked is an error."""
    root = ws.project.root
    tracked = ws.tracked()
    chosen: set[str] = set()
    unmatched: list[str] = []
    for spec in specs:
        rel = user_path_to_relpath(root, cwd, spec)
        if rel == "":
            matches = list(tracked)
        elif rel in tracked:
            matches = [rel]
        else:
            prefix = rel.rstrip("/") + "/"
            matches = [path for path in tracked if path.startswith(prefix)]
            if not matches and has_glob(spec):
                matches = match_paths(rel, tracked)
        if matches:
            chosen.update(matches)
        else:
            unmatched.append(spec)
    if unmatched:
        raise UsageError("; ".join(f"pathspec '{spec}' did not match any tracked files" for spec in unmatched))
    return sorted(chosen)


def check_deletable(root: Path, rels: list[str]) -> None:
    """Refuse (before anything changes) to delete files reached through a symlinked folder: with
    ``data/raw -> /elsewhere/raw``, ``remove --rm data/`` must not delete ``/elsewhere/raw/x.csv``."""
    checked: dict[str, str | None] = {}
    through = [(rel, link) for rel in rels if (link := symlink_on_the_way(root, rel.rpartition("/")[0], checked))]
    if through:
        shown = "; ".join(f"{shown_path(rel)} (through {shown_path(link)})" for rel, link in through[:10])
        more = f" and {len(through) - 10} more" if len(through) > 10 else ""
        raise UsageError(
            f"refusing to delete {len(through)} file(s) reached through a symlinked folder: {shown}{more}; "
            "nothing was changed",
            hint="delete them where they really are, or run 'mops bundle remove' without --rm to only untrack them",
        )


def delete_files(root: Path, rels: list[str]) -> list[tuple[str, str]]:
    """Delete files from the working tree, then folders left empty; returns (path, error) failures.
    Every folder on the way is opened without following symlinks (:func:`core.fsutil.delete_below`)."""
    return delete_below(root, rels)
