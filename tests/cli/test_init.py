"""``init``: the project's metadata, ignore file and pyproject -- all at once or not at all."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops_bundle.core import scaffold
from modelops_bundle.testing import BundleProject, CliRunner


def test_init_creates_metadata_ignore_file_and_pyproject(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("init", "seir-model")
    assert result.exit_code == 0, result
    root = tmp_path / "seir-model"
    meta = root / ".modelops-bundle"
    assert {p.name for p in meta.iterdir()} >= {"config.yaml", "env", "tracked.txt"}
    config = yaml.safe_load((meta / "config.yaml").read_text())
    assert config == {"repository": "seir-model"}  # no registry host: the project follows its environment
    assert (meta / "env").read_text().strip() == "local"
    assert (meta / "tracked.txt").read_text() == ""
    ignore_lines = (root / ".modelopsignore").read_text().splitlines()
    for pattern in (".env", "*.pem", "*.key", ".venv/", "__pycache__/", "*.py[cod]", ".pytest_cache/"):
        assert pattern in ignore_lines
    assert 'name = "seir-model"' in (root / "pyproject.toml").read_text()
    assert "Initialized modelops-bundle project" in result.stdout
    assert not [p for p in root.iterdir() if p.name.startswith(".modelops-bundle.")]  # no staging leftovers


def test_init_in_the_current_folder_json(run_cli: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "My Project"
    folder.mkdir()
    result = run_cli("init", "--json", cwd=folder)
    assert result.exit_code == 0, result
    payload = result.json()
    assert payload["project"] == str(folder)
    assert payload["environment"] == "local"
    assert (payload["repository"], payload["registry"]) == ("my-project", None)
    assert sorted(payload["created"]) == [".modelopsignore", "pyproject.toml"]
    assert payload["kept"] == []


def test_existing_pyproject_and_ignore_file_are_untouched(
    run_cli: CliRunner, tmp_path: Path, snapshot: Callable[[Path], Any]
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'mine'\n")
    (root / ".modelopsignore").write_text("results/\n")
    before = snapshot(root)
    result = run_cli("init", "--json", cwd=root)
    assert result.exit_code == 0, result
    after = snapshot(root)
    for rel in ("pyproject.toml", ".modelopsignore"):
        assert after[rel] == before[rel]
    assert sorted(result.json()["kept"]) == [".modelopsignore", "pyproject.toml"]
    assert result.json()["created"] == []


def test_init_twice_fails_and_touches_nothing(bundle_project: BundleProject, snapshot: Callable[[Path], Any]) -> None:
    bundle_project.write("a.txt", "a")
    assert bundle_project.run("add", "a.txt").ok
    before = snapshot(bundle_project.root)
    result = bundle_project.run("init")
    assert result.exit_code == 2
    assert "already a modelops-bundle project" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(bundle_project.root) == before


def test_init_by_absolute_path_from_a_sub_folder_is_refused_too(bundle_project: BundleProject) -> None:
    bundle_project.path("sub").mkdir()
    result = bundle_project.run("init", str(bundle_project.root), cwd="sub")
    assert result.exit_code == 2
    assert "already a modelops-bundle project" in result.stderr
    assert not (bundle_project.path("sub") / ".modelops-bundle").exists()


def test_unknown_environment_creates_nothing(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("init", "proj", "--env", "staging")
    assert result.exit_code == 2
    assert "environment 'staging' not found" in result.stderr
    assert "bundle-env/staging.yaml" in result.stderr
    assert not (tmp_path / "proj").exists()


def test_invalid_environment_name_is_a_usage_error(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("init", "proj", "--env", "../evil")
    assert result.exit_code == 2
    assert "invalid environment name" in result.stderr
    assert not (tmp_path / "proj").exists()


def _environments(mops_env: dict[str, str]) -> Path:
    """The folder of environment files under the test's MODELOPS_HOME, created."""
    envs = Path(mops_env["MODELOPS_HOME"]) / "bundle-env"
    envs.mkdir(parents=True)
    return envs


def test_environment_file_is_used_when_present(run_cli: CliRunner, mops_env: dict[str, str], tmp_path: Path) -> None:
    envs = _environments(mops_env)
    (envs / "dev.yaml").write_text(
        "environment: dev\nregistry:\n  provider: docker\n  login_server: registry.example.org:5000\n"
    )
    result = run_cli("init", "proj", "--json")  # dev is the default once provisioned
    assert result.exit_code == 0, result
    assert result.json()["environment"] == "dev"
    assert (result.json()["repository"], result.json()["registry"]) == ("proj", None)
    shown = run_cli("env", "show", "--json", cwd=tmp_path / "proj").json()["resolved"]
    assert shown["reference"] == "registry.example.org:5000/proj:latest"
    assert shown["registry_source"] == "environment 'dev'"
    assert (tmp_path / "proj" / ".modelops-bundle" / "env").read_text().strip() == "dev"


