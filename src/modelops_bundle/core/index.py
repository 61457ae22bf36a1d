"""The bundle index: the manifest's config blob, naming every file of a version with its own digest.

Schema (``schemaVersion`` 1, media type :data:`INDEX_MEDIA_TYPE`, the upstream name)::

    {"mediaType": "application/vnd.modelops.bundle.index.v1+json", "schemaVersion": 1,
     "files": [{"path": "data/a.csv", "size": 12, "digest": "sha256:...", "algorithm": "sha256",
                "storage": "oci", "mode": 420, "layer": "sha256:..."},
               {"path": "big.bin", ..., "storage": "blob", "blobRef": {"uri": "..."}}]}

* ``files`` is a list sorted by path, not a mapping: JSON parsers silently keep the last of two equal
  keys, and a duplicate path must be refused, not hidden.
* ``mode`` is normalised to ``0o644`` or ``0o755`` (git's rule: only the executable bit travels), so the
  same content gives the same index whatever the author's umask.
* ``layer`` is the *content* digest of the layer holding the file: the file digest itself for a raw
  layer, the sha256 of the uncompressed tar (ORAS's ``io.deis.oras.content.digest``) for a packed one.
  It does not depend on the gzip implementation, so the index -- and "is this version up to date" --
  is the same on every machine even where zlib builds differ.
* Canonical bytes: sorted keys, no whitespace, UTF-8, no timestamps. The same files give the same
  index digest; the creation time lives in the manifest annotations instead.

Reading is strict (:func:`parse_index`): anything malformed raises :class:`IntegrityError` naming the
problem, before a single file is written.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelops_bundle.core.errors import IntegrityError
from modelops_bundle.core.paths import invalid_reason

INDEX_MEDIA_TYPE = "application/vnd.modelops.bundle.index.v1+json"
INDEX_SCHEMA_VERSION = 1

#: Hash algorithms an index may use, with the length of their hex digests.
KNOWN_ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
#: Bounds that keep a hostile index from exhausting memory or disk before validation ends.
MAX_FILE_BYTES = 1 << 42  # 4 TiB per file
MAX_INDEX_FILES = 500_000
MAX_INDEX_BYTES = 128 * 1024 * 1024
MAX_PATH_BYTES = 4096
MAX_URI_CHARS = 4096

MODE_FILE = 0o644
MODE_EXECUTABLE = 0o755

StorageTier = Literal["oci", "blob"]

_LAYER_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


def normalise_mode(mode: int) -> int:
    """``0o755`` when any executable bit is set, else ``0o644``."""
    return MODE_EXECUTABLE if mode & 0o111 else MODE_FILE


def digest_problem(digest: str, algorithm: str | None = None) -> str | None:
    """Why ``digest`` is not a well-formed ``<algorithm>:<hex>`` of a known algorithm, or ``None``."""
    name, sep, hexdigest = digest.partition(":")
    if not sep:
        return f"malformed digest {digest!r}"
    length = KNOWN_ALGORITHMS.get(name)
    if length is None:
        return f"unknown digest algorithm {name!r} in {digest!r}"
    if algorithm is not None and name != algorithm:
        return f"digest {digest!r} does not use the declared algorithm {algorithm!r}"
    if len(hexdigest) != length or any(ch not in "0123456789abcdef" for ch in hexdigest):
        return f"malformed {name} digest {digest!r}"
    return None


class BlobRef(BaseModel):
    """Where a blob-stored file lives (``prefix/ab/cd/<hex>`` in the environment's blob store)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str = Field(min_length=1, max_length=MAX_URI_CHARS)


class IndexEntry(BaseModel):
    """One file of a version. ``layer`` is set for registry-stored files, ``blobRef`` for blob-stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    size: int = Field(ge=0, le=MAX_FILE_BYTES)
    digest: str
    algorithm: str
    storage: StorageTier = "oci"
    mode: int = MODE_FILE
    layer: str | None = None
    blobRef: BlobRef | None = None  # the upstream JSON key

    def problem(self) -> str | None:
        """Why this entry cannot be trusted, or ``None`` (the checks pydantic types cannot express)."""
        reason = invalid_reason(self.path)
        if reason:
            return f"path {self.path!r}: {reason}"
        if len(self.path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
            return f"path {self.path[:80]!r}...: longer than {MAX_PATH_BYTES} bytes"
        if self.algorithm not in KNOWN_ALGORITHMS:
            return f"{self.path}: unknown hash algorithm {self.algorithm!r}"
        bad_digest = digest_problem(self.digest, self.algorithm)
        if bad_digest:
            return f"{self.path}: {bad_digest}"
        if self.mode not in (MODE_FILE, MODE_EXECUTABLE):
            return f"{self.path}: mode {self.mode:o} is not 644 or 755"
        if self.storage == "oci":
            if self.blobRef is not None:
                return f"{self.path}: a registry-stored file must not carry a blobRef"
            if self.layer is not None and not _LAYER_DIGEST.match(self.layer):
                return f"{self.path}: malformed layer digest {self.layer!r}"
        elif self.blobRef is None:
            return f"{self.path}: a blob-stored file needs a blobRef"
        elif self.layer is not None:
            return f"{self.path}: a blob-stored file must not name a layer"
        return None


class BundleIndex(BaseModel):
    """Every file of one version, sorted by path."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mediaType: Literal["application/vnd.modelops.bundle.index.v1+json"] = (
        "application/vnd.modelops.bundle.index.v1+json"
    )
    schemaVersion: Literal[1] = 1
    files: tuple[IndexEntry, ...] = ()

    def by_path(self) -> dict[str, IndexEntry]:
        return {entry.path: entry for entry in self.files}

    def digests(self) -> dict[str, str]:
        """``{path: digest}``: the shape of ``state.json``'s ``last_synced_files``."""
        return {entry.path: entry.digest for entry in self.files}

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.files)

    @property
    def algorithms(self) -> set[str]:
        return {entry.algorithm for entry in self.files}


