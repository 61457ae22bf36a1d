"""``add`` and ``remove``: files, folders, globs, ``.``, ignore rules, bad paths, ``--rm``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle.core.walk import UNSTORABLE_REASON
from modelops_bundle.testing import BundleProject


@pytest.fixture
def project(bundle_project: BundleProject) -> BundleProject:
    for rel in (
        "src/model.py",
        "src/utils.py",
        "data/a.csv",
        "data/b.txt",
        "data/sub/c.csv",
        "data/sub/deeper/d.csv",
        "config/settings.yaml",
        "README.md",
    ):
        bundle_project.write(rel, f"content of {rel}\n")
    return bundle_project


# ----------------------------------------------------------------------------------------- add


def test_add_files(project: BundleProject) -> None:
    result = project.run("add", "src/model.py", "config/settings.yaml")
    assert result.exit_code == 0, result
    assert result.stdout == "Added 2 files\n"
    assert project.tracked() == ["config/settings.yaml", "src/model.py"]
    again = project.run("add", "src/model.py")
    assert again.stdout == "Added 0 files (1 already tracked)\n"
    assert project.tracked() == ["config/settings.yaml", "src/model.py"]


def test_add_directory_recursively(project: BundleProject) -> None:
    assert project.run("add", "data/").ok
    assert project.tracked() == ["data/a.csv", "data/b.txt", "data/sub/c.csv", "data/sub/deeper/d.csv"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("data/*.csv", ["data/a.csv"]),
        ("data/**/*.csv", ["data/a.csv", "data/sub/c.csv", "data/sub/deeper/d.csv"]),
        ("**/*.py", ["src/model.py", "src/utils.py"]),
        ("src/[mu]*.py", ["src/model.py", "src/utils.py"]),
        ("data/sub/?.csv", ["data/sub/c.csv"]),
    ],
)
def test_add_glob(project: BundleProject, pattern: str, expected: list[str]) -> None:
    result = project.run("add", pattern)
    assert result.exit_code == 0, result
    assert project.tracked() == expected


def test_add_glob_relative_to_a_sub_folder(project: BundleProject) -> None:
    assert project.run("add", "*.csv", cwd="data").ok
    assert project.tracked() == ["data/a.csv"]


def test_add_dot_takes_everything_not_ignored(project: BundleProject) -> None:
    project.write(".env", "TOKEN=secret")
    project.write("certs/server.pem", "-----BEGIN-----")
    project.write("src/__pycache__/model.cpython-311.pyc", b"\x00")
    project.write(".venv/lib/x.py", "x")
    project.write(".git/config", "[core]")
    result = project.run("add", ".", "--json")
    assert result.exit_code == 0, result
    tracked = project.tracked()
    assert tracked == sorted(
        [
            ".modelopsignore",
            "README.md",
            "config/settings.yaml",
            "data/a.csv",
            "data/b.txt",
            "data/sub/c.csv",
            "data/sub/deeper/d.csv",
            "pyproject.toml",
            "src/model.py",
            "src/utils.py",
        ]
    )
    assert sorted(result.json()["added"]) == tracked
    assert result.json()["already_tracked"] == 0


def test_add_dot_from_a_sub_folder_adds_that_folder(project: BundleProject) -> None:
    assert project.run("add", ".", cwd="data/sub").ok
    assert project.tracked() == ["data/sub/c.csv", "data/sub/deeper/d.csv"]


def test_project_ignore_file_is_honoured(project: BundleProject) -> None:
    with open(project.path(".modelopsignore"), "a") as handle:
        handle.write("*.txt\ndata/sub/\n")
    assert project.run("add", "data").ok
    assert project.tracked() == ["data/a.csv"]


def test_ignored_file_is_refused_and_force_adds_it(project: BundleProject) -> None:
    project.write("deploy.key", "secret key")
    before = (project.meta / "tracked.txt").read_bytes()
    refused = project.run("add", "deploy.key", "src/model.py")
    assert refused.exit_code == 2
    assert "ignored by .modelopsignore" in refused.stderr
    assert "deploy.key" in refused.stderr
    assert "--force" in refused.stderr
    assert (project.meta / "tracked.txt").read_bytes() == before  # nothing added, not even model.py
    forced = project.run("add", "--force", "deploy.key")
    assert forced.exit_code == 0, forced
    assert project.tracked() == ["deploy.key"]


def test_ignored_folder_is_refused_and_force_adds_it(project: BundleProject) -> None:
    project.write("build/out.bin", b"\x01")
    with open(project.path(".modelopsignore"), "a") as handle:
        handle.write("build/\n")
    assert project.run("add", "build").exit_code == 2
    assert project.run("add", "-f", "build").ok
    assert project.tracked() == ["build/out.bin"]


def test_force_never_adds_metadata_or_vcs_folders(project: BundleProject) -> None:
    project.write(".git/config", "[core]")
    for spec in (".git", ".git/config", ".modelops-bundle/config.yaml"):
        result = project.run("add", "--force", spec)
        assert result.exit_code == 2, spec
        assert "never part of a bundle" in result.stderr
    assert project.tracked() == []


def test_force_never_adds_a_nested_vcs_folder(project: BundleProject) -> None:
    """ALWAYS_EXCLUDED holds at any depth ("not even with --force"). ``add --force vendor/lib/.git/config``
    is accepted today because only the first path component is checked."""
    project.write("vendor/lib/.git/config", "[core]")
    assert project.run("add", "--force", "vendor").ok  # the folder walk skips .git correctly
    assert project.tracked() == []
    result = project.run("add", "--force", "vendor/lib/.git/config")
    assert result.exit_code == 2
    assert project.tracked() == []


def test_path_outside_the_project(project: BundleProject, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("x")
    for spec in ("../outside.txt", str(tmp_path / "outside.txt"), "/etc/hostname"):
        result = project.run("add", spec)
        assert result.exit_code == 2, spec
        assert "outside the project" in result.stderr
    assert project.tracked() == []


def test_nonexistent_path_names_every_bad_argument(project: BundleProject) -> None:
    result = project.run("add", "nope.txt", "src/model.py", "missing/*.csv")
    assert result.exit_code == 2
    assert "pathspec 'nope.txt' did not match any files" in result.stderr
    assert "pathspec 'missing/*.csv' did not match any files" in result.stderr
    assert project.tracked() == []


def test_fifo_is_refused(project: BundleProject) -> None:
    os.mkfifo(project.path("data/pipe"))
    result = project.run("add", "data/pipe")
    assert result.exit_code == 2
    assert "not a regular file" in result.stderr
    assert project.tracked() == []
    # in a folder it is skipped with a warning, the rest is added
    folder = project.run("add", "data")
    assert folder.exit_code == 0, folder
    assert "skipped data/pipe: not a regular file" in folder.stderr
    assert "data/pipe" not in project.tracked() and "data/a.csv" in project.tracked()


def test_symlink_inside_is_followed(project: BundleProject) -> None:
    os.symlink("a.csv", project.path("data/alias.csv"))
    assert project.run("add", "data/alias.csv").ok
    assert project.tracked() == ["data/alias.csv"]
    files = project.run("status", "--json", "--files").json()["files"]
    digest = {f["path"]: f["digest"] for f in files}["data/alias.csv"]
    assert digest == "sha256:" + hashlib.sha256(project.path("data/a.csv").read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["outside", "dangling", "directory"])
def test_symlink_that_may_not_be_followed_is_refused(project: BundleProject, tmp_path: Path, kind: str) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    target = {"outside": str(tmp_path / "outside.txt"), "dangling": "nowhere", "directory": "data"}[kind]
    os.symlink(target, project.path("link"))
    result = project.run("add", "link")
    assert result.exit_code == 2
    assert "cannot add 'link'" in result.stderr
    assert project.tracked() == []


def test_folder_walk_skips_links_out_and_does_not_descend_dir_links(project: BundleProject, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside / "secret.txt", project.path("data/out.txt"))
    os.symlink(outside, project.path("data/outdir"))
    os.symlink("sub", project.path("data/subalias"))
    result = project.run("add", "data")
    assert result.exit_code == 0, result
    assert "skipped data/out.txt: symlink points outside the project" in result.stderr
    assert all(not rel.startswith(("data/outdir", "data/subalias")) for rel in project.tracked())
    assert "data/out.txt" not in project.tracked()


def test_file_reached_through_a_symlinked_folder_is_refused(project: BundleProject, tmp_path: Path) -> None:
    """The policy says links are never followed out of the project and folder links are never descended;
    ``add link_to_outside_dir/secret.txt`` must not track (and hash) a file outside the project.
    Today it is added: only the last path component is checked for being a symlink."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, project.path("shared"))
    result = project.run("add", "shared/secret.txt")
    assert result.exit_code == 2
    assert project.tracked() == []


