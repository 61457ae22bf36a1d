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

Reading is strict (:func:`.index_reading.parse_index`, :func:`index_from_json`): anything malformed
raises :class:`IntegrityError` naming the problem, before a single file is written. An index pushed by
modelops-bundle v0.1.1 (same media type, another shape) is read by :mod:`~modelops_bundle.core.upstream`
into the same structures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from modelops_bundle.core.errors import IntegrityError
from modelops_bundle.core.paths import invalid_reason

INDEX_MEDIA_TYPE = "application/vnd.modelops.bundle.index.v1+json"
INDEX_SCHEMA_VERSION = 1

#: Hash algorithms an index may use, with the length of their hex digests.
KNOWN_ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
#: Bounds that keep a hostile index from exhausting memory or disk before validation ends.
MAX_FILE_BYTES = 1 << 42  # 4 TiB per file
#: A version of a million files (issue 19) is about 230 MB of index; twice that is still refused.
MAX_INDEX_FILES = 2_000_000
MAX_INDEX_BYTES = 512 * 1024 * 1024
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
    if len(hexdigest) != length or hexdigest.strip("0123456789abcdef"):  # in C: an index names 1M of them
        return f"malformed {name} digest {digest!r}"
    return None


@dataclass(frozen=True, slots=True)
class BlobRef:
    """Where a blob-stored file lives (``prefix/ab/cd/<hex>`` in the environment's blob store)."""

    uri: str

    def to_json(self) -> dict[str, Any]:
        return {"uri": self.uri}


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One file of a version. ``layer`` is set for registry-stored files, ``blobRef`` for blob-stored.

    A plain frozen dataclass, not a pydantic model: a one-file push builds and serialises the index
    and must not pay pydantic's import (about 65 ms, decision 0014). Entries are checked by
    :func:`check_entries` (every index built or parsed goes through it) and :func:`index_from_json` checks
    the JSON types strictly.
    """

    path: str
    size: int
    digest: str
    algorithm: str
    storage: StorageTier = "oci"
    mode: int = MODE_FILE
    layer: str | None = None
    blobRef: BlobRef | None = None  # the upstream JSON key

    def replace(self, **changes: Any) -> IndexEntry:
        """A copy with ``changes`` applied (``entry.replace(storage="blob")``)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The entry as it appears in the index (absent optional keys left out)."""
        data: dict[str, Any] = {
            "path": self.path,
            "size": self.size,
            "digest": self.digest,
            "algorithm": self.algorithm,
            "storage": self.storage,
            "mode": self.mode,
        }
        if self.layer is not None:
            data["layer"] = self.layer
        if self.blobRef is not None:
            data["blobRef"] = self.blobRef.to_json()
        return data

    def problem(self) -> str | None:
        """Why this entry cannot be trusted, or ``None``."""
        if not isinstance(self.path, str):
            return f"path {self.path!r} is not a string"
        reason = invalid_reason(self.path)
        if reason:
            return f"path {self.path!r}: {reason}"
        if len(self.path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
            return f"path {self.path[:80]!r}...: longer than {MAX_PATH_BYTES} bytes"
        if not _is_int(self.size) or not 0 <= self.size <= MAX_FILE_BYTES:
            return f"{self.path}: size {self.size!r} is not a whole number of bytes up to {MAX_FILE_BYTES}"
        if self.algorithm not in KNOWN_ALGORITHMS:
            return f"{self.path}: unknown hash algorithm {self.algorithm!r}"
        bad_digest = digest_problem(self.digest, self.algorithm) if isinstance(self.digest, str) else "not a string"
        if bad_digest:
            return f"{self.path}: {bad_digest}"
        if self.mode not in (MODE_FILE, MODE_EXECUTABLE) or not _is_int(self.mode):
            return f"{self.path}: mode {self.mode!r} is not 0o644 or 0o755"
        if self.storage == "oci":
            if self.blobRef is not None:
                return f"{self.path}: a registry-stored file must not carry a blobRef"
            if self.layer is not None and not (isinstance(self.layer, str) and _LAYER_DIGEST.match(self.layer)):
                return f"{self.path}: malformed layer digest {self.layer!r}"
        elif self.storage != "blob":
            return f"{self.path}: storage {self.storage!r} is not 'oci' or 'blob'"
        elif self.blobRef is None:
            return f"{self.path}: a blob-stored file needs a blobRef"
        elif self.layer is not None:
            return f"{self.path}: a blob-stored file must not name a layer"
        elif not isinstance(self.blobRef.uri, str) or not 0 < len(self.blobRef.uri) <= MAX_URI_CHARS:
            return f"{self.path}: blobRef uri must be 1 to {MAX_URI_CHARS} characters"
        return None


@dataclass(frozen=True, slots=True)
class BundleIndex:
    """Every file of one version, sorted by path."""

    files: tuple[IndexEntry, ...] = ()
    mediaType: str = INDEX_MEDIA_TYPE
    schemaVersion: int = INDEX_SCHEMA_VERSION
    #: Read from a version pushed by modelops-bundle v0.1.1 (:mod:`~modelops_bundle.core.upstream`);
    #: not part of the JSON.
    upstream: bool = False

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

    def to_json(self) -> dict[str, Any]:
        return {
            "mediaType": self.mediaType,
            "schemaVersion": self.schemaVersion,
            "files": [entry.to_json() for entry in self.files],
        }


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
    return json.dumps(index.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def bytes_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def index_from_json(raw: dict[str, Any], *, source: str) -> BundleIndex:
    """The :class:`BundleIndex` of a decoded index of this format; :class:`IntegrityError` names the problem.
    (Reading index bytes of either format is :func:`.index_reading.parse_index`.)"""
    if raw.get("mediaType") != INDEX_MEDIA_TYPE or raw.get("schemaVersion") != INDEX_SCHEMA_VERSION:
        raise IntegrityError(
            f"{source}: unsupported index (mediaType {raw.get('mediaType')!r}, "
            f"schemaVersion {raw.get('schemaVersion')!r}); expected {INDEX_MEDIA_TYPE} version "
            f"{INDEX_SCHEMA_VERSION}",
            hint="it may have been pushed by another tool or a newer modelops-bundle",
        )
    index = BundleIndex(files=tuple(_entries_from_json(raw, source)))
    check_entries(index.files, source=source)
    for entry in index.files:
        if entry.storage == "oci" and entry.layer is None:
            raise IntegrityError(f"{source}: {entry.path}: a registry-stored file must name its layer")
    return index


_TOP_KEYS = frozenset({"mediaType", "schemaVersion", "files"})
_ENTRY_KEYS = frozenset({"path", "size", "digest", "algorithm", "storage", "mode", "layer", "blobRef"})
_REQUIRED_ENTRY_KEYS = ("path", "size", "digest", "algorithm")


def check_object(
    item: Any, where: str, *, allowed: frozenset[str], required: Iterable[str], invalid: Callable[[str, str], Exception]
) -> dict[str, Any]:
    """``item`` as an object with only ``allowed`` keys and every ``required`` one (for both index formats);
    else ``invalid(where, why)`` is raised, naming the first problem."""
    if not isinstance(item, dict):
        raise invalid(where, "must be an object")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise invalid(f"{where}.{unknown[0]}", "unknown key")
    for key in required:
        if key not in item:
            raise invalid(f"{where}.{key}", "missing")
    return item


def _entries_from_json(raw: dict[str, Any], source: str) -> Iterable[IndexEntry]:
    """Entries of a decoded index, every JSON type checked strictly (no ``"12"`` for ``12``, no
    ``true`` for ``1``, no unknown keys): the first problem raises, naming where it is."""

    def invalid(where: str, why: str) -> IntegrityError:
        return IntegrityError(f"{source}: invalid index at {where}: {why}")

    extra = sorted(set(raw) - _TOP_KEYS)
    if extra:
        raise invalid(extra[0], "unknown key")
    if not _is_int(raw.get("schemaVersion")):
        raise invalid("schemaVersion", "must be the whole number 1")
    files = raw.get("files", [])
    if not isinstance(files, list):
        raise invalid("files", "must be a list")
    if len(files) > MAX_INDEX_FILES:
        raise IntegrityError(f"{source}: {len(files)} files, more than the limit of {MAX_INDEX_FILES}")
    for number, item in enumerate(files):
        where = f"files.{number}"
        check_object(item, where, allowed=_ENTRY_KEYS, required=_REQUIRED_ENTRY_KEYS, invalid=invalid)
        for key in ("path", "digest", "algorithm"):
            if not isinstance(item[key], str):
                raise invalid(f"{where}.{key}", "must be a string")
        for key in ("size", "mode"):
            if key in item and not _is_int(item[key]):
                raise invalid(f"{where}.{key}", "must be a whole number")
        if not 0 <= item["size"] <= MAX_FILE_BYTES:
            raise invalid(f"{where}.size", f"must be between 0 and {MAX_FILE_BYTES}")
        storage = item.get("storage", "oci")
        if storage not in ("oci", "blob"):
            raise invalid(f"{where}.storage", "must be 'oci' or 'blob'")
        layer = item.get("layer")
        if layer is not None and not isinstance(layer, str):
            raise invalid(f"{where}.layer", "must be a string")
        blob_ref = item.get("blobRef")
        if blob_ref is not None:
            if not isinstance(blob_ref, dict) or set(blob_ref) != {"uri"} or not isinstance(blob_ref["uri"], str):
                raise invalid(f"{where}.blobRef", "must be an object with one string key, uri")
            if not 0 < len(blob_ref["uri"]) <= MAX_URI_CHARS:
                raise invalid(f"{where}.blobRef.uri", f"must be 1 to {MAX_URI_CHARS} characters")
            blob_ref = BlobRef(uri=blob_ref["uri"])
        yield IndexEntry(
            path=item["path"],
            size=item["size"],
            digest=item["digest"],
            algorithm=item["algorithm"],
            storage=storage,
            mode=item.get("mode", MODE_FILE),
            layer=layer,
            blobRef=blob_ref,
        )
