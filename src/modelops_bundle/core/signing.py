"""Signatures of versions: an in-toto Statement in a DSSE envelope, attached as an OCI referrer.

What is signed (the *payload*) is an in-toto Statement v1 (``application/vnd.in-toto+json``)::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "<repository>", "digest": {"sha256": "<hex of the version's manifest>"}}],
     "predicateType": "https://modelops.io/bundle/signature/v1",
     "predicate": {"repository": "<repository>", "manifest": "sha256:<hex>",
                   "provenance": {"referrer": "sha256:...", "document": "sha256:..."} | null,
                   "signer": {"keyid": "sha256:...", "algorithm": "ecdsa-p256" | "ed25519",
                              "publicKey": "-----BEGIN PUBLIC KEY-----..."},
                   "signedAt": "2025-01-01T00:00:00Z",
                   "tool": {"name": "modelops-bundle", "version": "0.3.0"}}}

It travels in a DSSE envelope (``application/vnd.dsse.envelope.v1+json``)::

    {"payloadType": "application/vnd.in-toto+json", "payload": "<base64 statement>",
     "signatures": [{"keyid": "sha256:...", "sig": "<base64 signature>"}]}

whose signature is over DSSE's pre-authentication encoding (:func:`pae`):
``DSSEv1 <len(type)> <type> <len(payload)> <payload>``. The envelope is the one layer of an OCI 1.1
artifact (``artifactType`` :data:`SIGNATURE_ARTIFACT_TYPE`) whose ``subject`` is the version -- see
:mod:`.referrers`: the referrers API where the registry has one, the ``sha256-<hex>`` tag otherwise.

The signature covers the manifest digest, which covers the index, which names every file by digest: it
says who vouches for these exact bytes without reading them again. The embedded public key lets anyone
check a signature's integrity; whether its key is *trusted* is for a trust policy (:mod:`.trust`), which
verifies with its own copy of the key, never the embedded one.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops_bundle import __version__
from modelops_bundle.core import referrers
from modelops_bundle.core.errors import BundleError, RegistryError

if TYPE_CHECKING:
    from modelops_bundle.core.keys import PublicKey, SigningKey
    from modelops_bundle.core.reference import Reference
    from modelops_bundle.core.registry import RegistryBackend

SIGNATURE_ARTIFACT_TYPE = "application/vnd.modelops.bundle.signature.v1+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://modelops.io/bundle/signature/v1"
ANNOTATION_KEYID = "io.modelops.bundle.signature.keyid"
#: An envelope is a few KiB; anything larger is refused unread.
MAX_SIGNATURE_BYTES = 64 * 1024
#: Referrers read per version: junk attached by anyone who can push cannot make a pull slow.
MAX_SIGNATURES = 32


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature is computed over."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement(
    repository: str, digest: str, key: PublicKey, signed_at: str, provenance: Mapping[str, str] | None
) -> dict[str, Any]:
    """The in-toto Statement that signing ``digest`` of ``repository`` with ``key`` asserts."""
    algorithm, _, hexdigest = digest.partition(":")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": repository, "digest": {algorithm: hexdigest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "repository": repository,
            "manifest": digest,
            "provenance": dict(provenance) if provenance else None,
            "signer": {"keyid": key.key_id, "algorithm": key.algorithm, "publicKey": key.pem.decode("ascii")},
            "signedAt": signed_at,
            "tool": {"name": "modelops-bundle", "version": __version__},
        },
    }


def envelope(payload: bytes, key: SigningKey) -> bytes:
    """The DSSE envelope of ``payload`` signed by ``key`` (canonical JSON bytes)."""
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    return referrers.dumps(
        {
            "payloadType": PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode("ascii"),
            "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(signature).decode("ascii")}],
        }
    )


# ----------------------------------------------------------------------------------------------- signing


@dataclass
class SignResult:
    """What ``sign`` (and ``push --sign``) did."""

    reference: Reference
    digest: str
    key: str  # how the key was named (store name, file, plugin:key)
    key_id: str
    algorithm: str
    signed_at: str
    referrer: str
    method: str  # referrers-api | tag-schema | existing (this key had signed it: nothing attached)
    provenance: dict[str, str] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": str(self.reference),
            "digest": self.digest,
            "key": self.key,
            "key_id": self.key_id,
            "algorithm": self.algorithm,
            "signed_at": self.signed_at,
            "signature": {"digest": self.referrer, "method": self.method},
            "provenance": self.provenance,
        }

    def attachment_json(self) -> dict[str, Any]:
        """The signature as ``push --sign --json`` shows it, beside the version (like ``provenance``)."""
        return {
            "digest": self.referrer,
            "method": self.method,
            "key": self.key,
            "key_id": self.key_id,
            "algorithm": self.algorithm,
            "signed_at": self.signed_at,
        }


def provenance_of(backend: RegistryBackend, repository: str, digest: str) -> dict[str, str] | None:
    """The digests of the version's newest provenance record -- its referrer manifest and its document --
    that a signature names; ``None`` when the version has none (pushed by another tool)."""
    from modelops_bundle.core.provenance import MAX_PROVENANCE_BYTES, PROVENANCE_MEDIA_TYPE, find

    for item in find(backend, repository, digest):
        referrer = str(item.get("digest"))
        try:
            manifest, _data = referrers.read_layer(
                backend, repository, referrer, digest, artifact_type=PROVENANCE_MEDIA_TYPE, limit=MAX_PROVENANCE_BYTES
            )
        except BundleError:
            continue
        return {"referrer": referrer, "document": str(manifest["layers"][0]["digest"])}
    return None


def sign_version(backend: RegistryBackend, reference: Reference, key: SigningKey, *, signed_at: str) -> SignResult:
    """Sign the version ``reference`` names (a tag is resolved once) and attach the signature -- unless
    a valid signature by this key is attached already (``method`` ``existing``).

    The version's manifest is only read: its digest never changes. With an Ed25519 key (and ECDSA where
    OpenSSL does RFC 6979) the same version, key and ``signed_at`` give the same signature and referrer.
    """
    from modelops_bundle.core.versions import require_digest

    digest = require_digest(backend, reference)

    def signed(at: str, referrer: str, method: str, provenance: dict[str, str] | None) -> SignResult:
        return SignResult(
            reference.with_digest(digest),
            digest,
            key.label,
            key.key_id,
            key.algorithm,
            at,
            referrer,
            method,
            provenance,
        )

    record = backend.get_manifest(reference.repository, digest)
    if record.digest != digest:
        raise RegistryError(f"{reference}: the registry returned manifest {record.digest}, expected {digest}")
    for stored in fetch_signatures(backend, reference.repository, digest):
        check = check_signature(stored, repository=reference.repository, digest=digest, trusted=(key.public,))
        if check.trusted_by is not None:  # signed by this key already: one signature per key is enough
            return signed(check.signed_at or "", stored.referrer, "existing", check.provenance)
    provenance = provenance_of(backend, reference.repository, digest)
    payload = referrers.dumps(statement(reference.repository, digest, key.public, signed_at, provenance))
    data = envelope(payload, key)
    upload = referrers.prepare(
        data,
        artifact_type=SIGNATURE_ARTIFACT_TYPE,
        layer_media_type=DSSE_MEDIA_TYPE,
        subject_digest=digest,
        subject_size=len(record.data),
        subject_media_type=record.media_type,
        created=signed_at,
        annotations={ANNOTATION_KEYID: key.key_id},
        what="signature",
    )
    attached = referrers.attach(backend, reference.repository, upload)
    return signed(signed_at, str(attached["digest"]), str(attached["method"]), provenance)


# ------------------------------------------------------------------------------------------ reading them


@dataclass(frozen=True)
class StoredSignature:
    """One signature referrer of a version: its envelope bytes, or why they could not be read."""

    referrer: str
    envelope: bytes | None
    problem: str | None = None

    def to_cache(self) -> dict[str, Any]:
        return {
            "referrer": self.referrer,
            "envelope": base64.b64encode(self.envelope).decode("ascii") if self.envelope is not None else None,
            "problem": self.problem,
        }

    @staticmethod
    def from_cache(item: Any) -> StoredSignature | None:
        if not isinstance(item, dict) or not isinstance(item.get("referrer"), str):
            return None
        raw = item.get("envelope")
        try:
            data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else None
        except (binascii.Error, ValueError):
            return None
        problem = item.get("problem")
        return StoredSignature(item["referrer"], data, problem if isinstance(problem, str) else None)


def fetch_signatures(backend: RegistryBackend, repository: str, digest: str) -> list[StoredSignature]:
    """Every signature referrer the registry lists for ``digest`` (newest first, at most
    :data:`MAX_SIGNATURES`), each with its envelope bytes or the reason they could not be read -- a
    listing can point anywhere, so each referrer's own ``subject`` and type are checked."""
    found: list[StoredSignature] = []
    for item in referrers.find(backend, repository, digest, SIGNATURE_ARTIFACT_TYPE)[:MAX_SIGNATURES]:
        referrer = str(item.get("digest"))
        try:
            _manifest, data = referrers.read_layer(
                backend, repository, referrer, digest, artifact_type=SIGNATURE_ARTIFACT_TYPE, limit=MAX_SIGNATURE_BYTES
            )
        except BundleError as exc:
            found.append(StoredSignature(referrer, None, f"unreadable: {exc.message}"))
            continue
        found.append(StoredSignature(referrer, data))
    return found


