"""Fetching a version's files: path safety first, then downloads into staging, every byte verified.

Every path of an index is checked before anything is fetched (:func:`check_version_paths`: no ``.git``,
no project metadata but the model registry), and every destination folder before anything is written
(:func:`check_destinations`: no write through a symlink, no folder replaced). Raw layers are downloaded
by the registry backend (verified against their digests), packs are unpacked with strict member checks
and a bound against gzip bombs, blob-stored files come from the blob store (verified by it), and any
file whose index digest is not the layer's own is hashed once more. Pull, ensure, materialisation and
``verify --remote`` all fetch through :func:`fetch_to_staging`.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import stat as stat_module
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from modelops_bundle.core.errors import BundleError, ConflictError, IntegrityError, StorageError
from modelops_bundle.core.fsutil import describe_os_error
from modelops_bundle.core.hashing import ProgressFactory, file_matches, new_content_hash
from modelops_bundle.core.index import BundleIndex, IndexEntry
from modelops_bundle.core.packaging import PACK_MEDIA_TYPE, BlobFetcher, Descriptor
from modelops_bundle.core.project import META_DIR, REGISTRY_REL
from modelops_bundle.core.registry import RegistryBackend, TransferStats

if TYPE_CHECKING:
    from modelops_bundle.core.model_registry import Registry
    from modelops_bundle.core.versions import RemoteVersion

#: The only project-metadata file a version may carry (the model registry travels with the bundle).
ALLOWED_META_FILES = frozenset({REGISTRY_REL})
_COPY_CHUNK = 1024 * 1024

# ------------------------------------------------------------------------------------- path safety


def check_version_paths(index: BundleIndex, *, source: str, allow_meta: frozenset[str] = ALLOWED_META_FILES) -> None:
    """Refuse paths no version may write: into ``.git`` or into project metadata (except the registry).

    The index parser has already refused absolute paths, ``..``, control characters, duplicates and
    file/folder clashes.
    """
    for entry in index.files:
        parts = entry.path.split("/")
        if any(part.lower() == ".git" for part in parts):
            raise IntegrityError(f"{source}: refusing to write into a .git folder: {entry.path}")
        if parts[0] == META_DIR and entry.path not in allow_meta:
            raise IntegrityError(f"{source}: refusing to write project metadata: {entry.path}")


def check_destinations(root: Path, paths: Iterable[str], *, deleting: Iterable[str] = ()) -> None:
    """No write may pass through a symlink or a non-folder, nor replace a folder; raises ConflictError."""
    going = set(deleting)
    problems: list[str] = []
    checked: dict[str, str | None] = {}
    for rel in paths:
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in checked:
                checked[folder] = _folder_problem(root / folder, folder, going)
            if checked[folder]:
                problems.append(f"{rel}: {checked[folder]}")
                break
        else:
            with contextlib.suppress(FileNotFoundError):
                if stat_module.S_ISDIR(os.lstat(root / rel).st_mode):
                    problems.append(f"{rel}: a folder is in the way")
    if problems:
        shown = "; ".join(problems[:10]) + (f" (and {len(problems) - 10} more)" if len(problems) > 10 else "")
        raise ConflictError(f"cannot write {len(problems)} file(s) safely: {shown}")


def _folder_problem(path: Path, rel: str, going: set[str]) -> str | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return describe_os_error("inspect", rel, exc)
    if stat_module.S_ISLNK(st.st_mode):
        return f"{rel} is a symlink (writes never go through symlinks)"
    if not stat_module.S_ISDIR(st.st_mode) and rel not in going:
        return f"{rel} is a file, not a folder"
    return None


# -------------------------------------------------------------------------------------- fetching


class _LimitedHashingReader:
    """Reads a decompressed stream, hashing it and refusing more than ``limit`` bytes (gzip bombs)."""

    def __init__(self, stream: Any, limit: int, what: str) -> None:
        self.stream = stream
        self.limit = limit
        self.what = what
        self.hash = new_content_hash("sha256")  # a layer's content digest: sha256, as push makes it
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.stream.read(size if size >= 0 else self.limit + 1 - self.count)
        self.count += len(data)
        if self.count > self.limit:
            raise IntegrityError(f"{self.what}: unpacks to more bytes than its files account for")
        self.hash.update(data)
        return data


def _tar_bound(entries: Iterable[IndexEntry]) -> int:
    """Most bytes an honest pack of ``entries`` unpacks to: data and headers (PAX ones too), padding."""
    total = 20 * 512
    for entry in entries:
        total += -(-entry.size // 512) * 512 + 3 * 512 + 2 * (-(-(len(entry.path.encode()) + 64) // 512) * 512)
    return total


def _unpack_all(work: Sequence[tuple[Path, Descriptor, Mapping[str, IndexEntry], Mapping[str, Path]]]) -> None:
    """:func:`unpack_pack` of every downloaded pack, several at once (gunzip and sha256 release the GIL:
    a pull of 100,000 small files spent half its time unpacking one pack after another), each archive
    deleted once unpacked. The first failure is raised after the running unpacks finish."""
    from modelops_bundle.core.packaging import pack_threads

    def one(item: tuple[Path, Descriptor, Mapping[str, IndexEntry], Mapping[str, Path]]) -> None:
        archive, layer, members, wanted = item
        unpack_pack(archive, layer, members, wanted)
        archive.unlink()

    if len(work) <= 1 or pack_threads() == 1:
        for item in work:
            one(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=pack_threads(), thread_name_prefix="mops-unpack") as pool:
        for future in [pool.submit(one, item) for item in work]:
            future.result()


def unpack_pack(
    archive: Path,
    layer: Descriptor,
    members: Mapping[str, IndexEntry],
    wanted: Mapping[str, Path],
) -> None:
    """Unpack the ``wanted`` members of a pack to their staging paths, checking everything.

    Members must be regular files, each exactly once, named and sized as the index says; the files'
    digests and the uncompressed tar's digest (``layer``'s content digest) must match.
    """
    what = f"pack {layer.digest}"
    seen: set[str] = set()
    try:
        with gzip.open(archive, "rb") as stream:
            reader = _LimitedHashingReader(stream, _tar_bound(members.values()), what)
            # Stream mode ("r|") reads sequentially: tarfile needs only read().
            with tarfile.open(fileobj=cast(IO[bytes], reader), mode="r|") as tar:
                for member in tar:
                    name = member.name
                    if not member.isreg():
                        raise IntegrityError(f"{what}: member {name!r} is not a regular file")
                    entry = members.get(name)
                    if entry is None or name in seen:
                        raise IntegrityError(f"{what}: unexpected member {name!r}")
                    seen.add(name)
                    if member.size != entry.size:
                        raise IntegrityError(f"{what}: {name} has {member.size} bytes, the index says {entry.size}")
                    target = wanted.get(name)
                    if target is not None:
                        source = tar.extractfile(member)
                        assert source is not None
                        _write_verified(source, target, entry)
            while reader.read(_COPY_CHUNK):
                pass  # the tar's end padding counts towards its digest
    except (OSError, EOFError, tarfile.TarError, zlib.error) as exc:
        raise IntegrityError(f"{what}: corrupt pack ({exc})") from exc
    missing = set(members) - seen
    if missing:
        raise IntegrityError(f"{what}: lacks {len(missing)} file(s) the index places in it, e.g. {min(missing)}")
    if "sha256:" + reader.hash.hexdigest() != layer.content_digest:
        raise IntegrityError(f"{what}: its tar does not match the content digest {layer.content_digest}")


def _write_verified(source: Any, target: Path, entry: IndexEntry) -> None:
    digest = new_content_hash(entry.algorithm)
    size = 0
    try:
        out = open(target, "wb")  # noqa: SIM115 - closed below; write errors are reported as such
    except OSError as exc:
        raise BundleError(describe_os_error("write", target, exc)) from exc
    with out:
        while chunk := source.read(_COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            try:
                out.write(chunk)
            except OSError as exc:
                raise BundleError(describe_os_error("write", target, exc)) from exc
    if size != entry.size or f"{entry.algorithm}:{digest.hexdigest()}" != entry.digest:
        raise IntegrityError(f"{entry.path}: bytes do not match the index digest {entry.digest}")


def verify_file(path: Path, entry: IndexEntry) -> bool:
    """True when ``path`` holds exactly ``entry``'s bytes."""
    return entry.algorithm == entry.digest.partition(":")[0] and file_matches(path, entry.digest, entry.size)


