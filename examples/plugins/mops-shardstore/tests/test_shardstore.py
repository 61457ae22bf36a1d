"""The shardstore provider: the storage conformance suite, its folder layout, and a push and pull through it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from modelops_bundle.plugin import StorageProvider, blob_key
from modelops_bundle.testing import BundleProject, StorageProviderConformance, open_provider

from mops_shardstore import plugin
from mops_shardstore.plugin import ShardStoreProvider, shard_path

# Test the module of this checkout: an installed copy of the plugin (same name) is disabled.
pytestmark = pytest.mark.mops_env(MOPS_DISABLE_PLUGINS="shardstore")
PLUGINS: list[tuple[str, object]] = [("shardstore", plugin)]


def open_store(folder: Path, prefix: str = "conformance") -> StorageProvider:
    return open_provider("shardstore", plugins=PLUGINS, path=str(folder), prefix=prefix)


class TestShardStoreConformance(StorageProviderConformance):
    big_file_bytes = 96 * 1024 * 1024

    @pytest.fixture
    def provider(self, tmp_path: Path) -> StorageProvider:
        return open_store(tmp_path / "store")


def test_layout_is_one_level_of_three_hex_digits(tmp_path: Path) -> None:
    provider = open_store(tmp_path / "store", prefix="lab/bundles")
    assert isinstance(provider, ShardStoreProvider)
    source = tmp_path / "data.bin"
    source.write_bytes(b"some model input")
    hexdigest = hashlib.sha256(b"some model input").hexdigest()
    key = blob_key("lab/bundles", f"sha256:{hexdigest}")
    assert provider.put_file(key, source, source.stat().st_size) is True
    stored = tmp_path / "store" / "lab" / "bundles" / "sha256" / hexdigest[:3] / hexdigest[3:]
    assert stored.read_bytes() == b"some model input"
    assert not stored.stat().st_mode & 0o222  # objects are read-only
    assert [p.name for p in stored.parent.iterdir()] == [hexdigest[3:]]  # no temporary file left


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("sha256/ab/cd/abcdef0123", "sha256/abc/def0123"),
        ("p/q/sha256/ab/cd/abcdef0123", "p/q/sha256/abc/def0123"),
        ("sha256/ff/cd/abcdef0123", "other/sha256/ff/cd/abcdef0123"),  # fan-out not of this digest
        ("notes/readme", "other/notes/readme"),
    ],
)
def test_shard_path(key: str, expected: str) -> None:
    assert shard_path(key) == expected


def test_push_and_pull_through_the_store(bundle_project: BundleProject, tmp_path: Path) -> None:
    home = Path(bundle_project.env["MODELOPS_HOME"])
    (home / "bundle-env").mkdir(parents=True, exist_ok=True)
    (home / "bundle-env" / "lab.yaml").write_text(
        f"environment: lab\nregistry:\n  provider: oci-layout\n  path: {home / 'registry'}\n"
        f"storage:\n  provider: shardstore\n  path: {tmp_path / 'store'}\n",
        encoding="utf-8",
    )
    bundle_project.extra_plugins.extend(PLUGINS)
    assert bundle_project.run("env", "switch", "lab").exit_code == 0
    # files from 100 kB go to blob storage
    assert bundle_project.run("config", "storage.threshold_bytes", "100000").exit_code == 0
    payload = os.urandom(250_000)
    bundle_project.write("data/contacts.bin", payload)
    bundle_project.write("model.py", "BETA = 0.2\n")
    assert bundle_project.run("add", ".").exit_code == 0
    pushed = bundle_project.run("push", "--json")
    assert pushed.exit_code == 0, pushed
    hexdigest = hashlib.sha256(payload).hexdigest()
    assert (tmp_path / "store" / "sha256" / hexdigest[:3] / hexdigest[3:]).read_bytes() == payload

    other = BundleProject.create(tmp_path / "colleague" / bundle_project.root.name, bundle_project.env)
    other.extra_plugins.extend(PLUGINS)
    assert other.run("env", "switch", "lab").exit_code == 0
    pulled = other.run("pull", "--json")
    assert pulled.exit_code == 0, pulled
    assert other.path("data/contacts.bin").read_bytes() == payload
