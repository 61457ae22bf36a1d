"""Walk the working tree: the files a bundle could hold, with ignore rules and the symlink policy.

Symlink policy (documented in docs/formats.md):
* a symlink to a directory is never descended (no cycles, no escapes);
* a symlink to a file is followed only when its real target lies inside the project; the bundle then
  holds the target's bytes under the link's path;
* a symlink that points outside the project, or nowhere, is skipped and reported -- never followed.

A folder holding its own ``.modelops-bundle/`` is another project nested in this one (as git treats an
embedded repository): it is skipped whole and reported, never walked into (:data:`NESTED_REASON`).

Folder listings are cached (:class:`ListingCache`, kept in the stat cache) the way git's untracked
cache does it: a folder whose change time and inode are those of its last listing holds the same names
(creating, deleting or renaming an entry updates the folder's mtime and ctime; a ``chmod`` its ctime),
so it is ``lstat``-ed instead of listed again. Only folders of plain files and folders are cached (a
symlink's verdict depends on its target, which can change without touching the folder), only listings
made when the folder's ctime was at least :data:`LISTING_MARGIN_NS` old (a change within the same
timestamp tick would go unseen), and only under the ignore rules they were filtered by.
"""

from __future__ import annotations

import os
import stat as stat_module
import time
from collections.abc import Collection
from typing import Any

from modelops_bundle.core.columns import all_strings, pack_rows, unpack_numbers
from modelops_bundle.core.ignore import IgnoreRules
from modelops_bundle.core.paths import (
    FILE_TYPE_BITS,
    MAX_DEPTH,
    MAX_PATH_BYTES,
    NAME_MAX_BYTES,
    UNSTORABLE_CHARACTER,
    invalid_reason,
    is_within,
)

#: A folder listed less than this after its last change is not cached (covers coarse timestamps: FAT 2 s).
LISTING_MARGIN_NS = 2_000_000_000
_NAME_SEP = "/"  # cannot occur in a file name


class WalkResult:
    """What a walk found: includable files (sorted), skipped paths, the stats it took, the folders it went
    through. (A plain class: a dataclass costs about 0.3 ms to define, on every command -- decision 0017.)"""

    __slots__ = ("files", "folders", "listed", "skipped", "stats")

    def __init__(self) -> None:
        self.files: list[str] = []
        self.skipped: list[tuple[str, str]] = []  # (path, reason)
        self.stats: dict[str, os.stat_result] = {}  # lstat of the files in ``want``
        self.folders: list[str] = []  # every folder walked: real folders, no symlinks
        self.listed = 0  # folders read from the disk (the others' names came from the listing cache)