def fetch_to_staging(
    backend: RegistryBackend,
    version: RemoteVersion,
    entries: list[IndexEntry],
    staging: Path,
    *,
    jobs: int,
    progress: ProgressFactory | None,
    blob_fetcher: BlobFetcher | None,
    stats: TransferStats | None = None,
) -> dict[str, Path]:
    """Download, unpack and verify ``entries`` into ``staging``; returns ``{path: staged file}``.

    ``stats``, when given, accumulates what was transferred (registry blobs and blob-store files)."""
    repository = version.reference.repository
    layers = {layer.content_digest: layer for layer in version.manifest.layers}
    staged = {entry.path: staging / f"f{number}" for number, entry in enumerate(entries)}
    raw_downloads: dict[str, tuple[str, int, Path]] = {}
    raw_copies: list[tuple[Path, Path]] = []
    packs: dict[str, list[IndexEntry]] = {}
    blob_tier = [entry for entry in entries if entry.storage == "blob"]
    unverified: list[IndexEntry] = []
    for entry in entries:
        if entry.storage == "blob":
            continue
        layer = layers[entry.layer or ""]
        if layer.media_type == PACK_MEDIA_TYPE:
            packs.setdefault(layer.content_digest, []).append(entry)
            continue
        if layer.digest in raw_downloads:  # two files with the same bytes: one download, one copy
            raw_copies.append((raw_downloads[layer.digest][2], staged[entry.path]))
        else:
            raw_downloads[layer.digest] = (layer.digest, layer.size, staged[entry.path])
        if entry.algorithm != "sha256":
            unverified.append(entry)  # the backend verified the sha256 layer digest, not this one
    pack_files = {digest: staging / f"p{number}.tar.gz" for number, digest in enumerate(sorted(packs))}
    downloads = list(raw_downloads.values()) + [
        (layers[digest].digest, layers[digest].size, path) for digest, path in pack_files.items()
    ]
    if blob_tier and blob_fetcher is None:
        raise StorageError(
            f"this version keeps {len(blob_tier)} file(s) in blob storage (e.g. {blob_tier[0].path}), "
            "and no blob store is configured for this environment"
        )
    sink = progress("downloading", "blobs") if progress else None
    if sink is not None:
        sink.start(len(downloads), sum(size for _, size, _ in downloads))
    try:
        if downloads:
            got = backend.get_blobs_to_files(repository, downloads, jobs=jobs, progress=sink)
            if stats is not None:
                stats.downloaded_blobs += got.downloaded_blobs
                stats.downloaded_bytes += got.downloaded_bytes
    finally:
        if sink is not None:
            sink.close()
    for source, target in raw_copies:
        shutil.copyfile(source, target)
    all_members: dict[str, dict[str, IndexEntry]] = {}
    for entry in version.index.files:
        if entry.storage == "oci" and entry.layer in packs:
            all_members.setdefault(entry.layer, {})[entry.path] = entry
    _unpack_all(
        [
            (path, layers[digest], all_members[digest], {entry.path: staged[entry.path] for entry in packs[digest]})
            for digest, path in pack_files.items()
        ]
    )
    if blob_tier:
        assert blob_fetcher is not None
        fetch_many = getattr(blob_fetcher, "fetch_many", None)
        if fetch_many is not None:  # concurrent, and the store verifies size and digest before placing
            fetch_many([(entry, staged[entry.path]) for entry in blob_tier], jobs=jobs)
        else:
            for entry in blob_tier:
                blob_fetcher(entry, staged[entry.path])
                unverified.append(entry)
        if stats is not None:
            stats.extra["blob_files"] = stats.extra.get("blob_files", 0) + len(blob_tier)
            stats.extra["blob_bytes"] = stats.extra.get("blob_bytes", 0) + sum(entry.size for entry in blob_tier)
    for entry in unverified:
        if not verify_file(staged[entry.path], entry):
            raise IntegrityError(f"{entry.path}: downloaded bytes do not match the index digest {entry.digest}")
    return staged


