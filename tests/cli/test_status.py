"""``status``: tracked, changed and untracked files; ``--files``, ``--untracked-only``, ``--json``."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle.core.project import Project
from modelops_bundle.core.walk import UNSTORABLE_REASON
from modelops_bundle.core.workspace import Workspace
from modelops_bundle.plugins import hashing_sha256
from modelops_bundle.plugins.hashing_sha256 import Sha256Hasher
from modelops_bundle.testing import BundleProject


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def project(bundle_project: BundleProject, age: Callable[..., None]) -> BundleProject:
    for rel, content in {"src/model.py": "print(1)\n", "data/a.csv": "1,2\n", "data/b.csv": "3,4\n"}.items():
        age(bundle_project.write(rel, content))
    assert bundle_project.run("add", "src", "data").ok
    return bundle_project


def _synced(project: BundleProject) -> None:
    """Record the current files as the last synced version (what a push or pull writes)."""
    files = {f["path"]: f["digest"] for f in project.run("status", "--json", "--files").json()["files"]}
    state = {
        "last_push_digest": "sha256:" + "1" * 64,
        "last_pull_digest": None,
        "last_synced_ref": "project:latest",
        "last_synced_files": files,
    }
    (project.meta / "state.json").write_text(json.dumps(state))


def test_status_text(project: BundleProject) -> None:
    project.write("notes.txt", "untracked")
    result = project.run("status")
    assert result.exit_code == 0, result
    out = result.stdout
    assert "Bundle: project:latest  (environment: local)" in out
    assert "Last synced: never (not pushed yet)" in out
    assert "Tracked: 3 files" in out
    assert "new file: src/model.py" in out
    assert "Untracked files" in out and "  notes.txt" in out
    assert result.stderr == ""


def test_status_json_shape(project: BundleProject) -> None:
    project.write("notes.txt", "untracked")
    payload = project.run("status", "--json").json()
    assert set(payload) >= {
        "project",
        "bundle",
        "environment",
        "algorithm",
        "tracked_files",
        "tracked_bytes",
        "last_push_digest",
        "last_pull_digest",
        "changes",
        "untracked",
        "skipped",
        "unbundlable",
    }
    assert payload["project"] == str(project.root)
    assert payload["algorithm"] == "sha256"
    assert payload["tracked_files"] == 3
    assert payload["tracked_bytes"] == len("print(1)\n") + 4 + 4
    assert payload["changes"] == {
        "added": ["data/a.csv", "data/b.csv", "src/model.py"],
        "modified": [],
        "deleted": [],
        "removed": [],
    }
    assert payload["untracked"] == [".modelopsignore", "notes.txt", "pyproject.toml"]
    assert payload["skipped"] == [] and payload["unbundlable"] == []
    assert "files" not in payload


def test_status_names_what_add_would_leave_out(project: BundleProject, tmp_path: Path) -> None:
    """Untracked paths the walk cannot bundle are listed with the reason, not silently absent (a data
    file symlinked from a shared drive, say)."""
    (tmp_path / "shared.csv").write_text("elsewhere")
    (project.root / "data" / "shared.csv").symlink_to(tmp_path / "shared.csv")
    project.write("data/two\nlines.csv", "x")
    payload = project.run("status", "--json").json()
    assert payload["unbundlable"] == [
        {"path": "data/shared.csv", "reason": "symlink points outside the project"},
        {"path": "data/two\nlines.csv", "reason": UNSTORABLE_REASON},
    ]
    assert "data/shared.csv" not in payload["untracked"]
    text = project.run("status").stdout
    assert "Not bundlable (2; 'mops bundle add' leaves these out):" in text
    assert "  data/shared.csv: symlink points outside the project" in text
    assert f"  data/two\\nlines.csv: {UNSTORABLE_REASON}" in text  # escaped: one line each


def test_status_files_json_lists_digests(project: BundleProject) -> None:
    payload = project.run("status", "--files", "--json").json()
    files = {f["path"]: f for f in payload["files"]}
    assert set(files) == {"data/a.csv", "data/b.csv", "src/model.py"}
    assert files["data/a.csv"]["digest"] == _sha(b"1,2\n")
    assert files["data/a.csv"]["size"] == 4
    assert files["data/a.csv"]["status"] == "added"
    assert files["data/a.csv"]["mode"] == "644"


def test_status_files_text_table(project: BundleProject) -> None:
    out = project.run("status", "--files").stdout
    table = out.split("Tracked files\n", 1)[1].splitlines()
    assert table[0].split() == ["State", "Size", "Tier", "Digest", "Path"]
    line = next(row for row in table if row.endswith("data/a.csv"))
    assert line.split()[0] == "added"
    assert line.split()[3] == "oci"  # a small file stays in the registry under the default policy
    assert _sha(b"1,2\n")[:19] in line  # algorithm and the first 12 hex digits


def test_status_files_shows_the_blob_tier_of_large_files(project: BundleProject) -> None:
    assert project.run("config", "storage.threshold_bytes", "3").ok
    files = {row["path"]: row for row in project.run("status", "--files", "--json").json()["files"]}
    assert files["data/a.csv"]["tier"] == "blob"  # 4 bytes >= 3: offloaded to the local blob folder


def test_untracked_only(project: BundleProject) -> None:
    project.write("notes.txt", "n")
    project.write("data/new.csv", "n")
    project.write(".env", "SECRET=1")
    result = project.run("status", "--untracked-only")
    assert result.stdout.splitlines() == [".modelopsignore", "data/new.csv", "notes.txt", "pyproject.toml"]
    payload = project.run("status", "--untracked-only", "--json").json()
    assert payload == {"untracked": [".modelopsignore", "data/new.csv", "notes.txt", "pyproject.toml"]}


def test_modified_deleted_and_removed_after_a_sync(project: BundleProject, age: Callable[..., None]) -> None:
    _synced(project)
    clean = project.run("status", "--json").json()
    assert clean["changes"] == {"added": [], "modified": [], "deleted": [], "removed": []}
    assert "No local changes since the last sync." in project.run("status").stdout

    age(project.write("data/a.csv", "9,9\n"))  # same size, different bytes
    project.path("data/b.csv").unlink()
    assert project.run("remove", "src/model.py").ok
    age(project.write("data/c.csv", "new\n"))
    assert project.run("add", "data/c.csv").ok
    payload = project.run("status", "--json", "--files").json()
    assert payload["changes"] == {
        "added": ["data/c.csv"],
        "modified": ["data/a.csv"],
        "deleted": ["data/b.csv"],
        "removed": ["src/model.py"],
    }
    labels = {f["path"]: f["status"] for f in payload["files"]}
    assert labels == {"data/a.csv": "modified", "data/b.csv": "deleted", "data/c.csv": "added"}
    text = project.run("status").stdout
    assert "modified: data/a.csv" in text
    assert "deleted: data/b.csv" in text
    assert "untracked since last sync: src/model.py" in text


def test_same_size_edit_is_seen(project: BundleProject) -> None:
    """A rewrite that keeps the size is detected (mtime and content differ)."""
    _synced(project)
    project.write("data/a.csv", "5,6\n")
    assert project.run("status", "--json").json()["changes"]["modified"] == ["data/a.csv"]


def test_warm_status_hashes_nothing(project: BundleProject, monkeypatch: pytest.MonkeyPatch) -> None:
    assert project.run("status").ok  # warm the cache
    calls: list[str] = []
    original_fileobj = Sha256Hasher.digest_fileobj
    original_bytes = Sha256Hasher.digest_bytes

    def counting_fileobj(self: Sha256Hasher, handle: Any) -> str:
        calls.append(getattr(handle, "name", "?"))
        return original_fileobj(self, handle)

    def counting_bytes(self: Sha256Hasher, data: bytes) -> str:  # small files are read in one go
        calls.append("<bytes>")
        return original_bytes(self, data)

    monkeypatch.setattr(hashing_sha256.Sha256Hasher, "digest_fileobj", counting_fileobj)
    monkeypatch.setattr(hashing_sha256.Sha256Hasher, "digest_bytes", counting_bytes)
    assert project.run("status", "--json").ok
    assert calls == []
    scan = Workspace(Project(project.root)).scan(Sha256Hasher())
    assert scan.hashed_files == 0 and len(scan.files) == 3
    # touching one file re-hashes exactly that one
    project.write("data/a.csv", "changed\n")
    assert project.run("status").ok
    assert len(calls) == 1


def test_status_from_a_sub_folder(project: BundleProject) -> None:
    result = project.run("status", "--json", cwd="data")
    assert result.exit_code == 0, result
    assert result.json()["project"] == str(project.root)
    assert result.json()["tracked_files"] == 3


def test_status_warns_about_a_tracked_file_that_became_a_fifo(project: BundleProject) -> None:
    project.path("data/b.csv").unlink()
    os.mkfifo(project.path("data/b.csv"))
    result = project.run("status")
    assert result.exit_code == 0
    assert "warning: skipped data/b.csv: not a regular file" in result.stderr
    payload = project.run("status", "--json").json()
    assert payload["skipped"] == [{"path": "data/b.csv", "reason": "not a regular file"}]


def test_tracked_symlink_that_now_points_outside_is_skipped(project: BundleProject, tmp_path: Path) -> None:
    os.symlink("a.csv", project.path("data/link.csv"))
    assert project.run("add", "data/link.csv").ok
    project.path("data/link.csv").unlink()
    (tmp_path / "outside.csv").write_text("secret")
    os.symlink(tmp_path / "outside.csv", project.path("data/link.csv"))
    payload = project.run("status", "--json").json()
    assert payload["skipped"] == [{"path": "data/link.csv", "reason": "symlink points outside the project"}]
