"""``hash_algorithm`` and the ``mops_file_hasher`` hook keep their promise end to end: sha512 through a
hashing plugin works from ``add`` to a verified ``ensure``, ``pull`` and the shared cache; an algorithm the
index cannot record, or a hasher whose digests are not the standard ones, is refused up front."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

import pytest

from modelops_bundle import api, hookimpl
from modelops_bundle.testing import BundleProject
from tests.bundle.conftest import ok


class Sha512:
    algorithm = "sha512"

    def digest_fileobj(self, handle: BinaryIO) -> str:
        digest = hashlib.sha512()
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
        return digest.hexdigest()

    def digest_file(self, path: str) -> str:
        with open(path, "rb") as handle:
            return self.digest_fileobj(handle)

    def digest_bytes(self, data: bytes) -> str:
        return hashlib.sha512(data).hexdigest()


class Sha512Plugin:
    @hookimpl
    def mops_file_hasher(self, algorithm: str) -> Sha512 | None:
        return Sha512() if algorithm == "sha512" else None


class Salted(Sha512):
    """Answers for sha512 with digests nothing downstream could check."""

    def digest_fileobj(self, handle: BinaryIO) -> str:
        return hashlib.sha512(b"salt" + handle.read()).hexdigest()


class SaltedPlugin:
    @hookimpl
    def mops_file_hasher(self, algorithm: str) -> Salted:
        return Salted()


def use_algorithm(project: BundleProject, algorithm: str) -> None:
    """Write ``hash_algorithm`` into config.yaml by hand (``mops bundle config`` refuses what the index
    cannot record, and some tests here need exactly that on disk)."""
    config = project.meta / "config.yaml"
    config.write_text(config.read_text() + f"hash_algorithm: {algorithm}\n")


@pytest.fixture
def sha512_project(bundle_project: BundleProject) -> BundleProject:
    bundle_project.extra_plugins.append(("sha512", Sha512Plugin()))
    use_algorithm(bundle_project, "sha512")
    bundle_project.write("data/small.csv", "a,b\n1,2\n")
    bundle_project.write("data/large.bin", bytes(range(256)) * 8192)  # 2 MiB: a raw layer of its own
    ok(bundle_project.run("add", ".", "--json"))
    return bundle_project


def test_sha512_through_a_plugin_works_end_to_end(sha512_project: BundleProject, tmp_path: Path) -> None:
    files = {
        entry["path"]: entry for entry in ok(sha512_project.run("status", "--files", "--offline", "--json"))["files"]
    }
    expected = "sha512:" + hashlib.sha512(sha512_project.path("data/large.bin").read_bytes()).hexdigest()
    assert files["data/large.bin"]["digest"] == expected
    digest = ok(sha512_project.run("push", "--json"))["digest"]
    manifest = ok(sha512_project.run("manifest", "--json"))
    assert {entry["digest"].split(":")[0] for entry in manifest["files"]} == {"sha512"}

    ensured = ok(sha512_project.run("ensure", "--dest", str(tmp_path / "copy"), "--json"))
    assert ensured["digest"] == digest
    assert (tmp_path / "copy" / "data" / "large.bin").read_bytes() == sha512_project.path("data/large.bin").read_bytes()
    assert ok(sha512_project.run("verify", "--json"))["ok"]

    tree = api.materialize(f"{sha512_project.root.name}@{digest}", environ=sha512_project.env)
    assert (tree / "data" / "small.csv").read_text() == "a,b\n1,2\n"  # verified into the shared cache

    other = BundleProject.create(tmp_path / "other", sha512_project.env)
    other.extra_plugins.append(("sha512", Sha512Plugin()))
    use_algorithm(other, "sha512")
    ok(other.run("config", "repository", sha512_project.root.name, "--json"))
    ok(other.run("pull", "--overwrite", "--json"))
    assert other.path("data/large.bin").read_bytes() == sha512_project.path("data/large.bin").read_bytes()


def test_an_algorithm_the_index_cannot_record_is_a_configuration_error(bundle_project: BundleProject) -> None:
    use_algorithm(bundle_project, "md5")
    bundle_project.write("a.txt", "x")
    result = bundle_project.run("add", "a.txt")
    assert result.exit_code == 2
    assert "hash_algorithm (line 3): 'md5' is not one of sha256, sha512" in result.stderr
    assert bundle_project.tracked() == []


def test_a_hasher_with_its_own_digests_is_refused_before_it_records_any(bundle_project: BundleProject) -> None:
    bundle_project.extra_plugins.append(("salted", SaltedPlugin()))
    use_algorithm(bundle_project, "sha512")
    bundle_project.write("a.txt", "x")
    result = bundle_project.run("add", "a.txt")
    assert result.exit_code == 2, result
    assert "Salted (mops_file_hasher) computes digests that differ from sha512's" in result.stderr
    assert bundle_project.tracked() == []
