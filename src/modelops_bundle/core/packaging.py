"""Packaging: storage tier per file, layer planning, deterministic packs, and the OCI manifest.

The rules (documented for users in docs/formats.md):

Storage tier (the ``storage:`` section of ``config.yaml``, :func:`decide_tier`)
    ``force_oci_patterns`` win, then ``force_blob_patterns``, then ``mode``: ``oci`` keeps every file in
    the registry, ``blob`` sends every file to blob storage, ``auto`` sends files of at least
    ``threshold_bytes`` to blob storage -- but only when the environment has a blob store; without one,
    ``auto`` keeps everything in the registry. A pattern without ``/`` also matches file names anywhere.

Layers (:func:`plan_layers`)
    * a file of at least :data:`RAW_LAYER_BYTES` (1 MiB) is one raw layer (digest = the file's sha256,
      media type :data:`RAW_LAYER_MEDIA_TYPE`, ``org.opencontainers.image.title`` = its path): ``oras pull``
      writes it at its path and an unchanged file is never uploaded again;
    * up to :data:`ROOT_RAW_FILES` small files at the project root are raw layers too (ORAS directory
      layers need a folder);
    * other small files are packed per top-level folder into tar+gzip layers following ORAS's directory
      convention (title = the folder, ``io.deis.oras.content.unpack: "true"``, ``io.deis.oras.content.digest``
      = sha256 of the tar), so ``oras pull`` unpacks them at their paths. Inside a folder, files sorted by
      path are cut into packs after every path whose hash is 0 modulo :data:`PACK_TARGET_FILES` (and at
      :data:`PACK_MAX_FILES` files or :data:`PACK_MAX_BYTES` bytes): boundaries depend on paths, not on
      content, so a one-file change re-uploads one pack of about 64 files;
    * at most :data:`MAX_LAYERS` (480) layers (ECR caps manifests at 500): the pack targets double until the plan
      fits, and beyond :data:`MAX_RAW_LAYERS` the smallest "large" files are packed instead.

Packs are deterministic: entries sorted by path, regular files only, mtime 0, uid/gid 0, empty owner
names, the mode from the index, PAX format; gzip with mtime 0 and no file name, at level 1 -- or level 0
(stored) when a sample of the largest members does not compress (:func:`pack_level`: a function of the members'
bytes alone, so the same files still give the same pack). Level 6 compressed CSV-like text at about
18 MB/s on one core against 106 MB/s for level 1, for a tenth fewer bytes, and spent as long on random
bytes that do not compress at all; a push of 100,000 files spent three quarters of its time in gzip.

Manifest: image-spec 1.1, ``artifactType`` :data:`ARTIFACT_TYPE`, config = the bundle index. Manifests
pushed by v0.1.1 (no ``artifactType``, one raw layer per file) are read too (core/upstream.py).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import tarfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, cast

from modelops_bundle.core.errors import BundleError, IntegrityError, PluginError, RegistryError
from modelops_bundle.core.fsutil import atomic_write_bytes, describe_os_error
from modelops_bundle.core.globs import glob_to_regex
from modelops_bundle.core.index import (
    INDEX_MEDIA_TYPE,
    BundleIndex,
    IndexEntry,
    bytes_digest,
    digest_problem,
    normalise_mode,
)
from modelops_bundle.core.registry import OCI_MANIFEST, TransferStats
from modelops_bundle.core.upstream import MAX_UPSTREAM_LAYERS, is_upstream_layout
from modelops_bundle.core.upstream import check_against_manifest as check_upstream_index
from modelops_bundle.core.upstream import check_layers as check_upstream_layers

if TYPE_CHECKING:
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.settings import StoragePolicy
    from modelops_bundle.core.workspace import FileInfo

ARTIFACT_TYPE = "application/vnd.modelops.bundle.v1"
RAW_LAYER_MEDIA_TYPE = "application/vnd.modelops.bundle.file.v1"
PACK_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"

ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_UNPACK = "io.deis.oras.content.unpack"
ANNOTATION_CONTENT_DIGEST = "io.deis.oras.content.digest"
ANNOTATION_FILES = "io.modelops.bundle.files"
ANNOTATION_SIZE = "io.modelops.bundle.size"

RAW_LAYER_BYTES = 1024 * 1024
ROOT_RAW_FILES = 32
PACK_TARGET_FILES = 64  # a power of two: coarser levels keep a subset of the boundaries
PACK_MAX_FILES = 512
PACK_MAX_BYTES = 8 * 1024 * 1024
MAX_LAYERS = 480  # under ECR's 500; more, smaller packs: a one-file change re-uploads less (issue 19)
MAX_RAW_LAYERS = 192
#: Manifests we read may hold more layers than we write, but not without bound.
MAX_MANIFEST_LAYERS = 1000

#: Bump when the bytes of a pack for the same files would change (it keys the pack cache).
PACK_FORMAT = 2
GZIP_LEVEL = 1
#: :func:`pack_level` compresses the first :data:`SAMPLE_BYTES` of the :data:`SAMPLE_MEMBERS` largest members;
#: a pack whose sample shrinks by less than :data:`STORE_BELOW_SAVING` is stored uncompressed.
SAMPLE_BYTES = 64 * 1024
SAMPLE_MEMBERS = 16
STORE_BELOW_SAVING = 0.05

# ------------------------------------------------------------------------------------------ tier policy


def pattern_matches(pattern: str, path: str) -> bool:
    """Project glob syntax; a pattern without ``/`` also matches the file name in any folder."""
    if glob_to_regex(pattern).match(path):
        return True
    return "/" not in pattern and bool(glob_to_regex(pattern).match(path.rpartition("/")[2]))


def decide_tier(entry: IndexEntry, policy: StoragePolicy, *, blob_available: bool) -> str:
    """``"oci"`` or ``"blob"`` for one file (see the module docstring for the rule)."""
    if any(pattern_matches(p, entry.path) for p in policy.force_oci_patterns):
        return "oci"
    if any(pattern_matches(p, entry.path) for p in policy.force_blob_patterns):
        return "blob"
    if policy.mode in ("oci", "blob"):
        return policy.mode
    if blob_available and entry.size >= policy.threshold_bytes:
        return "blob"
    return "oci"


def tiered_entries(
    host: PluginHost, files: Iterable[FileInfo], algorithm: str, policy: StoragePolicy, *, blob_available: bool
) -> list[IndexEntry]:
    """Index entries for scanned files, each with the tier the ``mops_storage_tier`` hooks decide."""
    entries: list[IndexEntry] = []
    for info in files:
        entry = IndexEntry(
            path=info.rel, size=info.size, digest=info.digest, algorithm=algorithm, mode=normalise_mode(info.mode)
        )
        tier = host.hook.mops_storage_tier(entry=entry, policy=policy, blob_available=blob_available) or "oci"
        if tier not in ("oci", "blob"):
            raise PluginError(f"mops_storage_tier returned {tier!r} for {entry.path} (expected 'oci' or 'blob')")
        entries.append(entry if tier == "oci" else entry.replace(storage="blob"))
    return entries


class BlobUploader(Protocol):
    """Sends blob-tier files to object storage during a push (provided once blob storage is configured)."""

    def uri_for(self, entry: IndexEntry) -> str:
        """Where ``entry``'s bytes live (content-addressed, so known before the upload)."""
        ...

    def upload(
        self,
        root: Path,
        entries: Sequence[IndexEntry],
        *,
        jobs: int,
        hashed_at: Mapping[str, tuple[int, int, int, int]] | None = None,
    ) -> TransferStats:
        """Upload the files the store lacks (streaming); returns the files and bytes sent and the files
        the store had. ``hashed_at``: each path's ``(device, inode, size, mtime_ns)`` when its digest
        was computed, where known."""
        ...

    def describe(self) -> str:
        """The provider and where it keeps files, for reports (``local folder /...``)."""
        ...

    def missing(self, entries: Sequence[IndexEntry]) -> list[IndexEntry]:
        """The entries (one per digest) whose bytes the store lacks: what a dry run would send."""
        ...


