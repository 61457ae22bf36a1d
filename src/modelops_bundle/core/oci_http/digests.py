"""Digests and verified blob I/O: every byte read from a registry is checked before anyone uses it.

Writes go to a uniquely named partial file beside the destination and are renamed only after the size
and digest match, so a destination path either holds verified bytes or does not exist.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from modelops_bundle.core.errors import IntegrityError, RegistryError
from modelops_bundle.core.reference import DIGEST_RE

if TYPE_CHECKING:
    pass


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Read once at import (the main thread): ``os.umask`` can only be read by setting it, which is not
#: safe to do later from worker threads. Partial files get the mode a plain ``open`` would give.
FILE_MODE = 0o666 & ~_current_umask()

#: Read/write granularity for streaming; large enough for hashlib to release the GIL usefully.
CHUNK = 1024 * 1024


def split_digest(digest: str) -> tuple[str, str]:
    """``(algorithm, hex)`` of a well-formed digest; anything else (e.g. a path trick) is refused."""
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise IntegrityError(f"malformed digest {digest!r}: expected sha256:<64 hex> or sha512:<128 hex>")
    algorithm, _, hexpart = digest.partition(":")
    return algorithm, hexpart


# hashlib (OpenSSL, 2-3 ms to load) is imported on first use: a status that only reads a tag needs none.


def new_hash(digest: str) -> Any:
    """A fresh hash object for the algorithm ``digest`` is made with (the one checking routine,
    :func:`modelops_bundle.core.hashing.new_content_hash`)."""
    from modelops_bundle.core.hashing import new_content_hash

    return new_content_hash(split_digest(digest)[0])


def sha256_digest(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def check(digest: str, size: int | None, actual_digest: str, actual_size: int, what: str) -> None:
    """Raise :class:`IntegrityError` when the bytes seen do not match what names them."""
    if size is not None and actual_size != size:
        raise IntegrityError(f"{what}: expected {size} bytes, got {actual_size}")
    if actual_digest != digest:
        raise IntegrityError(f"{what}: content digest {actual_digest} does not match {digest}")


def verify_bytes(data: bytes, digest: str, size: int | None, what: str) -> bytes:
    hasher = new_hash(digest)
    hasher.update(data)
    check(digest, size, f"{split_digest(digest)[0]}:{hasher.hexdigest()}", len(data), what)
    return data


def partial_file(destination: Path) -> tuple[BinaryIO, Path]:
    """An open, uniquely named hidden file beside ``destination`` (same filesystem, so rename is atomic)."""
    from modelops_bundle.core.fsutil import create_temp_file

    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, name = create_temp_file(destination.parent, f".{destination.name}.", ".partial")
    os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; blobs and pulled files should be readable as usual
    return os.fdopen(fd, "wb"), Path(name)


def write_verified(
    chunks: Iterable[bytes],
    destination: Path,
    digest: str,
    size: int | None,
    what: str,
    *,
    on_bytes: Callable[[int], None] | None = None,
    fsync: bool = False,
) -> int:
    """Stream ``chunks`` to a partial file, verify size and digest, then rename onto ``destination``.

    Returns the number of bytes written. ``fsync`` makes the bytes durable before the rename makes
    them visible (for stores whose names promise content). On any failure the partial file is removed and
    ``destination`` is untouched.
    """
    hasher = new_hash(digest)
    algorithm = split_digest(digest)[0]
    handle, partial = partial_file(destination)
    written = 0
    try:
        with handle:
            for chunk in chunks:
                if not chunk:
                    continue
                written += len(chunk)
                if size is not None and written > size:
                    raise IntegrityError(f"{what}: more than the expected {size} bytes")
                hasher.update(chunk)
                handle.write(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        check(digest, size, f"{algorithm}:{hasher.hexdigest()}", written, what)
        os.replace(partial, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return written


def read_chunks(handle: BinaryIO, chunk: int = CHUNK) -> Iterable[bytes]:
    while True:
        block = handle.read(chunk)
        if not block:
            return
        yield block


class Readable(Protocol):
    def read(self, n: int, /) -> bytes: ...


def read_limited(handle: Readable, limit: int, what: str) -> bytes:
    """Read the whole stream, refusing more than ``limit`` bytes (never trusting a declared size)."""
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise RegistryError(f"{what} is larger than the {limit}-byte limit")
    return data