def test_broken_environment_file_names_it_and_creates_nothing(
    run_cli: CliRunner, mops_env: dict[str, str], tmp_path: Path
) -> None:
    envs = _environments(mops_env)
    (envs / "prod.yaml").write_text("environment: prod\nregistry: [oops\n")
    result = run_cli("init", "proj", "--env", "prod")
    assert result.exit_code == 2
    assert "prod.yaml" in result.stderr and "line" in result.stderr
    assert not (tmp_path / "proj").exists()


def test_unknown_template_creates_nothing(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("init", "proj", "--template", "does-not-exist")
    assert result.exit_code == 2
    assert "unknown template 'does-not-exist'" in result.stderr
    assert not (tmp_path / "proj").exists()


def test_target_that_is_a_file_is_refused(run_cli: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    result = run_cli("init", "notes.txt")
    assert result.exit_code == 2
    assert "exists and is not a folder" in result.stderr
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "notes.txt"]


def test_failed_init_in_an_existing_folder_leaves_nothing_behind(
    run_cli: CliRunner, tmp_path: Path, snapshot: Callable[[Path], Any]
) -> None:
    """pyproject.toml cannot be created (a dangling symlink holds its name): the .modelopsignore
    written just before and the staged metadata folder are removed again."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "model.py").write_text("print('hi')\n")
    os.symlink("missing-target", root / "pyproject.toml")
    before = snapshot(root)
    result = run_cli("init", cwd=root)
    assert result.exit_code == 1
    assert "cannot initialise a project in" in result.stderr
    assert snapshot(root) == before


class _FailingRename:
    """Stands in for ``os`` inside scaffold: the final rename fails like on a read-only folder."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def rename(src: str, dst: str) -> None:
        raise OSError(errno.EROFS, "Read-only file system")


def test_failed_init_of_a_new_folder_removes_it(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scaffold, "os", _FailingRename())
    result = run_cli("init", "newproj")
    assert result.exit_code == 1
    assert "read-only file system" in result.stderr
    assert not (tmp_path / "newproj").exists()


def test_failed_init_removes_every_folder_it_created(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``init a/b/proj`` creates ``a`` and ``a/b`` too (``mkdir(parents=True)``); a failure must remove
    them as well -- today only ``proj`` itself is removed and ``a/b/`` stays behind."""
    monkeypatch.setattr(scaffold, "os", _FailingRename())
    result = run_cli("init", "a/b/proj")
    assert result.exit_code == 1
    assert not (tmp_path / "a").exists()


def test_init_then_status_works_with_no_server(bundle_project: BundleProject) -> None:
    result = bundle_project.run("status", "--json")
    assert result.exit_code == 0, result
    payload = result.json()
    assert payload["environment"] == "local"
    assert payload["bundle"] == "project:latest"
    assert payload["tracked_files"] == 0


def test_env_switch_validates_pins_and_remembers_the_file(
    run_cli: CliRunner, mops_env: dict[str, str], tmp_path: Path
) -> None:
    envs = _environments(mops_env)
    (envs / "broken.yaml").write_text("environment: broken\nregistry: {provider: docker, insecure: maybe}\n")
    (envs / "lab.yaml").write_text(
        "environment: lab\nregistry:\n  provider: oci-layout\n  path: /srv/registry\n"
        "storage:\n  provider: local\n  path: /srv/blobs\n"
    )
    assert run_cli("init", "proj", "--env", "local").exit_code == 0
    meta = tmp_path / "proj" / ".modelops-bundle"

    refused = run_cli("env", "switch", "broken", cwd=tmp_path / "proj")
    assert refused.exit_code == 2 and "broken.yaml" in refused.stderr
    assert (meta / "env").read_text().strip() == "local"

    switched = run_cli("env", "switch", "lab", "--json", cwd=tmp_path / "proj")
    assert switched.exit_code == 0, switched
    assert switched.json() == {
        "previous": "local",
        "pinned": "lab",
        "reference": "proj:latest",
        "registry": "OCI layout /srv/registry",
        "source": "environment 'lab'",
    }
    assert (meta / "env").read_text().strip() == "lab"
    # Read now, so the next push or status does not parse the file again.
    memo = json.loads((meta / "cache" / "memo.json").read_text())["memo"]
    assert "/srv/blobs" in json.dumps(memo[f"environment:{envs / 'lab.yaml'}"])
