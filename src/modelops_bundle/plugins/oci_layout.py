"""Built-in plugin ``oci-layout``: the registry backend for an OCI Image Layout directory (the embedded default).

Only the hook lives here; the backend class (``plugins/registry_layout.py``) is imported when a command first
needs a registry, so loading the plugin at start-up costs nothing.
"""

from __future__ import annotations

from typing import Any

from modelops_bundle import hookimpl


@hookimpl(trylast=True)
def mops_registry_backends() -> list[type[Any]]:
    from modelops_bundle.plugins.registry_layout import OciLayoutRegistry

    return [OciLayoutRegistry]
