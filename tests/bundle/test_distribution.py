"""push / pull against a real CNCF distribution registry over HTTP, and a plain oras-py pull of a version."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from modelops_bundle.testing import BundleProject
from tests.bundle.conftest import ok, read_tree
from tests.oci.registries import RunningRegistry


@pytest.fixture
def http_project(
    distribution: RunningRegistry, mops_env: dict[str, str], make_project: Callable[..., BundleProject]
) -> BundleProject:
    env_dir = Path(mops_env["MODELOPS_HOME"]) / "bundle-env"
    env_dir.mkdir(parents=True, exist_ok=True)
    (env_dir / "dev.yaml").write_text(
        f"environment: dev\nregistry:\n  provider: docker\n  login_server: {distribution.host}\n"
    )
    project = make_project(f"model-{uuid.uuid4().hex[:8]}", "--env", "dev")
    project.write("src/model.py", "def run():\n    return 42\n")
    project.write("data/a.csv", "x,y\n1,2\n")
    project.write("data/deep/b.csv", "x,y\n3,4\n")
    project.write("README.md", "# model\n")
    project.write("data/big.bin", bytes(range(256)) * 4200)
    ok(project.run("add", ".", "--json"))
    return project


def test_push_pull_round_trip_over_http(
    http_project: BundleProject, make_project: Callable[..., BundleProject], distribution: RunningRegistry
) -> None:
    pushed = ok(http_project.run("push", "--json"))
    assert pushed["registry"] and pushed["uploaded_blobs"] == pushed["layers"] + 1
    again = ok(http_project.run("push", "--json"))
    assert again["up_to_date"] and again["digest"] == pushed["digest"] and again["uploaded_blobs"] == 0
    other = make_project(f"other-{uuid.uuid4().hex[:8]}", "--env", "dev", ref=http_project.root.name)
    ok(other.run("pull", "--ref", pushed["digest"], "--json"))
    assert read_tree(other.root) == read_tree(http_project.root)
    versions = ok(other.run("tags", "--json"))["versions"]
    assert [v["digest"] for v in versions] == [pushed["digest"]]


def test_plain_oras_pull_unpacks_files_at_their_paths(
    http_project: BundleProject, distribution: RunningRegistry, tmp_path: Path
) -> None:
    import oras.client

    ok(http_project.run("push", "--json"))
    client = oras.client.OrasClient(insecure=True)
    out = tmp_path / "oras-out"
    out.mkdir()
    client.pull(target=f"{distribution.host}/{http_project.root.name}:latest", outdir=str(out))
    assert read_tree(out) == read_tree(http_project.root)


def test_an_environment_whose_login_server_names_its_scheme(
    distribution: RunningRegistry, mops_env: dict[str, str], make_project: Callable[..., BundleProject]
) -> None:
    """``login_server: http://host:port`` (the scheme spelled out): push and pull speak plain HTTP to that
    host, and the project's config names no host at all (it follows its environment)."""
    env_dir = Path(mops_env["MODELOPS_HOME"]) / "bundle-env"
    env_dir.mkdir(parents=True, exist_ok=True)
    (env_dir / "plain.yaml").write_text(
        f"environment: plain\nregistry:\n  provider: docker\n  login_server: http://{distribution.host}\n"
    )
    name = f"scheme-{uuid.uuid4().hex[:8]}"
    project = make_project(name, "--env", "plain")
    config = (project.meta / "config.yaml").read_text()
    assert distribution.host not in config and f"repository: {name}" in config
    project.write("data/a.csv", "x,y\n1,2\n")
    ok(project.run("add", ".", "--json"))
    pushed = ok(project.run("push", "--json"))
    assert "plain HTTP" in pushed["registry"]
    status = ok(project.run("status", "--json"))
    assert status["remote"]["state"] == "synced"
