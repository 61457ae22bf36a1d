"""Versions pushed by the previous public release, modelops-bundle v0.1.1, read as our own.

What v0.1.1 wrote (oras-py underneath; docs/formats.md, "Versions pushed by v0.1.1"):

* an image manifest without ``artifactType`` whose config has our index media type
  (:data:`~modelops_bundle.core.index.INDEX_MEDIA_TYPE`) and whose layers are one raw
  :data:`UPSTREAM_LAYER_MEDIA_TYPE` blob per registry-stored file: the layer digest is the file's
  sha256 and its ``org.opencontainers.image.title`` annotation is the file's project path;
* the config, a JSON object ``{"version": "1.0", "created", "tool", "metadata", "files": {path: entry}}``
  (pydantic's dump, keys sorted), each entry ``{"path", "digest", "size", "storage": "oci" | "blob",
  "mediaType", "blobRef": null | {"uri", "etag"}}``; blob-stored files are named only here, by
  ``blobRef.uri`` (``azure://<container>/<prefix>/ab/cd/<hex>``).

This module turns such a config into the :class:`~modelops_bundle.core.index.BundleIndex` the rest of
the code reads (each registry-stored file's ``layer`` is its own digest, as for our raw layers; mode
``0o644``, since v0.1.1 recorded none) and checks the manifest against it: exactly one layer per
registry-stored file, titled by its path, with its digest and size. From there a v0.1.1 version is
fetched, verified and placed by the same code, under the same rules, as our own: every path validated,
every file's digest checked, sizes and counts bounded. Nothing here writes the old format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.errors import IntegrityError

if TYPE_CHECKING:
    from modelops_bundle.core.index import BundleIndex, IndexEntry
    from modelops_bundle.core.packaging import BundleManifest, Descriptor

#: oras-py's default media type for a file pushed as a layer (the bytes are the file, not a tar).
UPSTREAM_LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
#: The index ``version`` v0.1.1 wrote.
UPSTREAM_INDEX_VERSION = "1.0"
#: One layer per registry-stored file: more than our own manifests hold, still bounded (a manifest is at
#: most 4 MiB, about 20,000 layer descriptors).
MAX_UPSTREAM_LAYERS = 20_000
#: v0.1.1's blob URI scheme for Azure, and the scheme our Azure provider reads for the same blob.
_URI_SCHEMES = {"azure": "az"}

_TOP_KEYS = frozenset({"version", "created", "tool", "files", "metadata"})
_ENTRY_KEYS = frozenset({"path", "digest", "size", "storage", "mediaType", "blobRef"})
_REQUIRED_ENTRY_KEYS = ("path", "digest", "size", "storage")
_TITLE = "org.opencontainers.image.title"


def is_upstream_index(raw: Mapping[str, Any]) -> bool:
    """Whether a decoded index is in v0.1.1's shape (a ``version`` string and no ``schemaVersion``)."""
    return "schemaVersion" not in raw and "mediaType" not in raw and isinstance(raw.get("version"), str)


def is_upstream_layout(artifact_type: object, layers: object) -> bool:
    """Whether a manifest's raw fields are v0.1.1's: no ``artifactType`` and every layer (there may be
    none, when every file is blob-stored) a raw :data:`UPSTREAM_LAYER_MEDIA_TYPE` blob."""
    return (
        artifact_type is None
        and isinstance(layers, list)
        and all(isinstance(layer, dict) and layer.get("mediaType") == UPSTREAM_LAYER_MEDIA_TYPE for layer in layers)
    )


def index_file_items(raw: Mapping[str, Any]) -> Iterable[Any]:
    """The file entries of a decoded index of either format (v0.1.1 keys them by path)."""
    files = raw.get("files", ())
    return files.values() if isinstance(files, dict) else files


def index_from_json(raw: Mapping[str, Any], *, source: str) -> BundleIndex:
    """The :class:`BundleIndex` of a decoded v0.1.1 index, every JSON type checked strictly (no unknown
    keys, no ``"12"`` for ``12``); the first problem raises :class:`IntegrityError` naming where it is."""
    from modelops_bundle.core.index import MAX_INDEX_FILES, BundleIndex, check_entries

    def invalid(where: str, why: str) -> IntegrityError:
        return IntegrityError(f"{source}: invalid v0.1.1 index at {where}: {why}")

    extra = sorted(set(raw) - _TOP_KEYS)
    if extra:
        raise invalid(extra[0], "unknown key")
    if raw.get("version") != UPSTREAM_INDEX_VERSION:
        raise IntegrityError(
            f"{source}: unsupported v0.1.1 index version {raw.get('version')!r}; expected {UPSTREAM_INDEX_VERSION!r}"
        )
    if "created" in raw and not isinstance(raw["created"], str):
        raise invalid("created", "must be a string")
    for key in ("tool", "metadata"):
        value = raw.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise invalid(key, "must be an object of strings")
    files = raw.get("files")
    if not isinstance(files, dict):
        raise invalid("files", "must be an object keyed by path")
    if len(files) > MAX_INDEX_FILES:
        raise IntegrityError(f"{source}: {len(files)} files, more than the limit of {MAX_INDEX_FILES}")
    entries = tuple(_entry(key, item, invalid) for key, item in files.items())
    index = BundleIndex(files=tuple(sorted(entries, key=lambda entry: entry.path)), upstream=True)
    check_entries(index.files, source=source)
    return index


