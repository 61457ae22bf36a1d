"""Safe file-system primitives: atomic writes, the project lock, and folders that are never symlinks.

Every metadata write goes through :func:`atomic_write_bytes` (temp file in the same folder, fsync,
rename, fsync of the folder), so a crash leaves either the old or the new file, never a torn one.

Folders the tool writes, renames or deletes in -- ``.modelops-bundle/`` and its ``staging/`` and
``cache/``, the shared cache's folders, ``$MODELOPS_HOME/locks`` -- can arrive from someone else's archive
or repository, so a symlink planted in their place must not redirect a write or a delete outside: each is
checked with ``lstat`` right before use (:func:`require_real_folder`, :func:`real_folder_below`), and
deletes in the working tree open every folder on the way with ``O_NOFOLLOW`` (:func:`delete_below`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from modelops_bundle.core.errors import BundleError, ConfigError, LockedError, UsageError


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def describe_os_error(action: str, path: Path | str, exc: OSError) -> str:
    """A one-line message for an OS error that names the file and says why, in words."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM):
        reason = "permission denied"
    elif exc.errno == errno.EROFS:
        reason = "read-only file system"
    elif exc.errno == errno.ENOSPC:
        reason = "no space left on device"
    return f"cannot {action} {path}: {reason}"


def create_temp_file(directory: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """``tempfile.mkstemp`` without :mod:`tempfile`: a new file (mode 0600) under a random name in
    ``directory``, opened for writing; returns ``(fd, path)``. Importing ``tempfile`` loads ``random``
    (and with it OpenSSL) and ``shutil`` -- about 10 ms of every command that saves its stat cache."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _attempt in range(100):
        name = os.path.join(directory, f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            return os.open(name, flags, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(directory))


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o644, replace: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, fsync folder).

    ``replace=False`` writes a file that must not exist yet: the temp file is hard-linked onto the name,
    which fails with :class:`FileExistsError` if someone made it meanwhile -- nothing is ever overwritten."""
    directory = path.parent
    try:
        fd, tmp_name = create_temp_file(directory, f".{path.name}.", ".tmp")
    except OSError as exc:
        raise BundleError(describe_os_error("write", path, exc)) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        if replace:
            os.replace(tmp_name, path)
        else:
            os.link(tmp_name, path)
            os.unlink(tmp_name)
    except FileExistsError:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise BundleError(describe_os_error("write", path, exc)) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(directory)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, *, what: str = "project", wait: bool = True) -> Iterator[None]:
    """Hold an advisory ``flock`` on ``lock_path`` for the duration of the block.

    Commands that change project state take it; a second command waits for the first (or, with
    ``wait=False``, fails with :class:`LockedError`). The lock dies with the process, so a killed
    command never leaves a stale lock behind.
    """
    import fcntl

    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        raise UsageError(describe_os_error(f"lock the {what} at", lock_path, exc)) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            raise LockedError(f"another modelops-bundle command is working on this {what} ({lock_path})") from exc
        yield
    finally:
        os.close(fd)  # closing releases the lock


# ------------------------------------------------------------------------------ no symlinked folders


class SymlinkedFolderError(ConfigError):
    """A folder the tool writes, renames or deletes in is a symlink (or not a folder). Exit code 2:
    the project's (or the cache's) files are not as the tool left them."""