#: Fetches one blob-tier file to a staging path during pull/ensure; the caller verifies its digest.
BlobFetcher = Callable[[IndexEntry, Path], None]


# ---------------------------------------------------------------------------------------- layer plan


@dataclass(frozen=True)
class PlannedLayer:
    """One layer: a raw file (one path) or a pack (paths sorted). ``title`` ``None``: untitled pack."""

    kind: Literal["raw", "pack"]
    paths: tuple[str, ...]
    title: str | None


@dataclass(frozen=True)
class LayerPlan:
    layers: tuple[PlannedLayer, ...]


def _path_hash(path: str) -> int:
    return int.from_bytes(hashlib.blake2b(path.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def _chunk(entries: Sequence[IndexEntry], target: int, max_files: int, max_bytes: int) -> list[list[IndexEntry]]:
    """Cut sorted ``entries`` after each path whose hash is 0 modulo ``target``, or at the caps."""
    chunks: list[list[IndexEntry]] = []
    current: list[IndexEntry] = []
    size = 0
    mask = target - 1
    for entry in entries:
        current.append(entry)
        size += entry.size
        if (_path_hash(entry.path) & mask) == 0 or len(current) >= max_files or size >= max_bytes:
            chunks.append(current)
            current, size = [], 0
    if current:
        chunks.append(current)
    return chunks


def plan_layers(entries: Sequence[IndexEntry]) -> LayerPlan:
    """The built-in layer plan for registry-stored ``entries`` (see the module docstring)."""
    ordered = sorted(entries, key=lambda entry: entry.path)
    large = [entry for entry in ordered if entry.size >= RAW_LAYER_BYTES]
    if len(large) > MAX_RAW_LAYERS:
        large = sorted(large, key=lambda entry: (-entry.size, entry.path))[:MAX_RAW_LAYERS]
    raw_paths = {entry.path for entry in large}
    small = [entry for entry in ordered if entry.path not in raw_paths]
    root_small = [entry for entry in small if "/" not in entry.path]
    if len(root_small) <= ROOT_RAW_FILES and len(raw_paths) + len(root_small) <= MAX_RAW_LAYERS:
        raw_paths.update(entry.path for entry in root_small)
        small = [entry for entry in small if "/" in entry.path]
    groups: dict[str | None, list[IndexEntry]] = {}
    for entry in small:
        folder, sep, _ = entry.path.partition("/")
        groups.setdefault(folder if sep else None, []).append(entry)
    raw_layers = [PlannedLayer("raw", (path,), path) for path in sorted(raw_paths)]
    budget = MAX_LAYERS - len(raw_layers)
    packs = _plan_packs(groups, budget)
    if packs is None:  # too many folders for one pack each: pack across folders, untitled
        packs = _plan_packs({None: small}, budget) or []
    return LayerPlan(tuple(raw_layers + packs))


def _plan_packs(groups: Mapping[str | None, list[IndexEntry]], budget: int) -> list[PlannedLayer] | None:
    target, max_files, max_bytes = PACK_TARGET_FILES, PACK_MAX_FILES, PACK_MAX_BYTES
    for _level in range(32):
        packs = [
            PlannedLayer("pack", tuple(entry.path for entry in chunk), folder)
            for folder in sorted(groups, key=lambda name: (name is None, name or ""))
            for chunk in _chunk(groups[folder], target, max_files, max_bytes)
        ]
        if len(packs) <= budget:
            return packs
        if len(packs) == len(groups):
            return None  # one pack per folder already
        target, max_files, max_bytes = target * 2, max_files * 2, max_bytes * 2
    return None


def check_plan(plan: LayerPlan, entries: Sequence[IndexEntry], *, source: str) -> None:
    """A plan (possibly from a plugin) must hold every registry-stored file exactly once."""
    wanted = {entry.path for entry in entries}
    seen: set[str] = set()
    for layer in plan.layers:
        if layer.kind == "raw" and len(layer.paths) != 1:
            raise PluginError(f"{source}: a raw layer must hold exactly one file, not {len(layer.paths)}")
        if not layer.paths:
            raise PluginError(f"{source}: planned an empty layer")
        for path in layer.paths:
            if path not in wanted:
                raise PluginError(f"{source}: planned {path!r}, which is not a registry-stored file")
            if path in seen:
                raise PluginError(f"{source}: planned {path!r} in two layers")
            seen.add(path)
    missing = wanted - seen
    if missing:
        raise PluginError(f"{source}: left {len(missing)} file(s) out of every layer, e.g. {min(missing)!r}")
    if len(plan.layers) > MAX_MANIFEST_LAYERS:
        raise PluginError(f"{source}: planned {len(plan.layers)} layers (at most {MAX_MANIFEST_LAYERS})")


# --------------------------------------------------------------------------------------------- packs


@dataclass(frozen=True)
class PackInfo:
    """A built pack: digest and size of the uncompressed tar and of the gzip blob."""

    tar_digest: str
    tar_size: int
    blob_digest: str
    blob_size: int


def pack_key(entries: Sequence[IndexEntry]) -> str:
    """What determines a pack's bytes: format, and each member's path, mode, size and digest."""
    digest = hashlib.sha256(f"modelops-pack-{PACK_FORMAT}\n".encode())
    for entry in entries:
        digest.update(f"{entry.path}\0{entry.mode:o}\0{entry.size}\0{entry.digest}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...


class _HashingWriter:
    """A write-only stream that hashes and counts what passes through to ``target`` (if any)."""

    def __init__(self, target: _Sink | None) -> None:
        self.target = target
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        if self.target is not None:
            self.target.write(data)
        return len(data)

    def flush(self) -> None:
        if self.target is not None:
            self.target.flush()


class _VerifyingReader:
    """Reads a member's bytes for the tar while checking they still match the index digest."""

    def __init__(self, handle: IO[bytes], algorithm: str) -> None:
        from modelops_bundle.core.hashing import new_content_hash

        self.handle = handle
        self.hash = new_content_hash(algorithm)

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.hash.update(data)
        return data


def member_info(entry: IndexEntry) -> tarfile.TarInfo:
    """The deterministic tar header of one member."""
    info = tarfile.TarInfo(entry.path)
    info.size = entry.size
    info.mode = entry.mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def pack_level(root: Path, ordered: Sequence[IndexEntry]) -> int:
    """The gzip level of a pack: :data:`GZIP_LEVEL`, or 0 (stored) when the first bytes of its largest
    members -- which hold most of its bytes -- do not compress: random data, or data compressed already
    (parquet, npz, netCDF). Depends on the members' bytes only, so a pack stays reproducible."""
    largest = sorted(ordered, key=lambda entry: (-entry.size, entry.path))[:SAMPLE_MEMBERS]
    sample = bytearray()
    for entry in sorted(largest, key=lambda entry: entry.path):
        try:
            with open(root / entry.path, "rb") as handle:
                sample += handle.read(SAMPLE_BYTES)
        except OSError as exc:
            raise BundleError(describe_os_error("read", entry.path, exc)) from exc
    if len(sample) < 512:  # too little to judge, and too little to matter
        return GZIP_LEVEL
    saving = 1 - len(zlib.compress(bytes(sample), GZIP_LEVEL)) / len(sample)
    return GZIP_LEVEL if saving >= STORE_BELOW_SAVING else 0


def write_pack(root: Path, entries: Sequence[IndexEntry], destination: Path | None) -> PackInfo:
    """Write the pack of ``entries`` (read from ``root``) to ``destination``; ``None`` only digests it.

    Every member is checked against its index digest as it is read, so a file edited after it was
    hashed fails the push instead of travelling with a wrong digest. Safe to call from several threads
    at once (zlib and sha256 release the GIL: packs build in parallel).
    """
    ordered = sorted(entries, key=lambda entry: entry.path)
    level = pack_level(root, ordered) if destination is not None else GZIP_LEVEL
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(destination, "wb")) if destination is not None else None
        blob = _HashingWriter(out)
        compressor = (
            stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=blob, compresslevel=level, mtime=0))
            if destination is not None
            else None
        )
        tar_stream = _HashingWriter(compressor)
        # tarfile needs only write() in stream mode ("w|"); cast for the IO[bytes] annotation.
        with tarfile.open(fileobj=cast(IO[bytes], tar_stream), mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for entry in ordered:
                absolute = root / entry.path
                try:
                    with open(absolute, "rb") as handle:
                        reader = _VerifyingReader(handle, entry.algorithm)
                        tar.addfile(member_info(entry), reader)
                except OSError as exc:
                    raise BundleError(describe_os_error("read", entry.path, exc)) from exc
                if f"{entry.algorithm}:{reader.hash.hexdigest()}" != entry.digest:
                    raise IntegrityError(
                        f"{entry.path} changed after it was hashed; run the command again",
                    )
        if compressor is not None:
            compressor.close()
        if out is not None:
            out.flush()
            os.fsync(out.fileno())
    tar_digest = "sha256:" + tar_stream.hash.hexdigest()
    if destination is None:
        return PackInfo(tar_digest, tar_stream.size, "", 0)
    return PackInfo(tar_digest, tar_stream.size, "sha256:" + blob.hash.hexdigest(), blob.size)


def pack_threads() -> int:
    """Threads that build packs at once: one per CPU, at most 8 (each holds one pack's buffers)."""
    return max(1, min(8, os.cpu_count() or 1))


def write_packs(root: Path, work: Sequence[tuple[Sequence[IndexEntry], Path]]) -> list[PackInfo]:
    """:func:`write_pack` of each ``(entries, destination)``, on :func:`pack_threads` threads; the
    results in the order of ``work``. The first failure is raised once the running packs finish."""
    if len(work) <= 1 or pack_threads() == 1:
        return [write_pack(root, entries, destination) for entries, destination in work]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=pack_threads(), thread_name_prefix="mops-pack") as pool:
        futures = [pool.submit(write_pack, root, entries, destination) for entries, destination in work]
        return [future.result() for future in futures]


