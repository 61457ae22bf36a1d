"""Pushes from two machines to one tag (issue 15, item 5), against CNCF distribution 2.8, which -- like the
distribution API itself -- has no compare-and-swap for tags. Two machines are two ``$MODELOPS_HOME``s: no
tag lock is shared. A push must never exit 0 when its tag does not point at what it pushed.

* deterministic: another machine's push lands just after this push moved the tag and read it back (the
  fault proxy makes that PUT the moment the read-back is answered): exit 1 naming both versions;
* racing: two homes push different changes to one tag at the same moment, in rounds: never both exit 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from modelops_bundle.core.reference import Reference
from modelops_bundle.core.registry import OCI_MANIFEST
from modelops_bundle.core.versions import resolve_digest
from modelops_bundle.testing import BundleProject
from tests.oci.registries import FaultProxy, RunningRegistry
from tests.reliability.conftest import Trial
from tests.reliability.support import complete_version, direct_backend, failed_cleanly, fill, new_project, ok, write_env

BIN = Path(sys.executable).parent / "modelops-bundle"


@dataclass
class RacingProxy(FaultProxy):
    """Once the client has PUT a manifest to ``tag`` and read the tag back, another machine's push lands:
    ``rival`` (manifest bytes) is PUT to the tag on the registry itself, before the proxy goes on."""

    registry_host: str = ""
    repository: str = ""
    tag: str = ""
    rival: bytes = b""
    moved_ours: bool = False
    fired: bool = False

    def record(self, method: str, path: str, status: int) -> None:
        super().record(method, path, status)
        if not self.rival or self.fired or path != f"/v2/{self.repository}/manifests/{self.tag}":
            return
        if method == "PUT" and status == 201:
            self.moved_ours = True
        elif self.moved_ours and method in ("HEAD", "GET"):
            self.fired = True
            backend = direct_backend(self.registry_host)
            try:
                backend.put_manifest(self.repository, self.rival, OCI_MANIFEST, self.tag)
            finally:
                backend.close()


def _home(base: dict[str, str], root: Path, env_name: str, host: str) -> dict[str, str]:
    """Another machine: its own ``HOME`` and ``MODELOPS_HOME`` (so no tag lock is shared)."""
    env = {**base, "HOME": str(root), "MODELOPS_HOME": str(root / ".modelops")}
    (root / ".modelops").mkdir(parents=True)
    write_env(env, env_name, host)
    return env


def test_a_tag_moved_right_after_the_read_back_fails_the_push(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    proxy = RacingProxy(reliability_registry.port).start()
    try:
        repository = f"moved-{uuid.uuid4().hex[:8]}"
        ours_env = _home(mops_env, tmp_path / "machine-a", "raced", proxy.host)
        theirs_env = _home(mops_env, tmp_path / "machine-b", "direct", reliability_registry.host)
        base = new_project(theirs_env, tmp_path / repository, "direct")
        fill(base, 1, small=6, large=0)
        ok(base.run("add", ".", "--json"))
        ok(base.run("push", "--json"))
        clone = new_project(ours_env, tmp_path / "ours", "raced", ref=repository)
        ok(clone.run("pull", "--json"))
        clone.write("data/ours.txt", "our change\n")
        ok(clone.run("add", ".", "--json"))
        base.write("data/theirs.txt", "their change\n")
        ok(base.run("add", ".", "--json"))
        rival_digest = ok(base.run("push", "--tag", "theirs", "--json"))["digest"]
        backend = direct_backend(reliability_registry.host)
        proxy.rival = backend.get_manifest(repository, rival_digest).data
        proxy.registry_host, proxy.repository, proxy.tag = reliability_registry.host, repository, "latest"
        state_before = (clone.meta / "state.json").read_bytes()

        result = clone.run("push")
        assert proxy.fired, "the rival push did not land after the read-back"
        stderr = failed_cleanly(result, "moved to " + rival_digest, "untagged", code=1)
        ours = stderr.split("your version is ", 1)[1].split(",", 1)[0]
        assert ours.startswith("sha256:") and ours != rival_digest
        assert resolve_digest(backend, Reference(repository, tag="latest")) == rival_digest
        assert backend.get_manifest(repository, ours).digest == ours  # kept in the registry by digest
        assert (clone.meta / "state.json").read_bytes() == state_before  # the push is not recorded
        assert "hint:" in stderr and "--force" in stderr
        backend.close()
    finally:
        proxy.stop()
    trial.record(
        "concurrency",
        "a push from another machine (another MODELOPS_HOME) moves the tag just after this push moved it and "
        "read it back",
        "1 push; the rival PUT made by the fault proxy when the read-back is answered",
        "exit 1: 'the tag moved to <theirs> while pushing; your version is <ours>, untagged', with how to "
        "recover; ours kept by digest; state.json unchanged",
    )


def _start(root: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN), "-C", str(root), "push", "--json"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def test_two_machines_push_to_one_tag_at_the_same_moment(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """Two clones in two homes pull one version, change different files and push to its tag at the same
    moment, in rounds: every round exactly one exits 0, and the tag points at that one's complete version;
    the other exits 1 naming the moved tag."""
    homes = [_home(mops_env, tmp_path / f"machine-{side}", "race", reliability_registry.host) for side in "ab"]
    rounds, outcomes = 6, []
    for number in range(rounds):
        name = f"machines-{number}-{uuid.uuid4().hex[:6]}"
        base = new_project(homes[0], tmp_path / name, "race")
        fill(base, number, small=12, large=1)
        ok(base.run("add", ".", "--json"))
        ok(base.run("push", "--json"))
        racers: list[BundleProject] = []
        for side, env in zip("ab", homes, strict=True):
            racer = new_project(env, tmp_path / f"{name}-{side}", "race", ref=name)
            ok(racer.run("pull", "--json"))
            racer.write(f"data/{side}.txt", f"{side} was here ({number})\n" * 50)
            ok(racer.run("add", ".", "--json"))
            racers.append(racer)
        processes = [_start(racer.root, env) for racer, env in zip(racers, homes, strict=True)]
        results = [(process.wait(timeout=120), *process.communicate()) for process in processes]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 1], [(code, err.decode()) for code, _, err in results]
        winner = next(json.loads(out) for code, out, _ in results if code == 0)
        loser = next(err.decode() for code, _, err in results if code == 1)
        assert "moved" in loser or "points at" in loser, loser
        assert complete_version(reliability_registry.host, name, "latest") == winner["digest"]
        outcomes.append("after the read-back" if "while pushing" in loser else "before the move")
    trial.record(
        "concurrency",
        "two machines (two MODELOPS_HOMEs, no shared tag lock) push different changes to one tag at once",
        f"{rounds} races ({outcomes.count('after the read-back')} lost after moving the tag, "
        f"{outcomes.count('before the move')} before)",
        "always exactly one exit 0 and one exit 1 naming the moved tag; the tag at the winner's complete version",
    )
