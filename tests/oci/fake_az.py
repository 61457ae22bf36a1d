"""A stand-in for the Azure CLI: an executable ``az`` in a folder of its own, to put first on ``PATH``.

It answers only ``az acr login --name NAME --expose-token --output json`` the way the real one does
(JSON with ``accessToken`` and ``loginServer`` on stdout, warnings on stderr), records each call, and
can be told to fail (stderr text and exit code), to hang, or to print something that is not JSON. Its
behaviour is read from ``az.json`` beside it on every call, so a test can change it between calls.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

SCRIPT = """#!{python}
import json, pathlib, sys, time
here = pathlib.Path(__file__).resolve().parent
conf = json.loads((here / "az.json").read_text())
with open(here / "calls.log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
expected = ["acr", "login", "--name", conf["name"], "--expose-token", "--output", "json"]
if args != expected:
    sys.stderr.write("ERROR: the stand-in az was called with " + " ".join(args) + "\\n")
    sys.exit(2)
time.sleep(conf.get("sleep", 0))
if conf.get("stderr"):
    sys.stderr.write(conf["stderr"])
if conf.get("exit", 0):
    sys.exit(conf["exit"])
if conf.get("stdout") is not None:
    sys.stdout.write(conf["stdout"])
    sys.exit(0)
sys.stderr.write("WARNING: You can perform manual login using the provided access token below\\n")
print(json.dumps({{"accessToken": conf["token"], "loginServer": conf["login_server"]}}, indent=2))
"""


@dataclass
class FakeAz:
    folder: Path

    @classmethod
    def install(cls, folder: Path, *, name: str, login_server: str, token: str) -> FakeAz:
        folder.mkdir(parents=True, exist_ok=True)
        script = folder / "az"
        script.write_text(SCRIPT.format(python=sys.executable))
        script.chmod(0o755)
        fake = cls(folder)
        fake.configure(name=name, login_server=login_server, token=token)
        return fake

    def configure(self, **settings: object) -> None:
        path = self.folder / "az.json"
        current = json.loads(path.read_text()) if path.exists() else {}
        current.update(settings)
        path.write_text(json.dumps(current))

    def calls(self) -> list[str]:
        log = self.folder / "calls.log"
        return log.read_text().splitlines() if log.exists() else []
