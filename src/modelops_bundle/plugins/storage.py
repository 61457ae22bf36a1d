"""Built-in plugin ``storage``: the blob-storage providers ``local``, ``fsspec``, ``azure``, ``s3``, ``gcs``, ``oci``.

Only the hook lives here; the provider classes (and the storage core they build on) are imported when a
command first asks for a provider, so loading this plugin at start-up costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelops_bundle import hookimpl

if TYPE_CHECKING:
    from modelops_bundle.core.storage import StorageProvider


@hookimpl(trylast=True)
def mops_storage_providers() -> Sequence[type[StorageProvider]]:
    """The built-in providers. ``trylast``: a plugin's provider of the same name replaces one of these."""
    from modelops_bundle.plugins.storage_azure import AzureProvider
    from modelops_bundle.plugins.storage_fsspec import FsspecUrlProvider, LocalProvider
    from modelops_bundle.plugins.storage_gcs import GcsProvider
    from modelops_bundle.plugins.storage_oci import OciStorageProvider
    from modelops_bundle.plugins.storage_s3 import S3Provider

    return [LocalProvider, FsspecUrlProvider, AzureProvider, S3Provider, GcsProvider, OciStorageProvider]
