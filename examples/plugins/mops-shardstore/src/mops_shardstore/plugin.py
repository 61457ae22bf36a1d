"""The ``shardstore`` blob-storage provider: a content-addressed folder, sharded one level deep.

modelops-bundle hands a provider keys of the form ``<prefix>/<algorithm>/ab/cd/<hex>``. This store keeps
them as ``<root>/<prefix>/<algorithm>/<hex[:3]>/<hex[3:]>`` -- one level of 4096 shards, as git keeps its
objects, instead of the built-in ``local`` provider's two levels of 256: fewer folders on a network share
whose directory listings are slow. Keys that are not content addresses (a provider must store any valid
key) are kept under ``<root>/other/<key>``.

Every object is written under a temporary name and renamed, so a reader never sees half an object; the
folder can be shared by several machines (``storage.path`` in each one's environment file)::

    storage:
      provider: shardstore
      path: /mnt/lab-share/shardstore     # default: $MODELOPS_HOME/shardstore
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, ClassVar

from modelops_bundle.plugin import ByteCounter, ProviderSettings, StorageProvider, check_key, hookimpl

#: The plugin API this plugin is written against (docs/plugins.md#compatibility).
MOPS_PLUGIN_API = "1.0"

CHUNK = 1024 * 1024
SHARD = 3
#: ``<prefix...>/<algorithm>/ab/cd/<hex>`` as made by :func:`modelops_bundle.plugin.blob_key`.
CONTENT_KEY = re.compile(
    r"^(?:(?P<prefix>.+)/)?(?P<alg>[a-z0-9][a-z0-9_-]*)/[0-9a-f]{2}/[0-9a-f]{2}/(?P<hex>[0-9a-f]{8,})$"
)


def shard_path(key: str) -> str:
    """Where ``key`` lives below the store's root (a relative POSIX path)."""
    match = CONTENT_KEY.match(check_key(key))
    if match is None or match["hex"][:4] != key.split("/")[-3] + key.split("/")[-2]:
        return f"other/{key}"
    prefix = f"{match['prefix']}/" if match["prefix"] else ""
    hexdigest = match["hex"]
    return f"{prefix}{match['alg']}/{hexdigest[:SHARD]}/{hexdigest[SHARD:]}"


class ShardStoreProvider(StorageProvider):
    name: ClassVar[str] = "shardstore"
    schemes: ClassVar[tuple[str, ...]] = ("shardstore",)

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        from modelops_bundle.plugin import expand_path, modelops_home

        base = expand_path(settings.path) if settings.path else modelops_home(settings.environ) / "shardstore"
        self.root = base.absolute()

    def describe(self) -> str:
        return f"shardstore folder {self.root}"

    def uri(self, key: str) -> str:
        return f"shardstore://{check_key(key)}"

    def parse_uri(self, uri: str) -> str:
        scheme, sep, key = uri.partition("://")
        if not sep or scheme.lower() != "shardstore":
            raise self.foreign_uri(uri, "shardstore://")
        return check_key(key)

    def path_of(self, key: str) -> Path:
        return self.root / shard_path(key)

    def _stat_size(self, key: str) -> int | None:
        try:
            info = self.path_of(key).stat()
        except FileNotFoundError:
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def _upload(self, path: Path, key: str, size: int, on_bytes: ByteCounter) -> None:
        target = self.path_of(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".incoming.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as sink, open(path, "rb") as source:
                _copy(source, sink, on_bytes)
            os.chmod(temporary, 0o444)  # content-addressed objects never change: read-only on disk too
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def _download(self, key: str, partial: Path, size: int, on_bytes: ByteCounter) -> None:
        with open(self.path_of(key), "rb") as source, open(partial, "wb") as sink:
            _copy(source, sink, on_bytes)

    def _container_exists(self) -> bool | None:
        return self.root.is_dir()


def _copy(source: BinaryIO, sink: BinaryIO, on_bytes: ByteCounter) -> None:
    while chunk := source.read(CHUNK):
        sink.write(chunk)
        on_bytes(len(chunk))


@hookimpl
def mops_storage_providers() -> Sequence[type[StorageProvider]]:
    return [ShardStoreProvider]
