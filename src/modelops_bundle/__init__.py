"""modelops-bundle: reproducible, content-addressed packaging of simulation-model projects.

Plugins import from :mod:`modelops_bundle.plugin`, the public plugin API (:data:`hookimpl` is also here,
for plugins written before that module existed); everything else lives in ``core`` (internal logic),
``plugins`` (built-in hook implementations) and ``cli`` (the command line).
"""

from __future__ import annotations

import pluggy

__version__ = "0.2.0"

#: The pluggy project name; hook names carry the ``mops_`` prefix.
PROJECT_NAME = "modelops_bundle"

#: Entry-point group third-party plugins register under.
ENTRY_POINT_GROUP = "modelops_bundle"

#: The version of the plugin API (:mod:`modelops_bundle.plugin` and the hooks), ``(MAJOR, MINOR)``: a minor
#: release only adds to it; anything else raises the major. A plugin declares the version it needs with
#: ``MOPS_PLUGIN_API = "MAJOR.MINOR"`` and is refused at load when this version does not provide it.
PLUGIN_API = (1, 0)

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations: ``@hookimpl`` above a function named after a hook."""

__all__ = ["ENTRY_POINT_GROUP", "PLUGIN_API", "PROJECT_NAME", "__version__", "hookimpl"]
