"""Signing keys: the key store under ``$MODELOPS_HOME/keys``, PEM files, and keys from plugins.

Algorithms: ``ecdsa-p256`` (ECDSA on NIST P-256 with SHA-256, DER signatures -- what ``openssl dgst
-sha256 -sign`` makes) and ``ed25519`` (RFC 8032, 64-byte signatures). A key's id is
``sha256:<hex>`` of its public key in DER SubjectPublicKeyInfo form, so anyone can recompute it::

    openssl pkey -pubin -in key.pub -outform DER | sha256sum

The key store holds ``<name>.key`` (the private key, PKCS#8 PEM encrypted with a passphrase, mode 0600)
and ``<name>.pub`` (the public key, SubjectPublicKeyInfo PEM) in a folder of mode 0700.

A key is named on the command line (``--key``) by

* a key-store name (``default``, ``ci``);
* a PEM file path (``./ci.pem``, ``/secrets/signing.pem``, ``file:ci.pem``), encrypted or not;
* ``SCHEME:KEY`` where ``SCHEME`` is a signer a plugin provides through ``mops_signers`` (a PKCS#11
  token, a cloud KMS): the plugin holds the private key, the tool asks it for the public key and for
  signatures, and checks every signature it returns before using it.

``cryptography`` is imported inside the functions that need it: commands that never sign pay nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat as stat_module
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

from modelops_bundle.core.errors import BundleError, PluginError, UsageError

if TYPE_CHECKING:
    from modelops_bundle.core.plugins import PluginHost

ECDSA_P256 = "ecdsa-p256"
ED25519 = "ed25519"
ALGORITHMS = (ECDSA_P256, ED25519)
DEFAULT_ALGORITHM = ECDSA_P256
DEFAULT_KEY = "default"
#: Environment variables: the passphrase of encrypted keys (CI), and the key ``sign`` uses by default.
PASSPHRASE_ENV = "MOPS_SIGNING_PASSPHRASE"
KEY_ENV = "MOPS_SIGNING_KEY"
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SCHEME = re.compile(r"^([a-z][a-z0-9-]*):(.+)$")
MAX_KEY_FILE_BYTES = 64 * 1024

#: Asks for a passphrase; the argument says for what (``key 'default'``). Supplied by the CLI (an
#: environment variable or a terminal prompt); the core never prompts itself.
Passphrase = Callable[[str], bytes]


class KeyProblem(ValueError):
    """Key material that cannot be used; callers add where it came from (a file, a policy entry)."""


# ------------------------------------------------------------------------------------------ public keys


class PublicKey:
    """A verification key: its id, algorithm, PEM and where it came from (for messages)."""

    __slots__ = ("_loaded", "algorithm", "key_id", "pem", "source")

    def __init__(self, pem: bytes, algorithm: str, key_id: str, source: str, loaded: Any = None) -> None:
        self.pem = pem
        self.algorithm = algorithm
        self.key_id = key_id
        self.source = source
        self._loaded = loaded

    def __repr__(self) -> str:
        return f"PublicKey({self.algorithm}, {self.key_id}, {self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.key_id == self.key_id

    def __hash__(self) -> int:
        return hash(self.key_id)

    @property
    def short_id(self) -> str:
        return short_key_id(self.key_id)

    def describe(self) -> str:
        """``sha256:1a2b3c4d5e6f (ci.pub)``: how messages name a key."""
        return f"{self.short_id} ({self.source})" if self.source else self.short_id

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` is this key's signature of ``data``."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        if self._loaded is None:
            self._loaded = _load_public(self.pem)
        try:
            if self.algorithm == ECDSA_P256:
                self._loaded.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            else:
                self._loaded.verify(signature, data)
        except InvalidSignature:
            return False
        return True


def short_key_id(key_id: str) -> str:
    algorithm, _, hexdigest = key_id.partition(":")
    return f"{algorithm}:{hexdigest[:12]}"


def _load_public(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(pem)


def _algorithm_of(key: Any) -> str:
    """The algorithm name of a ``cryptography`` public or private key; ``KeyProblem`` for any other kind."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        if isinstance(key.curve, ec.SECP256R1):
            return ECDSA_P256
        raise KeyProblem(f"an ECDSA key on curve {key.curve.name}; only P-256 (secp256r1) is supported")
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return ED25519
    raise KeyProblem(f"a {type(key).__name__.lstrip('_')}; only ECDSA P-256 and Ed25519 keys are supported")


def public_key_of(key: Any, source: str) -> PublicKey:
    """The :class:`PublicKey` of a ``cryptography`` public key object."""
    from cryptography.hazmat.primitives import serialization

    algorithm = _algorithm_of(key)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(pem, algorithm, "sha256:" + hashlib.sha256(der).hexdigest(), source, key)


