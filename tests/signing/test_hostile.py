"""Hostile signatures: each one is refused, with a message that says why, by every consumer -- ``pull``
into a project with local work, ``ensure``, ``api.materialize`` into the cache and into a folder, and the
worker entry point -- and nothing is placed; on the embedded layout and on CNCF distribution.

The hostile artifacts are crafted as someone with push access (and no trusted key) could: a signature by
a key the policy does not know, a trusted signature of another version replayed onto this one, truncated
and tampered envelopes, a listing that points at another version's signature, and a registry that loses
its referrers. A policy that names a bad key is a configuration error, also with nothing placed."""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops_bundle import api
from modelops_bundle.core import referrers
from modelops_bundle.core.errors import BundleError
from modelops_bundle.core.registry import RegistryBackend
from modelops_bundle.core.signing import DSSE_MEDIA_TYPE, SIGNATURE_ARTIFACT_TYPE, fetch_signatures
from modelops_bundle.plugins.registry_layout import OciLayoutRegistry
from modelops_bundle.testing import BundleProject
from modelops_bundle.worker import BundleRepository
from tests.bundle.conftest import ok, read_tree
from tests.oci.registries import FaultProxy, RunningRegistry
from tests.reliability.support import direct_backend, failed_cleanly
from tests.signing.conftest import Stage, generate_key, public_key_path, write_env
from tests.workers.conftest import seir_project


@pytest.fixture(params=["layout", "http"])
def stage(request: pytest.FixtureRequest) -> Stage:
    stage: Stage = request.getfixturevalue(f"{request.param}_stage")
    stage.trust_ci()
    return stage


@pytest.fixture
def backend(stage: Stage) -> Iterator[RegistryBackend]:
    made: RegistryBackend
    if stage.host:
        made = direct_backend(stage.host)
    else:
        made = OciLayoutRegistry({"path": str(Path(stage.env["MODELOPS_HOME"]) / "registry")})
    yield made
    made.close()


def fresh_version(stage: Stage, label: str) -> str:
    """A new, unsigned version of the stage's repository (tag ``label``)."""
    stage.project.write("data/extra/hostile.txt", f"{label} {uuid.uuid4().hex}\n")
    ok(stage.project.run("add", "data/extra/hostile.txt", "--json"))
    return str(ok(stage.project.run("push", "--tag", label, "--json"))["digest"])


def attach(backend: RegistryBackend, stage: Stage, subject: str, envelope: bytes) -> str:
    """Attach ``envelope`` as a signature referrer of ``subject`` (as anyone with push access can)."""
    size = len(backend.get_manifest(stage.repository, subject).data)
    upload = referrers.prepare(
        envelope,
        artifact_type=SIGNATURE_ARTIFACT_TYPE,
        layer_media_type=DSSE_MEDIA_TYPE,
        subject_digest=subject,
        subject_size=size,
        created="2030-01-01T00:00:00Z",
        what="hostile signature",
    )
    return str(referrers.attach(backend, stage.repository, upload)["digest"])


def genuine_envelope(backend: RegistryBackend, stage: Stage) -> bytes:
    """The envelope of the signed version's real, trusted signature."""
    (stored,) = fetch_signatures(backend, stage.repository, stage.signed)
    assert stored.envelope is not None
    return stored.envelope


@pytest.fixture
def victim(stage: Stage, tmp_path: Path) -> BundleProject:
    """A project that pulled the trusted version and has local work in progress."""
    project = BundleProject.create(tmp_path / "victim" / stage.repository, stage.project.env, "--env", stage.env_name)
    ok(project.run("pull", stage.signed, "--overwrite", "--json"))
    project.write("data/demographics.csv", "local work in progress\n")
    return project


def refused_everywhere(stage: Stage, victim: BundleProject, digest: str, tmp_path: Path, *needles: str,
                       code: int = 1) -> None:  # fmt: skip
    """Every consumer refuses ``digest`` with a message holding ``needles``; nothing is placed anywhere."""
    before = (read_tree(victim.root), (victim.meta / "state.json").read_bytes())
    failed_cleanly(victim.run("pull", digest, "--overwrite"), *needles, code=code)
    assert (read_tree(victim.root), (victim.meta / "state.json").read_bytes()) == before
    dest = tmp_path / f"ensure-{uuid.uuid4().hex[:6]}"
    failed_cleanly(victim.run("ensure", "--dest", str(dest), "--ref", digest), *needles, code=code)
    assert not dest.exists()
    ref = stage.ref(digest)
    for target in (None, tmp_path / f"dest-{uuid.uuid4().hex[:6]}"):
        with pytest.raises(BundleError) as refused:
            api.materialize(ref, target, environ=stage.env)
        assert refused.value.exit_code == code and all(needle in refused.value.message for needle in needles)
        assert target is None or not target.exists()
    with pytest.raises(BundleError) as refused:
        BundleRepository(environ=stage.env).ensure_local(ref)
    assert all(needle in refused.value.message for needle in needles), refused.value.message
    assert not stage.cache_holds(digest)


def test_a_signature_by_an_unknown_key(stage: Stage, victim: BundleProject, tmp_path: Path) -> None:
    digest = fresh_version(stage, "unknown-key")
    ok(stage.project.run("sign", digest, "--key", "other", "--json"))
    refused_everywhere(stage, victim, digest, tmp_path, "valid, but by key sha256:", "which the policy does not trust")


def test_a_signature_of_another_version_replayed(
    stage: Stage, backend: RegistryBackend, victim: BundleProject, tmp_path: Path
) -> None:
    digest = fresh_version(stage, "replayed")
    attach(backend, stage, digest, genuine_envelope(backend, stage))  # a trusted signature, of another digest
    refused_everywhere(stage, victim, digest, tmp_path, f"it signs {stage.signed}, not this version {digest}")


