"""Built-in plugin ``oci-layout``: the registry backend for an OCI Image Layout directory (the embedded default).

Only the hook lives here; the backend class (``plugins/registry_layout.py``) is imported when a command first
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

    return [LazyProviderClass("oci-layout", "modelops_bundle.plugins.registry_layout:OciLayoutRegistry")]
