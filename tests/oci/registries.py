"""Real registries for tests: CNCF distribution on a free 127.0.0.1 port, and a fault-injecting proxy.

Importable by other test packages (``from tests.oci.registries import start_distribution``): the
packaging tests reuse the same servers.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.oci.token_server import TokenServer
from tests.support.servers import ServerProcess, free_port, require_binary

REGISTRY_BINARY = "/usr/bin/docker-registry"


@dataclass
class RunningRegistry:
    """A started registry: where it listens, where it stores blobs, and how to stop it."""

    port: int
    root: Path
    process: ServerProcess
    username: str | None = None
    password: str | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def blob_digests(self) -> set[str]:
        """Every blob the registry's storage holds (``sha256:<hex>``), read from its storage folder."""
        base = self.root / "docker/registry/v2/blobs/sha256"
        if not base.is_dir():
            return set()
        return {
            f"sha256:{entry.name}"
            for prefix in base.iterdir()
            for entry in prefix.iterdir()
            if (entry / "data").is_file()
        }

    def kill(self) -> None:
        """SIGKILL the registry's whole process group (a crash: nothing is flushed or cleaned up)."""
        process = self.process.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def restart(self) -> None:
        """Start the registry again on the same port, configuration and storage folder."""
        self.stop()
        self.process = ServerProcess(self.process.name, self.process.argv, log_dir=self.process.log_path.parent).start()
        self.process.wait_for_http(f"http://127.0.0.1:{self.port}/v2/", ok=(200, 401))

    def blob_data_path(self, digest: str) -> Path:
        """Where distribution keeps a blob's bytes (to corrupt them in tests)."""
        hexpart = digest.split(":", 1)[1]
        return self.root / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"

    def stop(self) -> None:
        self.process.stop()


def start_distribution(
    workdir: Path, *, username: str | None = None, password: str | None = None, token: TokenServer | None = None
) -> RunningRegistry:
    """Start ``docker-registry serve`` with a fresh config in ``workdir``: htpasswd auth if a user is
    given, token auth (``tests/oci/token_server.py``) if a started token server is."""
    binary = require_binary("docker-registry", REGISTRY_BINARY)
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "storage"
    port = free_port()
    auth = ""
    if token is not None:
        auth = token.auth_config()
    elif username is not None and password is not None:
        htpasswd = require_binary("htpasswd")
        entry = subprocess.run([htpasswd, "-Bbn", username, password], capture_output=True, check=True).stdout
        (workdir / "htpasswd").write_bytes(entry)
        auth = f"auth: {{htpasswd: {{realm: test, path: {workdir / 'htpasswd'}}}}}\n"
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn, accesslog: {disabled: true}}\n"
        f"storage: {{filesystem: {{rootdirectory: {root}}}, delete: {{enabled: true}},"
        " cache: {blobdescriptor: inmemory}}\n"
        f"http: {{addr: 127.0.0.1:{port}, secret: {secrets.token_hex(16)}}}\n"
        "health: {storagedriver: {enabled: false}}\n" + auth
    )
    process = ServerProcess(f"registry-{port}", [binary, "serve", str(config)], log_dir=workdir).start()
    process.wait_for_http(f"http://127.0.0.1:{port}/v2/", ok=(200, 401))
    return RunningRegistry(port, root, process, username, password)


# ------------------------------------------------------------------------------------------ the proxy