def public_key_from_pem(data: bytes | str, source: str) -> PublicKey:
    """A public key from SubjectPublicKeyInfo PEM text; ``KeyProblem`` saying what is wrong otherwise
    (a private key where a public one belongs is named as such: it must never sit in a policy)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if b"PRIVATE KEY-----" in raw:
        raise KeyProblem("this is a private key; list the public key only ('mops bundle key export --public')")
    if b"-----BEGIN PUBLIC KEY-----" not in raw:
        raise KeyProblem("not a PEM public key (expected '-----BEGIN PUBLIC KEY-----')")
    try:
        key = _load_public(raw.strip() + b"\n")
    except (ValueError, TypeError) as exc:
        raise KeyProblem(f"not a valid PEM public key ({exc})") from None
    return public_key_of(key, source)


def read_key_file(path: Path) -> bytes:
    """A PEM file's bytes (bounded); ``KeyProblem`` naming the trouble."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise KeyProblem(f"no such file: {path}") from None
    except IsADirectoryError:
        raise KeyProblem(f"{path} is a folder, not a key file") from None
    except OSError as exc:
        raise KeyProblem(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyProblem(f"{path} is larger than {MAX_KEY_FILE_BYTES} bytes: not a key file")
    return data


# ------------------------------------------------------------------------------------------ signing keys


class SigningKey:
    """A key that signs: its public half, how the user named it, and a ``sign(data)`` function."""

    def __init__(self, public: PublicKey, label: str, sign: Callable[[bytes], bytes]) -> None:
        self.public = public
        self.label = label
        self._sign = sign

    @property
    def key_id(self) -> str:
        return self.public.key_id

    @property
    def algorithm(self) -> str:
        return self.public.algorithm

    def sign(self, data: bytes) -> bytes:
        """The signature of ``data``, checked against the public key before it is returned (a broken
        token or plugin is caught here, not by the workers that later refuse the version)."""
        signature = self._sign(data)
        if not isinstance(signature, bytes) or not self.public.verify(signature, data):
            raise BundleError(f"key {self.label!r} produced a signature that does not verify with its public key")
        return signature


def _private_signer(key: Any) -> Callable[[bytes], bytes]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if _algorithm_of(key) == ED25519:
        return lambda data: bytes(key.sign(data))  # deterministic (RFC 8032)
    # RFC 6979 deterministic ECDSA where the OpenSSL behind ``cryptography`` has it (3.2+); random k otherwise.
    try:
        algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=_deterministic_ecdsa())
    except TypeError:  # cryptography before 44
        algorithm = ec.ECDSA(hashes.SHA256())
    return lambda data: bytes(key.sign(data, algorithm))


def _deterministic_ecdsa() -> bool:
    from cryptography.hazmat.backends.openssl import backend

    check = getattr(backend, "ecdsa_deterministic_supported", None)
    return bool(check()) if check is not None else False


def signing_key_from_private(key: Any, label: str) -> SigningKey:
    return SigningKey(public_key_of(key.public_key(), label), label, _private_signer(key))


def load_private_pem(data: bytes, label: str, passphrase: Passphrase) -> Any:
    """A ``cryptography`` private key from PEM; asks ``passphrase`` when the key is encrypted."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if b"PRIVATE KEY-----" not in data:
        if b"-----BEGIN PUBLIC KEY-----" in data:
            raise UsageError(f"{label} is a public key; signing needs the private key")
        raise UsageError(f"{label} is not a PEM private key")
    encrypted = b"ENCRYPTED" in data or b"Proc-Type: 4,ENCRYPTED" in data
    password = passphrase(f"key {label}") if encrypted else None
    try:
        key = load_pem_private_key(data, password=password)
    except TypeError:  # encrypted after all (a format we did not recognise as such)
        try:
            key = load_pem_private_key(data, password=passphrase(f"key {label}"))
        except ValueError:
            raise UsageError(f"wrong passphrase for key {label}", hint=f"check {PASSPHRASE_ENV}") from None
    except ValueError as exc:
        if encrypted:
            raise UsageError(f"wrong passphrase for key {label}", hint=f"check {PASSPHRASE_ENV}") from None
        raise UsageError(f"{label}: not a usable private key ({exc})") from None
    except Exception as exc:  # cryptography raises its own errors for unsupported PEM kinds
        raise UsageError(f"{label}: not a usable private key ({exc})") from None
    try:
        _algorithm_of(key)
    except KeyProblem as exc:
        raise UsageError(f"{label} is {exc}") from None
    return key


# ------------------------------------------------------------------------------------------ the key store


class KeyInfo(NamedTuple):
    """A key of the store, as ``key list`` shows it (``public`` is None when its ``.pub`` is missing)."""

    name: str
    private_path: Path
    public_path: Path
    public: PublicKey | None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key_id": self.public.key_id if self.public else None,
            "algorithm": self.public.algorithm if self.public else None,
            "private_key": str(self.private_path) if self.private_path.exists() else None,
            "public_key": str(self.public_path) if self.public_path.exists() else None,
            "problem": self.problem,
        }


def keys_dir(environ: Mapping[str, str]) -> Path:
    from modelops_bundle.core.envfiles import modelops_home

    return modelops_home(environ) / "keys"


def check_key_name(name: str) -> str:
    if not KEY_NAME.match(name):
        raise UsageError(f"invalid key name {name!r}: use letters, digits, '.', '_' and '-' (at most 64)")
    return name


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a file that must not exist yet (a key is never overwritten, even by a racing command)."""
    from modelops_bundle.core.fsutil import atomic_write_bytes

    try:
        atomic_write_bytes(path, data, mode=mode, replace=False)
    except FileExistsError:
        raise UsageError(f"{path} exists; a key is never overwritten", hint="choose another --name") from None


