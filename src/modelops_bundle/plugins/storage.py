"""Built-in plugin ``storage``: the blob-storage providers ``local``, ``fsspec``, ``azure``, ``s3``, ``gcs``, ``oci``.

Only the hook lives here, and it returns lazy stand-ins: a provider's module (and the storage core and SDK
wrappers it builds on) is imported when a command opens that provider, so neither start-up nor choosing a
provider (its ``schemes`` and ``is_registry_tier`` are declared here) imports any of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops_bundle import hookimpl

if TYPE_CHECKING:
    from modelops_bundle.plugin import LazyProviderClass

MOPS_PLUGIN_API = "1.0"

_PACKAGE = "modelops_bundle.plugins"


@hookimpl(trylast=True)
def mops_storage_providers() -> list[LazyProviderClass]:
    """The built-in providers. ``trylast``: a plugin's provider of the same name replaces one of these."""
    from modelops_bundle.plugin import LazyProviderClass

    def _lazy(name: str, target: str, schemes: tuple[str, ...], *, is_registry_tier: bool = False) -> LazyProviderClass:
        return LazyProviderClass(name, f"{_PACKAGE}.{target}", schemes=schemes, is_registry_tier=is_registry_tier)

    return [
        _lazy("local", "storage_fsspec:LocalProvider", ("local",)),
        _lazy("fsspec", "storage_fsspec:FsspecUrlProvider", ()),
        _lazy("azure", "storage_azure:AzureProvider", ("az", "abfs", "abfss")),
        _lazy("s3", "storage_s3:S3Provider", ("s3", "s3a")),
        _lazy("gcs", "storage_gcs:GcsProvider", ("gs", "gcs")),
        _lazy("oci", "storage_oci:OciStorageProvider", (), is_registry_tier=True),
    ]
