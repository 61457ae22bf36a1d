"""A project folder made by modelops-bundle v0.1.1 (written here byte by byte from the documented format,
never by the old package): every command names the problem and ``migrate`` (exit 2, nothing touched);
``migrate --dry-run`` says what would change; ``migrate`` converts it in place and the project works."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from modelops_bundle.testing import CliRunner
from tests.conftest import snapshot_tree as snapshot_of
from tests.support.upstream import REGISTRY_YAML

CONFIG_V011 = """registry_ref: epi-model
default_tag: latest
storage:
  mode: oci-only
  threshold_bytes: 52428800
  force_blob_patterns: []
  force_oci_patterns: []
  provider: ''
  container: ''
  prefix: ''
cache_dir: null
cache_link_mode: auto
auto_code:
  code_roots:
  - src
  import_mode: package
  ignore: []
"""


def unchanged(root: Path, before: dict[str, object]) -> bool:
    """Nothing but the (empty) project lock file a command takes first -- and so its folder's mtime."""
    after = snapshot_of(root)
    after.pop(".modelops-bundle/lock", None)
    after[".modelops-bundle"] = before[".modelops-bundle"]
    return after == before


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def old_project(tmp_path: Path) -> Path:
    root = tmp_path / "epi-model"
    meta = root / ".modelops-bundle"
    meta.mkdir(parents=True)
    (root / "models").mkdir()
    (root / "data").mkdir()
    code, data = b"class SEIRModel:\n    pass\n", b"x,y\n1,2\n"
    (root / "models" / "seir.py").write_bytes(code)
    (root / "data" / "a.csv").write_bytes(data)
    (meta / "config.yaml").write_text(CONFIG_V011)
    (meta / "env").write_text("local\n")
    (meta / "tracked.txt").write_text(".modelops-bundle/registry.yaml\ndata/a.csv\nmodels/seir.py\n")
    state = {"last_push_digest": None, "last_pull_digest": None, "last_synced_files": {}, "timestamp": 1759233600.5}
    (meta / "state.json").write_text(json.dumps(state))
    registry = REGISTRY_YAML.format(a_digest=_sha(data), code_digest=_sha(code), model_hex="0" * 64)
    (meta / "registry.yaml").write_text(registry)
    return root


@pytest.mark.parametrize("command", [("status",), ("status", "--offline"), ("add", "."), ("push",), ("config",)])
def test_every_command_names_the_problem_and_the_fix(
    run_cli: CliRunner, old_project: Path, command: tuple[str, ...]
) -> None:
    before = snapshot_of(old_project)
    result = run_cli(*command, cwd=old_project)
    assert result.exit_code == 2, result
    assert "written by modelops-bundle 0.1.x" in result.stderr and "mops bundle migrate" in result.stderr
    assert "Traceback" not in result.stderr
    assert unchanged(old_project, before)


def test_migrate_dry_run_says_what_changes_and_writes_nothing(run_cli: CliRunner, old_project: Path) -> None:
    before = snapshot_of(old_project)
    result = run_cli("migrate", "--dry-run", "--json", cwd=old_project)
    assert result.exit_code == 0, result
    payload = result.json()
    assert payload["dry_run"] is True and payload["migrated"] is False
    changes = {(c["file"], c["change"]) for c in payload["changes"]}
    assert ("state.json", "dropped 'timestamp' (the time of the last sync is not kept)") in changes
    assert ("config.yaml", "storage.mode: oci-only -> oci") in changes
    assert any(file == "tracked.txt" and ".modelops-bundle/registry.yaml" in what for file, what in changes)
    assert {what.split(" (")[0] for file, what in changes if file == "config.yaml"} >= {
        "dropped 'cache_link_mode'",
        "dropped 'auto_code'",
        "storage.provider: '' -> unset",
        "storage.container: '' -> unset",
    }
    assert unchanged(old_project, before)


def test_migrate_converts_the_project_and_it_works(run_cli: CliRunner, old_project: Path) -> None:
    migrated = run_cli("migrate", cwd=old_project)
    assert migrated.exit_code == 0, migrated
    assert migrated.stdout.startswith(f"Migrated {old_project} (made by modelops-bundle 0.1.x):")
    meta = old_project / ".modelops-bundle"
    assert "timestamp" not in json.loads((meta / "state.json").read_text())
    assert (meta / "tracked.txt").read_text() == "data/a.csv\nmodels/seir.py\n"
    status = run_cli("status", "--json", cwd=old_project)
    assert status.exit_code == 0, status
    assert status.json()["bundle"] == "epi-model:latest" and status.json()["tracked_files"] == 2
    # the first command after migrate settled registry_ref into the current keys
    assert (meta / "config.yaml").read_text().splitlines()[1:] == ["repository: epi-model", "storage:", "  mode: oci"]
    pushed = run_cli("push", "--json", cwd=old_project)
    assert pushed.exit_code == 0, pushed
    again = run_cli("migrate", cwd=old_project)
    assert again.exit_code == 0 and again.stdout.startswith("Nothing to migrate")


def test_a_folder_store_becomes_the_local_provider(run_cli: CliRunner, old_project: Path) -> None:
    config = old_project / ".modelops-bundle" / "config.yaml"
    config.write_text(
        CONFIG_V011.replace("provider: ''", "provider: fs").replace("container: ''", "container: /srv/blobs")
    )
    result = run_cli("migrate", "--json", cwd=old_project)
    assert result.exit_code == 0, result
    changes = [c["change"] for c in result.json()["changes"] if c["file"] == "config.yaml"]
    assert (
        "storage.provider: fs -> local; its folder /srv/blobs belongs in the environment file's storage.path" in changes
    )
    assert "provider: local" in config.read_text() and "/srv/blobs" not in config.read_text()


def test_a_broken_file_stops_migrate_before_anything_is_written(run_cli: CliRunner, old_project: Path) -> None:
    (old_project / ".modelops-bundle" / "registry.yaml").write_text("models: [not, a, mapping]\n")
    before = snapshot_of(old_project)
    result = run_cli("migrate", cwd=old_project)
    assert result.exit_code == 2 and "registry.yaml" in result.stderr
    assert unchanged(old_project, before)


def test_a_current_project_has_nothing_to_migrate(run_cli: CliRunner, tmp_path: Path) -> None:
    assert run_cli("init", "fresh").exit_code == 0
    result = run_cli("migrate", "--json", cwd=tmp_path / "fresh")
    assert result.exit_code == 0 and result.json()["changes"] == [] and result.json()["migrated"] is False
