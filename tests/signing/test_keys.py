"""``key generate | list | export``, the key store's files (checked with openssl), and keys that live in a
plugin (``mops_signers``), as a PKCS#11 token or a KMS would keep them."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from modelops_bundle import hookimpl
from modelops_bundle.testing import CliRunner
from tests.bundle.conftest import ok
from tests.signing.conftest import PASSPHRASE, Stage
from tests.signing.stored import LayoutReader, openssl_key_id, openssl_verify, stored_envelopes


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_list_and_export(run_cli: CliRunner, mops_env: dict[str, str], tmp_path: Path) -> None:
    keys = Path(mops_env["MODELOPS_HOME"]) / "keys"
    empty = run_cli("key", "list")
    assert empty.exit_code == 0 and "No keys" in empty.stdout
    made = ok(run_cli("key", "generate", "--json"))
    assert made["name"] == "default" and made["algorithm"] == "ecdsa-p256"
    private, public = keys / "default.key", keys / "default.pub"
    assert (_mode(keys), _mode(private), _mode(public)) == (0o700, 0o600, 0o644)
    assert private.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    # openssl opens the private key with the passphrase (and not without), and derives the same public key
    derived = subprocess.run(
        ["openssl", "pkey", "-in", str(private), "-passin", f"pass:{PASSPHRASE}", "-pubout"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert derived == public.read_text()
    locked = subprocess.run(
        ["openssl", "pkey", "-in", str(private), "-passin", "pass:wrong", "-pubout"], capture_output=True
    )
    assert locked.returncode != 0
    assert made["key_id"] == openssl_key_id(public)

    ed = ok(run_cli("key", "generate", "--name", "ci", "--algorithm", "ed25519", "--json"))
    assert ed["algorithm"] == "ed25519" and ed["key_id"] == openssl_key_id(keys / "ci.pub")
    listed = ok(run_cli("key", "list", "--json"))
    assert [(k["name"], k["algorithm"], k["key_id"]) for k in listed["keys"]] == [
        ("ci", "ed25519", ed["key_id"]),
        ("default", "ecdsa-p256", made["key_id"]),
    ]
    table = run_cli("key", "list")
    assert table.stdout.splitlines()[1].split() == ["Name", "Algorithm", "Key", "id"]

    exported = run_cli("key", "export", "--public")
    assert exported.exit_code == 0 and exported.stdout == public.read_text()
    assert run_cli("key", "export", "--public", "-q").stdout == public.read_text()  # the product, even with -q
    assert ok(run_cli("key", "export", "ci", "--public", "--json"))["public_key"] == (keys / "ci.pub").read_text()
    refused = run_cli("key", "export", "ci")
    assert refused.exit_code == 2 and "only the public key is exported" in refused.stderr


def test_key_mistakes_change_nothing(run_cli: CliRunner, mops_env: dict[str, str]) -> None:
    keys = Path(mops_env["MODELOPS_HOME"]) / "keys"
    ok(run_cli("key", "generate", "--json"))
    before = (keys / "default.key").read_bytes()
    again = run_cli("key", "generate")
    assert again.exit_code == 2 and "exists" in again.stderr
    assert (keys / "default.key").read_bytes() == before  # never overwritten
    no_passphrase = run_cli("key", "generate", "--name", "ci", input_env={"MOPS_SIGNING_PASSPHRASE": None})
    assert no_passphrase.exit_code == 2 and "MOPS_SIGNING_PASSPHRASE" in no_passphrase.stderr
    assert sorted(path.name for path in keys.iterdir()) == ["default.key", "default.pub"]
    bad_name = run_cli("key", "generate", "--name", "../escape")
    assert bad_name.exit_code == 2 and "invalid key name" in bad_name.stderr
    assert run_cli("key", "generate", "ci").exit_code == 2  # the name goes with --name


def test_a_key_readable_by_others_is_refused(layout_stage: Stage) -> None:
    private = Path(layout_stage.env["MODELOPS_HOME"]) / "keys" / "ci.key"
    os.chmod(private, 0o644)
    result = layout_stage.project.run("sign", "unsigned", "--key", "ci")
    assert result.exit_code == 2 and "readable by other users (mode 0644)" in result.stderr
    assert "chmod 600" in result.stderr


# ------------------------------------------------------------------------------------ signer plugins


class FolderKmsSigner:
    """A stand-in for a KMS: private keys live in ``$TEST_KMS_DIR/<alias>.pem`` that only this plugin reads;
    the tool sees public keys and signatures, never the private key."""

    name: ClassVar[str] = "testkms"
    calls: ClassVar[list[str]] = []

    def __init__(self, key: str, environ: Mapping[str, str]) -> None:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        self.alias = key
        self._key: Any = load_pem_private_key((Path(environ["TEST_KMS_DIR"]) / f"{key}.pem").read_bytes(), None)

    def public_key_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        public = self._key.public_key()
        return bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def sign(self, data: bytes) -> bytes:
        self.calls.append(self.alias)
        return bytes(self._key.sign(data))  # Ed25519


class BrokenKmsSigner(FolderKmsSigner):
    """Returns a signature that is not one (a misconfigured token)."""

    name: ClassVar[str] = "brokenkms"

    def sign(self, data: bytes) -> bytes:
        return b"\x00" * 64


class FolderKms:
    @hookimpl
    def mops_signers(self) -> Sequence[type[Any]]:
        return [FolderKmsSigner, BrokenKmsSigner]


def test_a_signer_plugin_signs_with_a_key_the_tool_never_sees(layout_stage: Stage, tmp_path: Path) -> None:
    kms = tmp_path / "kms"
    kms.mkdir()
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(kms / "release.pem")], check=True)
    subprocess.run(
        ["openssl", "pkey", "-in", str(kms / "release.pem"), "-pubout", "-out", str(tmp_path / "release.pub")],
        check=True,
    )
    project = layout_stage.project
    project.extra_plugins.append(("folder-kms", FolderKms()))
    env = {"TEST_KMS_DIR": str(kms)}
    plugins = ok(project.run("plugins", "--json"))
    (info,) = [p for p in plugins if p["name"] == "folder-kms"]
    assert info["hooks"] == ["mops_signers"] and info["status"] == "loaded"

    exported = project.run("key", "export", "testkms:release", "--public", input_env=env)
    assert exported.exit_code == 0 and exported.stdout == (tmp_path / "release.pub").read_text()
    signed = ok(project.run("sign", "unsigned", "--key", "testkms:release", "--json", input_env=env))
    assert signed["key"] == "testkms:release" and signed["key_id"] == openssl_key_id(tmp_path / "release.pub")
    assert "release" in FolderKmsSigner.calls
    reader = LayoutReader(Path(layout_stage.env["MODELOPS_HOME"]) / "registry" / layout_stage.repository)
    ((_referrer, _manifest, envelope),) = stored_envelopes(reader, layout_stage.unsigned)
    openssl_verify(envelope, tmp_path / "release.pub", tmp_path / "ossl")
    layout_stage.policy(f"keys: [{tmp_path / 'release.pub'}]")
    assert ok(project.run("verify", "--signature", "unsigned", "--json"))["signatures"]["accepted"]

    broken = project.run("sign", "latest", "--key", "brokenkms:release", input_env=env)
    assert broken.exit_code == 1 and "does not verify with its public key" in broken.stderr, broken
    assert len(stored_envelopes(reader, layout_stage.signed)) == 1  # nothing was attached