#: Bytes per read and write when forwarding: small enough for byte-precise kill points in tests.
PIECE = 64 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method`` and ``pattern`` with ``action``:
    ``"503"``/``"500"``/``"502"``/``"429"``/``"405"`` (status, body drained), ``"drop"`` (close without
    answering), ``"cut"`` (send half the upstream body, then close), ``"cut-upload"`` (read half the
    request body, then close: the connection dies mid-upload), ``"stall"`` (read the request, then
    send nothing for :attr:`FaultProxy.stall_seconds` and close: the client's read timeout must fire),
    ``"drop-after"`` (forward the request, then close without passing the answer on: the upstream
    acted, the client does not know), ``"401"`` (expire tokens, challenge), ``"stall-half"`` (send
    half the upstream body, then fall silent for :attr:`FaultProxy.stall_seconds` with the connection
    open), ``"stall-upload"`` (read half the request body, then stop reading for that long), or a
    status with ``Retry-After``: ``"429@2"``, ``"503@1"`` (a throttling registry)."""

    method: str
    pattern: str
    action: str
    times: int = 1


@dataclass
class FaultProxy:
    """A forwarding proxy on 127.0.0.1 in front of a registry that injects faults, and optionally
    demands Bearer tokens it issues itself at ``/token`` (a minimal token service).

    With ``referrers``, it adds what an OCI 1.1 registry has and distribution 2.8 lacks: a manifest with
    a ``subject`` stored through it is answered with ``OCI-Subject`` and listed by
    ``GET /v2/<name>/referrers/<digest>`` (answered by the proxy itself)."""

    upstream_port: int
    bearer: bool = False
    referrers: bool = False
    #: ``(repository, subject digest) -> descriptors`` of the referrers stored through the proxy.
    referrer_index: dict[tuple[str, str], list[dict[str, object]]] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    token_requests: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    #: How long a ``"stall"`` holds the connection before closing it (bounded: tests stop by themselves).
    stall_seconds: float = 3.0
    #: Request-body bytes received from clients and response-body bytes sent to them, so far.
    bytes_in: int = 0
    bytes_out: int = 0
    #: Called (from the proxy's threads) with ``(bytes_in, bytes_out)`` after every piece that passes.
    on_bytes: Callable[[int, int], None] | None = None
    stopping: bool = False

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    def inject(self, method: str, pattern: str, action: str, times: int = 1) -> None:
        with self.lock:
            self.faults.append(Fault(method, pattern, action, times))

    def take(self, method: str, path: str) -> str | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.pattern, path):
                    fault.times -= 1
                    return fault.action
        return None

    def record(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.requests.append((method, path, status))

    def count(self, incoming: int = 0, outgoing: int = 0) -> None:
        with self.lock:
            self.bytes_in += incoming
            self.bytes_out += outgoing
            totals = (self.bytes_in, self.bytes_out)
        if self.on_bytes is not None:
            self.on_bytes(*totals)

    def blob_uploads(self) -> list[str]:
        """Paths of blob uploads the upstream completed (``PUT .../blobs/uploads/...`` answered 201)."""
        with self.lock:
            return [
                path
                for method, path, status in self.requests
                if method == "PUT" and "/blobs/uploads/" in path and status == 201
            ]

    def clear(self) -> None:
        """Forget recorded requests, counters and pending faults."""
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.bytes_in = self.bytes_out = 0

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.stopping = True
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    """A client killed mid-request is part of the tests: its connection errors are not reported."""

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _drain(self, limit: int | None = None) -> None:
        remaining = int(self.headers.get("Content-Length") or 0)
        if limit is not None:
            remaining = min(remaining, limit)
        while remaining > 0:
            piece = self.rfile.read(min(remaining, PIECE))
            if not piece:
                break
            remaining -= len(piece)
            self.owner.count(incoming=len(piece))

    def _hang_up(self, status: int = 0) -> None:
        self.owner.record(self.command, self.path, status)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _answer(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response_only(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.owner.record(self.command, self.path, status)

    def _challenge(self) -> None:
        match = re.match(r"/v2/(.+?)/(?:blobs|manifests|tags)/", self.path)
        scope = f',scope="repository:{match.group(1)}:pull,push"' if match else ""
        realm = f"http://{self.owner.host}/token"
        self._answer(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="fault-proxy"{scope}'})

    def _token(self) -> None:
        self.owner.token_requests.append(self.path)
        if self.owner.users:
            header = self.headers.get("Authorization", "")
            user, _, password = (
                base64.b64decode(header[6:]).decode().partition(":") if header.startswith("Basic ") else ("", "", "")
            )
            if self.owner.users.get(user) != password:
                self._answer(401)
                return
        token = secrets.token_urlsafe(24)
        with self.owner.lock:
            self.owner.tokens.add(token)
        self._answer(200, {"Content-Type": "application/json"}, f'{{"token": "{token}", "expires_in": 300}}'.encode())

    def _handle(self) -> None:
        owner = self.owner
        if self.path.startswith("/token"):
            self._drain()
            self._token()
            return
        action = owner.take(self.command, self.path)
        if action == "401":
            with owner.lock:
                owner.tokens.clear()
        if owner.bearer:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Bearer ") or header[7:] not in owner.tokens:
                self._drain()
                self._challenge()
                return
        if action in ("500", "502", "503", "429", "405"):
            self._drain()
            self._answer(int(action), {"Retry-After": "0"} if action == "429" else {})
            return
        if action is not None and re.fullmatch(r"(429|503)@\d+", action):
            status, retry_after = action.split("@")
            self._drain()
            self._answer(int(status), {"Retry-After": retry_after})
            return
        if action == "stall-upload":
            self._drain(limit=int(self.headers.get("Content-Length") or 0) // 2)
            self._silence()
            self._hang_up()
            return
        if action == "drop":
            self._drain()
            self._hang_up()
            return
        if action == "cut-upload":
            self._drain(limit=int(self.headers.get("Content-Length") or 0) // 2)
            self._hang_up()
            return
        if action == "stall":
            self._drain()
            self._silence()
            self._hang_up()
            return
        if owner.referrers and self.command == "GET" and (listing := _REFERRERS.match(self.path)):
            self._drain()
            with owner.lock:
                found = list(owner.referrer_index.get((listing.group(1), listing.group(2)), []))
            index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": found}
            self._answer(200, {"Content-Type": "application/vnd.oci.image.index.v1+json"}, json.dumps(index).encode())
            return
        try:
            self._forward(
                cut=action in ("cut", "stall-half"), hang_up=action == "drop-after", stall=action == "stall-half"
            )
        except ConnectionRefusedError:  # the upstream is down (killed): answer as a gateway does
            self._drain()
            self._answer(502)

    def _silence(self) -> None:
        """Hold the connection open and say nothing for ``stall_seconds`` (or until the proxy stops)."""
        deadline = time.monotonic() + self.owner.stall_seconds
        while time.monotonic() < deadline and self.owner.server is not None and not self.owner.stopping:
            time.sleep(0.05)

    def _forward(self, *, cut: bool, hang_up: bool = False, stall: bool = False) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1", self.owner.upstream_port, timeout=60)
        try:
            upstream.connect()
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in _HOP_BY_HOP and not (self.owner.bearer and key.lower() == "authorization"):
                    upstream.putheader(key, value)
            upstream.endheaders()
            remaining = int(self.headers.get("Content-Length") or 0)
            manifest = self.owner.referrers and self.command == "PUT" and _MANIFEST_PUT.match(self.path)
            kept: list[bytes] = []
            while remaining > 0:
                piece = self.rfile.read(min(remaining, PIECE))
                if not piece:
                    break
                upstream.send(piece)
                remaining -= len(piece)
                self.owner.count(incoming=len(piece))
                if manifest:
                    kept.append(piece)
            response = upstream.getresponse()
            extra_headers: dict[str, str] = {}
            if manifest and response.status == 201:
                subject = self._index_referrer(manifest.group(1), b"".join(kept))
                if subject:
                    extra_headers["OCI-Subject"] = subject
            if hang_up:
                response.read()
                self._hang_up(response.status)
                return
            body_iter = _body(response, self.command)
            declared = response.getheader("Content-Length")
            self.send_response_only(response.status, response.reason)
            for key, value in [*response.getheaders(), *extra_headers.items()]:
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            if declared is None:
                data = b"".join(body_iter)
                body_iter, declared = iter([data]), str(len(data))
            self.send_header("Content-Length", declared)
            self.end_headers()
            self.owner.record(self.command, self.path, response.status)
            if self.command == "HEAD":
                return
            limit = int(declared) // 2 if cut else None
            sent = 0
            for piece in body_iter:
                if limit is not None and sent + len(piece) > limit:
                    self.wfile.write(piece[: limit - sent])
                    self.wfile.flush()
                    self.owner.count(outgoing=limit - sent)
                    if stall:
                        self._silence()
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(piece)
                sent += len(piece)
                self.owner.count(outgoing=len(piece))
        finally:
            upstream.close()

    def _index_referrer(self, repository: str, data: bytes) -> str | None:
        """Remember a stored manifest that has a ``subject``, as a registry with the referrers API does;
        its subject digest (for ``OCI-Subject``), or ``None``."""
        try:
            manifest = json.loads(data)
        except ValueError:
            return None
        subject = manifest.get("subject") if isinstance(manifest, dict) else None
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
            return None
        descriptor = {
            "mediaType": manifest.get("mediaType"),
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "artifactType": manifest.get("artifactType") or manifest.get("config", {}).get("mediaType"),
            "annotations": manifest.get("annotations", {}),
        }
        with self.owner.lock:
            self.owner.referrer_index.setdefault((repository, subject["digest"]), []).append(descriptor)
        return str(subject["digest"])


_MANIFEST_PUT = re.compile(r"/v2/(.+?)/manifests/[^/]+$")
_REFERRERS = re.compile(r"/v2/(.+?)/referrers/(sha256:[0-9a-f]{64})(?:\?.*)?$")


def _body(response: http.client.HTTPResponse, method: str) -> Iterator[bytes]:
    if method == "HEAD":
        return iter(())

    def pieces() -> Iterator[bytes]:
        while True:
            piece = response.read(PIECE)
            if not piece:
                return
            yield piece

    return pieces()