def _entry(key: str, item: Any, invalid: Callable[[str, str], Exception]) -> IndexEntry:
    from modelops_bundle.core.index import MAX_FILE_BYTES, MAX_URI_CHARS, MODE_FILE, BlobRef, IndexEntry, check_object

    where = f"files.{key}"
    check_object(item, where, allowed=_ENTRY_KEYS, required=_REQUIRED_ENTRY_KEYS, invalid=invalid)
    path, digest, size, storage = item["path"], item["digest"], item["size"], item["storage"]
    if not isinstance(path, str) or path != key:
        raise invalid(f"{where}.path", "must be the string the entry is keyed by")
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise invalid(f"{where}.digest", "must be a sha256 digest string")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE_BYTES:
        raise invalid(f"{where}.size", f"must be a whole number between 0 and {MAX_FILE_BYTES}")
    if item.get("mediaType") is not None and not isinstance(item["mediaType"], str):
        raise invalid(f"{where}.mediaType", "must be a string or null")
    blob_ref = item.get("blobRef")
    if storage == "oci":
        if blob_ref is not None:
            raise invalid(f"{where}.blobRef", "a registry-stored file must not carry a blobRef")
        return IndexEntry(path, size, digest, "sha256", "oci", MODE_FILE, layer=digest)
    if storage != "blob":
        raise invalid(f"{where}.storage", "must be 'oci' or 'blob'")
    if not isinstance(blob_ref, dict) or "uri" not in blob_ref or set(blob_ref) - {"uri", "etag"}:
        raise invalid(f"{where}.blobRef", "a blob-stored file needs an object with uri (and etag)")
    uri, etag = blob_ref["uri"], blob_ref.get("etag")
    bad_etag = etag is not None and not isinstance(etag, str)
    if not isinstance(uri, str) or not 0 < len(uri) <= MAX_URI_CHARS or bad_etag:
        raise invalid(f"{where}.blobRef", f"uri must be a string of 1 to {MAX_URI_CHARS} characters, etag a string")
    return IndexEntry(path, size, digest, "sha256", "blob", MODE_FILE, blobRef=BlobRef(blob_uri(uri)))


def blob_uri(uri: str) -> str:
    """v0.1.1's blob URI as our storage providers name the same object (``azure://c/k`` -> ``az://c/k``);
    other URIs unchanged (a provider refuses, by name, one that is not in the environment's store)."""
    scheme, sep, rest = uri.partition("://")
    ours = _URI_SCHEMES.get(scheme.lower()) if sep else None
    return f"{ours}://{rest}" if ours else uri


def check_layers(layers: Iterable[Descriptor], *, source: str) -> None:
    """Every layer of a v0.1.1 manifest is titled (its file's path is checked against the index)."""
    for number, layer in enumerate(layers):
        title = (layer.annotations or {}).get(_TITLE)
        if not title:
            raise IntegrityError(f"{source}: layer {number} ({UPSTREAM_LAYER_MEDIA_TYPE}) has no {_TITLE}")


def check_against_manifest(index: BundleIndex, manifest: BundleManifest, *, source: str) -> None:
    """A v0.1.1 index and its manifest must agree: exactly one layer per registry-stored file, titled by
    its path, with its digest and size, and no other layer."""

    def mismatch(why: str) -> IntegrityError:
        return IntegrityError(f"{source}: index does not match manifest: {why}")

    if not manifest.upstream:
        raise mismatch("the index is in the v0.1.1 format and the manifest is not")
    titled: dict[str, Descriptor] = {}
    for layer in manifest.layers:
        title = (layer.annotations or {}).get(_TITLE, "")
        if title in titled:
            raise mismatch(f"two layers are titled {title!r}")
        titled[title] = layer
    for entry in index.files:
        holder = titled.pop(entry.path, None)
        if entry.storage != "oci":
            if holder is not None:
                raise mismatch(f"{entry.path} is blob-stored and also a layer")
            continue
        if holder is None:
            raise mismatch(f"{entry.path} is in no listed layer")
        if holder.digest != entry.digest or holder.size != entry.size:
            raise mismatch(f"the layer of {entry.path} differs ({holder.digest}, {holder.size} bytes)")
    if titled:
        raise mismatch(f"layer {min(titled)!r} holds no file of the index")