def place(
    root: Path, staged: Mapping[str, Path], entries: Mapping[str, IndexEntry]
) -> list[tuple[str, os.stat_result]]:
    """Rename each staged file onto its path (folders created as needed), with the index's mode."""
    placed: list[tuple[str, os.stat_result]] = []
    for rel in sorted(staged):
        target = root / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(staged[rel], entries[rel].mode)
            os.replace(staged[rel], target)
            placed.append((rel, os.stat(target)))
        except OSError as exc:
            raise BundleError(describe_os_error("write", target, exc)) from exc
    return placed


# ------------------------------------------------------------------------------------ version files


def fetch_version_file(backend: RegistryBackend, version: RemoteVersion, rel: str) -> bytes | None:
    """One registry-stored file of a version, verified (``None`` when the version does not hold it)."""
    from pathlib import Path

    entry = next((item for item in version.index.files if item.path == rel), None)
    if entry is None or entry.storage != "oci":
        return None
    with tempfile.TemporaryDirectory(prefix="mops-file-") as tmp:
        staged = fetch_to_staging(backend, version, [entry], Path(tmp), jobs=1, progress=None, blob_fetcher=None)
        return staged[rel].read_bytes()


def version_registry(backend: RegistryBackend, version: RemoteVersion) -> Registry | None:
    """The model registry a version carries, or ``None`` when it has none."""
    from modelops_bundle.core.model_registry import parse_registry_bytes

    data = fetch_version_file(backend, version, REGISTRY_REL)
    return None if data is None else parse_registry_bytes(data, f"{version.pinned}:{REGISTRY_REL}")
