"""The ``oci`` storage provider: keep every file in the registry, offload nothing.

Selecting it (``storage.provider: oci``) is how a project or environment says "no blob storage". It is a
real provider so that selection, listing and messages work like for any other, but it stores nothing
itself: packaging checks :attr:`is_registry_tier` and puts every file into registry layers. A blob
transfer sent to it anyway is a programming or configuration mistake and fails with a clear message.
"""

from __future__ import annotations

from pathlib import Path

from modelops_bundle.plugin import ByteCounter, StorageProvider, UsageError


class OciStorageProvider(StorageProvider):
    name = "oci"
    is_registry_tier = True

    def describe(self) -> str:
        return "the OCI registry (no blob storage)"

    def _refuse(self) -> UsageError:
        return UsageError(
            "storage provider 'oci' keeps files in the registry: there is no blob storage to transfer to or from",
            hint="choose a blob provider (local, azure, s3, gcs) in the environment or storage.provider",
        )

    def uri(self, key: str) -> str:
        raise self._refuse()

    def parse_uri(self, uri: str) -> str:
        raise self.foreign_uri(uri, "(none)")

    def _stat_size(self, key: str) -> int | None:
        raise self._refuse()

    def _upload(self, path: Path, key: str, size: int, on_bytes: ByteCounter) -> None:
        raise self._refuse()

    def _download(self, key: str, partial: Path, size: int, on_bytes: ByteCounter) -> None:
        raise self._refuse()
