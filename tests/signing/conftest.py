"""Fixtures for signing and trust: keys made by the real ``key generate``, SEIR versions pushed to the
embedded OCI layout or to CNCF distribution (which has no referrers API: the tag-schema fallback), one
signed by the trusted key ``ci`` and one not, and environment files carrying a ``trust:`` policy."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle.testing import BundleProject, run_command
from tests.bundle.conftest import ok
from tests.oci.conftest import distribution  # noqa: F401 - re-exported fixture
from tests.oci.registries import RunningRegistry
from tests.workers.conftest import MODEL_ID, seir_project

PASSPHRASE = "correct horse battery staple"

__all__ = ["MODEL_ID", "PASSPHRASE", "Stage", "generate_key", "public_key_path", "write_env"]


@pytest.fixture(name="mops_env")
def signing_mops_env(mops_env: dict[str, str]) -> dict[str, str]:
    """The isolated environment of ``modelops_bundle.testing``, with the passphrase of the test keys."""
    mops_env["MOPS_SIGNING_PASSPHRASE"] = PASSPHRASE
    return mops_env


def generate_key(env: dict[str, str], name: str, algorithm: str = "ecdsa-p256") -> dict[str, Any]:
    """``mops bundle key generate --name NAME`` (the passphrase comes from ``env``)."""
    result = run_command(["key", "generate", "--name", name, "--algorithm", algorithm, "--json"], env)
    return ok(result)  # type: ignore[no-any-return]


def public_key_path(env: dict[str, str], name: str) -> Path:
    return Path(env["MODELOPS_HOME"]) / "keys" / f"{name}.pub"


def write_env(env: dict[str, str], name: str, *, host: str | None = None, trust: str | None = None) -> Path:
    """``bundle-env/<name>.yaml``: the HTTP registry at ``host``, or (no host) the embedded layout and blob
    folder written out, so that a ``trust:`` section can sit beside them."""
    home = Path(env["MODELOPS_HOME"])
    if host is not None:
        body = f"environment: {name}\nregistry:\n  provider: docker\n  login_server: {host}\n"
    else:
        body = (
            f"environment: {name}\nregistry:\n  provider: oci-layout\n  path: {home / 'registry'}\n"
            f"storage:\n  provider: local\n  path: {home / 'blobs'}\n"
        )
    if trust is not None:
        body += "trust:\n" + textwrap.indent(textwrap.dedent(trust).strip(), "  ") + "\n"
    folder = home / "bundle-env"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(body)
    return path


@dataclass
class Stage:
    """A SEIR repository with two versions: ``signed`` (signed by the key ``ci``) and ``unsigned``, in
    environment ``env_name``, whose file can be given a policy; ``env`` is what workers and the API use
    (``MOPS_ENV``, a cache of their own)."""

    project: BundleProject
    repository: str
    env_name: str
    env: dict[str, str]
    signed: str
    unsigned: str
    registry: RunningRegistry | None = None
    host: str | None = None

    def ref(self, digest: str) -> str:
        """The reference a worker uses for ``digest``."""
        where = f"{self.host}/{self.repository}" if self.host else self.repository
        return f"{where}@{digest}"

    def policy(self, trust: str | None) -> Path:
        return write_env(self.env, self.env_name, host=self.host, trust=trust)

    def trust_ci(self) -> Path:
        return self.policy(f"keys: [{public_key_path(self.env, 'ci')}]")

    @property
    def cache(self) -> Path:
        return Path(self.env["MODELOPS_BUNDLE_CACHE"])

    def cache_holds(self, digest: str) -> bool:
        """Whether the shared cache kept anything of ``digest``: a tree, a completion marker, signatures."""
        hexdigest = digest.partition(":")[2]
        trees = self.cache / "trees" / "sha256"
        marked = trees.is_dir() and any(entry.name.startswith(hexdigest) for entry in trees.iterdir())
        return marked or (self.cache / "versions" / "sha256" / hexdigest / "signatures.json").exists()


def _make_stage(env: dict[str, str], root: Path, env_name: str, host: str | None) -> Stage:
    generate_key(env, "ci")
    generate_key(env, "other", "ed25519")
    write_env(env, env_name, host=host)
    repository = f"seir-{uuid.uuid4().hex[:8]}"
    project = seir_project(root / repository, env, "--env", env_name)
    signed = ok(project.run("push", "--sign", "--key", "ci", "--json"))
    assert signed["signature"]["method"] == "tag-schema"
    project.write("data/extra/notes.txt", "a second version, never signed\n")
    ok(project.run("add", "data/extra/notes.txt", "--json"))
    unsigned = ok(project.run("push", "--tag", "unsigned", "--json"))
    worker_env = {**env, "MOPS_ENV": env_name, "MODELOPS_BUNDLE_CACHE": str(root / "shared-cache")}
    return Stage(project, repository, env_name, worker_env, signed["digest"], unsigned["digest"], host=host)


@pytest.fixture
def layout_stage(mops_env: dict[str, str], tmp_path: Path) -> Stage:
    """The stage on the embedded OCI layout (``bundle-env/local.yaml`` written out)."""
    return _make_stage(mops_env, tmp_path, "local", None)


@pytest.fixture
def http_stage(
    distribution: RunningRegistry,  # noqa: F811
    mops_env: dict[str, str],
    tmp_path: Path,
) -> Iterator[Stage]:
    """The stage on CNCF distribution 2.8 (no referrers API: signatures live under the fallback tag)."""
    stage = _make_stage(mops_env, tmp_path, "dev", distribution.host)
    stage.registry = distribution
    yield stage
