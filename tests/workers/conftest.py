"""Fixtures for the worker side: a pushed SEIR project (embedded OCI layout, or the CNCF registry behind a
counting proxy), and a cache folder of its own per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelops_bundle.testing import BundleProject
from tests.bundle.conftest import (
    make_project,  # noqa: F401 - re-exported fixture
    ok,
)
from tests.oci.conftest import distribution  # noqa: F401 - re-exported fixture
from tests.oci.registries import FaultProxy, RunningRegistry

MODEL_ID = "seir_seirmodel"


@dataclass
class Pushed:
    """A pushed SEIR project: the project, its version digest, the ref a worker uses, and its environment."""

    project: BundleProject
    digest: str
    ref: str  # a reference that names the repository and the digest
    env: dict[str, str]
    proxy: FaultProxy | None = None

    def blob_gets(self) -> list[str]:
        """Blob paths fetched through the proxy (GET only), one item per request."""
        assert self.proxy is not None
        return [path for method, path, status in self.proxy.requests if method == "GET" and "/blobs/" in path]


def http_environment(env: dict[str, str], name: str, host: str) -> None:
    """``$MODELOPS_HOME/bundle-env/<name>.yaml``: an environment whose registry is the HTTP one at ``host``."""
    env_dir = Path(env["MODELOPS_HOME"]) / "bundle-env"
    env_dir.mkdir(parents=True, exist_ok=True)
    (env_dir / f"{name}.yaml").write_text(
        f"environment: {name}\nregistry:\n  provider: docker\n  login_server: {host}\n"
    )


def seir_project(root: Path, env: dict[str, str], *init_args: str) -> BundleProject:
    project = BundleProject.create(root, env, "--template", "seir", *init_args)
    ok(
        project.run(
            "register-model",
            "models/seir.py",
            "--data",
            "data/demographics.csv",
            "--data",
            "data/contact_patterns.csv",
            "--json",
        )
    )
    project.write("data/extra/unused.bin", bytes(range(256)) * 8192)  # 2 MiB no model needs: a raw layer
    ok(project.run("add", ".", "--json"))
    return project


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "shared-cache"


@pytest.fixture
def layout_bundle(mops_env: dict[str, str], tmp_path: Path, cache_dir: Path) -> Pushed:
    project = seir_project(tmp_path / "seir", mops_env)
    pushed = ok(project.run("push", "--json"))
    env = {**mops_env, "MODELOPS_BUNDLE_CACHE": str(cache_dir)}
    return Pushed(project, pushed["digest"], f"seir@{pushed['digest']}", env)


@pytest.fixture
def http_bundle(
    distribution: RunningRegistry,  # noqa: F811
    mops_env: dict[str, str],
    tmp_path: Path,
    cache_dir: Path,
) -> Iterator[Pushed]:
    """The project pushed to CNCF distribution 2.8; workers read it through a counting proxy."""
    http_environment(mops_env, "dev", distribution.host)
    name = f"seir-{uuid.uuid4().hex[:8]}"
    project = seir_project(tmp_path / name, mops_env, "--env", "dev")
    pushed = ok(project.run("push", "--json"))
    proxy = FaultProxy(distribution.port).start()
    env = {**mops_env, "MODELOPS_BUNDLE_CACHE": str(cache_dir), "MOPS_ENV": "dev"}
    yield Pushed(project, pushed["digest"], f"{proxy.host}/{name}@{pushed['digest']}", env, proxy)
    proxy.stop()
