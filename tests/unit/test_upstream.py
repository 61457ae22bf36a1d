"""core/upstream.py on its own: telling the formats apart, blob URIs, the all-blob-stored version."""

from __future__ import annotations

import json
import re

import pytest

from modelops_bundle.core.errors import IntegrityError
from modelops_bundle.core.index import canonical_bytes, make_index
from modelops_bundle.core.index_reading import parse_index
from modelops_bundle.core.packaging import check_index_against_manifest, parse_manifest
from modelops_bundle.core.registry import OCI_MANIFEST
from modelops_bundle.core.upstream import blob_uri, is_upstream_index
from tests.support.indexes import file_entry
from tests.support.upstream import sha, upstream_version


def test_blob_uris_are_named_as_our_providers_name_them() -> None:
    assert blob_uri("azure://bundles/pre/ab/cd/abcd") == "az://bundles/pre/ab/cd/abcd"
    assert blob_uri("AZURE://bundles/k") == "az://bundles/k"
    assert blob_uri("s3://bucket/k") == "s3://bucket/k"
    assert blob_uri("fs:///abs/path") == "fs:///abs/path"  # v0.1.1's test-only store: left to be refused by name


def test_our_index_is_never_read_as_upstream() -> None:
    from modelops_bundle.core.index import IndexEntry

    ours = make_index([IndexEntry("a.txt", 1, sha(b"a"), "sha256", layer=sha(b"a"))])
    raw = json.loads(canonical_bytes(ours))
    assert not is_upstream_index(raw)
    assert parse_index(canonical_bytes(ours), source="x").upstream is False
    assert is_upstream_index(json.loads(upstream_version({"a.txt": b"a"}).config))


def _manifest(version_layers: list[dict[str, object]], config: bytes, **extra: object) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.modelops.bundle.index.v1+json", "size": len(config),
                   "digest": sha(config)},
        "layers": version_layers,
        **extra,
    }  # fmt: skip
    return json.dumps(document).encode()


def test_a_version_whose_files_are_all_blob_stored_has_no_layers() -> None:
    version = upstream_version({"big.bin": b"x" * 10}, blob_stored={"big.bin": "azure://c/p/ab/cd/ef"})
    assert version.layers == []
    data = _manifest([], version.config)
    manifest = parse_manifest(data, sha(data), OCI_MANIFEST, source="m")
    index = parse_index(version.config, source="m")
    check_index_against_manifest(index, manifest, source="m")
    (entry,) = index.files
    assert (entry.storage, entry.layer, entry.blobRef and entry.blobRef.uri) == ("blob", None, "az://c/p/ab/cd/ef")


def test_formats_do_not_mix() -> None:
    version = upstream_version({"a.txt": b"a"})
    ours = json.dumps(
        {"mediaType": "application/vnd.modelops.bundle.index.v1+json", "schemaVersion": 1,
         "files": [file_entry("a.txt", b"a", sha(b"a"))]}
    ).encode()  # fmt: skip
    data = _manifest(version.layers, ours)
    manifest = parse_manifest(data, sha(data), OCI_MANIFEST, source="m")
    assert manifest.upstream
    with pytest.raises(IntegrityError, match=re.escape("the manifest is in the v0.1.1 format")):
        check_index_against_manifest(parse_index(ours, source="m"), manifest, source="m")
    ours_manifest = _manifest([], version.config, artifactType="application/vnd.modelops.bundle.v1")
    parsed = parse_manifest(ours_manifest, sha(ours_manifest), OCI_MANIFEST, source="m")
    with pytest.raises(IntegrityError, match=re.escape("the index is in the v0.1.1 format and the manifest is not")):
        check_index_against_manifest(parse_index(version.config, source="m"), parsed, source="m")


def test_an_untitled_layer_is_refused() -> None:
    version = upstream_version({"a.txt": b"a"})
    layers = [{key: value for key, value in version.layers[0].items() if key != "annotations"}]
    data = _manifest(layers, version.config)
    with pytest.raises(IntegrityError, match=re.escape("has no org.opencontainers.image.title")):
        parse_manifest(data, sha(data), OCI_MANIFEST, source="m")