# ----------------------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class SignatureCheck:
    """The verdict on one stored signature for one version.

    ``valid``: a well-formed envelope, for this digest and repository, whose signature verifies with the
    key it names. ``trusted_by``: the policy key that verifies it too (``None``: no key of the policy,
    or no policy given)."""

    referrer: str
    valid: bool
    key_id: str | None = None
    algorithm: str | None = None
    signed_at: str | None = None
    problem: str | None = None
    trusted_by: PublicKey | None = None
    provenance: dict[str, Any] | None = None

    def describe(self) -> str:
        who = f"key {self.key_id}" if self.key_id else "an unknown key"
        if not self.valid:
            return f"signature {self.referrer} ({who}): {self.problem}"
        if self.trusted_by is not None:
            return f"signature {self.referrer}: valid, by trusted key {self.trusted_by.describe()}"
        return f"signature {self.referrer}: valid, but by {who}, which the policy does not trust"

    def to_json(self) -> dict[str, Any]:
        return {
            "referrer": self.referrer,
            "key_id": self.key_id,
            "algorithm": self.algorithm,
            "signed_at": self.signed_at,
            "valid": self.valid,
            "trusted": self.trusted_by is not None,
            "trusted_key": self.trusted_by.source if self.trusted_by is not None else None,
            "provenance": self.provenance,
            "problem": self.problem,
        }


