"""Built-in plugin ``oci-distribution``: the registry backend for any HTTP registry (OCI distribution API).

Only the hook lives here; the backend class (``plugins/registry_distribution.py``) is imported when a command first
needs a registry, so loading the plugin at start-up costs nothing.
"""

from __future__ import annotations

from typing import Any

from modelops_bundle import hookimpl


@hookimpl(trylast=True)
def mops_registry_backends() -> list[type[Any]]:
    from modelops_bundle.plugins.registry_distribution import OciDistributionRegistry

    return [OciDistributionRegistry]
