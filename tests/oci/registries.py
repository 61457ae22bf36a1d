"""Real registries for tests: CNCF distribution on a free 127.0.0.1 port, and a fault-injecting proxy.

Importable by other test packages (``from tests.oci.registries import start_distribution``): the
packaging tests reuse the same servers.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import re
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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

    def blob_data_path(self, digest: str) -> Path:
        """Where distribution keeps a blob's bytes (to corrupt them in tests)."""
        hexpart = digest.split(":", 1)[1]
        return self.root / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"

    def stop(self) -> None:
        self.process.stop()


def start_distribution(workdir: Path, *, username: str | None = None, password: str | None = None) -> RunningRegistry:
    """Start ``docker-registry serve`` with a fresh config in ``workdir`` (htpasswd auth if a user is given)."""
    binary = require_binary("docker-registry", REGISTRY_BINARY)
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "storage"
    port = free_port()
    auth = ""
    if username is not None and password is not None:
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

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method`` and ``pattern`` with ``action``:
    ``"503"``/``"429"``/``"405"`` (status, body drained), ``"drop"`` (close without answering),
    ``"cut"`` (send half the upstream body, then close) or ``"401"`` (expire tokens, challenge)."""

    method: str
    pattern: str
    action: str
    times: int = 1


@dataclass
class FaultProxy:
    """A forwarding proxy on 127.0.0.1 in front of a registry that injects faults, and optionally
    demands Bearer tokens it issues itself at ``/token`` (a minimal token service)."""

    upstream_port: int
    bearer: bool = False
    users: dict[str, str] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    token_requests: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

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

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _drain(self) -> None:
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            piece = self.rfile.read(min(remaining, 1 << 20))
            if not piece:
                break
            remaining -= len(piece)

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
        if action in ("503", "429", "405"):
            self._drain()
            self._answer(int(action), {"Retry-After": "0"} if action == "429" else {})
            return
        if action == "drop":
            self._drain()
            owner.record(self.command, self.path, 0)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._forward(cut=action == "cut")

    def _forward(self, *, cut: bool) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1", self.owner.upstream_port, timeout=60)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in _HOP_BY_HOP and key.lower() != "authorization":
                    upstream.putheader(key, value)
            upstream.endheaders()
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                piece = self.rfile.read(min(remaining, 1 << 20))
                if not piece:
                    break
                upstream.send(piece)
                remaining -= len(piece)
            response = upstream.getresponse()
            body_iter = _body(response, self.command)
            declared = response.getheader("Content-Length")
            self.send_response_only(response.status, response.reason)
            for key, value in response.getheaders():
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
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(piece)
                sent += len(piece)
        finally:
            upstream.close()


def _body(response: http.client.HTTPResponse, method: str) -> Iterator[bytes]:
    if method == "HEAD":
        return iter(())

    def pieces() -> Iterator[bytes]:
        while True:
            piece = response.read(1 << 20)
            if not piece:
                return
            yield piece

    return pieces()
