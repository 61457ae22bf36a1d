"""``.modelops-bundle/config.yaml``: the project's bundle configuration (upstream-compatible keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelops_bundle.core.fsutil import atomic_write_text
from modelops_bundle.core.validation import dump_yaml, load_yaml_model

DEFAULT_THRESHOLD_BYTES = 50 * 1024 * 1024


class StorageSettings(BaseModel):
    """Where files go: the registry (``oci``) or object storage (``blob``)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "blob", "oci"] = "auto"
    threshold_bytes: int = Field(DEFAULT_THRESHOLD_BYTES, ge=0)
    force_blob_patterns: list[str] = Field(default_factory=list)
    force_oci_patterns: list[str] = Field(default_factory=list)
    provider: str | None = None
    container: str | None = None
    prefix: str = ""


class BundleConfig(BaseModel):
    """The whole ``config.yaml``. Unknown keys are refused so that a typo cannot pass silently."""

    model_config = ConfigDict(extra="forbid")

    registry_ref: str
    default_tag: str = "latest"
    cache_dir: str | None = None
    hash_algorithm: str = "sha256"
    storage: StorageSettings = Field(default_factory=StorageSettings)

    @field_validator("registry_ref", "default_tag")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()


def load_config(path: Path) -> BundleConfig:
    return load_yaml_model(path, BundleConfig, what="bundle configuration")


def summary_data(config: BundleConfig) -> dict[str, Any]:
    """The plain values of :class:`~modelops_bundle.core.workspace.ConfigSummary` (memoised per file state)."""
    return {
        "registry_ref": config.registry_ref,
        "default_tag": config.default_tag,
        "hash_algorithm": config.hash_algorithm,
        "cache_dir": config.cache_dir,
        "storage": config.storage.model_dump(mode="json"),
    }


def render_config(config: BundleConfig) -> str:
    header = "# modelops-bundle configuration (see docs/formats.md)\n"
    return header + dump_yaml(config.model_dump(mode="json", exclude_none=True))


def save_config(path: Path, config: BundleConfig) -> None:
    atomic_write_text(path, render_config(config))
