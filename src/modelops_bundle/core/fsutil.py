"""Safe file-system primitives: atomic writes and the project lock.

Every metadata write goes through :func:`atomic_write_bytes` (temp file in the same folder, fsync,
rename, fsync of the folder), so a crash leaves either the old or the new file, never a torn one.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from modelops_bundle.core.errors import BundleError, LockedError, UsageError


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


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, fsync folder)."""
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
        os.replace(tmp_name, path)
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
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
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
