"""Where a version goes is decided in one place and follows the environment: two real registries (CNCF
distribution, the second with htpasswd), ``env switch``, ``REGISTRY_URL``, a pinned registry, and
projects written by an earlier release."""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid
from pathlib import Path

import pytest

from modelops_bundle.testing import BundleProject
from tests.bundle.conftest import ok
from tests.oci.conftest import PASSWORD, USER
from tests.oci.registries import RunningRegistry


def _tags(registry: RunningRegistry, repository: str) -> list[str]:
    request = urllib.request.Request(f"{registry.url}/v2/{repository}/tags/list")
    if registry.username:
        token = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            tags = json.loads(response.read())["tags"] or []
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise
    return sorted(tag for tag in tags if not tag.startswith("sha256-"))  # versions, not provenance referrers


@pytest.fixture
def two_environments(
    mops_env: dict[str, str], distribution: RunningRegistry, auth_distribution: RunningRegistry
) -> dict[str, str]:
    folder = Path(mops_env["MODELOPS_HOME"]) / "bundle-env"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dev.yaml").write_text(
        f"environment: dev\nregistry:\n  provider: docker\n  login_server: {distribution.host}\n"
    )
    (folder / "prod.yaml").write_text(
        f"environment: prod\nregistry:\n  provider: docker\n  login_server: {auth_distribution.host}\n"
        f"  username: {USER}\n  password: {PASSWORD}\n"
    )
    return mops_env


@pytest.fixture
def project(two_environments: dict[str, str], tmp_path: Path) -> BundleProject:
    project = BundleProject.create(tmp_path / f"where-{uuid.uuid4().hex[:8]}", two_environments)  # pins dev
    project.write("data/a.csv", "x\n1\n")
    ok(project.run("add", ".", "--json"))
    return project


def test_env_switch_changes_where_the_next_push_goes(
    project: BundleProject, distribution: RunningRegistry, auth_distribution: RunningRegistry
) -> None:
    name = project.root.name
    assert (project.meta / "env").read_text().strip() == "dev"
    assert distribution.host not in (project.meta / "config.yaml").read_text()  # init wrote no host
    ok(project.run("push", "--json"))
    assert _tags(distribution, name) == ["latest"] and _tags(auth_distribution, name) == []

    switched = project.run("env", "switch", "prod")
    assert switched.exit_code == 0, switched
    assert f"next push goes to {auth_distribution.host}/{name}:latest" in switched.stdout
    assert "pins its registry" not in switched.stderr
    pushed = ok(project.run("push", "--tag", "v1", "--json"))
    assert auth_distribution.host in pushed["registry"]
    assert _tags(auth_distribution, name) == ["v1"] and _tags(distribution, name) == ["latest"]
    status = ok(project.run("status", "--json"))
    assert status["bundle"] == f"{auth_distribution.host}/{name}:latest"


def test_registry_url_overrides_the_environment_and_a_pinned_registry(
    project: BundleProject, distribution: RunningRegistry, auth_distribution: RunningRegistry
) -> None:
    name = project.root.name
    ok(project.run("env", "switch", "prod", "--json"))
    ok(project.run("push", "--tag", "v1", "--json", input_env={"REGISTRY_URL": distribution.host}))
    assert _tags(distribution, name) == ["v1"] and _tags(auth_distribution, name) == []
    ok(project.run("config", "registry", auth_distribution.host, "--json"))
    ok(project.run("push", "--tag", "v2", "--json", input_env={"REGISTRY_URL": distribution.host}))
    assert _tags(distribution, name) == ["v1", "v2"] and _tags(auth_distribution, name) == []
    shown = ok(project.run("env", "show", "--json", input_env={"REGISTRY_URL": distribution.host}))["resolved"]
    assert (shown["registry_source"], shown["reference"]) == ("$REGISTRY_URL", f"{distribution.host}/{name}:latest")


def test_a_pinned_registry_stays_with_a_warning_on_switch(
    project: BundleProject, distribution: RunningRegistry, auth_distribution: RunningRegistry
) -> None:
    name = project.root.name
    changed = project.run("config", "registry", distribution.host)
    assert changed.exit_code == 0 and f"Versions now go to {distribution.host}/{name}:latest" in changed.stdout
    switched = project.run("env", "switch", "prod")
    assert switched.exit_code == 0
    assert f"this project pins its registry to {distribution.host}; 'env switch' does not change it" in switched.stderr
    ok(project.run("push", "--json"))
    assert _tags(distribution, name) == ["latest"] and _tags(auth_distribution, name) == []
    # the prod credentials were never offered to the pinned dev host, and unpinning follows prod again
    ok(project.run("config", "--unset", "registry", "--json"))
    ok(project.run("push", "--tag", "v1", "--json"))
    assert _tags(auth_distribution, name) == ["v1"]


def test_a_project_of_an_earlier_release_is_migrated(
    project: BundleProject, distribution: RunningRegistry, auth_distribution: RunningRegistry
) -> None:
    name = project.root.name
    config = project.meta / "config.yaml"
    # 0.2.0 wrote the environment's host into config.yaml: dropped silently when it is the environment's
    config.write_text(f"registry_ref: {distribution.host}/{name}\ndefault_tag: latest\nhash_algorithm: sha256\n")
    status = project.run("status", "--json")
    assert status.exit_code == 0 and status.stderr == "", status
    assert config.read_text().splitlines()[1:] == [f"repository: {name}"]
    # ...and any other host stays pinned, said once: here the project was made in dev, then moved to prod
    (project.meta / "env").write_text("prod\n")
    config.write_text(f"registry_ref: {distribution.host}/{name}\n")
    first = project.run("push", "--json")
    assert first.exit_code == 0, first
    assert f"pins its registry to {distribution.host}" in first.stderr
    assert _tags(distribution, name) == ["latest"] and _tags(auth_distribution, name) == []
    assert config.read_text().splitlines()[1:] == [f"repository: {name}", f"registry: {distribution.host}"]
    assert "pins its registry" not in project.run("status").stderr