def test_add_from_a_sub_folder_finds_the_root(project: BundleProject) -> None:
    assert project.run("add", "c.csv", "deeper", cwd="data/sub").ok
    assert project.tracked() == ["data/sub/c.csv", "data/sub/deeper/d.csv"]


def test_not_a_project(run_cli: Any, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    for args in (("add", "x"), ("remove", "x"), ("status",)):
        result = run_cli(*args, cwd=folder)
        assert result.exit_code == 2
        assert "not a modelops-bundle project" in result.stderr
        assert "mops bundle init" in result.stderr
    assert list(folder.iterdir()) == []


# -------------------------------------------------------------------------------------- remove


@pytest.fixture
def tracked_project(project: BundleProject) -> BundleProject:
    assert project.run("add", "src", "data", "README.md").ok
    return project


def test_remove_file_keeps_it_on_disk(tracked_project: BundleProject) -> None:
    result = tracked_project.run("remove", "src/utils.py")
    assert result.exit_code == 0, result
    assert result.stdout == "Untracked 1 file\n"
    assert "src/utils.py" not in tracked_project.tracked()
    assert tracked_project.path("src/utils.py").exists()


def test_remove_directory_and_glob(tracked_project: BundleProject) -> None:
    assert tracked_project.run("remove", "data/sub").ok
    assert [p for p in tracked_project.tracked() if p.startswith("data/sub/")] == []
    assert tracked_project.run("rm", "src/*.py").ok  # alias and glob
    assert tracked_project.tracked() == ["README.md", "data/a.csv", "data/b.txt"]


def test_remove_relative_to_a_sub_folder(tracked_project: BundleProject) -> None:
    assert tracked_project.run("remove", "c.csv", cwd="data/sub").ok
    assert "data/sub/c.csv" not in tracked_project.tracked()
    assert "data/sub/deeper/d.csv" in tracked_project.tracked()


def test_remove_untracked_path_is_a_git_style_error(
    tracked_project: BundleProject, snapshot: Callable[[Path], Any]
) -> None:
    tracked_path = tracked_project.meta / "tracked.txt"
    before_bytes = tracked_path.read_bytes()
    before = snapshot(tracked_project.root)
    result = tracked_project.run("remove", "src/model.py", "config/settings.yaml", "nothing/here")
    assert result.exit_code == 2
    assert "error: pathspec 'config/settings.yaml' did not match any tracked files" in result.stderr
    assert "pathspec 'nothing/here' did not match any tracked files" in result.stderr
    assert tracked_path.read_bytes() == before_bytes
    assert snapshot(tracked_project.root) == before


def test_remove_rm_deletes_files_and_prunes_empty_folders(tracked_project: BundleProject) -> None:
    tracked_project.write("data/sub/untracked.tmp", "keep me")
    result = tracked_project.run("remove", "--rm", "data/sub", "src")
    assert result.exit_code == 0, result
    assert result.stdout == "Untracked and deleted 4 files\n"
    assert not tracked_project.path("src").exists()  # emptied, pruned
    assert not tracked_project.path("data/sub/c.csv").exists()
    assert not tracked_project.path("data/sub/deeper").exists()
    assert tracked_project.read("data/sub/untracked.tmp") == "keep me"  # untracked files stay
    assert tracked_project.path("data/a.csv").exists()
    assert tracked_project.tracked() == ["README.md", "data/a.csv", "data/b.txt"]


def test_remove_rm_of_an_already_deleted_file(tracked_project: BundleProject) -> None:
    tracked_project.path("README.md").unlink()
    result = tracked_project.run("remove", "--rm", "README.md", "--json")
    assert result.exit_code == 0, result
    assert result.json() == {"removed": ["README.md"], "deleted": True, "failed": []}


def test_remove_dot_untracks_everything_below(tracked_project: BundleProject) -> None:
    assert tracked_project.run("remove", ".", cwd="data").ok
    assert tracked_project.tracked() == ["README.md", "src/model.py", "src/utils.py"]


def test_remove_outside_the_project(tracked_project: BundleProject) -> None:
    before = (tracked_project.meta / "tracked.txt").read_bytes()
    result = tracked_project.run("remove", "../elsewhere")
    assert result.exit_code == 2
    assert "outside the project" in result.stderr
    assert (tracked_project.meta / "tracked.txt").read_bytes() == before


def test_tracking_wins_over_ignore_rules(project: BundleProject) -> None:
    assert project.run("add", "data/a.csv").ok
    with open(project.path(".modelopsignore"), "a") as handle:
        handle.write("*.csv\n")
    status = project.run("status", "--json").json()
    assert status["tracked_files"] == 1
    assert status["changes"]["added"] == ["data/a.csv"]
    assert "data/sub/c.csv" not in status["untracked"]  # ignored and untracked: not listed
    again = project.run("add", "data/a.csv")  # re-adding a tracked file needs no --force
    assert again.exit_code == 0, again
    assert project.tracked() == ["data/a.csv"]


def test_a_name_no_bundle_path_can_hold_is_skipped_or_refused(project: BundleProject) -> None:
    """Found by hand: a file named ``bad\\nname.txt`` used to become two tracked paths, ``bad`` and
    ``name.txt``, both then "deleted"."""
    project.write("data/bad\nname.txt", "x")
    added = project.run("add", ".", "--json")
    assert added.exit_code == 0, added
    assert added.json()["skipped"] == [
        {
            "path": "data/bad\nname.txt",
            "reason": UNSTORABLE_REASON,
        }
    ]
    text = project.run("add", ".")
    assert f"skipped data/bad\\nname.txt: {UNSTORABLE_REASON}" in text.stderr  # escaped, one line
    tracked = (project.meta / "tracked.txt").read_text()
    assert "bad" not in tracked and "name.txt" not in tracked
    refused = project.run("add", "data/bad\nname.txt")
    assert refused.exit_code == 2
    assert "cannot add 'data/bad\\nname.txt': control character in path" in refused.stderr
    assert (project.meta / "tracked.txt").read_text() == tracked


def test_a_file_name_that_is_not_utf8_is_skipped_or_refused(project: BundleProject) -> None:
    """Found by hand: ``add .`` over a file named with the bytes ``latin\\xe9.txt`` ended in "unexpected
    error: UnicodeEncodeError" (exit 1)."""
    (project.root / "data" / "latin\udce9.txt").write_bytes(b"x")
    added = project.run("add", ".", "--json")
    assert added.exit_code == 0, added
    assert [item["path"] for item in added.json()["skipped"]] == ["data/latin\udce9.txt"]
    refused = project.run("add", "data/latin\udce9.txt")
    assert refused.exit_code == 2 and "path is not valid UTF-8" in refused.stderr