def make_index(entries: Iterable[IndexEntry]) -> BundleIndex:
    """An index of ``entries`` in canonical (path) order; refuses invalid or duplicate entries."""
    ordered = tuple(sorted(entries, key=lambda entry: entry.path))
    check_entries(ordered, source="index being built")
    return BundleIndex(files=ordered)


def check_entries(entries: tuple[IndexEntry, ...], *, source: str) -> None:
    """Every entry valid, no duplicates, and no path that is both a file and a folder."""
    if len(entries) > MAX_INDEX_FILES:
        raise IntegrityError(f"{source}: {len(entries)} files, more than the limit of {MAX_INDEX_FILES}")
    seen: set[str] = set()
    for entry in entries:
        problem = entry.problem()
        if problem:
            raise IntegrityError(f"{source}: {problem}")
        if entry.path in seen:
            raise IntegrityError(f"{source}: duplicate path {entry.path!r}")
        seen.add(entry.path)
    for path in seen:
        parent = path.rpartition("/")[0]
        while parent:
            if parent in seen:
                raise IntegrityError(f"{source}: {parent!r} is both a file and a folder (holds {path!r})")
            parent = parent.rpartition("/")[0]


def canonical_bytes(index: BundleIndex) -> bytes:
    """The deterministic serialisation pushed as the config blob (sorted keys, compact, UTF-8)."""
    data = index.model_dump(mode="json", exclude_none=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def bytes_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_index(data: bytes, *, source: str) -> BundleIndex:
    """Validate index bytes fetched from a registry; :class:`IntegrityError` names the problem."""
    if len(data) > MAX_INDEX_BYTES:
        raise IntegrityError(f"{source}: index is {len(data)} bytes, more than the limit of {MAX_INDEX_BYTES}")
    try:
        raw = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{source}: index is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise IntegrityError(f"{source}: index is not a JSON object")
    if raw.get("mediaType") != INDEX_MEDIA_TYPE or raw.get("schemaVersion") != INDEX_SCHEMA_VERSION:
        raise IntegrityError(
            f"{source}: unsupported index (mediaType {raw.get('mediaType')!r}, "
            f"schemaVersion {raw.get('schemaVersion')!r}); expected {INDEX_MEDIA_TYPE} version "
            f"{INDEX_SCHEMA_VERSION}",
            hint="it may have been pushed by another tool or a newer modelops-bundle",
        )
    files = raw.get("files")
    if isinstance(files, list) and len(files) > MAX_INDEX_FILES:
        raise IntegrityError(f"{source}: {len(files)} files, more than the limit of {MAX_INDEX_FILES}")
    try:
        # JSON mode keeps strictness (no "12" for 12) while accepting arrays for tuples.
        index = BundleIndex.model_validate_json(data, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ())) or "(top level)"
        raise IntegrityError(f"{source}: invalid index at {where}: {error['msg']}") from None
    check_entries(index.files, source=source)
    for entry in index.files:
        if entry.storage == "oci" and entry.layer is None:
            raise IntegrityError(f"{source}: {entry.path}: a registry-stored file must name its layer")
    return index
