"""Faults between the tool and the real servers, injected by the fault proxy (``tests/oci/registries.py``):
dropped connections (before an answer, mid-download, mid-upload, after the server acted), 5xx, 429 and
stalls. Push and pull either succeed through retries or fail with a clear message; a failed push never
moves a tag onto incomplete content (checked directly against the registry); re-running converges. The
registry killed mid-push and restarted on the same storage: the re-run uploads only what is missing."""

from __future__ import annotations

import random
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops_bundle.testing import BundleProject
from tests.oci.registries import FaultProxy, RunningRegistry, start_distribution
from tests.reliability.conftest import Trial
from tests.reliability.support import (
    complete_version,
    failed_cleanly,
    fill,
    new_project,
    ok,
    tree_files,
    write_env,
)
from tests.storage.services import Service


@pytest.fixture
def proxy(reliability_registry: RunningRegistry) -> Iterator[FaultProxy]:
    started = FaultProxy(reliability_registry.port, stall_seconds=2.5).start()
    yield started
    started.stop()


def _pair(mops_env: dict[str, str], tmp_path: Path, proxy: FaultProxy, seed: int) -> tuple[BundleProject, str]:
    """A project pinned to an environment whose registry is the proxy, filled from ``seed``."""
    write_env(mops_env, "faulty", proxy.host)
    name = f"faults-{uuid.uuid4().hex[:10]}"
    project = new_project(mops_env, tmp_path / name, "faulty")
    fill(project, seed, small=12, large=1)
    ok(project.run("add", ".", "--json"))
    return project, name


# (method, path pattern, action, times): each must be survived by the retries.
PUSH_FAULTS = [
    ("HEAD", r"/blobs/sha256:", "503", 2),
    ("POST", r"/blobs/uploads/", "429", 2),
    ("PUT", r"/blobs/uploads/", "drop", 1),
    ("PUT", r"/blobs/uploads/", "cut-upload", 2),
    ("PUT", r"/blobs/uploads/", "500", 1),
    ("PUT", r"/blobs/uploads/", "stall", 1),
    ("PUT", r"/blobs/uploads/", "drop-after", 1),
    ("HEAD", r"/manifests/", "drop", 1),
    ("PUT", r"/manifests/", "503", 1),
    ("PUT", r"/manifests/", "drop-after", 1),
]
PULL_FAULTS = [
    ("GET", r"/blobs/sha256:", "cut", 2),
    ("GET", r"/blobs/sha256:", "drop", 1),
    ("GET", r"/blobs/sha256:", "stall", 1),
    ("GET", r"/blobs/sha256:", "429", 2),
    ("GET", r"/manifests/", "503", 1),
    ("HEAD", r"/manifests/", "502", 1),
]


def test_transient_faults_are_survived(
    mops_env: dict[str, str], tmp_path: Path, proxy: FaultProxy, reliability_registry: RunningRegistry, trial: Trial
) -> None:
    """Every transient fault, one at a time, during a push and then during a pull: both succeed, the tag
    is complete, the pulled tree is byte-identical."""
    for number, (method, pattern, action, times) in enumerate(PUSH_FAULTS):
        project, name = _pair(mops_env, tmp_path / f"push{number}", proxy, seed=number)
        proxy.clear()
        proxy.inject(method, pattern, action, times)
        pushed = ok(project.run("push", "--json"))
        assert all(fault.times == 0 for fault in proxy.faults), (action, proxy.faults)
        assert complete_version(reliability_registry.host, name, "latest") == pushed["digest"]
        trial.record(
            "faults",
            f"push, {method} {pattern} answered `{action}`",
            f"{times}x",
            "retried; push succeeded, tag complete",
        )
    for number, (method, pattern, action, times) in enumerate(PULL_FAULTS):
        project, name = _pair(mops_env, tmp_path / f"pull{number}", proxy, seed=100 + number)
        ok(project.run("push", "--json"))
        clone = new_project(mops_env, tmp_path / f"pull{number}" / "clone", "faulty", ref=name)
        proxy.clear()
        proxy.inject(method, pattern, action, times)
        ok(clone.run("pull", "--json"))
        assert all(fault.times == 0 for fault in proxy.faults), (action, proxy.faults)
        assert tree_files(clone.root) == tree_files(project.root)
        trial.record(
            "faults",
            f"pull, {method} {pattern} answered `{action}`",
            f"{times}x",
            "retried; pull succeeded, tree identical",
        )


# (method, pattern, action, what the message must mention)
PERSISTENT_PUSH = [
    ("PUT", r"/blobs/uploads/", "503", "HTTP 503"),
    ("POST", r"/blobs/uploads/", "429", "HTTP 429"),
    ("PUT", r"/blobs/uploads/", "cut-upload", "upload of"),
    ("PUT", r"/manifests/", "500", "HTTP 500"),
    ("PUT", r"/blobs/uploads/", "stall", "upload of"),
]


