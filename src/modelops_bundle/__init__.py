"""modelops-bundle: reproducible, content-addressed packaging of simulation-model projects.

Plugins import only :data:`hookimpl` from here; everything else lives in ``core`` (pure logic),
``plugins`` (built-in hook implementations) and ``cli`` (the command line).
"""

from __future__ import annotations

import pluggy

__version__ = "0.2.0"

#: The pluggy project name; hook names carry the ``mops_`` prefix.
PROJECT_NAME = "modelops_bundle"

#: Entry-point group third-party plugins register under.
ENTRY_POINT_GROUP = "modelops_bundle"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations: ``@hookimpl`` above a function named after a hook."""

__all__ = ["ENTRY_POINT_GROUP", "PROJECT_NAME", "__version__", "hookimpl"]
