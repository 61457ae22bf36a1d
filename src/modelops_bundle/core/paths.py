"""Project-relative POSIX paths: normalisation and validation.

Every path stored in a tracked list, state file or index is relative to the project root, uses ``/``,
and never contains ``.``/``..`` segments, a leading ``/``, NUL or control characters.
"""

from __future__ import annotations

import itertools
import operator
import os
import re
import stat
from pathlib import Path

from modelops_bundle.core.errors import BundleError, UsageError
from modelops_bundle.core.patterns import LazyPattern

GLOB_CHARS = frozenset("*?[")
#: What no stored path may contain: a control character (a newline would split a line of the tracked
#: list in two), a backslash, or a lone surrogate -- how Python spells the bytes of a file name that is
#: not UTF-8, which the tracked list, the index and the tar layers cannot hold.
UNSTORABLE_CHARACTER = re.compile("[\x00-\x1f\x7f\\\\\ud800-\udfff]")
#: Limits every stored path keeps, whatever the file system: a name of at most ``NAME_MAX`` bytes (255 on
#: every common Linux, macOS and Windows file system), at most :data:`MAX_PATH_BYTES` bytes in all (``PATH_MAX``
#: is 4096 with the destination folder in front), and at most :data:`MAX_DEPTH` segments -- a hostile index
#: naming 2,000 nested folders is refused when read, instead of failing deep inside a command. The file
#: system at hand is checked too, with the destination joined in (:func:`check_name_limits`).
NAME_MAX_BYTES = 255
MAX_PATH_BYTES = 3072
MAX_DEPTH = 128


def invalid_reason(rel: str) -> str | None:
    """Why ``rel`` is not a valid stored path, or ``None`` when it is."""
    if not rel:
        return "empty path"
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        return "absolute path"
    unstorable = UNSTORABLE_CHARACTER.search(rel)
    if unstorable is not None:
        found = unstorable.group()
        if found == "\\":
            return "backslash in path"
        return "control character in path" if found < "\x80" else "path is not valid UTF-8"
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "empty, '.' or '..' segment"
    if len(parts) > MAX_DEPTH:
        return f"{len(parts)} segments deep (at most {MAX_DEPTH})"
    if len(rel) > MAX_PATH_BYTES // 4 and len(rel.encode()) > MAX_PATH_BYTES:
        return f"{len(rel.encode())} bytes long (at most {MAX_PATH_BYTES})"
    if max(map(len, parts)) > NAME_MAX_BYTES // 4:
        longest = max(len(part.encode()) for part in parts)
        if longest > NAME_MAX_BYTES:
            return f"a name of {longest} bytes (at most {NAME_MAX_BYTES})"
    return None


def shown_path(rel: str) -> str:
    """``rel`` for a message: control characters, backslashes, the bytes of a name that is not UTF-8 and
    the invisible characters of :data:`DISPLAY_UNSAFE` escaped, as in a Python string literal (a raw
    newline would break the message's line; ``data/\\u202ehs.txt`` would show as ``data/txt.sh``)."""
    return display_safe(UNSTORABLE_CHARACTER.sub(lambda found: repr(found.group())[1:-1], rel))


#: Characters a terminal does not show as themselves: C0 and C1 controls (but tab and newline), DEL, the
#: bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C: ``\\u202e`` makes
#: ``hs.txt`` read ``txt.sh``), zero-width and other invisible format characters, line and paragraph
#: separators, the byte order mark and interlinear annotation marks. Escaped wherever text is printed.
DISPLAY_UNSAFE = LazyPattern(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]"
)


def _escape_character(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def display_safe(text: str) -> str:
    """``text`` with every :data:`DISPLAY_UNSAFE` character written as its escape (``\\u202e``); text
    without one (nearly all) is returned as it is after one regular-expression scan."""
    if DISPLAY_UNSAFE.search(text) is None:
        return text
    return DISPLAY_UNSAFE.sub(_escape_character, text)


def is_valid_relpath(rel: str) -> bool:
    return invalid_reason(rel) is None


def has_glob(text: str) -> bool:
    return any(ch in GLOB_CHARS for ch in text)


def to_relpath(root: Path, target: Path) -> str:
    """``target`` (absolute, already joined with the cwd) relative to ``root`` as POSIX, or raise.

    Uses a lexical normalisation so that ``..`` cannot climb out; symlinks are judged separately.
    """
    absolute = Path(os.path.normpath(target))
    try:
        rel = absolute.relative_to(root)
    except ValueError:
        raise UsageError(f"'{target}' is outside the project at {root}") from None
    text = rel.as_posix()
    return "" if text == "." else text


def user_path_to_relpath(root: Path, cwd: Path, user_path: str) -> str:
    """A path typed by the user (relative to ``cwd`` or absolute) as a project-relative POSIX path."""
    return to_relpath(root, cwd / user_path)


def is_within(root_real: str, candidate: str) -> bool:
    """True when the real path ``candidate`` is ``root_real`` or below it."""
    return candidate == root_real or candidate.startswith(root_real.rstrip(os.sep) + os.sep)


def is_sorted(paths: list[str]) -> bool:
    """Whether ``paths`` is in ascending order (one C-level pass; a sort of sorted input still copies)."""
    return all(map(operator.le, paths, itertools.islice(paths, 1, None)))


#: ``st_mode & FILE_TYPE_BITS`` is the file type (``stat.S_IFREG``, ``stat.S_IFDIR`` ...): the loops that test
#: every file of a project compare it inline instead of calling ``stat.S_ISREG``.
FILE_TYPE_BITS = stat.S_IFMT(0o177777)


def check_name_limits(root: Path, rels: list[str], *, source: str) -> None:
    """Refuse, before anything is written, paths the file system at ``root`` cannot hold: a name longer
    than its ``NAME_MAX`` or, joined with ``root``, a path longer than its ``PATH_MAX`` (bytes)."""
    name_max, path_max = _limits(root)
    base = len(os.fsencode(str(root))) + 1
    for rel in rels:
        encoded = len(rel.encode("utf-8", "surrogateescape"))
        if base + encoded >= path_max:
            raise BundleError(
                f"{source}: cannot write '{shown_path(rel)}' in {root}: the path would be {base + encoded} bytes, "
                f"this file system allows {path_max - 1}; nothing was changed"
            )
        if encoded > name_max:
            longest = max(rel.split("/"), key=lambda part: len(part.encode("utf-8", "surrogateescape")))
            size = len(longest.encode("utf-8", "surrogateescape"))
            if size > name_max:
                raise BundleError(
                    f"{source}: cannot write '{shown_path(rel)}' in {root}: a name of {size} bytes, "
                    f"this file system allows {name_max}; nothing was changed"
                )


def _limits(root: Path) -> tuple[int, int]:
    """``NAME_MAX`` and ``PATH_MAX`` of the file system holding ``root`` (or its nearest existing parent)."""
    folder = root
    while not os.path.isdir(folder) and folder != folder.parent:
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 255, 4096
