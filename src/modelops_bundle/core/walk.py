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
from dataclasses import dataclass, field

from modelops_bundle.core.ignore import IgnoreRules
from modelops_bundle.core.paths import is_within


@dataclass
class WalkResult:
    files: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: list[str] = field(default_factory=list)  # only collected when asked


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
) -> WalkResult:
    """Every includable file below ``start_rel`` ('' for the whole project), sorted."""
    result = WalkResult()
    root_real = os.path.realpath(root)
    matches = rules.matches if honour_ignores else rules.is_hard_excluded

    def visit(rel_dir: str) -> None:
        absolute_dir = os.path.join(root, rel_dir) if rel_dir else root
        try:
            with os.scandir(absolute_dir) as iterator:
                entries = list(iterator)
        except OSError as exc:
            result.skipped.append((rel_dir or ".", f"cannot list folder: {exc.strerror or exc}"))
            return
        prefix = f"{rel_dir}/" if rel_dir else ""
        for entry in entries:
            rel = prefix + entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_link = not is_dir and entry.is_symlink()
            except OSError:
                continue
            if is_dir:
                if matches(rel, True):
                    if collect_ignored:
                        result.ignored.append(rel + "/")
                    continue
                visit(rel)
                continue
            if matches(rel, False):
                if collect_ignored:
                    result.ignored.append(rel)
                continue
            if is_link:
                reason = symlink_verdict(root_real, entry.path)
                if reason:
                    result.skipped.append((rel, reason))
                    continue
            elif not entry.is_file(follow_symlinks=False):
                result.skipped.append((rel, "not a regular file"))
                continue
            result.files.append(rel)

    visit(start_rel)
    result.files.sort()
    return result