class ListingCache:
    """Folder listings of earlier walks: ``{rel_dir: (ctime_ns, inode, files, folders)}``, the names of a
    folder's files and of its sub-folders each joined by ``/`` (which no name contains), valid only under
    the ignore rules ``rules``. Stored as columns, like the stat cache's entries (one string per folder
    and field, see :mod:`.columns`), since a warm status reads it on every run."""

    def __init__(self, rules: str = "", folders: dict[str, tuple[int, int, str, str]] | None = None) -> None:
        self.rules = rules
        self.folders: dict[str, tuple[int, int, str, str]] = folders or {}
        self.dirty = False
        #: Since the stat cache's base was written: the folders whose listing changed, and whether the
        #: rules changed (then every listing did, and the next save writes a new base).
        self.changed: set[str] = set()
        self.reset = False

    @classmethod
    def from_json(cls, raw: Any) -> ListingCache:
        """The listings, or none at all when the columns do not fit together (the cache is disposable)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("rules"), str):
            return cls()
        dirs, files, folders = raw.get("dirs"), raw.get("files"), raw.get("folders")
        if not (all_strings(dirs) and all_strings(files) and all_strings(folders)):
            return cls()
        if not len(dirs) == len(files) == len(folders):
            return cls()
        numbers = unpack_numbers(raw.get("signatures"), 2 * len(dirs))
        if numbers is None:
            return cls()
        signatures = iter(numbers)
        return cls(raw["rules"], dict(zip(dirs, zip(signatures, signatures, files, folders, strict=True), strict=True)))

    def to_json(self) -> dict[str, Any]:
        items = list(self.folders.items())
        signatures, kept = pack_rows(((ctime, inode) for _, (ctime, inode, _f, _d) in items), 2)
        return {
            "rules": self.rules,
            "dirs": [items[i][0] for i in kept],
            "files": [items[i][1][2] for i in kept],
            "folders": [items[i][1][3] for i in kept],
            "signatures": signatures,
        }

    def use_rules(self, fingerprint: str) -> None:
        """Listings filtered by other ignore rules are dropped."""
        if fingerprint != self.rules:
            self.rules = fingerprint
            self.dirty = self.dirty or bool(self.folders)
            self.reset = self.reset or bool(self.folders)
            self.folders = {}

    def put(self, rel_dir: str, st: os.stat_result, files: list[str], folders: list[str], now_ns: int) -> None:
        if now_ns - st.st_ctime_ns < LISTING_MARGIN_NS:  # racy: a change in this tick would not show
            self.forget(rel_dir)
            return
        entry = (st.st_ctime_ns, st.st_ino, _NAME_SEP.join(files), _NAME_SEP.join(folders))
        if self.folders.get(rel_dir) != entry:
            self.folders[rel_dir] = entry
            self.changed.add(rel_dir)
            self.dirty = True

    def forget(self, rel_dir: str) -> None:
        if self.folders.pop(rel_dir, None) is not None:
            self.changed.add(rel_dir)
            self.dirty = True

    def keep_only(self, walked: Collection[str]) -> None:
        """Drop listings of folders a whole-tree walk no longer reached."""
        reached = walked if isinstance(walked, (set, frozenset, dict)) else set(walked)
        stale = [rel for rel in self.folders if rel not in reached]
        for rel in stale:
            del self.folders[rel]
        self.changed.update(stale)
        self.dirty = self.dirty or bool(stale)

    def apply(self, rows: dict[str, tuple[int, int, str, str] | None]) -> None:
        """The listing rows of a stat-cache delta (``None``: the folder has no listing)."""
        for rel, row in rows.items():
            if row is None:
                self.folders.pop(rel, None)
            else:
                self.folders[rel] = row
        self.changed.update(rows)

    def rebased(self) -> None:
        """Every listing is now in the stat cache's base."""
        self.changed.clear()
        self.reset = False