def generate_key(environ: Mapping[str, str], name: str, algorithm: str, passphrase: bytes) -> KeyInfo:
    """A new key pair in the store: the private key encrypted with ``passphrase`` (0600), the public
    key beside it. Refuses a name that exists and an empty passphrase."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from modelops_bundle.core.fsutil import describe_os_error

    check_key_name(name)
    if algorithm not in ALGORITHMS:
        raise UsageError(f"unknown algorithm {algorithm!r}", hint=f"choose one of: {', '.join(ALGORITHMS)}")
    if not passphrase:
        raise UsageError("an empty passphrase would leave the private key unprotected", hint=f"set {PASSPHRASE_ENV}")
    folder = keys_dir(environ)
    private_path, public_path = folder / f"{name}.key", folder / f"{name}.pub"
    if private_path.exists() or public_path.exists():
        raise UsageError(f"a key named {name!r} exists: {private_path}", hint="choose another --name")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
    except OSError as exc:
        raise BundleError(describe_os_error("create", folder, exc)) from exc
    key: Any = ed25519.Ed25519PrivateKey.generate() if algorithm == ED25519 else ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    public = public_key_of(key.public_key(), name)
    _write_new(private_path, private_pem, 0o600)
    try:
        _write_new(public_path, public.pem, 0o644)
    except BaseException:
        with contextlib.suppress(OSError):
            private_path.unlink()
        raise
    return KeyInfo(name, private_path, public_path, public)


def list_keys(environ: Mapping[str, str]) -> list[KeyInfo]:
    """Every key of the store, by name (public halves read; no passphrase needed)."""
    folder = keys_dir(environ)
    try:
        names = {p.stem for p in folder.iterdir() if p.suffix in (".key", ".pub") and KEY_NAME.match(p.stem)}
    except OSError:
        return []
    return [store_key(environ, name) for name in sorted(names)]


def store_key(environ: Mapping[str, str], name: str) -> KeyInfo:
    folder = keys_dir(environ)
    private_path, public_path = folder / f"{name}.key", folder / f"{name}.pub"
    if not public_path.exists():
        return KeyInfo(name, private_path, public_path, None, "public key missing")
    try:
        public = public_key_from_pem(read_key_file(public_path), name)
    except KeyProblem as exc:
        return KeyInfo(name, private_path, public_path, None, str(exc))
    return KeyInfo(name, private_path, public_path, public)


# ------------------------------------------------------------------------------------------ plugin signers


class Signer(Protocol):
    """What a ``mops_signers`` plugin provides: a class per scheme (``--key SCHEME:KEY``).

    Constructed with the part after the scheme (``key``) and the process environment; the private key
    stays with the plugin (a token, a KMS). ``sign`` returns, for an ECDSA P-256 key, the DER signature
    of ``data`` hashed with SHA-256, for an Ed25519 key the 64-byte signature of ``data``.
    """

    name: ClassVar[str]

    def __init__(self, key: str, environ: Mapping[str, str]) -> None: ...

    def public_key_pem(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


def plugin_signers(host: PluginHost) -> dict[str, Any]:
    return dict(host.hook.mops_signers())


def _plugin_key(host: PluginHost, scheme: str, key: str, environ: Mapping[str, str]) -> SigningKey:
    cls = plugin_signers(host)[scheme]
    label = f"{scheme}:{key}"
    signer = cls(key=key, environ=environ)
    try:
        public = public_key_from_pem(signer.public_key_pem(), label)
    except KeyProblem as exc:
        raise PluginError(f"signer {scheme!r} gave no usable public key for {label}: {exc}") from None
    return SigningKey(public, label, signer.sign)


# ------------------------------------------------------------------------------------------ choosing a key


def _split_spec(host: PluginHost | None, spec: str) -> tuple[str, str]:
    """``(kind, value)`` of a ``--key`` value: ``("plugin:<scheme>", key)``, ``("file", path)`` or
    ``("store", name)``."""
    match = _SCHEME.match(spec)
    if match and match.group(1) == "file":
        return "file", match.group(2)
    if match and host is not None and match.group(1) in plugin_signers(host):
        return f"plugin:{match.group(1)}", match.group(2)
    if "/" in spec or spec.startswith((".", "~")) or spec.endswith((".pem", ".key")):
        return "file", spec
    if match:
        known = ", ".join(sorted(plugin_signers(host))) if host is not None else ""
        raise UsageError(
            f"no signer plugin provides {match.group(1)!r} (--key {spec})",
            hint=f"signer plugins: {known or 'none installed'}; a key-store name or a PEM file path also works",
        )
    return "store", check_key_name(spec)


def default_key_name(environ: Mapping[str, str]) -> str:
    """``$MOPS_SIGNING_KEY``, else ``default`` when the store has it, else the store's only key."""
    explicit = environ.get(KEY_ENV, "").strip()
    if explicit:
        return explicit
    names = [info.name for info in list_keys(environ)]
    if DEFAULT_KEY in names or not names:
        if not names:
            raise UsageError(
                f"no signing key in {keys_dir(environ)}", hint="create one with 'mops bundle key generate'"
            )
        return DEFAULT_KEY
    if len(names) == 1:
        return names[0]
    raise UsageError(f"several keys and none named {DEFAULT_KEY!r}: {', '.join(names)}", hint="choose one with --key")


