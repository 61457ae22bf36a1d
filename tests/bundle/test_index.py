"""The bundle index: canonical bytes, strict parsing of hostile input."""

from __future__ import annotations

import json

import pytest

from modelops_bundle.core.errors import IntegrityError
from modelops_bundle.core.index import (
    INDEX_MEDIA_TYPE,
    IndexEntry,
    canonical_bytes,
    make_index,
    normalise_mode,
)
from modelops_bundle.core.index_reading import parse_index

DIGEST = "sha256:" + "ab" * 32
LAYER = "sha256:" + "cd" * 32


def entry(path: str, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "path": path,
        "size": 3,
        "digest": DIGEST,
        "algorithm": "sha256",
        "storage": "oci",
        "mode": 0o644,
        "layer": LAYER,
    }
    data.update(changes)
    return data


def document(*files: dict[str, object]) -> bytes:
    return json.dumps({"mediaType": INDEX_MEDIA_TYPE, "schemaVersion": 1, "files": list(files)}).encode()


def test_canonical_bytes_are_sorted_and_stable() -> None:
    entries = [IndexEntry(**entry(p)) for p in ("b/x", "a", "b/a")]
    first = canonical_bytes(make_index(entries))
    second = canonical_bytes(make_index(reversed(entries)))
    assert first == second
    assert [f["path"] for f in json.loads(first)["files"]] == ["a", "b/a", "b/x"]
    assert b" " not in first and b"created" not in first
    assert parse_index(first, source="t") == make_index(entries)


def test_modes_are_normalised_to_git_rules() -> None:
    assert normalise_mode(0o664) == 0o644
    assert normalise_mode(0o700) == 0o755


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([entry("../escape")], "'..'"),
        ([entry("/etc/passwd")], "absolute"),
        ([entry("a\nb")], "control character"),
        ([entry("a"), entry("a")], "duplicate path"),
        ([entry("a"), entry("a/b")], "both a file and a folder"),
        ([entry("a", size=-1)], "size"),
        ([entry("a", size="3")], "size"),
        ([entry("a", digest="sha256:xyz")], "malformed"),
        ([entry("a", algorithm="md5", digest="md5:" + "0" * 32)], "unknown"),
        ([entry("a", mode=0o4755)], "mode"),
        ([entry("a", layer=None)], "layer"),
        ([entry("a", storage="blob")], "blobRef"),
        ([entry("a", extra=1)], "extra"),
    ],
)
def test_hostile_indexes_are_refused_with_the_reason(files: list[dict[str, object]], message: str) -> None:
    with pytest.raises(IntegrityError) as info:
        parse_index(document(*files), source="repo@sha256:x")
    assert message in str(info.value)
    assert "repo@sha256:x" in str(info.value)


def test_not_json_or_wrong_schema_is_refused() -> None:
    with pytest.raises(IntegrityError, match="not valid JSON"):
        parse_index(b"{nope", source="t")
    with pytest.raises(IntegrityError, match="unsupported index"):
        parse_index(json.dumps({"files": []}).encode(), source="t")
    with pytest.raises(IntegrityError, match="duplicate key"):
        parse_index(b'{"mediaType": "x", "mediaType": "y"}', source="t")
