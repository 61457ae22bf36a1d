"""Pydantic schemas of the project's plain-text state files (tracked list, sync state).

Kept apart from the runtime types in :mod:`tracking` and :mod:`state` so that pydantic is imported only
when a file actually needs validating (it changed since it was last checked).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from modelops_bundle.core.paths import invalid_reason

_DIGEST = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
#: A digest of a known algorithm with exactly its number of lowercase hex digits: what ``state.json`` holds
#: (``sha256:xyz`` was accepted there, printed by ``status`` and compared as if it named a version).
_STRICT_DIGEST = re.compile(r"^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")


def _check_relpath(value: str) -> str:
    reason = invalid_reason(value)
    if reason:
        raise ValueError(f"{value!r}: {reason}")
    return value


def _check_digest(value: str) -> str:
    if not _DIGEST.match(value):
        raise ValueError(f"{value!r} is not a digest ('<algorithm>:<hex>')")
    return value


def _check_strict_digest(value: str) -> str:
    if not _STRICT_DIGEST.match(value):
        raise ValueError(f"{value!r} is not a digest ('sha256:' and 64 hex digits, or 'sha512:' and 128)")
    return value


RelPath = Annotated[str, AfterValidator(_check_relpath)]
Digest = Annotated[str, AfterValidator(_check_digest)]
StrictDigest = Annotated[str, AfterValidator(_check_strict_digest)]


class SyncStateSchema(BaseModel):
    """``state.json``: the last synced side of the 3-way comparison (upstream-compatible keys)."""

    model_config = ConfigDict(extra="forbid")

    last_push_digest: StrictDigest | None = None
    last_pull_digest: StrictDigest | None = None
    last_synced_ref: str | None = None
    last_synced_digest: StrictDigest | None = None
    known_digests: list[StrictDigest] = Field(default_factory=list, max_length=1000)
    last_synced_files: dict[RelPath, StrictDigest] = Field(default_factory=dict)
