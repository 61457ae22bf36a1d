"""Blob-tier files travel as pointers in the index; pull/ensure hand them to a fetcher and verify them."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops_bundle.core.errors import IntegrityError, StorageError
from modelops_bundle.core.index import IndexEntry
from modelops_bundle.core.plugins import build_plugin_host
from modelops_bundle.core.pull import ensure
from modelops_bundle.core.reference import Reference
from modelops_bundle.testing import BundleProject
from tests.bundle.test_hostile import file_entry, layout, publish, raw_version, sha

DATA = b"large data kept in object storage\n"


def publish_mixed(project: BundleProject) -> None:
    files, layers = raw_version("src/model.py", b"print(1)\n")
    blob = file_entry("data/huge.h5", DATA, "", storage="blob", blobRef={"uri": "local://bucket/ab/cd/x"})
    del blob["layer"]
    publish(layout(project), [*files, blob], layers, tag="mixed")


def test_blob_tier_files_go_through_the_fetcher(bundle_project: BundleProject, tmp_path: Path) -> None:
    publish_mixed(bundle_project)
    host = build_plugin_host(bundle_project.env)
    registry, ref = layout(bundle_project), Reference("model", tag="mixed")
    with pytest.raises(StorageError, match="blob storage"):
        ensure(host, registry, ref, tmp_path / "none")
    asked: list[str] = []

    def fetch(entry: IndexEntry, destination: Path) -> None:
        asked.append(entry.blobRef.uri if entry.blobRef else "")
        destination.write_bytes(DATA)

    result = ensure(host, registry, ref, tmp_path / "dest", blob_fetcher=fetch)
    assert asked == ["local://bucket/ab/cd/x"] and sorted(result.fetched) == ["data/huge.h5", "src/model.py"]
    assert (tmp_path / "dest/data/huge.h5").read_bytes() == DATA

    def tampered(entry: IndexEntry, destination: Path) -> None:
        destination.write_bytes(b"not the bytes " + sha(DATA).encode())

    with pytest.raises(IntegrityError, match=r"data/huge\.h5"):
        ensure(host, registry, ref, tmp_path / "bad", blob_fetcher=tampered)
    assert not (tmp_path / "bad/data/huge.h5").exists()