class _Refused(Exception):
    """Why an envelope is not a valid signature of the version (internal: becomes ``problem``)."""


def check_signature(
    stored: StoredSignature, *, repository: str, digest: str, trusted: Sequence[PublicKey] = ()
) -> SignatureCheck:
    """Check one stored signature of ``digest`` in ``repository``; ``trusted`` are the keys a policy
    trusts (a signature is trusted only when one of them verifies it)."""
    if stored.envelope is None:
        return SignatureCheck(stored.referrer, False, problem=stored.problem or "unreadable")
    facts: dict[str, Any] = {}
    try:
        payload, keyid, sig, statement_data = _open_envelope(stored.envelope)
        predicate = _check_statement(statement_data, repository, digest)
        facts = {
            "signed_at": predicate.get("signedAt") if isinstance(predicate.get("signedAt"), str) else None,
            "provenance": predicate.get("provenance") if isinstance(predicate.get("provenance"), dict) else None,
        }
        embedded = _embedded_key(predicate, keyid)
        facts.update(key_id=embedded.key_id, algorithm=embedded.algorithm)
        signed = pae(PAYLOAD_TYPE, payload)
        if not embedded.verify(sig, signed):
            raise _Refused("the signature does not verify (the payload or the signature was altered)")
    except _Refused as exc:
        return SignatureCheck(stored.referrer, False, problem=str(exc), **facts)
    except Exception as exc:  # hostile bytes: any parser failure is a refusal, never a crash
        return SignatureCheck(stored.referrer, False, problem=f"malformed signature: {exc}", **facts)
    for key in trusted:
        if key.key_id == embedded.key_id and key.algorithm == embedded.algorithm and key.verify(sig, signed):
            return SignatureCheck(stored.referrer, True, trusted_by=key, **facts)
    return SignatureCheck(stored.referrer, True, **facts)