def test_a_listing_that_points_at_another_versions_signature(
    stage: Stage, backend: RegistryBackend, victim: BundleProject, tmp_path: Path
) -> None:
    digest = fresh_version(stage, "elsewhere")
    (descriptor,) = referrers.find(backend, stage.repository, stage.signed, SIGNATURE_ARTIFACT_TYPE)
    referrers.add_to_fallback(backend, stage.repository, digest, descriptor)
    refused_everywhere(stage, victim, digest, tmp_path, f"its subject is {stage.signed}, not {digest}")


def test_truncated_and_tampered_signatures(
    stage: Stage, backend: RegistryBackend, victim: BundleProject, tmp_path: Path
) -> None:
    digest = fresh_version(stage, "malformed")
    # a real signature of this version by the trusted key, then damaged copies of it beside it
    ok(stage.project.run("sign", digest, "--key", "ci", "--json"))
    (genuine,) = fetch_signatures(backend, stage.repository, digest)
    assert genuine.envelope is not None
    document = json.loads(genuine.envelope)
    statement = json.loads(base64.b64decode(document["payload"]))
    statement["predicate"]["signedAt"] = "2099-01-01T00:00:00Z"
    tampered = {**document, "payload": base64.b64encode(json.dumps(statement).encode()).decode()}
    attach(backend, stage, digest, genuine.envelope[: len(genuine.envelope) // 2])
    attach(backend, stage, digest, json.dumps(tampered).encode())
    attach(backend, stage, digest, json.dumps({**document, "payloadType": "text/plain"}).encode())
    # and the genuine one's bytes truncated in the registry's storage
    layer = referrers.read_layer(
        backend, stage.repository, genuine.referrer, digest, artifact_type=SIGNATURE_ARTIFACT_TYPE, limit=65536
    )[0]["layers"][0]["digest"]
    stored = _blob_file(stage, layer)
    stored.write_bytes(stored.read_bytes()[:100])
    refused_everywhere(
        stage,
        victim,
        digest,
        tmp_path,
        "none of its 4 signature(s) is by a trusted key",
        "malformed envelope: not JSON",
        "the signature does not verify",
        "payloadType 'text/plain'",
        "unreadable",
    )


def _blob_file(stage: Stage, digest: str) -> Path:
    if stage.registry is not None:
        return stage.registry.blob_data_path(digest)
    return Path(stage.env["MODELOPS_HOME"]) / "registry" / stage.repository / "blobs" / "sha256" / digest[7:]


def test_a_registry_that_drops_referrers(
    stage: Stage, backend: RegistryBackend, victim: BundleProject, tmp_path: Path
) -> None:
    digest = fresh_version(stage, "dropped")
    ok(stage.project.run("sign", digest, "--key", "ci", "--json"))
    tag = referrers.fallback_tag(digest)
    if stage.registry is not None:
        listing = backend.resolve(stage.repository, tag)
        request = urllib.request.Request(
            f"{stage.registry.url}/v2/{stage.repository}/manifests/{listing}", method="DELETE"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 202
    else:
        index_file = Path(stage.env["MODELOPS_HOME"]) / "registry" / stage.repository / "index.json"
        index = json.loads(index_file.read_text())
        index["manifests"] = [
            item
            for item in index["manifests"]
            if item.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag
        ]
        index_file.write_text(json.dumps(index))
    assert backend.resolve(stage.repository, tag) is None
    refused_everywhere(stage, victim, digest, tmp_path, "it has no signature", "does not keep referrers")


def test_a_policy_naming_a_bad_key(stage: Stage, victim: BundleProject, tmp_path: Path) -> None:
    private = Path(stage.env["MODELOPS_HOME"]) / "keys" / "ci.key"
    policy = stage.policy(f"keys: [{private}]")
    refused_everywhere(
        stage, victim, stage.signed, tmp_path, str(policy), "trust.keys[0]", "this is a private key", code=2
    )
    stage.policy("keys: ['-----BEGIN PUBLIC KEY-----\\nnot base64\\n-----END PUBLIC KEY-----']")
    refused_everywhere(
        stage, victim, stage.signed, tmp_path, "trust.keys[0] (inline PEM)", "not a valid PEM public key", code=2
    )


def test_a_referrers_api_that_loses_its_index(
    distribution: RunningRegistry, mops_env: dict[str, str], tmp_path: Path
) -> None:
    """An OCI 1.1 registry (distribution behind a proxy with the referrers API) whose index forgets the
    signature: the version is refused like an unsigned one."""
    proxy = FaultProxy(distribution.port, referrers=True).start()
    try:
        generate_key(mops_env, "ci")
        write_env(mops_env, "v11", host=proxy.host, trust=f"keys: [{public_key_path(mops_env, 'ci')}]")
        name = f"seir-{uuid.uuid4().hex[:8]}"
        project = seir_project(tmp_path / name, mops_env, "--env", "v11")
        digest = ok(project.run("push", "--sign", "--key", "ci", "--json"))["digest"]
        env = {**mops_env, "MOPS_ENV": "v11", "MODELOPS_BUNDLE_CACHE": str(tmp_path / "cache")}
        ref = f"{proxy.host}/{name}@{digest}"
        assert (api.materialize(ref, tmp_path / "first", environ=env) / "models" / "seir.py").is_file()
        proxy.referrer_index.clear()
        with pytest.raises(BundleError, match="it has no signature"):
            api.materialize(ref, tmp_path / "second", environ=env)
        assert not (tmp_path / "second").exists()
        failed_cleanly(project.run("ensure", "--dest", str(tmp_path / "third")), "it has no signature")
    finally:
        proxy.stop()
