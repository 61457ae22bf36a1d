"""``verify``: check bytes against the digests that name them -- the working tree, the cache, a remote version.

* working tree: every file of the last synced version's index (``state.json``), or of ``REF``'s index,
  re-hashed in full (the stat cache is not trusted: a file damaged with its mtime kept is caught);
* cache: every object re-hashed; completed trees checked (see :meth:`BundleCache.verify`);
* remote: every layer of the version downloaded and verified (size, digest; packs unpacked and each
  member checked), every blob-stored file fetched and verified -- each failure reported on its own.
"""

from __future__ import annotations

import os
import stat as stat_module
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.errors import BundleError

if TYPE_CHECKING:
    from modelops_bundle.core.cache import BundleCache
    from modelops_bundle.core.packaging import BlobFetcher
    from modelops_bundle.core.registry import RegistryBackend
    from modelops_bundle.core.versions import RemoteVersion

_CHUNK = 1024 * 1024


@dataclass
class Finding:
    """One thing that is wrong."""

    scope: str  # worktree | cache | remote
    kind: str  # modified | missing | not-a-file | corrupt-object | damaged-tree | bad-version | missing-blob | ...
    path: str
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"scope": self.scope, "kind": self.kind, "path": self.path, "detail": self.detail}


@dataclass
class VerifyReport:
    checked: dict[str, int] = field(default_factory=dict)  # scope -> items checked
    findings: list[Finding] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # scope -> what was checked against
    signatures: dict[str, Any] | None = None  # ``--signature``: core.trust.SignatureReport.to_json()

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        data = {
            "ok": self.ok,
            "checked": self.checked,
            "sources": self.sources,
            "findings": [finding.to_json() for finding in self.findings],
        }
        if self.signatures is not None:
            data["signatures"] = self.signatures
        return data


def _digest_of(path: Path, algorithm: str) -> str:
    from modelops_bundle.core.hashing import file_digest

    return file_digest(path, algorithm)


def verify_tree(root: Path, expected: dict[str, str], report: VerifyReport, *, source: str) -> None:
    """Every path of ``expected`` ({path: digest}) below ``root`` holds exactly those bytes."""
    report.sources["worktree"] = source
    report.checked["worktree"] = len(expected)
    for rel in sorted(expected):
        path = root / rel
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            report.findings.append(Finding("worktree", "missing", rel))
            continue
        except OSError as exc:
            report.findings.append(Finding("worktree", "unreadable", rel, exc.strerror or str(exc)))
            continue
        if not stat_module.S_ISREG(st.st_mode):
            report.findings.append(Finding("worktree", "not-a-file", rel))
            continue
        algorithm = expected[rel].partition(":")[0]
        try:
            got = _digest_of(path, algorithm)
        except (OSError, ValueError) as exc:
            report.findings.append(Finding("worktree", "unreadable", rel, str(exc)))
            continue
        if got != expected[rel]:
            report.findings.append(Finding("worktree", "modified", rel, f"expected {expected[rel]}, found {got}"))


def verify_cache(cache: BundleCache, report: VerifyReport) -> None:
    report.sources["cache"] = str(cache.root)
    objects = sum(1 for _ in cache._all_objects())
    report.checked["cache"] = objects
    for problem in cache.verify():
        report.findings.append(Finding("cache", problem.kind, problem.path, problem.detail))


def verify_remote(
    backend: RegistryBackend, version: RemoteVersion, report: VerifyReport, *, blob_fetcher: BlobFetcher | None
) -> None:
    """Download and verify every layer (and blob-stored file) of ``version``, reporting each failure."""
    from modelops_bundle.core.fetch import fetch_to_staging

    report.sources["remote"] = str(version.pinned)
    by_layer: dict[str, list[Any]] = {}
    blob_tier = []
    for entry in version.index.files:
        if entry.storage == "blob":
            blob_tier.append(entry)
        else:
            by_layer.setdefault(entry.layer or "", []).append(entry)
    report.checked["remote"] = len(by_layer) + len(blob_tier) + 1
    try:
        if not backend.blob_exists(version.reference.repository, version.manifest.config.digest):
            report.findings.append(Finding("remote", "missing-blob", "index", version.manifest.config.digest))
    except BundleError as exc:
        report.findings.append(Finding("remote", "error", "index", exc.message))
    with tempfile.TemporaryDirectory(prefix="mops-verify-") as tmp:
        for number, (layer, entries) in enumerate(sorted(by_layer.items())):
            folder = Path(tmp) / f"l{number}"
            folder.mkdir()
            try:
                fetch_to_staging(backend, version, entries, folder, jobs=1, progress=None, blob_fetcher=None)
            except BundleError as exc:
                what = entries[0].path if len(entries) == 1 else f"{entries[0].path} (+{len(entries) - 1} in its pack)"
                report.findings.append(Finding("remote", "bad-layer", what, f"layer {layer}: {exc.message}"))
            finally:
                for child in folder.iterdir():
                    child.unlink()
        for number, entry in enumerate(blob_tier):
            folder = Path(tmp) / f"b{number}"
            folder.mkdir()
            try:
                fetch_to_staging(backend, version, [entry], folder, jobs=1, progress=None, blob_fetcher=blob_fetcher)
            except BundleError as exc:
                report.findings.append(Finding("remote", "bad-blob", entry.path, exc.message))
            finally:
                for child in folder.iterdir():
                    child.unlink()