def _open_envelope(data: bytes) -> tuple[bytes, str, bytes, Any]:
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise _Refused(f"malformed envelope: not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise _Refused("malformed envelope: not a JSON object")
    if document.get("payloadType") != PAYLOAD_TYPE:
        raise _Refused(f"malformed envelope: payloadType {document.get('payloadType')!r}, expected {PAYLOAD_TYPE!r}")
    signatures = document.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(signatures[0], dict):
        raise _Refused("malformed envelope: expected exactly one signature")
    keyid, sig = signatures[0].get("keyid"), signatures[0].get("sig")
    payload_text = document.get("payload")
    if not isinstance(keyid, str) or not isinstance(sig, str) or not isinstance(payload_text, str):
        raise _Refused("malformed envelope: payload, keyid and sig must be strings")
    try:
        payload = base64.b64decode(payload_text, validate=True)
        signature = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("malformed envelope: payload or sig is not base64") from None
    try:
        statement_data = json.loads(payload)
    except ValueError:
        raise _Refused("malformed payload: not a JSON statement") from None
    return payload, keyid, signature, statement_data


def _check_statement(data: Any, repository: str, digest: str) -> dict[str, Any]:
    """The predicate of an in-toto Statement that names exactly this version; ``_Refused`` otherwise."""
    if not isinstance(data, dict) or data.get("_type") != STATEMENT_TYPE:
        raise _Refused("malformed payload: not an in-toto Statement v1")
    if data.get("predicateType") != PREDICATE_TYPE:
        raise _Refused(f"payload is a {data.get('predicateType')!r} statement, not a modelops-bundle signature")
    subjects = data.get("subject")
    predicate = data.get("predicate")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise _Refused("malformed payload: expected exactly one subject")
    if not isinstance(predicate, dict):
        raise _Refused("malformed payload: no predicate")
    subject = subjects[0]
    raw_digests = subject.get("digest")
    digests: dict[str, Any] = raw_digests if isinstance(raw_digests, dict) else {}
    algorithm, _, hexdigest = digest.partition(":")
    signed = [f"{name}:{value}" for name, value in sorted(digests.items())]
    if digests.get(algorithm) != hexdigest or predicate.get("manifest") != digest:
        shown = ", ".join(signed) or "no digest"
        raise _Refused(f"it signs {shown}, not this version {digest} (a signature of another version)")
    if subject.get("name") != repository or predicate.get("repository") != repository:
        raise _Refused(f"it was made for repository {subject.get('name')!r}, not {repository!r}")
    return predicate


def _embedded_key(predicate: Mapping[str, Any], keyid: str) -> PublicKey:
    from modelops_bundle.core.keys import KeyProblem, public_key_from_pem

    signer = predicate.get("signer")
    if not isinstance(signer, dict) or not isinstance(signer.get("publicKey"), str):
        raise _Refused("malformed payload: no signer public key")
    try:
        key = public_key_from_pem(signer["publicKey"], "")
    except KeyProblem as exc:
        raise _Refused(f"malformed payload: signer key: {exc}") from None
    if keyid != key.key_id or signer.get("keyid") != key.key_id:
        raise _Refused(f"the key id {keyid} does not match the signer's public key ({key.key_id})")
    return key