def signing_key(
    host: PluginHost | None, environ: Mapping[str, str], spec: str | None, *, cwd: Path, passphrase: Passphrase
) -> SigningKey:
    """The key ``--key`` names (see the module docstring), unlocked and ready to sign."""
    spec = spec or default_key_name(environ)
    kind, value = _split_spec(host, spec)
    if kind.startswith("plugin:"):
        assert host is not None
        return _plugin_key(host, kind.partition(":")[2], value, environ)
    if kind == "file":
        path = (cwd / Path(value).expanduser()).absolute()
        try:
            data = read_key_file(path)
        except KeyProblem as exc:
            raise UsageError(f"--key {spec}: {exc}") from None
        return signing_key_from_private(load_private_pem(data, str(path), passphrase), str(path))
    info = store_key(environ, value)
    if not info.private_path.exists():
        raise _no_such_key(environ, value)
    _check_private_mode(info.private_path)
    try:
        data = read_key_file(info.private_path)
    except KeyProblem as exc:
        raise UsageError(str(exc)) from None
    return signing_key_from_private(load_private_pem(data, repr(value), passphrase), value)


def _no_such_key(environ: Mapping[str, str], name: str) -> UsageError:
    names = ", ".join(item.name for item in list_keys(environ)) or "none"
    return UsageError(
        f"no key named {name!r} in {keys_dir(environ)} (keys: {names})",
        hint="a PEM file is named by its path (./key.pem); 'mops bundle key generate --name NAME' makes one",
    )


def _check_private_mode(path: Path) -> None:
    """A store key readable by others is refused (as ssh refuses such a key): it may have been copied."""
    mode = stat_module.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UsageError(
            f"{path} is readable by other users (mode {mode:04o}); a private key must be 0600",
            hint=f"chmod 600 {path}",
        )


def public_key(
    host: PluginHost | None, environ: Mapping[str, str], spec: str | None, *, cwd: Path, passphrase: Passphrase
) -> PublicKey:
    """The public half of the key ``spec`` names: read from the store's ``.pub``, a public PEM file, or
    the plugin -- a private PEM file is unlocked to derive it."""
    spec = spec or default_key_name(environ)
    kind, value = _split_spec(host, spec)
    if kind == "store":
        info = store_key(environ, value)
        if info.public is None:
            if not info.private_path.exists():
                raise _no_such_key(environ, value)
            raise UsageError(f"key {value!r}: {info.problem}")
        return info.public
    if kind == "file":
        path = (cwd / Path(value).expanduser()).absolute()
        try:
            data = read_key_file(path)
        except KeyProblem as exc:
            raise UsageError(f"{spec}: {exc}") from None
        if b"-----BEGIN PUBLIC KEY-----" in data:
            try:
                return public_key_from_pem(data, str(path))
            except KeyProblem as exc:
                raise UsageError(f"{path}: {exc}") from None
    return signing_key(host, environ, spec, cwd=cwd, passphrase=passphrase).public
