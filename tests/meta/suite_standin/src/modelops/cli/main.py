"""The stand-in suite's ``mops``: a few commands of its own, and ``mops bundle ...`` proxied to the
``modelops-bundle`` executable (found on PATH or beside ``sys.executable``), as the suite does.

Its own commands make what reached them visible: ``infra`` echoes its arguments, ``jobs exit N`` exits
with N, ``workspace cat`` copies stdin to stdout upper-cased (and notes on stderr), ``wait`` sleeps
until Ctrl-C and then exits with 130.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print("usage: mops {infra,jobs,workspace,wait,bundle} ...  (stand-in ModelOps suite 0.9.0)")
        return 0
    command, rest = args[0], args[1:]
    if command == "bundle":
        return bundle_proxy(rest)
    if command == "infra":
        print(f"suite infra: {' '.join(rest)}")
        return 0
    if command == "jobs" and rest[:1] == ["exit"]:
        print(f"suite jobs: exiting with {rest[1]}")
        return int(rest[1])
    if command == "workspace" and rest[:1] == ["cat"]:
        data = sys.stdin.read()
        sys.stdout.write(data.upper())
        sys.stderr.write(f"suite workspace: read {len(data)} characters\n")
        return 0
    if command == "wait":
        try:  # the test presses Ctrl-C as soon as it reads the line: it may land while printing
            print("suite waiting", flush=True)
            time.sleep(60)
        except KeyboardInterrupt:
            print("suite interrupted", file=sys.stderr)
            return 130
        return 0
    print(f"mops: no such command {command!r}", file=sys.stderr)
    return 2


def bundle_executable() -> str | None:
    found = shutil.which("modelops-bundle")
    if found:
        return found
    beside = Path(sys.executable).parent / "modelops-bundle"
    return str(beside) if beside.exists() else None


def bundle_proxy(args: list[str]) -> int:
    executable = bundle_executable()
    if executable is None:
        print("error: modelops-bundle is not installed", file=sys.stderr)
        return 1
    process = subprocess.Popen([executable, *args])
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the child as well (one process group): wait for its code
            continue
