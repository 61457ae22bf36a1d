"""Signing versions and ``verify --signature``, on the embedded OCI layout and on CNCF distribution (no
referrers API: the tag-schema fallback), and through a proxy that adds the referrers API. Every stored
signature is read back without the tool's code and verified with ``openssl``."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from modelops_bundle.testing import BundleProject
from tests.bundle.conftest import ok
from tests.oci.registries import FaultProxy, RunningRegistry
from tests.signing.conftest import Stage, generate_key, public_key_path, write_env
from tests.signing.stored import HttpReader, LayoutReader, openssl_key_id, openssl_verify, stored_envelopes
from tests.workers.conftest import seir_project


def _layout_reader(stage: Stage) -> LayoutReader:
    return LayoutReader(Path(stage.env["MODELOPS_HOME"]) / "registry" / stage.repository)


def _reader(stage: Stage) -> LayoutReader | HttpReader:
    return HttpReader(stage.host, stage.repository) if stage.host else _layout_reader(stage)


@pytest.fixture(params=["layout", "http"])
def stage(request: pytest.FixtureRequest) -> Stage:
    return request.getfixturevalue(f"{request.param}_stage")  # type: ignore[no-any-return]


def test_push_sign_attaches_an_independently_verifiable_signature(stage: Stage, tmp_path: Path) -> None:
    project = stage.project
    tags = {v["digest"]: v["tags"] for v in ok(project.run("tags", "--json"))["versions"]}
    assert tags[stage.signed] == ["latest"]  # signing never changes the version's digest
    provenance = ok(project.run("provenance", "latest", "--json"))
    ((referrer, manifest, envelope),) = stored_envelopes(_reader(stage), stage.signed)
    assert manifest["artifactType"] == "application/vnd.modelops.bundle.signature.v1+json"
    assert manifest["subject"]["digest"] == stage.signed
    assert manifest["layers"][0]["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    ci = public_key_path(stage.env, "ci")
    statement = openssl_verify(envelope, ci, tmp_path / "ossl")
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": stage.repository, "digest": {"sha256": stage.signed.partition(":")[2]}}]
    predicate = statement["predicate"]
    assert predicate["manifest"] == stage.signed and predicate["repository"] == stage.repository
    assert predicate["signer"]["keyid"] == openssl_key_id(ci) == json.loads(envelope)["signatures"][0]["keyid"]
    assert predicate["provenance"]["referrer"] == provenance["referrer"]
    assert manifest["annotations"]["io.modelops.bundle.signature.keyid"] == predicate["signer"]["keyid"]

    # a second signer (Ed25519); both listed and checked by verify --signature
    signed = ok(project.run("sign", "latest", "--key", "other", "--json"))
    assert signed["algorithm"] == "ed25519" and signed["signature"]["method"] == "tag-schema"
    stored = {digest: data for digest, _manifest, data in stored_envelopes(_reader(stage), stage.signed)}
    assert set(stored) == {referrer, signed["signature"]["digest"]}
    openssl_verify(stored[signed["signature"]["digest"]], public_key_path(stage.env, "other"), tmp_path / "ossl2")
    report = ok(project.run("verify", "--signature", "latest", "--json"))
    assert report["ok"] and report["checked"]["signature"] == 2
    assert {s["key_id"] for s in report["signatures"]["signatures"]} == {
        openssl_key_id(ci),
        openssl_key_id(public_key_path(stage.env, "other")),
    }
    assert all(s["valid"] for s in report["signatures"]["signatures"])
    text = project.run("verify", "--signature", "latest")
    assert text.exit_code == 0 and "key 'ci'" in text.stdout and "key 'other'" in text.stdout, text
    # signing again with a key that signed already attaches nothing new
    again = ok(project.run("sign", "latest", "--key", "ci", "--json"))
    assert again["signature"] == {"digest": referrer, "method": "existing"}
    assert len(stored_envelopes(_reader(stage), stage.signed)) == 2


def test_verify_signature_finds_the_unsigned_and_the_untrusted(stage: Stage) -> None:
    project = stage.project
    unsigned = project.run("verify", "--signature", "unsigned", "--json")
    assert unsigned.exit_code == 1
    assert [f["kind"] for f in unsigned.json()["findings"]] == ["unsigned"]
    stage.policy(f"keys: [{public_key_path(stage.env, 'other')}]")
    untrusted = project.run("verify", "--signature", "latest", "--json")
    assert untrusted.exit_code == 1
    (finding,) = untrusted.json()["findings"]
    assert finding["kind"] == "untrusted" and "other.pub" in finding["detail"]
    stage.trust_ci()
    (unsigned_finding,) = project.run("verify", "--signature", "unsigned", "--json").json()["findings"]
    assert unsigned_finding["kind"] == "unsigned" and "expects one by: sha256:" in unsigned_finding["detail"]
    trusted = ok(project.run("verify", "--signature", "latest", "--json"))
    (check,) = trusted["signatures"]["signatures"]
    assert check["trusted"] and check["trusted_key"].endswith("ci.pub") and trusted["signatures"]["accepted"]
    # without REF: the last synced version (the unsigned push)
    assert project.run("verify", "--signature").exit_code == 1


def test_verify_signature_adds_to_the_other_checks(layout_stage: Stage) -> None:
    project = layout_stage.project
    project.write("README.md", "changed locally\n")
    result = project.run("verify", "--signature", "--json")
    assert result.exit_code == 1
    kinds = sorted(f["kind"] for f in result.json()["findings"])
    assert kinds == ["modified", "unsigned"]  # the worktree check still ran, beside the signature check
    remote = ok(project.run("verify", "--remote", "--signature", "latest", "--json"))
    assert set(remote["checked"]) == {"remote", "signature"}


def test_a_registry_with_the_referrers_api_indexes_signatures(
    distribution: RunningRegistry, mops_env: dict[str, str], tmp_path: Path
) -> None:
    proxy = FaultProxy(distribution.port, referrers=True).start()
    try:
        generate_key(mops_env, "ci", "ed25519")
        write_env(mops_env, "v11", host=proxy.host)
        name = f"seir-{uuid.uuid4().hex[:8]}"
        project = seir_project(tmp_path / name, mops_env, "--env", "v11")
        pushed = ok(project.run("push", "--sign", "--key", "ci", "--json"))
        assert pushed["signature"]["method"] == "referrers-api"
        assert HttpReader(distribution.host, name).tags() == ["latest"]  # no fallback tag was written
        report = ok(project.run("verify", "--signature", "--json"))
        assert report["checked"]["signature"] == 1 and report["signatures"]["signatures"][0]["valid"]
        write_env(mops_env, "v11", host=proxy.host, trust=f"keys: [{public_key_path(mops_env, 'ci')}]")
        assert ok(project.run("verify", "--signature", "--json"))["signatures"]["accepted"]
    finally:
        proxy.stop()


def test_ed25519_signing_is_deterministic(mops_env: dict[str, str], tmp_path: Path) -> None:
    """The same content pushed and signed in two homes with one key and one SOURCE_DATE_EPOCH gives
    byte-identical signatures and referrers (ECDSA too, where OpenSSL signs deterministically)."""
    from modelops_bundle.core.keys import _deterministic_ecdsa

    generate_key(mops_env, "ed", "ed25519")
    generate_key(mops_env, "ec", "ecdsa-p256")
    results = []
    for home in ("a", "b"):
        env = {**mops_env, "MODELOPS_HOME": str(tmp_path / home / ".modelops"), "SOURCE_DATE_EPOCH": "1700000000"}
        shutil.copytree(Path(mops_env["MODELOPS_HOME"]) / "keys", Path(env["MODELOPS_HOME"]) / "keys")
        project = BundleProject.create(tmp_path / home / "seir", env, "--template", "seir")
        ok(project.run("add", ".", "--json"))
        ed = ok(project.run("push", "--sign", "--key", "ed", "--json"))
        ec = ok(project.run("sign", "--key", "ec", "--json"))
        envelopes = dict(
            (digest, data) for digest, _m, data in stored_envelopes(_layout_reader_of(env, "seir"), ed["digest"])
        )
        results.append((ed["digest"], ed["signature"]["digest"], ec["signature"]["digest"], envelopes))
    (digest_a, ed_a, ec_a, env_a), (digest_b, ed_b, ec_b, env_b) = results
    assert digest_a == digest_b and ed_a == ed_b and env_a[ed_a] == env_b[ed_b]
    if _deterministic_ecdsa():
        assert ec_a == ec_b and env_a[ec_a] == env_b[ec_b]


def _layout_reader_of(env: dict[str, str], repository: str) -> LayoutReader:
    return LayoutReader(Path(env["MODELOPS_HOME"]) / "registry" / repository)


def test_sign_with_pem_files_made_by_openssl(layout_stage: Stage, tmp_path: Path) -> None:
    """Keys need not come from ``key generate``: PEM files made by openssl sign, and their public halves
    (exported by openssl) form the policy."""
    import subprocess

    stage = layout_stage
    keys = tmp_path / "openssl-keys"
    keys.mkdir()
    commands = {
        "ec.pem": ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "ed.pem": ["openssl", "genpkey", "-algorithm", "ed25519"],
    }
    for name, argv in commands.items():
        subprocess.run([*argv, "-out", str(keys / name)], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "pkey", "-in", str(keys / name), "-pubout", "-out", str(keys / name.replace(".pem", ".pub"))],
            check=True,
            capture_output=True,
        )
    for name in ("ec.pem", "ed.pem"):
        signed = ok(stage.project.run("sign", "unsigned", "--key", str(keys / name), "--json"))
        assert signed["key_id"] == openssl_key_id(keys / name.replace(".pem", ".pub"))
    stage.policy(f"keys: [{keys / 'ed.pub'}]")
    assert ok(stage.project.run("verify", "--signature", "unsigned", "--json"))["signatures"]["accepted"]
    exported = stage.project.run("key", "export", str(keys / "ec.pem"), "--public")
    assert exported.exit_code == 0 and exported.stdout == (keys / "ec.pub").read_text()


def test_signing_mistakes_are_refused_before_anything_is_pushed(layout_stage: Stage, tmp_path: Path) -> None:
    project = layout_stage.project
    before = ok(project.run("tags", "--json"))
    project.write("README.md", "another version\n")
    wrong = project.run("push", "--sign", "--key", "ci", input_env={"MOPS_SIGNING_PASSPHRASE": "wrong"})
    assert wrong.exit_code == 2 and "wrong passphrase for key 'ci'" in wrong.stderr, wrong
    missing = project.run("push", "--sign", "--key", "nosuch")
    assert missing.exit_code == 2 and "no key named 'nosuch'" in missing.stderr
    assert "keys: ci, other" in missing.stderr
    no_pass = project.run("push", "--sign", "--key", "ci", input_env={"MOPS_SIGNING_PASSPHRASE": None})
    assert no_pass.exit_code == 2 and "MOPS_SIGNING_PASSPHRASE" in no_pass.stderr
    assert ok(project.run("tags", "--json")) == before  # nothing was pushed
    assert project.run("push", "--key", "ci").exit_code == 2  # --key without --sign
    plugin = project.run("sign", "--key", "kms:release")
    assert plugin.exit_code == 2 and "no signer plugin provides 'kms'" in plugin.stderr
    public = project.run("sign", "--key", str(public_key_path(layout_stage.env, "ci")))
    assert public.exit_code == 2 and "public key" in public.stderr
    several = project.run("sign")
    assert several.exit_code == 2 and "several keys and none named 'default': ci, other" in several.stderr
    gone = project.run("sign", "v9", "--key", "ci")
    assert gone.exit_code == 1 and "v9 not found" in gone.stderr