class PackCache:
    """``.modelops-bundle/cache/packs.json``: pack key -> digests, so an unchanged pack is not rebuilt.

    Only a cache: it is discarded when the pack format or the zlib build changes (a different zlib may
    compress the same tar to other bytes), and it keeps only the packs of the last push.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, PackInfo] = {}
        self.used: dict[str, PackInfo] = {}

    @staticmethod
    def _stamp() -> dict[str, Any]:
        return {
            "version": 1,
            "format": PACK_FORMAT,
            "zlib": zlib.ZLIB_RUNTIME_VERSION,
            "level": GZIP_LEVEL,
            "sample": ["largest", SAMPLE_BYTES, SAMPLE_MEMBERS, STORE_BELOW_SAVING],
        }

    @classmethod
    def load(cls, path: Path) -> PackCache:
        cache = cls(path)
        try:
            raw = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return cache
        if not isinstance(raw, dict) or raw.get("stamp") != cls._stamp() or not isinstance(raw.get("packs"), dict):
            return cache
        for key, value in raw["packs"].items():
            if isinstance(value, list) and len(value) == 4:
                tar_digest, tar_size, blob_digest, blob_size = value
                if (
                    isinstance(tar_size, int)
                    and isinstance(blob_size, int)
                    and isinstance(tar_digest, str)
                    and isinstance(blob_digest, str)
                    and not digest_problem(tar_digest, "sha256")
                    and not digest_problem(blob_digest, "sha256")
                ):
                    cache.entries[key] = PackInfo(tar_digest, tar_size, blob_digest, blob_size)
        return cache

    def get(self, key: str) -> PackInfo | None:
        info = self.entries.get(key)
        if info is not None:
            self.used[key] = info
        return info

    def put(self, key: str, info: PackInfo) -> None:
        self.entries[key] = info
        self.used[key] = info

    def save(self) -> None:
        payload = {
            "stamp": self._stamp(),
            "packs": {
                key: [info.tar_digest, info.tar_size, info.blob_digest, info.blob_size]
                for key, info in sorted(self.used.items())
            },
        }
        with contextlib.suppress(BundleError, OSError):  # a cache that cannot be written costs speed only
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, json.dumps(payload, separators=(",", ":")).encode())


# ------------------------------------------------------------------------------------------ manifest


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return data

    @property
    def content_digest(self) -> str:
        """The layer's content digest as the index names it (the tar digest for a pack)."""
        if self.media_type == PACK_MEDIA_TYPE and self.annotations:
            return self.annotations.get(ANNOTATION_CONTENT_DIGEST, self.digest)
        return self.digest


