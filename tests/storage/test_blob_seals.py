"""Seals of a local store (decision 0016): a download of an object verified before, and unchanged since,
is not re-hashed -- and every kind of change to the object brings the hashing back."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from modelops_bundle.core.blob_seals import BlobSeals, object_signature
from modelops_bundle.core.errors import ConfigError, IntegrityError
from modelops_bundle.core.hashing import signature
from modelops_bundle.core.plugins import PluginHost
from modelops_bundle.core.settings import StoragePolicy, StorageSection, build
from modelops_bundle.core.storage import BlobDownload, BlobUpload, StorageProvider, blob_key, open_storage
from modelops_bundle.storage_conformance import write_random_file
from modelops_bundle.testing import BundleProject

SIZE = 200_000


class CountingHasher:
    """sha256, counting the files it hashes: a download that is not re-hashed does not call it."""

    algorithm = "sha256"

    def __init__(self) -> None:
        self.files: list[str] = []

    def digest_file(self, path: str) -> str:
        self.files.append(path)
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    def digest_fileobj(self, handle: BinaryIO) -> str:
        return hashlib.sha256(handle.read()).hexdigest()

    def digest_bytes(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()


def local_store(plugin_host: PluginHost, tmp_path: Path, **options: Any) -> StorageProvider:
    storage = build(StorageSection, {"provider": "local", "path": str(tmp_path / "store"), **options})
    return open_storage(plugin_host, storage, StoragePolicy(), {"MODELOPS_HOME": str(tmp_path / "home")})


def uploaded(provider: StorageProvider, tmp_path: Path, *, seal: bool) -> tuple[str, str, bytes]:
    """A random file put into the store (with its hashed-at signature when ``seal``): (key, digest, bytes)."""
    source = tmp_path / "source.bin"
    digest = write_random_file(source, SIZE)
    hashed_at = signature(os.stat(source)) if seal else None
    provider.upload_many([BlobUpload(source, digest, SIZE, hashed_at=hashed_at)])
    return blob_key("", digest), digest, source.read_bytes()


def fetch(provider: StorageProvider, key: str, digest: str, dest: Path, hasher: CountingHasher) -> None:
    provider.download_many([BlobDownload(provider.pointer(digest, SIZE), dest)], hasher=hasher)
    assert provider.parse_uri(provider.pointer(digest, SIZE).uri) == key


def test_a_download_is_hashed_once_then_sealed(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = local_store(plugin_host, tmp_path)
    key, digest, data = uploaded(provider, tmp_path, seal=False)  # no signature: nothing vouches yet
    hasher = CountingHasher()
    fetch(provider, key, digest, tmp_path / "one", hasher)
    assert len(hasher.files) == 1
    # A new provider (another command) reads the seal written by the first.
    again = local_store(plugin_host, tmp_path)
    fetch(again, key, digest, tmp_path / "two", hasher)
    assert len(hasher.files) == 1
    assert (tmp_path / "one").read_bytes() == (tmp_path / "two").read_bytes() == data


def test_an_upload_from_a_file_unchanged_since_hashing_seals_its_object(
    plugin_host: PluginHost, tmp_path: Path
) -> None:
    provider = local_store(plugin_host, tmp_path)
    key, digest, data = uploaded(provider, tmp_path, seal=True)
    hasher = CountingHasher()
    fetch(local_store(plugin_host, tmp_path), key, digest, tmp_path / "out", hasher)
    assert hasher.files == []
    assert (tmp_path / "out").read_bytes() == data


def test_a_file_changed_since_hashing_is_refused_and_seals_nothing(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = local_store(plugin_host, tmp_path)
    source = tmp_path / "source.bin"
    digest = write_random_file(source, SIZE)
    hashed_at = signature(os.stat(source))
    st = os.stat(source)
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # same bytes count, "edited"
    with pytest.raises(IntegrityError, match=r"source\.bin changed since it was hashed \(modified\)"):
        provider.put_file(blob_key("", digest), source, SIZE, digest=digest, hashed_at=hashed_at)
    assert not (tmp_path / "store").exists()
    assert not (tmp_path / "home" / "blob-seals").exists()


def test_an_object_edited_in_place_is_caught_even_with_size_and_mtime_restored(
    plugin_host: PluginHost, tmp_path: Path
) -> None:
    provider = local_store(plugin_host, tmp_path)
    key, digest, _ = uploaded(provider, tmp_path, seal=True)
    path = Path(provider.seals.locate(key)) if provider.seals else None
    assert path is not None and path.is_file()
    before = os.stat(path)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    with open(path, "r+b") as handle:  # same size, other bytes, old mtime: only the ctime tells
        handle.write(b"\0" * 64)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_size == before.st_size and os.stat(path).st_mtime_ns == before.st_mtime_ns
    dest = tmp_path / "out"
    with pytest.raises(IntegrityError, match="does not match its digest"):
        fetch(local_store(plugin_host, tmp_path), key, digest, dest, CountingHasher())
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_a_replaced_object_is_hashed_again(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = local_store(plugin_host, tmp_path)
    key, digest, data = uploaded(provider, tmp_path, seal=True)
    path = Path(provider.fs_path(key))  # type: ignore[attr-defined]
    copy = path.with_name("copy")
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)  # same bytes under a new inode
    hasher = CountingHasher()
    fetch(local_store(plugin_host, tmp_path), key, digest, tmp_path / "out", hasher)
    assert len(hasher.files) == 1
    assert (tmp_path / "out").read_bytes() == data


def test_verify_always_hashes_every_download(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = local_store(plugin_host, tmp_path, verify="always")
    assert provider.seals is None
    key, digest, _ = uploaded(provider, tmp_path, seal=True)
    hasher = CountingHasher()
    for name in ("one", "two"):
        fetch(local_store(plugin_host, tmp_path, verify="always"), key, digest, tmp_path / name, hasher)
    assert len(hasher.files) == 2
    assert not (tmp_path / "home" / "blob-seals").exists()


def test_an_unknown_verify_mode_is_a_configuration_error(plugin_host: PluginHost, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'verify' must be one of seal, always, not 'sometimes'"):
        local_store(plugin_host, tmp_path, verify="sometimes")


def test_seals_are_private_to_the_user_and_a_broken_file_only_costs_a_hash(
    plugin_host: PluginHost, tmp_path: Path
) -> None:
    provider = local_store(plugin_host, tmp_path)
    key, digest, _ = uploaded(provider, tmp_path, seal=True)
    files = list((tmp_path / "home" / "blob-seals").iterdir())
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert not [p for p in (tmp_path / "store").rglob("*") if "seal" in p.name]  # nothing in the store
    row = json.loads(files[0].read_text())["seals"][0]
    assert row[:2] == [key, digest] and row[2:] == list(object_signature(provider.fs_path(key)) or ())  # type: ignore[attr-defined]
    files[0].write_text("{not json")
    hasher = CountingHasher()
    fetch(local_store(plugin_host, tmp_path), key, digest, tmp_path / "out", hasher)
    assert len(hasher.files) == 1  # hashed, and sealed again
    assert json.loads(files[0].read_text())["seals"][0][:2] == [key, digest]


def test_the_seal_file_keeps_the_most_recent_seals(tmp_path: Path) -> None:
    objects = tmp_path / "objects"
    objects.mkdir()
    seals = BlobSeals(tmp_path / "seals.json", lambda key: str(objects / key), limit=2)
    for name in ("a", "b", "c"):
        (objects / name).write_bytes(name.encode())
        sig = seals.signature(name)
        assert sig is not None
        seals.record(name, f"sha256:{name}", sig)
    seals.save()
    fresh = BlobSeals(tmp_path / "seals.json", lambda key: str(objects / key), limit=2)
    assert [fresh.vouches(name, f"sha256:{name}", fresh.signature(name) or (0,) * 5) for name in "abc"] == [
        False,
        True,
        True,
    ]
    assert not fresh.vouches("b", "sha256:other", fresh.signature("b") or (0,) * 5)


def test_a_tampered_local_store_fails_ensure_naming_the_object(mops_env: dict[str, str], tmp_path: Path) -> None:
    """End to end on the embedded default: push seals the object; a same-size, same-mtime edit of it in
    the store is still caught by ``ensure``, which exits 1 naming the object and places nothing."""
    project = BundleProject.create(tmp_path / "study", mops_env)
    assert project.run("config", "storage.threshold_bytes", "1MiB").exit_code == 0
    project.write("data/big.bin", os.urandom(2 * 1024 * 1024))
    assert project.run("add", ".").exit_code == 0
    pushed = project.run("push", "--json")
    assert pushed.exit_code == 0, pushed.stderr
    digest = pushed.json()["digest"]
    ok = project.run("ensure", "--dest", str(tmp_path / "good"), "--ref", digest)
    assert ok.exit_code == 0, ok.stderr
    assert (tmp_path / "good" / "data" / "big.bin").read_bytes() == (project.root / "data" / "big.bin").read_bytes()

    big_hex = hashlib.sha256((project.root / "data" / "big.bin").read_bytes()).hexdigest()
    stored = Path(mops_env["MODELOPS_HOME"]) / "blobs" / "sha256" / big_hex[:2] / big_hex[2:4] / big_hex
    before = os.stat(stored)
    with open(stored, "r+b") as handle:
        handle.write(b"tampered")
    os.utime(stored, ns=(before.st_atime_ns, before.st_mtime_ns))
    fresh_cache = {"MODELOPS_BUNDLE_CACHE": str(tmp_path / "another-cache")}  # so ensure reads the store again
    bad = project.run("ensure", "--dest", str(tmp_path / "bad"), "--ref", digest, input_env=fresh_cache)
    assert bad.exit_code == 1
    assert big_hex in bad.stderr and "does not match its digest" in bad.stderr
    assert not (tmp_path / "bad" / "data" / "big.bin").exists()