def require_real_folder(path: Path, *, create: bool = False, mode: int = 0o777) -> Path:
    """``path`` itself is a folder, not a symlink to one (``lstat``); with ``create`` a missing one is made.

    Raises :class:`SymlinkedFolderError` naming the path. A missing folder without ``create`` passes
    (whoever writes into it then fails on its own)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if not create:
            return path
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            pass
        except OSError as exc:
            raise BundleError(describe_os_error("create", path, exc)) from exc
        st = os.lstat(path)
    except OSError as exc:
        raise BundleError(describe_os_error("inspect", path, exc)) from exc
    if stat.S_ISLNK(st.st_mode):
        raise SymlinkedFolderError(
            f"{path} is a symlink; modelops-bundle never writes or deletes through a symlinked folder",
            hint=f"replace the symlink with a real folder (rm {path}) and run the command again",
        )
    if not stat.S_ISDIR(st.st_mode):
        raise SymlinkedFolderError(f"{path} is not a folder", hint=f"move it away ({path}) and run the command again")
    return path


def real_folder_below(anchor: Path, *parts: str, create: bool = False) -> Path:
    """``anchor/part1/part2/...`` with every folder below ``anchor`` checked by
    :func:`require_real_folder` (``anchor`` itself is where the user or configuration put it)."""
    path = anchor
    for part in parts:
        path = require_real_folder(path / part, create=create)
    return path


def symlink_on_the_way(root: Path, rel_folder: str, checked: dict[str, str | None]) -> str | None:
    """The first folder of ``rel_folder`` (below ``root``) that is a symlink or not a folder, or ``None``;
    one ``lstat`` per distinct folder, memoised in ``checked``, iteratively (any depth)."""
    if not rel_folder:
        return None
    parts = rel_folder.split("/")
    for depth in range(1, len(parts) + 1):
        folder = "/".join(parts[:depth])
        verdict = checked.get(folder, "")
        if verdict == "":
            try:
                st = os.lstat(os.path.join(root, folder))
                verdict = None if stat.S_ISDIR(st.st_mode) else folder
            except FileNotFoundError:
                verdict = None  # created later as a real folder
            except OSError:
                verdict = folder
            checked[folder] = verdict
        if verdict is not None:
            return verdict
    return None


_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def delete_below(root: Path, rels: list[str]) -> list[tuple[str, str]]:
    """Delete files below ``root``, then the folders they leave empty (never ``root``): every folder on
    the way is opened with ``O_NOFOLLOW`` relative to its parent (``openat``), so a folder replaced by a
    symlink -- ``data/raw -> /elsewhere/raw`` -- is refused instead of resolved. Returns ``(path, why)``
    of the files not deleted; a missing file is not a failure."""
    failures: list[tuple[str, str]] = []
    emptied: set[str] = set()
    for rel in rels:
        parts = rel.split("/")
        try:
            fd = _open_folder_chain(root, parts[:-1])
        except _Refused as refused:
            failures.append((rel, str(refused)))
            continue
        except FileNotFoundError:
            continue
        try:
            os.unlink(parts[-1], dir_fd=fd)
        except FileNotFoundError:
            continue
        except IsADirectoryError:
            failures.append((rel, "a folder, not a file"))
            continue
        except OSError as exc:
            failures.append((rel, exc.strerror or str(exc)))
            continue
        finally:
            os.close(fd)
        for depth in range(len(parts) - 1, 0, -1):
            emptied.add("/".join(parts[:depth]))
    for folder in sorted(emptied, key=lambda rel: rel.count("/"), reverse=True):
        parent, _, name = folder.rpartition("/")
        try:
            fd = _open_folder_chain(root, parent.split("/") if parent else [])
        except (_Refused, OSError):
            continue
        try:
            os.rmdir(name, dir_fd=fd)
        except OSError:
            pass  # not empty (untracked files stay), or already gone
        finally:
            os.close(fd)
    return failures


class _Refused(Exception):
    pass


def _open_folder_chain(root: Path, parts: list[str]) -> int:
    """A descriptor of ``root/parts...``, each folder opened with ``O_NOFOLLOW`` from its parent."""
    fd = os.open(root, _FOLDER_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))
    for depth, part in enumerate(parts, 1):
        try:
            child = os.open(part, _FOLDER_FLAGS, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                where = "/".join(parts[:depth])
                raise _Refused(f"{where} is a symlink or not a folder (deletes never go through symlinks)") from None
            raise
        os.close(fd)
        fd = child
    return fd
