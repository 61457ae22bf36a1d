"""What git knows about a project folder: source URL (credentials stripped), revision, dirty flag.

Used for manifest annotations and provenance. Read-only and bounded: ``GIT_OPTIONAL_LOCKS=0`` keeps
``git status`` from refreshing the index, and every call has a short timeout, so a slow or missing git
never holds up a push.
"""

from __future__ import annotations

import os
import re
import subprocess

#: git is asked three quick questions; a slow or hung git must not hold up a push.
GIT_TIMEOUT_S = 3.0

ANNOTATION_SOURCE = "org.opencontainers.image.source"
ANNOTATION_REVISION = "org.opencontainers.image.revision"
ANNOTATION_GIT_DIRTY = "io.modelops.bundle.git.dirty"


def _git(root: str, *args: str) -> str | None:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", "-C", root, *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


def public_url(url: str) -> str:
    """A remote URL without credentials (``https://user:token@host/x`` -> ``https://host/x``)."""
    return _USERINFO.sub(r"\g<scheme>", url)


def git_annotations(root: os.PathLike[str] | str) -> dict[str, str]:
    """Source, revision and dirty flag when ``root`` is inside a git checkout; empty otherwise.

    Read-only: ``GIT_OPTIONAL_LOCKS=0`` keeps ``git status`` from refreshing the index file.
    """
    folder = str(root)
    revision = _git(folder, "rev-parse", "--verify", "-q", "HEAD")
    if not revision:
        return {}
    annotations = {ANNOTATION_REVISION: revision}
    remote = _git(folder, "config", "--get", "remote.origin.url")
    if remote:
        annotations[ANNOTATION_SOURCE] = public_url(remote)
    status = _git(folder, "status", "--porcelain", "--untracked-files=no", "--", ".")
    if status is not None:
        annotations[ANNOTATION_GIT_DIRTY] = "true" if status else "false"
    return annotations