def test_persistent_push_faults_fail_clearly_and_never_move_the_tag(
    mops_env: dict[str, str], tmp_path: Path, proxy: FaultProxy, reliability_registry: RunningRegistry, trial: Trial
) -> None:
    project, name = _pair(mops_env, tmp_path, proxy, seed=7)
    first = ok(project.run("push", "--json"))["digest"]
    host = reliability_registry.host
    for number, (method, pattern, action, needle) in enumerate(PERSISTENT_PUSH):
        project.write(f"data/change{number}.txt", f"change {number}\n" * 50)
        project.write(f"big/change{number}.bin", random.Random(number).randbytes(1_100_000))
        ok(project.run("add", ".", "--json"))
        proxy.clear()
        proxy.inject(method, pattern, action, 1000)
        state_before = (project.meta / "state.json").read_bytes()
        stderr = failed_cleanly(project.run("push"), needle)
        assert "registry" in stderr or "upload" in stderr
        assert complete_version(host, name, "latest") == first  # the tag never moved
        assert (project.meta / "state.json").read_bytes() == state_before
        proxy.clear()
        again = ok(project.run("push", "--json"))  # converges once the fault is gone
        assert complete_version(host, name, "latest") == again["digest"] != first
        first = again["digest"]
        trial.record(
            "faults",
            f"push, {method} {pattern} always answered `{action}`",
            "every attempt (4 retries each)",
            "exit 1 naming the failure, no traceback; tag and state.json unchanged; re-run pushed",
        )


def test_persistent_pull_faults_leave_the_tree_and_state_alone(
    mops_env: dict[str, str], tmp_path: Path, proxy: FaultProxy, trial: Trial
) -> None:
    project, name = _pair(mops_env, tmp_path, proxy, seed=11)
    ok(project.run("push", "--json"))
    clone = new_project(mops_env, tmp_path / "clone", "faulty", ref=name)
    ok(clone.run("pull", "--json"))
    clone.write("data/local-edit.txt", "mine\n")  # an untracked local file: never touched
    for number, (method, pattern, action) in enumerate(
        [("GET", r"/blobs/sha256:", "cut"), ("GET", r"/blobs/sha256:", "503"), ("GET", r"/manifests/", "drop")]
    ):
        for rel in ("data/f000.txt", "big/blob0.bin"):
            project.write(rel, f"version {number} of {rel}\n".encode() * 2000 * (40 if rel.startswith("big") else 1))
        ok(project.run("push", "--json"))
        before = tree_files(clone.root)
        state = (clone.meta / "state.json").read_bytes()
        proxy.clear()
        proxy.inject(method, pattern, action, 1000)
        failed_cleanly(clone.run("pull"), proxy.host)
        assert tree_files(clone.root) == before
        assert (clone.meta / "state.json").read_bytes() == state
        assert not [p for p in (clone.meta / "staging").glob("*")] if (clone.meta / "staging").exists() else True
        proxy.clear()
        ok(clone.run("pull", "--json"))
        expected = tree_files(project.root)
        expected["data/local-edit.txt"] = b"mine\n"
        assert tree_files(clone.root) == expected
        trial.record(
            "faults",
            f"pull, {method} {pattern} always answered `{action}`",
            "every attempt",
            "exit 1, working tree and state.json unchanged, no staging left; re-run converged",
        )


def _repo_layers(registry: RunningRegistry, repository: str) -> set[str]:
    """Blobs linked into ``repository`` (what a HEAD in that repository finds) in the storage folder."""
    base = registry.root / "docker/registry/v2/repositories" / repository / "_layers/sha256"
    return (
        {f"sha256:{entry.name}" for entry in base.iterdir() if (entry / "link").is_file()} if base.is_dir() else set()
    )


