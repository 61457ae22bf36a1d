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


def _check_relpath(value: str) -> str:
    reason = invalid_reason(value)
    if reason:
        raise ValueError(f"{value!r}: {reason}")
    return value


def _check_digest(value: str) -> str:
    if not _DIGEST.match(value):
        raise ValueError(f"{value!r} is not a digest ('<algorithm>:<hex>')")
    return value


RelPath = Annotated[str, AfterValidator(_check_relpath)]
Digest = Annotated[str, AfterValidator(_check_digest)]


class SyncStateSchema(BaseModel):
    """``state.json``: the last synced side of the 3-way comparison (upstream-compatible keys)."""

    model_config = ConfigDict(extra="forbid")

    last_push_digest: Digest | None = None
    last_pull_digest: Digest | None = None
    last_synced_ref: str | None = None
    last_synced_digest: Digest | None = None
    known_digests: list[Digest] = Field(default_factory=list, max_length=1000)
    last_synced_files: dict[RelPath, Digest] = Field(default_factory=dict)
