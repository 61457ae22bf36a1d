"""Packaging rules: tier policy, layer plan, deterministic packs, manifest checks, git annotations."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from modelops_bundle.core.errors import IntegrityError, RegistryError
from modelops_bundle.core.gitinfo import (
    ANNOTATION_GIT_DIRTY,
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    git_annotations,
    public_url,
)
from modelops_bundle.core.index import IndexEntry
from modelops_bundle.core.packaging import (
    MAX_LAYERS,
    PACK_MEDIA_TYPE,
    RAW_LAYER_BYTES,
    decide_tier,
    pack_level,
    parse_manifest,
    plan_layers,
    write_pack,
)
from modelops_bundle.core.registry import OCI_MANIFEST
from modelops_bundle.core.settings import StoragePolicy


def make_entry(path: str, size: int = 10, content: bytes | None = None) -> IndexEntry:
    data = content if content is not None else path.encode()
    return IndexEntry(
        path=path,
        size=size if content is None else len(data),
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        algorithm="sha256",
    )


# ------------------------------------------------------------------------------------------ tiers


def test_tier_policy_rules() -> None:
    big, small = make_entry("data/big.h5", 100), make_entry("src/a.py", 1)
    policy = StoragePolicy(threshold_bytes=50)
    # auto without a blob store keeps everything in the registry
    assert decide_tier(big, policy, blob_available=False) == "oci"
    tiers = (decide_tier(big, policy, blob_available=True), decide_tier(small, policy, blob_available=True))
    assert tiers == ("blob", "oci")
    assert decide_tier(big, StoragePolicy(mode="oci"), blob_available=True) == "oci"
    assert decide_tier(small, StoragePolicy(mode="blob"), blob_available=False) == "blob"
    forced = StoragePolicy(threshold_bytes=50, force_oci_patterns=("*.h5",), force_blob_patterns=("src/**",))
    forced_tiers = (decide_tier(big, forced, blob_available=True), decide_tier(small, forced, blob_available=True))
    assert forced_tiers == ("oci", "blob")


# ------------------------------------------------------------------------------------ layer plan


def test_large_files_are_raw_layers_small_ones_packed_per_folder() -> None:
    entries = [
        make_entry("README.md"),
        make_entry("data/big.bin", RAW_LAYER_BYTES),
        make_entry("data/a.csv"),
        make_entry("src/m.py"),
    ]
    plan = plan_layers(entries)
    raw = {layer.paths for layer in plan.layers if layer.kind == "raw"}
    packs = {layer.title: layer.paths for layer in plan.layers if layer.kind == "pack"}
    assert raw == {("README.md",), ("data/big.bin",)}
    assert packs == {"data": ("data/a.csv",), "src": ("src/m.py",)}


def test_pack_boundaries_depend_on_paths_so_one_change_touches_one_pack() -> None:
    entries = [make_entry(f"data/f{i:04d}.csv", 100) for i in range(2000)]
    before = plan_layers(entries)
    assert 10 < len(before.layers) <= MAX_LAYERS
    changed = [e if e.path != "data/f1000.csv" else make_entry(e.path, 120) for e in entries]
    after = plan_layers(changed)
    assert before == after  # a content change never moves a boundary
    added = plan_layers([*entries, make_entry("data/f1000a.csv", 100)])
    differing = set(added.layers) ^ set(before.layers)
    assert len(differing) <= 3  # the pack that gained the file (and at most a split of it)


def test_layer_count_is_capped() -> None:
    many_folders = [make_entry(f"d{i}/f{j}.txt") for i in range(600) for j in range(2)]
    plan = plan_layers(many_folders + [make_entry(f"big{i}.bin", RAW_LAYER_BYTES) for i in range(300)])
    assert len(plan.layers) <= MAX_LAYERS
    placed = [path for layer in plan.layers for path in layer.paths]
    assert len(placed) == len(set(placed)) == 1500


# ----------------------------------------------------------------------------------------- packs


def test_packs_are_byte_for_byte_deterministic(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    contents = {"data/a.csv": b"x,y\n", "data/sub/b.txt": b"hello", "data/" + "long" * 40 + ".txt": b"L"}
    entries = []
    for rel, data in contents.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        entries.append(make_entry(rel, content=data))
    first = write_pack(root, entries, tmp_path / "one.tar.gz")
    (root / "data/a.csv").touch()  # mtimes and order must not matter
    second = write_pack(root, list(reversed(entries)), tmp_path / "two.tar.gz")
    assert first == second
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()
    assert write_pack(root, entries, None).tar_digest == first.tar_digest
    listing = subprocess.run(["tar", "-tvzf", str(tmp_path / "one.tar.gz")], capture_output=True, text=True, check=True)
    assert "root/root" not in listing.stdout and "1970-01-01" in listing.stdout


def test_packs_of_incompressible_bytes_are_stored_and_text_is_compressed(tmp_path: Path) -> None:
    import random
    import tarfile

    rng = random.Random(7)
    text = "".join(f"{rng.random():.6f},{rng.random():.6f}\n" for _ in range(6000)).encode()
    contents = {
        "mixed/notes.csv": text[:2000],  # small text beside large random members: the large ones decide
        "mixed/weights-a.bin": rng.randbytes(300_000),
        "mixed/weights-b.bin": rng.randbytes(200_000),
        "text/a.csv": text[:60_000],
        "text/b.csv": text[60_000:],
    }
    for rel, data in contents.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    entries = {rel: make_entry(rel, content=data) for rel, data in contents.items()}
    mixed = [entries[rel] for rel in contents if rel.startswith("mixed/")]
    texts = [entries[rel] for rel in contents if rel.startswith("text/")]
    assert pack_level(tmp_path, mixed) == 0 and pack_level(tmp_path, texts) == 1
    stored = write_pack(tmp_path, mixed, tmp_path / "mixed.tar.gz")
    squeezed = write_pack(tmp_path, texts, tmp_path / "text.tar.gz")
    assert stored.blob_size > stored.tar_size  # stored blocks: the tar plus a few bytes of framing
    assert squeezed.blob_size < squeezed.tar_size * 0.7
    for name, members in (("mixed.tar.gz", mixed), ("text.tar.gz", texts)):  # both are ordinary tar+gzip
        with tarfile.open(tmp_path / name, "r:gz") as tar:
            assert sorted(tar.getnames()) == sorted(entry.path for entry in members)
    assert write_pack(tmp_path, list(reversed(mixed)), tmp_path / "again.tar.gz") == stored


def test_a_file_changed_after_hashing_fails_the_pack(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"one")
    entry = make_entry("a", content=b"one")
    (tmp_path / "a").write_bytes(b"two")
    with pytest.raises(IntegrityError, match="changed after it was hashed"):
        write_pack(tmp_path, [entry], tmp_path / "p.tar.gz")


# -------------------------------------------------------------------------------------- manifests


def manifest(**changes: object) -> bytes:
    document: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.modelops.bundle.v1",
        "config": {
            "mediaType": "application/vnd.modelops.bundle.index.v1+json",
            "digest": "sha256:" + "a" * 64,
            "size": 10,
        },
        "layers": [],
    }
    document.update(changes)
    return json.dumps(document).encode()


def test_manifests_that_are_not_ours_are_refused() -> None:
    assert parse_manifest(manifest(), "sha256:x", OCI_MANIFEST, source="s").layers == ()
    with pytest.raises(RegistryError, match="not a modelops bundle"):
        parse_manifest(manifest(artifactType="application/vnd.other"), "d", OCI_MANIFEST, source="s")
    image_config = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "a" * 64, "size": 1}
    with pytest.raises(RegistryError, match="not a modelops bundle"):
        parse_manifest(manifest(config=image_config), "d", OCI_MANIFEST, source="s")
    with pytest.raises(RegistryError, match="not a modelops bundle"):
        parse_manifest(manifest(), "d", "application/vnd.oci.image.index.v1+json", source="s")
    foreign = {"mediaType": PACK_MEDIA_TYPE, "digest": "sha256:" + "b" * 64, "size": 1, "urls": ["http://x"]}
    with pytest.raises(IntegrityError, match="foreign layer"):
        parse_manifest(manifest(layers=[foreign]), "d", OCI_MANIFEST, source="s")
    untagged_pack = {"mediaType": PACK_MEDIA_TYPE, "digest": "sha256:" + "b" * 64, "size": 1}
    with pytest.raises(IntegrityError, match=r"content\.digest"):
        parse_manifest(manifest(layers=[untagged_pack]), "d", OCI_MANIFEST, source="s")


# ---------------------------------------------------------------------------------------- git


def test_git_annotations_from_a_checkout(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    assert git_annotations(tmp_path) == {}
    env = ["-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), *env, "commit", "-qm", "x"], check=True)
    subprocess.run(
        ["git", "-C", str(tmp_path), "remote", "add", "origin", "https://user:tok@example.org/m.git"], check=True
    )
    clean = git_annotations(tmp_path)
    assert clean[ANNOTATION_SOURCE] == "https://example.org/m.git"
    assert len(clean[ANNOTATION_REVISION]) == 40 and clean[ANNOTATION_GIT_DIRTY] == "false"
    (tmp_path / "f").write_text("2")
    assert git_annotations(tmp_path)[ANNOTATION_GIT_DIRTY] == "true"
    assert public_url("git@example.org:m.git") == "git@example.org:m.git"
