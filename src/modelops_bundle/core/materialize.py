"""Materialise versions through the shared cache (:mod:`modelops_bundle.core.cache`).

One :class:`Materializer` serves one environment (registry + blob store) and one cache. A version is
read by digest; its manifest and index are kept in the cache, so a completed tree is found again with
no registry traffic at all. Missing objects are fetched under the version's lock -- of many processes
asking at once, one downloads each blob and the rest find the completion marker when the lock frees.

Selective materialisation (``models=[...]``) keeps only what the named models (or targets) need: their
code closure and data as the version's ``registry.yaml`` records them, the registry itself, and the
project's root metadata (:data:`PROJECT_METADATA`: pyproject, lock files, requirements).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.cache import BundleCache, ObjectSpec, read_marker, specs_of, version_specs, write_marker
from modelops_bundle.core.errors import BundleError, IntegrityError, RegistryError, UsageError
from modelops_bundle.core.fsutil import real_folder_below
from modelops_bundle.core.project import REGISTRY_REL
from modelops_bundle.core.reference import Reference
from modelops_bundle.core.selection import select_paths

if TYPE_CHECKING:
    from modelops_bundle.core.index import IndexEntry
    from modelops_bundle.core.model_registry import Registry
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.registry import RegistryBackend
    from modelops_bundle.core.settings import Environment
    from modelops_bundle.core.storage import BlobTransfers
    from modelops_bundle.core.versions import RemoteVersion

DEFAULT_JOBS = 5


@dataclass
class Materialized:
    """The outcome of one :meth:`Materializer.materialize`."""

    digest: str
    path: Path
    files: int
    selection: list[str] | None = None  # the model/target ids, when selective
    from_cache: bool = False  # the tree was complete already: nothing fetched, nothing linked
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "path": str(self.path),
            "files": self.files,
            "models": self.selection,
            "from_cache": self.from_cache,
            "stats": self.stats,
        }


def selection_key(ids: Sequence[str]) -> str:
    """A short, stable name for a selection (trees of one version are ``<hex>+<key>``)."""
    text = "\n".join(sorted(set(ids)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Materializer:
    """Fetch and check out versions of one environment through one cache."""

    def __init__(
        self,
        cache: BundleCache,
        host: PluginHost,
        environment: Environment,
        environ: Mapping[str, str],
        *,
        jobs: int = DEFAULT_JOBS,
        pinned: str | None = None,
    ) -> None:
        self.cache = cache
        self.host = host
        self.environment = environment
        self.environ = environ
        self.jobs = jobs
        #: A project's pinned registry (``config.yaml`` ``registry``), for references that name no host.
        self.pinned = pinned
        self._backends: dict[str | None, RegistryBackend] = {}
        self._blobs: BlobTransfers | None = None

    # ------------------------------------------------------------------------------- plumbing

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        if self._blobs is not None:
            self._blobs.close()
            self._blobs = None

    def __enter__(self) -> Materializer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backend(self, reference: Reference) -> RegistryBackend:
        backend = self._backends.get(reference.registry)
        if backend is None:
            from modelops_bundle.core.registry_select import open_registry, reference_target

            target = reference_target(self.environment, self.environ, reference, pinned=self.pinned)
            backend = open_registry(self.host, target, self.environ)
            self._backends[reference.registry] = backend
        return backend

    def _blob_fetcher(self) -> Any:
        from modelops_bundle.core.settings import StoragePolicy
        from modelops_bundle.core.storage import open_blob_transfers

        if self._blobs is None:
            self._blobs = open_blob_transfers(
                self.host, self.environment.storage, StoragePolicy(), self.environ, uploading=False
            )
        return self._blobs

    # ------------------------------------------------------------------------------- versions

    def resolve(self, reference: Reference) -> str:
        """The digest ``reference`` names now (a digest reference is checked to exist; a short digest is
        resolved against the registry and the versions in the cache)."""
        from modelops_bundle.core.versions import require_digest

        if reference.prefix is not None and reference.digest is None:
            prefix = reference.prefix.knowing(self._cached_matches(reference))
            reference = reference._replace(prefix=prefix)
            if reference.repository == "_":  # no registry to ask: the cache alone
                from modelops_bundle.core.short_digest import expand

                found = expand(prefix, {}, where=f"the cache {self.cache.root}")
                if found is None:
                    raise UsageError(
                        f"no version in the cache {self.cache.root} has a digest starting with {prefix.text}",
                        hint="use a full reference (host/repository@sha256:...) or set MODELOPS_BUNDLE_REGISTRY",
                    )
                return found
        if reference.digest and self.cache.load_version_bytes(reference.digest) is not None:
            return reference.digest
        if reference.repository == "_":
            raise UsageError(
                f"{reference.digest} is not in the cache and no repository was given to fetch it from",
                hint="use a full reference (host/repository@sha256:...) or set MODELOPS_BUNDLE_REGISTRY",
            )
        return require_digest(self.backend(reference), reference)

    def _cached_matches(self, reference: Reference) -> list[str]:
        """The cached versions ``reference.prefix`` matches that came from ``reference``'s repository (any
        repository for ``_``): the cache is shared by every repository of the machine."""
        assert reference.prefix is not None
        found = []
        for digest in self.cache.cached_versions():
            if not reference.prefix.matches(digest):
                continue
            cached = self.cache.load_version_bytes(digest)
            origin = cached[2] if cached is not None else {}
            if reference.repository == "_" or (
                origin.get("repository") == reference.repository and origin.get("registry") == reference.registry
            ):
                found.append(digest)
        return found

    def version(self, reference: Reference, digest: str) -> RemoteVersion:
        """The version ``digest``: from the cache when known there, else from the registry (then cached)."""
        from modelops_bundle.core.index_reading import parse_index
        from modelops_bundle.core.packaging import check_index_against_manifest, parse_manifest
        from modelops_bundle.core.registry import OCI_MANIFEST
        from modelops_bundle.core.versions import RemoteVersion

        source = f"{reference.repository}@{digest}"
        cached = self.cache.load_version_bytes(digest)
        if cached is None and reference.repository != "_":
            self.cache.prepare()
            with self.cache.version_lock(digest):  # of many processes, one reads the manifest and index
                cached = self.cache.load_version_bytes(digest)
                if cached is None:
                    self._fetch_version_bytes(reference, digest, source)
                    cached = self.cache.load_version_bytes(digest)
        if cached is None:
            raise UsageError(
                f"{digest} is not in the cache and no repository was given to fetch it from",
                hint="use a full reference (host/repository@sha256:...) or set MODELOPS_BUNDLE_REGISTRY",
            )
        manifest_bytes, index_bytes, origin = cached
        media_type = str(origin.get("mediaType") or OCI_MANIFEST)
        if reference.repository == "_":
            reference = Reference(str(origin.get("repository") or "_"), origin.get("registry"))
        manifest = parse_manifest(manifest_bytes, digest, media_type, source=source)
        index = parse_index(index_bytes, source=source)
        check_index_against_manifest(index, manifest, source=source)
        from modelops_bundle.core.fetch import check_version_paths

        check_version_paths(index, source=source)
        return RemoteVersion(reference.with_digest(digest), digest, manifest, index)

    def _fetch_version_bytes(self, reference: Reference, digest: str, source: str) -> None:
        """Manifest and index from the registry, validated, then kept in the cache."""
        from modelops_bundle.core.index import MAX_INDEX_BYTES
        from modelops_bundle.core.index_reading import parse_index
        from modelops_bundle.core.packaging import check_index_against_manifest, parse_manifest

        backend = self.backend(reference)
        record = backend.get_manifest(reference.repository, digest)
        if record.digest != digest:
            raise IntegrityError(f"{source}: the registry returned manifest {record.digest}")
        manifest = parse_manifest(record.data, digest, record.media_type, source=source)
        if manifest.config.size > MAX_INDEX_BYTES:
            raise IntegrityError(f"{source}: index of {manifest.config.size} bytes exceeds the limit")
        index_bytes = backend.get_blob_bytes(
            reference.repository, manifest.config.digest, manifest.config.size, limit=MAX_INDEX_BYTES
        )
        check_index_against_manifest(parse_index(index_bytes, source=source), manifest, source=source)
        origin = {"repository": reference.repository, "registry": reference.registry, "mediaType": record.media_type}
        self.cache.save_version_bytes(digest, record.data, index_bytes, origin)

    def registry_of(self, version: RemoteVersion) -> Registry | None:
        """The model registry a version carries (its object fetched into the cache), or None."""
        from modelops_bundle.core.model_registry import parse_registry_bytes

        entry = version.index.by_path().get(REGISTRY_REL)
        if entry is None:
            return None
        self.ensure_objects(version, [entry])
        data = self.cache.object_path(entry.digest).read_bytes()
        return parse_registry_bytes(data, f"{version.pinned}:{REGISTRY_REL}")

    def selected_entries(self, version: RemoteVersion, models: Sequence[str] | None) -> list[IndexEntry]:
        if not models:
            return list(version.index.files)
        paths = select_paths(
            [entry.path for entry in version.index.files], self.registry_of(version), models, source=str(version.pinned)
        )
        by_path = version.index.by_path()
        return [by_path[rel] for rel in paths]

    # -------------------------------------------------------------------------------- objects

    def ensure_objects(self, version: RemoteVersion, entries: Sequence[IndexEntry]) -> None:
        """Every object ``entries`` need, present and undamaged; fetches what is missing under the
        version's lock, so concurrent callers download each blob once."""
        unique = {entry.digest: entry for entry in entries}
        if all(self.cache.object_ok(ObjectSpec(e.digest, e.size)) for e in unique.values()):
            self.cache.stats.reused_objects += len(unique)
            return
        with self.cache.version_lock(version.digest):
            missing = []
            for entry in unique.values():
                spec = ObjectSpec(entry.digest, entry.size)
                if self.cache.object_ok(spec):
                    self.cache.stats.reused_objects += 1
                    continue
                self.cache.discard_damaged(spec)
                missing.append(entry)
            if missing:
                self._fetch(version, missing)

    def _fetch(self, version: RemoteVersion, entries: list[IndexEntry]) -> None:
        from modelops_bundle.core.fetch import fetch_to_staging
        from modelops_bundle.core.registry import TransferStats

        needs_blobs = any(entry.storage == "blob" for entry in entries)
        needs_registry = any(entry.storage == "oci" for entry in entries)
        backend: Any = self.backend(version.reference) if needs_registry else _NoRegistry()
        stats = TransferStats()
        with self.cache.staging() as staging:
            staged = fetch_to_staging(
                backend,
                version,
                entries,
                staging,
                jobs=self.jobs,
                progress=None,
                blob_fetcher=self._blob_fetcher() if needs_blobs else None,
                stats=stats,
            )
            for entry in entries:
                self.cache.add_object(staged[entry.path], entry.digest)
        self.cache.stats.fetched_objects += len(entries)
        self.cache.stats.fetched_bytes += sum(entry.size for entry in entries)
        self.cache.stats.downloaded_blobs += stats.downloaded_blobs + int(stats.extra.get("blob_files", 0))
        self.cache.stats.downloaded_bytes += stats.downloaded_bytes + int(stats.extra.get("blob_bytes", 0))

    # ------------------------------------------------------------------------------- checkout

    def ready_tree(self, digest: str) -> Path | None:
        """The full tree of ``digest`` when it is complete and undamaged (no registry, no pydantic)."""
        cached = self.cache.load_version_bytes(digest)
        if cached is None:
            return None
        tree = self.cache.tree_path(digest)
        if self._tree_ok(tree, version_specs(cached[1])):
            return tree
        return None

    def _tree_ok(self, tree: Path, files: Mapping[str, ObjectSpec]) -> bool:
        """Complete, every file passing the cheap test, and nothing else in it (a planted ``.pyc`` is an
        extra entry: the tree is repaired before it is handed out). A tree handed out is leased."""
        marker = self.cache.marker_path(tree)
        listed = read_marker(marker)
        if listed is None or set(listed) != set(files):
            return False
        damaged, extra = self.cache.tree_problems(tree, files)
        if damaged or extra:
            return False
        self.cache.touch(marker)
        self.cache.lease(tree)
        return True

    def materialize(
        self, reference: Reference, digest: str, dest: Path | None = None, *, models: Sequence[str] | None = None
    ) -> Materialized:
        """Make a verified tree of ``digest``: in the cache (``dest`` None) or at ``dest``."""
        selection = sorted(set(models)) if models else None
        with self.cache.using():
            if dest is None and selection is None:
                tree = self.ready_tree(digest)
                if tree is not None:
                    count = len(read_marker(self.cache.marker_path(tree)) or ())
                    return Materialized(digest, tree, count, None, True, self.cache.stats.to_json())
            version = self.version(reference, digest)
            entries = self.selected_entries(version, selection)
            files = specs_of(entries)
            if dest is not None:
                from modelops_bundle.core.fetch import check_destinations
                from modelops_bundle.core.paths import check_name_limits

                dest = Path(os.path.abspath(dest))
                check_name_limits(dest, sorted(files), source=str(version.pinned))
                self.ensure_objects(version, entries)
                check_destinations(dest, files)
                self.cache.checkout(files, dest)
                return Materialized(digest, dest, len(files), selection, False, self.cache.stats.to_json())
            tree = self.cache.tree_path(digest, selection_key(selection) if selection else None)
            if self._tree_ok(tree, files):
                return Materialized(digest, tree, len(files), selection, True, self.cache.stats.to_json())
            self.ensure_objects(version, entries)
            with self.cache.version_lock(digest):
                if not self._tree_ok(tree, files):
                    self._build_tree(version, entries, tree, files)
            return Materialized(digest, tree, len(files), selection, False, self.cache.stats.to_json())

    def _build_tree(
        self, version: RemoteVersion, entries: Sequence[IndexEntry], tree: Path, files: Mapping[str, ObjectSpec]
    ) -> None:
        """Under the version lock: repair a completed tree in place (others may be running code from
        it), or build a new one in staging and rename it into place, then write the marker last."""
        marker = self.cache.marker_path(tree)
        if read_marker(marker) is not None and tree.is_dir() and not tree.is_symlink():
            damaged, extra = self.cache.tree_problems(tree, files)
            self.cache.remove_extras(tree, extra)
            bad = {rel: files[rel] for rel in damaged}
            for spec in bad.values():
                self.cache.discard_damaged(spec)
            self.ensure_objects(version, [entry for entry in entries if entry.path in bad])
            self.cache.checkout(bad, tree)
            self.cache.touch(marker)
            self.cache.lease(tree)
            return
        from modelops_bundle.core.cache import _force_rmtree

        if tree.exists():  # a builder died between the rename and the marker: nobody was handed it
            _force_rmtree(tree)
        with self.cache.staging() as staging:
            build = staging / "tree"
            build.mkdir()
            self.cache.checkout(files, build)
            real_folder_below(self.cache.root, "trees", tree.parent.name, create=True)
            try:
                os.rename(build, tree)
            except OSError as exc:
                raise BundleError(f"cannot place the tree {tree}: {exc.strerror or exc}") from exc
        write_marker(marker, version.digest, list(files))
        self.cache.lease(tree)


class _NoRegistry:
    """Stands in for a backend when every file to fetch lives in blob storage."""

    def get_blobs_to_files(self, *args: Any, **kwargs: Any) -> Any:
        raise RegistryError("internal error: no registry transfer expected")


def origin_of(cache: BundleCache, digest: str) -> Reference | None:
    """Where a cached version came from, as a reference pinned to its digest."""
    loaded = cache.load_version_bytes(digest)
    if loaded is None:
        return None
    origin = loaded[2]
    repository = origin.get("repository")
    if not isinstance(repository, str):
        return None
    registry = origin.get("registry") if isinstance(origin.get("registry"), str) else None
    return Reference(repository, registry, None, digest)


def manifest_annotations(cache: BundleCache, digest: str) -> dict[str, str] | None:
    """A cached version's manifest annotations (no registry needed)."""
    loaded = cache.load_version_bytes(digest)
    if loaded is None:
        return None
    raw = json.loads(loaded[0]).get("annotations") or {}
    return {str(k): str(v) for k, v in raw.items()}
