"""Core logic of signing and trust without a registry: parsing a ``trust:`` section (every mistake named
with its file and entry), which keys a repository's rule asks for, and the verdict on envelopes -- well
formed, forged, replayed or random bytes (a checker that raises on hostile input would be a crash, not a
refusal)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelops_bundle.core import referrers
from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.keys import PublicKey, SigningKey, public_key_of, signing_key_from_private
from modelops_bundle.core.signing import (
    PAYLOAD_TYPE,
    StoredSignature,
    check_signature,
    envelope,
    pae,
    statement,
)
from modelops_bundle.core.trust import parse_trust_policy

#: The same examples on every run (as the reliability suite's properties).
PROPERTY = settings(
    derandomize=True, deadline=None, max_examples=300, database=None, suppress_health_check=[HealthCheck.too_slow]
)

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
REPO = "lab/seir"


def _pem(key: Any) -> str:
    data = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return str(data.decode())


def _write(folder: Path, name: str, key: Any) -> Path:
    path = folder / name
    path.write_text(_pem(key))
    return path


@pytest.fixture
def keys() -> dict[str, Any]:
    return {"ci": ec.generate_private_key(ec.SECP256R1()), "lab": ed25519.Ed25519PrivateKey.generate()}


def _signer(key: Any, label: str = "test") -> SigningKey:
    return signing_key_from_private(key, label)


def _signed(key: SigningKey, *, digest: str = DIGEST, repository: str = REPO) -> StoredSignature:
    payload = referrers.dumps(statement(repository, digest, key.public, "2025-01-01T00:00:00Z", None))
    return StoredSignature("sha256:" + "c" * 64, envelope(payload, key))


# --------------------------------------------------------------------------------------------- parsing


def test_a_policy_with_keys_files_and_inline_pem(tmp_path: Path, keys: dict[str, Any]) -> None:
    _write(tmp_path, "ci.pub", keys["ci"])
    source = tmp_path / "dev.yaml"
    policy = parse_trust_policy(
        {"keys": ["ci.pub", _pem(keys["lab"]), "ci.pub"], "repositories": {"lab/*": [_pem(keys["lab"])]}}, source
    )
    assert policy is not None and policy.require  # require defaults to true
    assert [key.source for key in policy.keys] == ["ci.pub", "trust.keys[1] (inline)"]  # duplicates dropped
    assert [key.algorithm for key in policy.keys] == ["ecdsa-p256", "ed25519"]
    assert policy.to_json()["source"] == str(source)
    assert parse_trust_policy(None, source) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["ci.pub"], "trust: expected a mapping"),
        ({"kyes": []}, "trust.kyes: unknown field"),
        ({"keys": ["ci.pub"], "require": "yes please"}, "trust.require: expected true or false"),
        ({"keys": "ci.pub"}, "trust.keys: expected a list"),
        ({"keys": [3]}, "trust.keys[0]: expected a public key file or PEM text, got 3"),
        ({"keys": ["missing.pub"]}, "trust.keys[0] (missing.pub): no such file"),
        ({"keys": ["."]}, "is a folder, not a key file"),
        ({"keys": ["junk.pub"]}, "trust.keys[0] (junk.pub): not a PEM public key"),
        ({"keys": ["ci.key"]}, "this is a private key"),
        ({"keys": ["rsa.pub"]}, "only ECDSA P-256 and Ed25519 keys are supported"),
        ({"keys": ["p384.pub"]}, "curve secp384r1; only P-256"),
        ({"keys": ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"]}, "(inline PEM): not a valid"),
        ({"keys": []}, "trust.require is true but trust.keys lists no key"),
        ({"repositories": ["lab/*"]}, "trust.repositories: expected a mapping"),
        ({"repositories": {"lab/*": []}}, "trust.repositories['lab/*']: lists no key"),
        ({"repositories": {"": ["ci.pub"]}}, "is not a repository pattern"),
    ],
)
def test_every_mistake_is_named_with_its_file_and_entry(
    tmp_path: Path, keys: dict[str, Any], data: Any, message: str
) -> None:
    _write(tmp_path, "ci.pub", keys["ci"])
    _write(tmp_path, "rsa.pub", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    _write(tmp_path, "p384.pub", ec.generate_private_key(ec.SECP384R1()))
    (tmp_path / "junk.pub").write_text("hello\n")
    (tmp_path / "ci.key").write_bytes(
        keys["ci"].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    source = tmp_path / "dev.yaml"
    with pytest.raises(ConfigError) as error:
        parse_trust_policy(data, source)
    assert str(source) in error.value.message and message in error.value.message, error.value.message
    assert error.value.exit_code == 2


def test_rules_per_repository(tmp_path: Path, keys: dict[str, Any]) -> None:
    ci, lab = _pem(keys["ci"]), _pem(keys["lab"])
    policy = parse_trust_policy({"keys": [ci], "repositories": {"lab/*": [lab], "lab/seir": [ci]}}, None)
    assert policy is not None
    rule = policy.rule_for("lab/seir")  # two patterns match: the union of their keys, and only those
    assert rule.required and {key.algorithm for key in rule.keys} == {"ed25519", "ecdsa-p256"}
    assert rule.why == "trust.repositories 'lab/*', 'lab/seir'"
    assert [key.algorithm for key in policy.rule_for("lab/other").keys] == ["ed25519"]
    assert policy.rule_for("flu").why == "trust.require" and policy.rule_for("flu").keys == policy.keys
    relaxed = parse_trust_policy({"require": False, "repositories": {"lab/*": [lab]}}, None)
    assert relaxed is not None and not relaxed.rule_for("flu").required and relaxed.rule_for("lab/x").required


# ------------------------------------------------------------------------------------------- envelopes


def test_a_valid_signature_is_trusted_only_by_the_policys_own_key(keys: dict[str, Any]) -> None:
    signer = _signer(keys["ci"])
    stored = _signed(signer)
    trusted = public_key_of(keys["ci"].public_key(), "ci.pub")
    verdict = check_signature(stored, repository=REPO, digest=DIGEST, trusted=[trusted])
    assert verdict.valid and verdict.trusted_by == trusted and verdict.key_id == signer.key_id
    alone = check_signature(stored, repository=REPO, digest=DIGEST)
    assert alone.valid and alone.trusted_by is None
    stranger = public_key_of(keys["lab"].public_key(), "lab.pub")
    assert check_signature(stored, repository=REPO, digest=DIGEST, trusted=[stranger]).trusted_by is None


def test_a_signature_for_another_digest_or_repository_is_invalid(keys: dict[str, Any]) -> None:
    signer = _signer(keys["ci"])
    trusted = [signer.public]
    replayed = check_signature(_signed(signer, digest=OTHER), repository=REPO, digest=DIGEST, trusted=trusted)
    assert not replayed.valid and f"it signs {OTHER}, not this version {DIGEST}" in (replayed.problem or "")
    moved = check_signature(_signed(signer, repository="lab/flu"), repository=REPO, digest=DIGEST, trusted=trusted)
    assert not moved.valid and "made for repository 'lab/flu', not 'lab/seir'" in (moved.problem or "")


def test_a_forged_key_id_is_refused(keys: dict[str, Any]) -> None:
    """An attacker signs with their own key but claims the trusted key's id."""
    honest, attacker = _signer(keys["ci"]), _signer(keys["lab"])
    payload = referrers.dumps(statement(REPO, DIGEST, attacker.public, "2025-01-01T00:00:00Z", None))
    document = json.loads(envelope(payload, attacker))
    document["signatures"][0]["keyid"] = honest.key_id
    forged = StoredSignature("sha256:" + "d" * 64, json.dumps(document).encode())
    verdict = check_signature(forged, repository=REPO, digest=DIGEST, trusted=[honest.public])
    assert not verdict.valid and "does not match the signer's public key" in (verdict.problem or "")
    # ... and embedding the trusted public key with the attacker's signature does not verify
    statement_data = statement(REPO, DIGEST, honest.public, "2025-01-01T00:00:00Z", None)
    payload = referrers.dumps(statement_data)
    sig = attacker.sign(pae(PAYLOAD_TYPE, payload))
    document = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": honest.key_id, "sig": base64.b64encode(sig).decode()}],
    }
    stolen = StoredSignature("sha256:" + "e" * 64, json.dumps(document).encode())
    verdict = check_signature(stolen, repository=REPO, digest=DIGEST, trusted=[honest.public])
    assert not verdict.valid and "does not verify" in (verdict.problem or "")


