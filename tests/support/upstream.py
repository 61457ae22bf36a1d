"""Versions in the format modelops-bundle v0.1.1 pushed, built byte by byte from its documented format.

v0.1.1 (oras-py underneath) pushed one image manifest per version: no ``artifactType``; config
``application/vnd.modelops.bundle.index.v1+json``, a JSON dump (keys sorted, indent 2) of
``{"version": "1.0", "created", "tool", "files": {path: {path, digest, size, storage, mediaType,
blobRef}}, "metadata"}``; one raw ``application/vnd.oci.image.layer.v1.tar`` layer per registry-stored
file (digest = the file's sha256, ``org.opencontainers.image.title`` = its path); blob-stored files only
in the config, by ``blobRef.uri`` ``azure://<container>/<prefix>/ab/cd/<hex>``. Nothing of the old
package is imported: these helpers write those bytes, and ``publish`` stores them through a registry
backend's plain blob and manifest calls, as any OCI client would.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelops_bundle.core.registry import OCI_MANIFEST, BlobSource, RegistryBackend

INDEX_MEDIA_TYPE = "application/vnd.modelops.bundle.index.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
TITLE = "org.opencontainers.image.title"
CREATED = "2025-09-30T12:00:00.000000+00:00"

#: A model registry as v0.1.1 wrote it (travels in the bundle as .modelops-bundle/registry.yaml).
REGISTRY_YAML = """version: '1.0'
models:
  seir_seirmodel:
    entrypoint: models.seir:SEIRModel
    path: models/seir.py
    class_name: SEIRModel
    scenarios: []
    parameters: []
    outputs: []
    data:
    - data/a.csv
    data_digests:
      data/a.csv: {a_digest}
    code:
    - models/seir.py
    code_digests:
      models/seir.py: {code_digest}
    model_digest: sha256:{model_hex}
targets: {{}}
target_sets: {{}}
"""


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_key(data: bytes, prefix: str = "bundles-v0") -> str:
    """v0.1.1's blob key: ``<prefix>/ab/cd/<hex>`` (no algorithm folder)."""
    hexdigest = hashlib.sha256(data).hexdigest()
    return f"{prefix}/{hexdigest[:2]}/{hexdigest[2:4]}/{hexdigest}"


def sample_files() -> dict[str, bytes]:
    """A small v0.1.1 project: code, data (two files with the same bytes), its model registry."""
    code = b"class SEIRModel:\n    def simulate(self, params, seed):\n        return {'incidence': [1, 2, 3]}\n"
    data = b"age,count\n0-4,5800\n5-9,6100\n"
    registry = REGISTRY_YAML.format(a_digest=sha(data), code_digest=sha(code), model_hex="ab" * 32)
    return {
        ".modelops-bundle/registry.yaml": registry.encode(),
        "README.md": b"# seir (pushed by modelops-bundle 0.1.1)\n",
        "data/a.csv": data,
        "data/copy/a.csv": data,
        "models/seir.py": code,
        "models/__init__.py": b"",
    }


@dataclass
class UpstreamVersion:
    """A v0.1.1 version's bytes: manifest, config (the index) and the layer blobs by digest."""

    index: dict[str, Any]
    layers: list[dict[str, Any]]
    blobs: dict[str, bytes] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> bytes:
        return json.dumps(self.index, sort_keys=True, indent=2).encode()

    @property
    def manifest(self) -> bytes:
        config = self.config
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": INDEX_MEDIA_TYPE, "size": len(config), "digest": sha(config)},
            "layers": self.layers,
            "annotations": self.annotations,
        }
        return json.dumps(document).encode()

    @property
    def digest(self) -> str:
        return sha(self.manifest)


def upstream_version(
    files: Mapping[str, bytes],
    *,
    blob_stored: Mapping[str, str] | None = None,
) -> UpstreamVersion:
    """``files`` as v0.1.1 pushed them; ``blob_stored`` maps paths kept in blob storage to their URI."""
    blob_stored = blob_stored or {}
    entries: dict[str, Any] = {}
    layers: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    for path, data in files.items():
        uri = blob_stored.get(path)
        entries[path] = {
            "path": path,
            "digest": sha(data),
            "size": len(data),
            "storage": "blob" if uri else "oci",
            "mediaType": None,
            "blobRef": {"uri": uri, "etag": '"0x8DDEADBEEF"'} if uri else None,
        }
        if not uri:
            layers.append(
                {"mediaType": LAYER_MEDIA_TYPE, "size": len(data), "digest": sha(data), "annotations": {TITLE: path}}
            )
            blobs[sha(data)] = data
    index = {
        "version": "1.0",
        "created": CREATED,
        "tool": {"name": "modelops-bundle", "version": "0.1.0"},
        "files": entries,
        "metadata": {},
    }
    annotations = {"modelops-bundle.version": "0.1.0", "org.opencontainers.image.created": CREATED}
    return UpstreamVersion(index, layers, blobs, annotations)


def publish(
    backend: RegistryBackend,
    repository: str,
    version: UpstreamVersion,
    tag: str,
    *,
    config: bytes | None = None,
    manifest: Callable[[bytes], bytes] | None = None,
) -> str:
    """Store ``version`` (its config and layer blobs, then the manifest under ``tag``); returns its digest.
    ``config`` replaces the config bytes (the manifest then names them); ``manifest`` edits manifest bytes."""
    config_bytes = version.config if config is None else config
    blobs = {**version.blobs, sha(config_bytes): config_bytes}
    sources = [BlobSource(digest, len(data), lambda data=data: io.BytesIO(data)) for digest, data in blobs.items()]  # type: ignore[misc]
    backend.put_blobs(repository, sources, jobs=2, progress=None)
    document = json.loads(version.manifest)
    document["config"] = {"mediaType": INDEX_MEDIA_TYPE, "size": len(config_bytes), "digest": sha(config_bytes)}
    data = json.dumps(document).encode()
    if manifest is not None:
        data = manifest(data)
    return backend.put_manifest(repository, data, OCI_MANIFEST, tag)