def test_registry_killed_mid_push_then_restarted(
    mops_env: dict[str, str], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, trial: Trial
) -> None:
    """SIGKILL the registry's process group after a seeded number of uploaded bytes; restart it on the
    same port and storage; the re-run uploads exactly the blobs the registry lacks."""
    registry = start_distribution(tmp_path_factory.mktemp("killed-registry"))
    proxy = FaultProxy(registry.port).start()
    try:
        write_env(mops_env, "killed", proxy.host)
        seeds = [3, 5, 8]
        for seed in seeds:
            name = f"killed-{seed}-{uuid.uuid4().hex[:6]}"
            project = new_project(mops_env, tmp_path / name, "killed")
            fill(project, seed, small=40, large=6, large_size=700_000)
            ok(project.run("add", ".", "--json"))
            threshold = random.Random(seed).randint(300_000, 3_000_000)
            fired = threading.Event()

            def kill_at(bytes_in: int, _out: int, threshold: int = threshold, fired: threading.Event = fired) -> None:
                if bytes_in >= threshold and not fired.is_set():
                    fired.set()
                    registry.kill()

            proxy.clear()
            proxy.on_bytes = kill_at
            failed_cleanly(project.run("push"), "registry")
            assert fired.is_set()
            proxy.on_bytes = None
            registry.restart()
            assert complete_version(registry.host, name, "latest") is None  # no tag onto partial content
            present = _repo_layers(registry, name)
            proxy.clear()
            pushed = ok(project.run("push", "--json"))
            digest = complete_version(registry.host, name, "latest")
            assert digest == pushed["digest"]
            from tests.reliability.support import direct_backend

            backend = direct_backend(registry.host)
            from modelops_bundle.core.reference import Reference
            from modelops_bundle.core.versions import fetch_version

            version = fetch_version(backend, Reference(name, tag="latest"), digest)
            backend.close()
            needed = {version.manifest.config.digest, *(layer.digest for layer in version.manifest.layers)}
            uploaded = {re.search(r"digest=(sha256%3A|sha256:)([0-9a-f]{64})", path) for path in proxy.blob_uploads()}
            uploaded_digests = {f"sha256:{match.group(2)}" for match in uploaded if match}
            assert uploaded_digests & needed == needed - present
            assert pushed["uploaded_blobs"] == len(needed - present)
            assert pushed["skipped_blobs"] == len(needed & present)
            trial.record(
                "faults",
                f"registry SIGKILLed (process group) after {threshold:,} uploaded bytes, restarted on the same storage",
                f"seed {seed}",
                f"exit 1; no tag; re-run uploaded {len(needed - present)} missing of {len(needed)} blobs and completed",
            )
    finally:
        proxy.stop()
        registry.stop()


def test_blob_store_faults(
    mops_env: dict[str, str], tmp_path: Path, moto_service: Service, reliability_registry: RunningRegistry, trial: Trial
) -> None:
    """The S3 blob store (moto) behind the proxy: transient faults are retried; persistent ones fail the
    push before the tag moves; re-running converges."""
    port = int(moto_service.url.rsplit(":", 1)[1])
    store = FaultProxy(port, stall_seconds=2.0).start()
    try:
        storage = (
            f"provider: s3\ncontainer: bundles\nendpoint: http://{store.host}\naccess_key: testing\n"
            f"secret_key: testing\nretries: 2\nread_timeout: 1.5\nconnect_timeout: 2"
        )
        write_env(mops_env, "blobby", reliability_registry.host, storage=storage)
        name = f"blobby-{uuid.uuid4().hex[:8]}"
        project = new_project(mops_env, tmp_path / name, "blobby")
        ok(project.run("config", "storage.threshold_bytes", "500000", "--json"))
        fill(project, 21, small=5, large=2, large_size=600_000)
        ok(project.run("add", ".", "--json", input_env={"AWS_DEFAULT_REGION": "us-east-1"}))
        env = {"AWS_DEFAULT_REGION": "us-east-1"}
        store.inject("PUT", r"/bundles/", "503", 1)
        first = ok(project.run("push", "--json", input_env=env))
        assert complete_version(reliability_registry.host, name, "latest") == first["digest"]
        trial.record("faults", "blob store (S3/moto), PUT object answered `503`", "1x", "retried; push succeeded")

        project.write("big/blob0.bin", random.Random(99).randbytes(600_000))
        store.clear()
        store.inject("PUT", r"/bundles/", "500", 1000)
        failed_cleanly(project.run("push", input_env=env), "s3")
        assert complete_version(reliability_registry.host, name, "latest") == first["digest"]
        store.clear()
        second = ok(project.run("push", "--json", input_env=env))
        trial.record(
            "faults",
            "blob store (S3/moto), PUT object always answered `500`",
            "every attempt",
            "exit 1 naming the store; tag unchanged; re-run pushed",
        )

        clone = new_project(mops_env, tmp_path / "clone", "blobby", ref=name)
        for method, action, times in (("GET", "cut", 1), ("GET", "503", 1)):
            store.clear()
            store.inject(method, r"/bundles/", action, times)
            target = tmp_path / f"ensure-{action}"
            ok(clone.run("ensure", "--dest", str(target), "--ref", second["digest"], "--json", input_env=env))
            assert tree_files(target) == tree_files(project.root)
            trial.record(
                "faults",
                f"blob store (S3/moto), GET object answered `{action}`",
                f"{times}x",
                "retried; files verified",
            )
        store.clear()
        store.inject("GET", r"/bundles/", "cut", 1000)
        target = tmp_path / "ensure-broken"
        failed_cleanly(clone.run("ensure", "--dest", str(target), "--ref", second["digest"], input_env=env))
        assert not (target / "big/blob0.bin").exists()
        trial.record(
            "faults",
            "blob store (S3/moto), GET object always cut mid-body",
            "every attempt",
            "exit 1; no partial file placed",
        )
    finally:
        store.stop()