def test_signing_is_deterministic_for_ed25519(keys: dict[str, Any]) -> None:
    signer = _signer(keys["lab"])
    assert _signed(signer).envelope == _signed(signer).envelope


@PROPERTY
@given(data=st.data())
def test_random_damage_is_refused_never_raised(data: st.DataObject) -> None:
    signer = _signer(ed25519.Ed25519PrivateKey.from_private_bytes(b"\x01" * 32))
    good = _signed(signer).envelope
    assert good is not None
    position = data.draw(st.integers(0, len(good) - 1))
    replacement = data.draw(st.binary(min_size=0, max_size=8))
    damaged = good[:position] + replacement + good[position + 1 :]
    verdict = check_signature(
        StoredSignature("sha256:" + "f" * 64, damaged), repository=REPO, digest=DIGEST, trusted=[signer.public]
    )
    if damaged != good and verdict.valid:
        # a change that keeps the meaning (JSON whitespace, base64 of the same bytes) is still the same signature
        assert json.loads(damaged) == json.loads(good) or _decoded(damaged) == _decoded(good)
    assert isinstance(verdict.problem, str) or verdict.valid


def _decoded(data: bytes) -> Any:
    document = json.loads(data)
    return (document["payloadType"], base64.b64decode(document["payload"]), document["signatures"])


@PROPERTY
@given(st.binary(max_size=400))
def test_arbitrary_bytes_are_refused(data: bytes) -> None:
    verdict = check_signature(StoredSignature("sha256:" + "0" * 64, data), repository=REPO, digest=DIGEST)
    assert not verdict.valid and verdict.problem


def test_public_keys_compare_by_id(keys: dict[str, Any]) -> None:
    one = public_key_of(keys["ci"].public_key(), "a")
    two = public_key_of(keys["ci"].public_key(), "b")
    assert one == two and len({one, two}) == 1 and isinstance(one, PublicKey) and "ecdsa-p256" in repr(one)
