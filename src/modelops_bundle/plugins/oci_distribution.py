"""Built-in plugin ``oci-distribution``: the registry backend for any HTTP registry (OCI distribution API).

Only the hook lives here; the backend class (``plugins/registry_distribution.py``) is imported when a command first
uses it, so loading the plugin at start-up costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops_bundle import hookimpl

if TYPE_CHECKING:
    from modelops_bundle.plugin import LazyProviderClass

MOPS_PLUGIN_API = "1.0"


@hookimpl(trylast=True)
def mops_registry_backends() -> list[LazyProviderClass]:
    from modelops_bundle.plugin import LazyProviderClass

    return [
        LazyProviderClass("oci-distribution", "modelops_bundle.plugins.registry_distribution:OciDistributionRegistry")
    ]
