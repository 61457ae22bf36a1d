"""core/workspace.py, settings_files.py, validation.py, status.py, walk.py: metadata files, scanning, symlinks."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from modelops_bundle import hookimpl
from modelops_bundle.core.errors import BundleError, ConfigError
from modelops_bundle.core.project import Project
from modelops_bundle.core.settings import ProjectConfig
from modelops_bundle.core.settings_files import read_config, render_config, save_config
from modelops_bundle.core.status import local_changes
from modelops_bundle.core.walk import walk
from modelops_bundle.core.workspace import SyncState, Workspace
from modelops_bundle.plugins.hashing_sha256 import Sha256Hasher
from modelops_bundle.testing import BundleProject


def _ws(project: BundleProject) -> Workspace:
    return Workspace(Project(project.root))


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------ config.yaml


def test_config_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    config = ProjectConfig(repository="seir-model", default_tag="v1")
    save_config(path, config)
    assert path.read_text().startswith("# modelops-bundle configuration")
    assert read_config(path).config == config
    assert "repository: seir-model" in render_config(config)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repository: x\nstorage:\n  mode: sometimes\n", ["config.yaml: invalid", "storage.mode (line 3)"]),
        ("repository: x\ntypo_key: 1\n", ["typo_key (line 2)", "unknown key"]),
        ("repository: '   '\n", ["repository (line 1)", "must not be empty"]),
        ("registry_ref: '   '\n", ["registry_ref", "must be a reference"]),
        ("repository: x\nstorage:\n  threshold_bytes: -5\n", ["storage.threshold_bytes (line 3)"]),
        ("repository: [unclosed\n", ["config.yaml, line 2: invalid YAML"]),
        ("repository: x\n  bad: indent\n", ["config.yaml, line 2: invalid YAML"]),
        ("- just\n- a list\n", ["config.yaml: invalid", "(top level)"]),
    ],
)
def test_broken_config_names_file_key_and_line(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_config(path)
    for fragment in expected:
        assert fragment in info.value.message
    assert str(path) in info.value.message
    assert info.value.exit_code == 2
    assert path.read_text() == text


def test_config_not_utf8_or_missing(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"repository: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_config(path)
    with pytest.raises(ConfigError, match="missing"):
        read_config(tmp_path / "nope.yaml")


# ---------------------------------------------------------------------- tracked.txt, state.json


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        ("a.txt\n../escape.txt\n", 2, "'..'"),
        ("a.txt\n\n/etc/passwd\n", 3, "absolute"),
        ("a.txt\nb.txt\na.txt\n", 3, "duplicate"),
        ("ok\nwin\\path\n", 2, "backslash"),
        ("a.txt\nbell\x07.txt\n", 2, "control character"),
    ],
)
def test_broken_tracked_list_names_file_and_line(
    bundle_project: BundleProject, content: str, line: int, words: str
) -> None:
    path = bundle_project.meta / "tracked.txt"
    path.write_bytes(content.encode())
    with pytest.raises(ConfigError) as info:
        _ws(bundle_project).tracked()
    assert f"{path}, line {line}" in info.value.message
    assert words in info.value.message
    assert path.read_bytes() == content.encode()


def test_tracked_list_not_utf8(bundle_project: BundleProject) -> None:
    (bundle_project.meta / "tracked.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"tracked\.txt: not UTF-8"):
        _ws(bundle_project).tracked()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"last_push_digest": "sha256:ab",\n  oops}\n', "state.json, line 2: invalid JSON"),
        ("[1, 2]", "state.json: invalid: (top level)"),
        ('{"last_push_digest": "not a digest"}', "last_push_digest"),
        ('{"unknown": 1}', "unknown"),
        ('{"last_synced_files": {"../x": "sha256:ab"}}', "'..'"),
    ],
)
def test_broken_state_names_file(bundle_project: BundleProject, content: str, expected: str) -> None:
    path = bundle_project.meta / "state.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        _ws(bundle_project).state()
    assert expected in info.value.message
    assert path.read_text() == content


def test_state_round_trip(bundle_project: BundleProject) -> None:
    ws = _ws(bundle_project)
    assert ws.state() == SyncState()
    state = SyncState(
        last_push_digest="sha256:" + "a" * 64, last_synced_files={"b": "sha256:" + "1" * 64, "a": "sha256:" + "2" * 64}
    )
    with ws.lock():
        ws.save_state(state)
    data = json.loads((bundle_project.meta / "state.json").read_text())
    assert list(data["last_synced_files"]) == ["a", "b"]
    assert _ws(bundle_project).state() == state


def test_env_pin_validated(bundle_project: BundleProject) -> None:
    assert _ws(bundle_project).env_name() == "local"
    (bundle_project.meta / "env").write_text("../../etc\n")
    with pytest.raises(ConfigError, match="env: invalid environment name"):
        _ws(bundle_project).env_name()


def test_validated_files_are_remembered_until_they_change(bundle_project: BundleProject) -> None:
    ws = _ws(bundle_project)
    with ws.lock():
        ws.save_tracked(["b.txt", "a.txt", "a.txt"])
    assert (bundle_project.meta / "tracked.txt").read_text() == "a.txt\nb.txt\n"
    ws.config()
    ws.save_caches()
    ws2 = _ws(bundle_project)
    assert ws2.tracked() == ["a.txt", "b.txt"]
    assert ws2.config().repository == "project"
    # a hand edit is validated again, never trusted from the memo
    (bundle_project.meta / "tracked.txt").write_text("a.txt\n/abs\n")
    with pytest.raises(ConfigError, match="line 2"):
        _ws(bundle_project).tracked()


# ------------------------------------------------------------------------------------ scanning


def test_scan_uses_the_stat_cache(bundle_project: BundleProject, age: Callable[..., None]) -> None:
    files = {"a.txt": b"alpha", "data/b.bin": os.urandom(5000), "data/deep/c.csv": b"x,y\n"}
    for rel, content in files.items():
        age(bundle_project.write(rel, content))
    ws = _ws(bundle_project)
    with ws.lock():
        ws.save_tracked(files)
    first = ws.scan(Sha256Hasher())
    assert first.hashed_files == 3
    assert first.hashed_bytes == sum(len(c) for c in files.values())
    assert {rel: info.digest for rel, info in first.files.items()} == {rel: _sha(c) for rel, c in files.items()}
    ws.save_caches()

    second = _ws(bundle_project).scan(Sha256Hasher())
    assert second.hashed_files == 0
    assert second.files == first.files

    bundle_project.write("a.txt", b"ALPHA!")
    third_ws = _ws(bundle_project)
    third = third_ws.scan(Sha256Hasher())
    assert third.hashed_files == 1
    assert third.files["a.txt"].digest == _sha(b"ALPHA!")


def test_scan_reports_missing_and_skipped(bundle_project: BundleProject) -> None:
    bundle_project.write("a.txt", "a")
    os.mkfifo(bundle_project.path("pipe"))
    (bundle_project.path("folder")).mkdir()
    ws = _ws(bundle_project)
    with ws.lock():
        ws.save_tracked(["a.txt", "gone.txt", "pipe", "folder"])
    scan = ws.scan(Sha256Hasher(), include_untracked=True)
    assert list(scan.files) == ["a.txt"]
    assert scan.missing == ["gone.txt"]
    assert dict(scan.skipped) == {"pipe": "not a regular file", "folder": "not a regular file"}
    assert scan.untracked is not None and ".modelopsignore" in scan.untracked


class _Sha512:
    algorithm = "sha512"

    def digest_file(self, path: str) -> str:
        with open(path, "rb") as handle:
            return self.digest_fileobj(handle)

    def digest_fileobj(self, handle: BinaryIO) -> str:
        return hashlib.sha512(handle.read()).hexdigest()

    def digest_bytes(self, data: bytes) -> str:
        return hashlib.sha512(data).hexdigest()


def test_switching_algorithm_rehashes_everything(bundle_project: BundleProject, age: Callable[..., None]) -> None:
    age(bundle_project.write("a.txt", b"abc"))
    ws = _ws(bundle_project)
    with ws.lock():
        ws.save_tracked(["a.txt"])
    ws.scan(Sha256Hasher())
    ws.save_caches()
    other = _ws(bundle_project).scan(_Sha512())
    assert other.hashed_files == 1
    assert other.algorithm == "sha512"
    assert other.files["a.txt"].digest == "sha512:" + hashlib.sha512(b"abc").hexdigest()


def test_corrupt_stat_cache_is_discarded_by_scan(bundle_project: BundleProject, age: Callable[..., None]) -> None:
    age(bundle_project.write("a.txt", b"abc"))
    ws = _ws(bundle_project)
    with ws.lock():
        ws.save_tracked(["a.txt"])
    cache = bundle_project.meta / "cache" / "stat-cache.json"
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("{not json")
    scan = _ws(bundle_project).scan(Sha256Hasher())
    assert scan.files["a.txt"].digest == _sha(b"abc")


@pytest.mark.parametrize("entry", [5, "text", [1, 2], None])
def test_stat_cache_entry_of_the_wrong_shape_does_not_crash_scan(
    bundle_project: BundleProject, age: Callable[..., None], entry: object
) -> None:
    """The inlined cache lookup in ``Workspace.scan`` indexes entries without checking their shape."""
    age(bundle_project.write("a.txt", b"abc"))
    ws = _ws(bundle_project)
    with ws.lock():
        ws.save_tracked(["a.txt"])
    cache = bundle_project.meta / "cache" / "stat-cache.json"
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(json.dumps({"version": 1, "algorithm": "sha256", "entries": {"a.txt": entry}}))
    scan = _ws(bundle_project).scan(Sha256Hasher())
    assert scan.files["a.txt"].digest == _sha(b"abc")


# --------------------------------------------------------------------------------- local changes


def test_local_changes_against_the_last_sync(bundle_project: BundleProject) -> None:
    for rel in ("same.txt", "edited.txt", "new.txt", "gone.txt"):
        bundle_project.write(rel, rel)
    ws = _ws(bundle_project)
    with ws.lock():
        ws.save_tracked(["same.txt", "edited.txt", "new.txt", "gone.txt"])
    state = SyncState(
        last_synced_files={
            "same.txt": _sha(b"same.txt"),
            "edited.txt": _sha(b"edited.txt"),
            "gone.txt": _sha(b"gone.txt"),
            "dropped.txt": _sha(b"dropped.txt"),
        }
    )
    bundle_project.write("edited.txt", "changed")
    bundle_project.path("gone.txt").unlink()
    changes = local_changes(ws.scan(Sha256Hasher()), ws.tracked(), state)
    assert changes.added == ["new.txt"]
    assert changes.modified == ["edited.txt"]
    assert changes.deleted == ["gone.txt"]
    assert changes.untracked_since_sync == ["dropped.txt"]
    assert changes.unchanged == ["same.txt"]
    assert changes.has_changes
    assert changes.counts() == {"added": 1, "modified": 1, "deleted": 1, "removed": 1, "unchanged": 1}
    assert changes.status_of()["dropped.txt"] == "removed"


def test_digest_of_another_algorithm_is_never_equal(bundle_project: BundleProject) -> None:
    bundle_project.write("a.txt", b"abc")
    ws = _ws(bundle_project)
    with ws.lock():
        ws.save_tracked(["a.txt"])
    state = SyncState(last_synced_files={"a.txt": "md5:" + hashlib.md5(b"abc").hexdigest()})
    assert local_changes(ws.scan(Sha256Hasher()), ["a.txt"], state).modified == ["a.txt"]


# -------------------------------------------------------------------------------- symlink policy


@pytest.fixture
def linked_tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "real.csv").write_text("1,2\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink("data/real.csv", root / "inside_link.csv")
    os.symlink(outside / "secret.txt", root / "outside_link.txt")
    os.symlink("data", root / "dir_link")
    os.symlink(outside, root / "outside_dir_link")
    os.symlink("nowhere", root / "dangling")
    os.symlink("..", root / "data" / "loop")
    return root


def test_walk_symlink_policy(linked_tree: Path) -> None:
    from modelops_bundle.core.ignore import IgnoreRules

    result = walk(str(linked_tree), "", IgnoreRules.from_text(""))
    assert result.files == ["data/real.csv", "inside_link.csv"]
    reasons = dict(result.skipped)
    assert reasons["outside_link.txt"] == "symlink points outside the project"
    assert reasons["dir_link"] == "symlink to a directory (not followed)"
    assert reasons["outside_dir_link"] == "symlink points outside the project"
    assert reasons["dangling"] == "dangling symlink"
    assert reasons["data/loop"] == "symlink to a directory (not followed)"  # a cycle, never descended


class _ExtraFiles:
    """A plugin naming extra files that travel in every version (one tracked, one not)."""

    @hookimpl
    def mops_extra_files(self, project: Project) -> list[str]:
        return ["b/extra.txt", "a/tracked.txt"]


@pytest.mark.parametrize("tracked_lines", [["a/tracked.txt", "c.txt", "z/last"], ["z/last", "c.txt", "a/tracked.txt"]])
def test_bundle_paths_are_tracked_plus_extra_files_sorted(
    bundle_project: BundleProject, tracked_lines: list[str]
) -> None:
    from modelops_bundle.core.bundle_files import bundle_paths
    from modelops_bundle.core.plugins import build_plugin_host

    (bundle_project.meta / "tracked.txt").write_text("".join(f"{rel}\n" for rel in tracked_lines))  # by hand
    host = build_plugin_host({"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"}, extra_plugins=[("extra", _ExtraFiles())])
    assert bundle_paths(host, _ws(bundle_project)) == ["a/tracked.txt", "b/extra.txt", "c.txt", "z/last"]


def test_sweeping_leftovers_removes_stale_cache_temp_files_only(bundle_project: BundleProject) -> None:
    """Cache writes run without the project lock: a fresh temp file may be a running status's."""
    cache = bundle_project.meta / "cache"
    cache.mkdir(exist_ok=True)
    stale, fresh = cache / ".stat-cache.delta.json.0a1b2c.tmp", cache / ".stat-cache.json.3d4e5f.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    ws = Workspace(Project(bundle_project.root))
    with ws.lock():
        ws.sweep_leftovers()
    assert not stale.exists() and fresh.exists()


def test_the_tracked_list_never_takes_a_path_it_could_not_read_back(bundle_project: BundleProject) -> None:
    ws = Workspace(Project(bundle_project.root))
    before = (bundle_project.meta / "tracked.txt").read_bytes()
    with ws.lock(), pytest.raises(BundleError, match=r"cannot track 'a\\nb\.txt': control character in path"):
        ws.save_tracked(["ok.txt", "a\nb.txt"])
    assert (bundle_project.meta / "tracked.txt").read_bytes() == before
