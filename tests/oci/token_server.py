"""A small token service on 127.0.0.1 for CNCF distribution's ``auth: token`` mode (the distribution token
flow that ACR, Docker Hub and Harbor use).

It signs RS256 JWTs with a key generated per run and puts the self-signed certificate in the header's
``x5c``; the registry trusts that certificate through ``rootcertbundle`` (distribution 2.8 looks up the
signing key by ``x5c`` chain, ``jwk`` or a libtrust ``kid``; the chain is the simplest to produce).
Tokens carry what distribution 2.8 checks: ``iss``, ``aud`` (the service), ``exp``/``nbf`` (it allows 60 s
of clock skew, see :data:`LEEWAY`) and ``access`` for the requested scopes.

Grants: ``GET`` with Basic ``user:password`` (or ``00000000-...:<refresh token>``, ACR's way), and the
OAuth2 ``POST`` with ``grant_type=password`` or ``refresh_token``. ``registry_lifetime`` makes tokens the
registry refuses after that many seconds while ``advertised_lifetime`` is what clients are told
(``expires_in``), so a test can make a token expire in the middle of a push.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

#: distribution 2.8 accepts a token until ``exp`` + 60 s (registry/auth/token/token.go, ``Leeway``).
LEEWAY = 60
ISSUER = "mops-test-issuer"
SERVICE = "mops-test-registry"
NULL_GUID = "00000000-0000-0000-0000-000000000000"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenServer:
    """Issues registry tokens; records every grant it was asked for."""

    workdir: Path
    users: dict[str, str] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    registry_lifetime: float = 300.0
    advertised_lifetime: float | None = 300.0
    oauth_post: bool = True
    #: ``(method, grant, scope, status)`` of every request.
    grants: list[tuple[str, str, str, int]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mops test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cert_path = self.workdir / "token-signer.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")

    # ------------------------------------------------------------------------------------ tokens

    def issue(self, subject: str, scopes: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository" and name:
                access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            # the registry refuses it registry_lifetime seconds from now (exp plus its leeway)
            "exp": now + int(self.registry_lifetime) - LEEWAY,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def subject_for(self, method: str, headers: dict[str, str], form: dict[str, str]) -> tuple[str, str] | None:
        """``(grant, subject)`` for valid credentials; ``None`` when they are wrong or missing."""
        if method == "POST":
            grant = form.get("grant_type", "")
            if grant == "refresh_token" and form.get("refresh_token") in self.refresh_tokens:
                return grant, "refresh"
            if grant == "password" and self.users.get(form.get("username", "")) == form.get("password"):
                return grant, form["username"]
            return None
        header = headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode("utf-8", "replace").partition(":")
        if user == NULL_GUID and password in self.refresh_tokens:
            return "basic-refresh", "refresh"
        if self.users.get(user) == password:
            return "basic", user
        return None

    def requests_of(self, grant: str) -> list[tuple[str, str, str, int]]:
        with self.lock:
            return [g for g in self.grants if g[1] == grant]

    # ------------------------------------------------------------------------------------ server

    @property
    def realm(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def start(self) -> TokenServer:
        owner = self

        class Handler(_TokenHandler):
            server_owner = owner

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="token-server", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def auth_config(self) -> str:
        """The ``auth:`` section of a distribution config that trusts this server."""
        return (
            f"auth: {{token: {{realm: {self.realm}, service: {SERVICE}, issuer: {ISSUER}, "
            f"rootcertbundle: {self.cert_path}}}}}\n"
        )


class _TokenHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_owner: TokenServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._grant("GET", parse_qs(urlsplit(self.path).query), {})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if not self.server_owner.oauth_post:
            self._answer(405, {})
            self.server_owner.grants.append(("POST", form.get("grant_type", ""), "", 405))
            return
        self._grant("POST", {k: [v] for k, v in form.items()}, form)

    def _grant(self, method: str, query: dict[str, list[str]], form: dict[str, str]) -> None:
        owner = self.server_owner
        scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
        headers = {k.lower(): v for k, v in self.headers.items()}
        found = owner.subject_for(method, headers, form)
        grant = found[0] if found else form.get("grant_type") or ("basic" if headers.get("authorization") else "none")
        if found is None:
            with owner.lock:
                owner.grants.append((method, grant, " ".join(scopes), 401))
            self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
            return
        token = owner.issue(found[1], scopes)
        body: dict[str, object] = {"token": token, "access_token": token, "issued_at": _now_iso()}
        if owner.advertised_lifetime is not None:
            body["expires_in"] = int(owner.advertised_lifetime)
        with owner.lock:
            owner.grants.append((method, grant, " ".join(scopes), 200))
        self._answer(200, body)

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
