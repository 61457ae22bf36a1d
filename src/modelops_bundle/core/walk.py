"""Walk the working tree: the files a bundle could hold, with ignore rules and the symlink policy.

Symlink policy (documented in docs/formats.md):
* a symlink to a directory is never descended (no cycles, no escapes);
* a symlink to a file is followed only when its real target lies inside the project; the bundle then
  holds the target's bytes under the link's path;
* a symlink that points outside the project, or nowhere, is skipped and reported -- never followed.
"""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import Collection
from dataclasses import dataclass, field

from modelops_bundle.core.ignore import IgnoreRules
from modelops_bundle.core.paths import is_within


@dataclass
class WalkResult:
    files: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: list[str] = field(default_factory=list)  # only collected when asked
    stats: dict[str, os.stat_result] = field(default_factory=dict)  # lstat of the files in ``want``


def symlink_verdict(root_real: str, absolute: str) -> str | None:
    """Why a file symlink may not be followed, or ``None`` when its target is a file inside the project."""
    try:
        target = os.path.realpath(absolute)
    except OSError:
        return "unresolvable symlink"
    if not is_within(root_real, target):
        return "symlink points outside the project"
    try:
        st = os.stat(target)
    except OSError:
        return "dangling symlink"
    if stat_module.S_ISDIR(st.st_mode):
        return "symlink to a directory (not followed)"
    if not stat_module.S_ISREG(st.st_mode):
        return "symlink to a special file"
    return None


def walk(
    root: str,
    start_rel: str,
    rules: IgnoreRules,
    *,
    honour_ignores: bool = True,
    collect_ignored: bool = False,
    want: Collection[str] = (),
) -> WalkResult:
    """Every includable file below ``start_rel`` ('' for the whole project), sorted.

    Folders are opened by descriptor and entries stat-ed relative to it (``fstatat``), which saves
    resolving the full path again for every file; files named in ``want`` get their ``lstat`` result
    recorded, so a status needs one pass over the tree.
    """
    result = WalkResult()
    root_real = os.path.realpath(root)
    matches = rules.matches if honour_ignores else rules.is_hard_excluded
    files = result.files
    stats = result.stats
    wanted = want if isinstance(want, (set, frozenset, dict)) else set(want)

    def visit(dir_fd: int, rel_dir: str) -> None:
        try:
            with os.scandir(dir_fd) as iterator:
                entries = list(iterator)
        except OSError as exc:
            result.skipped.append((rel_dir or ".", f"cannot list folder: {exc.strerror or exc}"))
            return
        prefix = f"{rel_dir}/" if rel_dir else ""
        for entry in entries:
            rel = prefix + entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                if matches(rel, True):
                    if collect_ignored:
                        result.ignored.append(rel + "/")
                    continue
                try:
                    child = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
                except OSError as exc:
                    result.skipped.append((rel, f"cannot open folder: {exc.strerror or exc}"))
                    continue
                try:
                    visit(child, rel)
                finally:
                    os.close(child)
                continue
            if matches(rel, False):
                if collect_ignored:
                    result.ignored.append(rel)
                continue
            if entry.is_symlink():
                reason = symlink_verdict(root_real, os.path.join(root, rel))
                if reason:
                    result.skipped.append((rel, reason))
                    continue
            elif not entry.is_file(follow_symlinks=False):
                result.skipped.append((rel, "not a regular file"))
                continue
            files.append(rel)
            if rel in wanted:
                try:
                    stats[rel] = entry.stat(follow_symlinks=False)
                except OSError:
                    pass

    start = os.path.join(root, start_rel) if start_rel else root
    try:
        top = os.open(start, _DIR_FLAGS)
    except OSError as exc:
        result.skipped.append((start_rel or ".", f"cannot open folder: {exc.strerror or exc}"))
        return result
    try:
        visit(top, start_rel)
    finally:
        os.close(top)
    files.sort()
    return result


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
