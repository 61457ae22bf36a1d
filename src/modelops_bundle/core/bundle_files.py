"""Which project files a version holds: the tracked files plus the extra files plugins name.

Kept light (no pydantic, no tarfile): ``status`` needs it on every run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops_bundle.core.errors import PluginError

if TYPE_CHECKING:
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.project import Project
    from modelops_bundle.core.workspace import Workspace


def extra_files(host: PluginHost, project: Project) -> list[str]:
    """Files plugins say must travel in every version (``mops_extra_files``), validated and sorted.

    A failing plugin fails the command: a version silently missing the model registry is worse.
    """
    from modelops_bundle.core.paths import invalid_reason
    from modelops_bundle.core.plugins import describe_plugin

    answers = host.hook.mops_extra_files(project=project)
    for failed, exc in answers.failures:
        raise PluginError(f"plugin {describe_plugin(host, failed)} failed in mops_extra_files: {exc}")
    paths: set[str] = set()
    for plugin, result in answers:
        for rel in result or ():
            reason = invalid_reason(rel) if isinstance(rel, str) else "not a string"
            if reason:
                who = f"plugin {describe_plugin(host, plugin)}" if plugin else "a mops_extra_files hook wrapper"
                raise PluginError(f"{who} named an invalid extra file {rel!r}: {reason}")
            paths.add(rel)
    return sorted(paths)


def bundle_paths(host: PluginHost, ws: Workspace) -> list[str]:
    """Everything a version of the working tree holds, sorted: the tracked files plus the extra files."""
    import bisect

    from modelops_bundle.core.paths import is_sorted

    tracked = ws.tracked()  # validated: no duplicates; sorted unless edited by hand
    extra = extra_files(host, ws.project)
    if not is_sorted(tracked):
        return sorted(set(tracked) | set(extra))
    # The usual case, on every status: a few extra files, already tracked or not, and no set or sort
    # of the (tens of thousands of) tracked paths.
    missing = [rel for rel in extra if (i := bisect.bisect_left(tracked, rel)) == len(tracked) or tracked[i] != rel]
    return sorted([*tracked, *missing]) if missing else list(tracked)
