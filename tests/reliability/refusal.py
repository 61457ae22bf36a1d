"""One harness for "this version must be refused": every consumer of a version -- ``pull`` into a project
that holds local work, ``ensure`` into an empty folder, ``api.materialize`` into the shared cache and into
a destination -- must fail with a clear message and place nothing."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from modelops_bundle import api
from modelops_bundle.core.errors import BundleError
from modelops_bundle.testing import BundleProject
from tests.oci.registries import RunningRegistry
from tests.reliability.support import direct_backend, fill, new_project, ok, tree_files, write_env


@dataclass
class Stage:
    """A repository with a normal first version, and a victim project that pulled it and has local work."""

    registry: RunningRegistry
    repository: str
    victim: BundleProject
    env: dict[str, str]
    tmp: Path

    def backend(self):  # type: ignore[no-untyped-def]
        return direct_backend(self.registry.host)

    def observable(self) -> tuple[dict[str, bytes], bytes, bytes]:
        return (
            tree_files(self.victim.root),
            (self.victim.meta / "state.json").read_bytes(),
            (self.victim.meta / "tracked.txt").read_bytes(),
        )

    def refused(self, tag: str = "evil", *, needle: str = "", codes: tuple[int, ...] = (1,)) -> list[str]:
        """Run all four consumers against ``tag``; each must fail and place nothing. Returns messages."""
        messages: list[str] = []
        before = self.observable()
        # --overwrite: nothing may stop the pull before it fetches, verifies and would place the files
        result = self.victim.run("pull", "--ref", tag, "--overwrite")
        assert result.exit_code in codes, result
        assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr, result.stderr
        assert self.observable() == before, "pull changed the project"
        staging = self.victim.meta / "staging"
        assert not staging.exists() or not list(staging.iterdir())
        messages.append(result.stderr)

        dest = self.tmp / f"ensure-{uuid.uuid4().hex[:6]}"
        result = self.victim.run("ensure", "--dest", str(dest), "--ref", tag)
        assert result.exit_code in codes, result
        assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr, result.stderr
        assert not dest.exists() or tree_files(dest) == {}, tree_files(dest)
        messages.append(result.stderr)

        ref = f"{self.registry.host}/{self.repository}:{tag}"
        cache = self.tmp / f"cache-{uuid.uuid4().hex[:6]}"
        environ = {**self.env, "MODELOPS_BUNDLE_CACHE": str(cache)}
        for target in (None, self.tmp / f"dest-{uuid.uuid4().hex[:6]}"):
            try:
                api.materialize(ref, target, environ=environ)
            except BundleError as exc:
                messages.append(exc.message)
            else:
                raise AssertionError(f"api.materialize accepted {ref}")
            assert not list(cache.rglob("*.complete")), "a tree was marked complete"
            if target is not None:
                assert not target.exists() or tree_files(target) == {}, tree_files(target)
        if needle:
            for message in messages:
                assert needle in message, (needle, messages)
        return messages


def make_stage(registry: RunningRegistry, environ: dict[str, str], tmp: Path) -> Stage:
    write_env(environ, "hostile", registry.host)
    repository = f"hostile-{uuid.uuid4().hex[:8]}"
    author = new_project(environ, tmp / repository, "hostile")
    fill(author, 5, small=6, large=1)
    ok(author.run("add", ".", "--json"))
    ok(author.run("push", "--json"))
    victim = new_project(environ, tmp / "victim", "hostile", ref=repository)
    ok(victim.run("pull", "--json"))
    victim.write("data/f000.txt", "local work in progress\n")
    victim.write("notes.txt", "untracked\n")
    json.loads((victim.meta / "state.json").read_text())
    return Stage(registry, repository, victim, environ, tmp)