def raw_layer_descriptor(path: str, digest: str, size: int) -> Descriptor:
    return Descriptor(RAW_LAYER_MEDIA_TYPE, digest, size, {ANNOTATION_TITLE: path})


def pack_descriptor(title: str | None, info: PackInfo) -> Descriptor:
    annotations = {ANNOTATION_UNPACK: "true", ANNOTATION_CONTENT_DIGEST: info.tar_digest}
    if title is not None:
        annotations[ANNOTATION_TITLE] = title
    return Descriptor(PACK_MEDIA_TYPE, info.blob_digest, info.blob_size, annotations)


def index_descriptor(index_bytes: bytes) -> Descriptor:
    return Descriptor(INDEX_MEDIA_TYPE, bytes_digest(index_bytes), len(index_bytes))


def build_manifest(config: Descriptor, layers: Sequence[Descriptor], annotations: Mapping[str, str]) -> bytes:
    """Manifest bytes (sorted keys, compact): the version digest is the sha256 of exactly these."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    if annotations:
        document["annotations"] = dict(sorted(annotations.items()))
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class BundleManifest:
    """A parsed manifest that was checked to be a modelops bundle."""

    digest: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    #: Pushed by modelops-bundle v0.1.1: raw per-file layers (:mod:`~modelops_bundle.core.upstream`).
    upstream: bool = False

    @property
    def created(self) -> str | None:
        return self.annotations.get(ANNOTATION_CREATED)


_SHA256 = re.compile(r"^sha256:[a-f0-9]{64}$")


def _descriptor(raw: Any, where: str, source: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise IntegrityError(f"{source}: {where} is not an object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    annotations = raw.get("annotations")
    if not isinstance(media_type, str) or not isinstance(digest, str) or type(size) is not int or size < 0:
        raise IntegrityError(f"{source}: {where} needs mediaType, digest and a non-negative size")
    if not _SHA256.match(digest):
        raise IntegrityError(f"{source}: {where} has an unsupported digest {digest!r}")
    if raw.get("urls"):
        raise IntegrityError(f"{source}: {where} is a foreign layer (urls); bundles never use them")
    if annotations is not None and (
        not isinstance(annotations, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items())
    ):
        raise IntegrityError(f"{source}: {where} has malformed annotations")
    return Descriptor(media_type, digest, size, annotations or None)


def parse_manifest(data: bytes, digest: str, media_type: str, *, source: str) -> BundleManifest:
    """Check that manifest bytes are a modelops bundle; :class:`RegistryError` when it is not ours."""
    if media_type != OCI_MANIFEST:
        raise RegistryError(f"{source} is not a modelops bundle (manifest media type {media_type})")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{source}: manifest is not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("schemaVersion") != 2:
        raise RegistryError(f"{source} is not an OCI image manifest (schemaVersion 2)")
    if raw.get("mediaType", OCI_MANIFEST) != OCI_MANIFEST:
        raise RegistryError(f"{source} is not a modelops bundle (mediaType {raw.get('mediaType')!r})")
    artifact_type = raw.get("artifactType")
    config = _descriptor(raw.get("config"), "config", source)
    if config.media_type != INDEX_MEDIA_TYPE or artifact_type not in (None, ARTIFACT_TYPE):
        raise RegistryError(
            f"{source} is not a modelops bundle (artifactType {artifact_type!r}, config {config.media_type})"
        )
    layers_raw = raw.get("layers")
    # A version pushed by v0.1.1: one raw layer per file (core/upstream.py).
    upstream = is_upstream_layout(artifact_type, layers_raw)
    limit = MAX_UPSTREAM_LAYERS if upstream else MAX_MANIFEST_LAYERS
    if not isinstance(layers_raw, list) or len(layers_raw) > limit:
        raise IntegrityError(f"{source}: manifest layers missing or more than {limit}")
    layers = tuple(_descriptor(layer, f"layer {number}", source) for number, layer in enumerate(layers_raw))
    if upstream:
        check_upstream_layers(layers, source=source)
    for number, layer in enumerate(() if upstream else layers):
        if layer.media_type == PACK_MEDIA_TYPE:
            content = (layer.annotations or {}).get(ANNOTATION_CONTENT_DIGEST, "")
            if not _SHA256.match(content):
                raise IntegrityError(f"{source}: packed layer {number} lacks a valid {ANNOTATION_CONTENT_DIGEST}")
        elif layer.media_type != RAW_LAYER_MEDIA_TYPE:
            raise IntegrityError(f"{source}: layer {number} has an unexpected media type {layer.media_type}")
    annotations = raw.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        raise IntegrityError(f"{source}: malformed manifest annotations")
    return BundleManifest(digest, config, layers, dict(annotations), artifact_type, upstream)


def check_index_against_manifest(index: BundleIndex, manifest: BundleManifest, *, source: str) -> None:
    """The index and its manifest must agree: each registry-stored file is in a layer the manifest
    lists (raw layers: same digest and size), and every layer holds at least one file. A version pushed
    by v0.1.1 is checked by its own rules (:func:`~modelops_bundle.core.upstream.check_against_manifest`)."""
    if index.upstream:
        check_upstream_index(index, manifest, source=source)
        return
    if manifest.upstream and manifest.layers:
        raise IntegrityError(f"{source}: index does not match manifest: the manifest is in the v0.1.1 format")
    layers: dict[str, Descriptor] = {}
    for layer in manifest.layers:
        layers.setdefault(layer.content_digest, layer)
    used: set[str] = set()
    for entry in index.files:
        if entry.storage != "oci":
            continue
        holder = layers.get(entry.layer or "")
        if holder is None:
            raise IntegrityError(f"{source}: index does not match manifest: {entry.path} is in no listed layer")
        used.add(holder.content_digest)
        if holder.media_type == RAW_LAYER_MEDIA_TYPE and (
            holder.size != entry.size or (entry.algorithm == "sha256" and holder.digest != entry.digest)
        ):
            raise IntegrityError(f"{source}: index does not match manifest: raw layer of {entry.path} differs")
    unused = [layer.digest for layer in manifest.layers if layer.content_digest not in used]
    if unused:
        raise IntegrityError(f"{source}: index does not match manifest: layer {unused[0]} holds no file")