UNSTORABLE_REASON = "name holds a control character, a backslash or bytes that are not UTF-8"
#: Why a folder below the project root is left out whole: it is a project of its own.
NESTED_REASON = "a nested modelops-bundle project (it has its own .modelops-bundle/); bundle it on its own"
_META_DIR = ".modelops-bundle"  # core.project.META_DIR, without importing it on this hot path
TOO_DEEP_REASON = f"path too deep or too long for a bundle (at most {MAX_DEPTH} segments, {MAX_PATH_BYTES} bytes)"
#: A folder path shorter than this (in characters) cannot reach any limit of :mod:`paths` with one more
#: name below it: only longer ones -- never in a normal project -- are checked, so a walk pays one ``len``.
LONG_FOLDER = min(2 * MAX_DEPTH - 4, (MAX_PATH_BYTES - NAME_MAX_BYTES - 1) // 4)


def _unstorable_names(entries: list[os.DirEntry[str]]) -> frozenset[str]:
    """The names in ``entries`` no bundle path can hold (:data:`paths.UNSTORABLE_CHARACTER`): almost
    always none, found with one search over all the folder's names."""
    if UNSTORABLE_CHARACTER.search("/".join([entry.name for entry in entries])) is None:
        return frozenset()
    return frozenset(entry.name for entry in entries if UNSTORABLE_CHARACTER.search(entry.name))


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
    want: Collection[str] = (),
    listings: ListingCache | None = None,
) -> WalkResult:
    """Every includable file below ``start_rel`` ('' for the whole project), sorted; files named in
    ``want`` get their ``lstat`` result recorded when their folder is listed.

    With ``listings`` (used with the ignore rules on: they are what a listing was filtered by), a folder
    that is unchanged since its last listing is ``lstat``-ed, not listed again (see the module docstring).
    """
    cache = listings if honour_ignores else None
    result = WalkResult()
    files, folders, stats, skipped = result.files, result.folders, result.stats, result.skipped
    wanted = want if isinstance(want, (set, frozenset, dict)) else set(want)
    matches = rules.matches if honour_ignores else rules.is_hard_excluded
    root_real = os.path.realpath(root)
    now_ns = time.time_ns()
    lstat = os.lstat
    base = root + os.sep
    listed = cache.folders if cache is not None else {}
    stack = [start_rel]
    # Locals and inlined tests: a warm status goes round this loop once per folder of the project.
    while stack:
        rel_dir = stack.pop()
        path = base + rel_dir if rel_dir else root
        long_folder = len(rel_dir) > LONG_FOLDER
        if long_folder and (rel_dir.count("/") + 2 > MAX_DEPTH or len(rel_dir.encode()) >= MAX_PATH_BYTES):
            skipped.append((rel_dir, TOO_DEEP_REASON))  # nothing below it fits a bundle path (issue 15)
            continue
        st = None
        if cache is not None or rel_dir == start_rel:  # the listing's key; the start folder's own check
            try:
                st = lstat(path) if rel_dir else os.stat(path)
            except OSError as exc:
                skipped.append((rel_dir or ".", f"cannot list folder: {exc.strerror or exc}"))
                continue
            # not a folder (any more): replaced by a file or a symlink since it was listed
            if st.st_mode & FILE_TYPE_BITS != stat_module.S_IFDIR:
                if cache is not None:
                    cache.forget(rel_dir)
                skipped.append((rel_dir or ".", "not a folder (any more)"))
                continue
        folders.append(rel_dir)
        prefix = f"{rel_dir}/" if rel_dir else ""
        # The folder's listing, still valid while its ctime and inode are those it was listed at.
        listing = listed.get(rel_dir) if st is not None else None
        if listing is not None and st is not None and listing[0] == st.st_ctime_ns and listing[1] == st.st_ino:
            _, _, names, subfolders = listing
            # "a/b" -> ["<prefix>a", "<prefix>b"] in two C calls (no name holds "/" or NUL)
            if names:
                files.extend((prefix + names.replace(_NAME_SEP, "\0" + prefix)).split("\0"))
            if subfolders:
                stack.extend((prefix + subfolders.replace(_NAME_SEP, "\0" + prefix)).split("\0"))
            continue
        result.listed += 1
        try:
            with os.scandir(path) as iterator:
                entries = list(iterator)
        except OSError as exc:
            if cache is not None:
                cache.forget(rel_dir)
            skipped.append((rel_dir or ".", f"cannot list folder: {exc.strerror or exc}"))
            continue
        if rel_dir and any(entry.name == _META_DIR for entry in entries):
            # Another project: never listed as this one's (nor cached, so that the check runs every walk).
            folders.pop()
            if cache is not None:
                cache.forget(rel_dir)
            skipped.append((rel_dir, NESTED_REASON))
            continue
        plain = True  # only plain files and folders: the listing can be cached
        listed_files: list[str] = []
        listed_folders: list[str] = []
        unstorable = _unstorable_names(entries)
        for entry in entries:
            rel = prefix + entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                plain = False
                continue
            if is_dir:
                if not matches(rel, True):
                    if unstorable and entry.name in unstorable:
                        plain = False  # not cached: the skip is reported by every walk
                        skipped.append((rel, UNSTORABLE_REASON))
                    else:
                        listed_folders.append(entry.name)
                continue
            if matches(rel, False):
                continue
            if long_folder and invalid_reason(rel):
                plain = False
                skipped.append((rel, TOO_DEEP_REASON))
                continue
            if unstorable and entry.name in unstorable:
                plain = False
                skipped.append((rel, UNSTORABLE_REASON))
                continue
            if entry.is_symlink():
                plain = False
                reason = symlink_verdict(root_real, os.path.join(root, rel))
                if reason:
                    skipped.append((rel, reason))
                    continue
            elif not entry.is_file(follow_symlinks=False):
                plain = False
                skipped.append((rel, "not a regular file"))
                continue
            else:
                listed_files.append(entry.name)
            files.append(rel)
            if rel in wanted:
                try:
                    stats[rel] = entry.stat(follow_symlinks=False)
                except OSError:
                    pass
        stack.extend(prefix + name for name in listed_folders)
        if cache is not None and st is not None:
            if plain:
                cache.put(rel_dir, st, listed_files, listed_folders, now_ns)
            else:
                cache.forget(rel_dir)
    if cache is not None and not start_rel:
        cache.keep_only(folders)
    files.sort()
    return result
