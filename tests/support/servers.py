"""Start and stop real servers (registry, blob stores) on 127.0.0.1 for the test suite.

Each server runs in its own session (``setsid``) and is stopped by its process group, never by name;
readiness is a bounded poll, so a missing binary or a server that never comes up fails fast with the
server's own output in the message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_binary(name: str, *candidates: str) -> str:
    """Path of an executable, or a test failure saying how to install it (never a silent skip)."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (
            candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None
        )
        if found:
            return found
    raise RuntimeError(f"{name} is not installed; run 'bash scripts/test.sh' once to install the test services")


class ServerProcess:
    """A server process in its own process group, with its combined output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], *, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        log = open(self.log_path, "wb")  # noqa: SIM115 - kept open for the process's lifetime
        self.process = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(self.env or {})},
        )
        log.close()
        return self

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def wait_for_port(self, port: int, *, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.output()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen on 127.0.0.1:{port} within {timeout}s:\n{self.output()}")

    def wait_for_http(self, url: str, *, timeout: float = 30.0, ok: Sequence[int] = (200,)) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status in ok:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code in ok:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} not ready at {url} within {timeout}s:\n{self.output()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
