"""Built-in content hasher: SHA-256, streamed with a reusable 1 MiB buffer per thread.

``hashlib`` (OpenSSL, 2-3 ms to load) is imported when something is first hashed: a warm ``status``
resolves the hasher and hashes nothing.
"""

from __future__ import annotations

import threading
from typing import BinaryIO

from modelops_bundle import hookimpl

MOPS_PLUGIN_API = "1.0"

_CHUNK = 1024 * 1024


class Sha256Hasher:
    algorithm = "sha256"

    def __init__(self) -> None:
        self._local = threading.local()

    def _buffer(self) -> memoryview:
        view: memoryview | None = getattr(self._local, "view", None)
        if view is None:
            view = memoryview(bytearray(_CHUNK))
            self._local.view = view
        return view

    def digest_file(self, path: str) -> str:
        with open(path, "rb", buffering=0) as handle:
            return self.digest_fileobj(handle)

    def digest_fileobj(self, handle: BinaryIO) -> str:
        import hashlib

        digest = hashlib.sha256()
        view = self._buffer()
        readinto = handle.readinto  # type: ignore[attr-defined]
        while True:
            count = readinto(view)
            if not count:
                break
            digest.update(view[:count])
        return digest.hexdigest()

    def digest_bytes(self, data: bytes) -> str:
        import hashlib

        return hashlib.sha256(data).hexdigest()


@hookimpl(trylast=True)
def mops_file_hasher(algorithm: str) -> Sha256Hasher | None:
    return Sha256Hasher() if algorithm == "sha256" else None
