"""Start-up stays light: building the parser (what ``mops bundle --help`` does) imports no heavy library.

Every command pays for what the parser build imports; pydantic, rich, yaml, fsspec and oras are for the
commands that need them, imported inside their ``run``.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pydantic", "rich", "yaml", "fsspec", "oras", "requests", "importlib.metadata")

PROBE = """
import io, json, sys
from modelops_bundle.cli.main import run
code = run(["--help"], prog="mops bundle", stdout=io.StringIO(), stderr=io.StringIO())
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def test_help_imports_no_heavy_module() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(done.stdout)
    assert report["code"] == 0
    loaded = {name for name in report["modules"] if name.split(".")[0] in {h.split(".")[0] for h in HEAVY}}
    heavy = sorted(name for name in loaded if any(name == h or name.startswith(h + ".") for h in HEAVY))
    assert heavy == [], f"imported while building the parser: {heavy}"


def test_help_import_time_is_small() -> None:
    # -X importtime reports cumulative microseconds per module; the package's own import must stay small.
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    totals = {}
    for line in done.stderr.splitlines():
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[1].isdigit():
            totals[parts[2]] = int(parts[1])
    # Generous bound (a shared CI machine is noisy); an accidental pydantic/rich import costs more than this.
    assert totals.get("modelops_bundle", 0) < 150_000, totals.get("modelops_bundle")
