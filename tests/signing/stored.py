"""Reading stored signatures WITHOUT the tool's code (plain JSON over the layout's files or the registry's
HTTP API), and checking them with OpenSSL: the format must stand on its own."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

SIGNATURE_TYPE = "application/vnd.modelops.bundle.signature.v1+json"
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"


class LayoutReader:
    """An OCI image layout directory of one repository, read as files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def blob(self, digest: str) -> bytes:
        return (self.root / "blobs" / "sha256" / digest.partition(":")[2]).read_bytes()

    def tag(self, name: str) -> str | None:
        index = json.loads((self.root / "index.json").read_text())
        for item in index["manifests"]:
            if item.get("annotations", {}).get("org.opencontainers.image.ref.name") == name:
                return str(item["digest"])
        return None

    def manifest(self, reference: str) -> dict[str, Any]:
        digest = reference if reference.startswith("sha256:") else self.tag(reference)
        assert digest is not None, reference
        return json.loads(self.blob(digest))  # type: ignore[no-any-return]


class HttpReader:
    """One repository of a registry, read with plain HTTP GETs."""

    def __init__(self, host: str, repository: str) -> None:
        self.base = f"http://{host}/v2/{repository}"

    def _get(self, path: str, accept: str | None = None) -> bytes:
        request = urllib.request.Request(self.base + path, headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.read()  # type: ignore[no-any-return]

    def blob(self, digest: str) -> bytes:
        return self._get(f"/blobs/{digest}")

    def manifest(self, reference: str) -> dict[str, Any]:
        return json.loads(self._get(f"/manifests/{reference}", ACCEPT))  # type: ignore[no-any-return]

    def tags(self) -> list[str]:
        return list(json.loads(self._get("/tags/list"))["tags"])


def stored_envelopes(reader: LayoutReader | HttpReader, digest: str) -> list[tuple[str, dict[str, Any], bytes]]:
    """``(referrer digest, referrer manifest, envelope bytes)`` of every signature listed under the
    version's tag-schema fallback tag ``sha256-<hex>``."""
    index = reader.manifest(digest.replace(":", "-", 1))
    found = []
    for item in index["manifests"]:
        if item.get("artifactType") != SIGNATURE_TYPE:
            continue
        manifest = reader.manifest(item["digest"])
        found.append((str(item["digest"]), manifest, reader.blob(manifest["layers"][0]["digest"])))
    return found


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding, written from the DSSE specification."""
    kind = payload_type.encode()
    return b"DSSEv1 " + str(len(kind)).encode() + b" " + kind + b" " + str(len(payload)).encode() + b" " + payload


def openssl_verify(envelope: bytes, public_pem: Path, workdir: Path) -> dict[str, Any]:
    """Verify a DSSE envelope's signature with the ``openssl`` command line; returns the statement."""
    document = json.loads(envelope)
    payload = base64.b64decode(document["payload"])
    (signature,) = document["signatures"]
    workdir.mkdir(parents=True, exist_ok=True)
    message, sig = workdir / "pae.bin", workdir / "sig.bin"
    message.write_bytes(pae(document["payloadType"], payload))
    sig.write_bytes(base64.b64decode(signature["sig"]))
    statement = json.loads(payload)
    algorithm = statement["predicate"]["signer"]["algorithm"]
    if algorithm == "ed25519":
        argv = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(public_pem), "-rawin"]
        argv += ["-in", str(message), "-sigfile", str(sig)]
    else:
        argv = ["openssl", "dgst", "-sha256", "-verify", str(public_pem), "-signature", str(sig), str(message)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "Verified" in done.stdout + done.stderr, (argv, done.stdout, done.stderr)
    # ... and a tampered message must fail with the same tool
    message.write_bytes(message.read_bytes().replace(b"sha256", b"sha257", 1))
    bad = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0, "openssl accepted a tampered payload"
    return statement  # type: ignore[no-any-return]


def openssl_key_id(public_pem: Path) -> str:
    """``sha256:<hex>`` of the key's DER SubjectPublicKeyInfo, computed by openssl and hashlib."""
    import hashlib

    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(public_pem), "-outform", "DER"], capture_output=True, check=True
    ).stdout
    return "sha256:" + hashlib.sha256(der).hexdigest()
