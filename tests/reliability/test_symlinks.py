"""Symlinks planted where the tool writes, renames or deletes (issue 15, items 1 and 2): in the working tree
under ``remove --rm``, in ``.modelops-bundle/``, in the shared cache and in ``$MODELOPS_HOME``. A project
folder can arrive from someone else's archive, so each is a real symlink on disk pointing at a folder
outside, holding a file that must survive; every command refuses (exit 2, naming the symlink) instead."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from modelops_bundle import api
from modelops_bundle.core.errors import BundleError
from modelops_bundle.testing import BundleProject
from tests.reliability.conftest import Trial
from tests.reliability.support import failed_cleanly, ok


def _outside(tmp_path: Path, name: str = "outside") -> tuple[Path, Path]:
    """A folder outside every project, holding one precious file."""
    folder = tmp_path / name
    folder.mkdir()
    precious = folder / "precious.txt"
    precious.write_text("not the tool's to touch\n")
    return folder, precious


def _pushed_project(env: dict[str, str], root: Path) -> BundleProject:
    project = BundleProject.create(root, env)
    project.write("data/raw/x.csv", "a,b\n1,2\n")
    project.write("src/model.py", "X = 1\n")
    ok(project.run("add", ".", "--json"))
    ok(project.run("push", "--json"))
    return project


def test_remove_rm_never_deletes_through_a_symlinked_folder(
    mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """``data/raw`` moved to another disk and replaced by a symlink: ``remove --rm data/`` refuses (exit 2),
    deletes nothing there, and still tracks everything; without ``--rm`` it untracks as asked."""
    project = BundleProject.create(tmp_path / "project", mops_env)
    project.write("data/raw/x.csv", "a,b\n1,2\n")
    project.write("data/keep.csv", "k\n")
    ok(project.run("add", "data", "--json"))
    elsewhere = tmp_path / "other-disk" / "raw"
    elsewhere.parent.mkdir()
    shutil.move(str(project.root / "data" / "raw"), elsewhere)
    os.symlink(elsewhere, project.root / "data" / "raw")
    tracked = project.tracked()

    stderr = failed_cleanly(project.run("remove", "--rm", "data/"), "data/raw", "symlink", code=2)
    assert "nothing was changed" in stderr
    assert (elsewhere / "x.csv").read_text() == "a,b\n1,2\n"
    assert (project.root / "data" / "keep.csv").exists()
    assert project.tracked() == tracked

    ok(project.run("remove", "data/", "--json"))  # untracking alone touches no file
    assert project.tracked() == [] and (elsewhere / "x.csv").exists()
    trial.record(
        "hostile input",
        "`remove --rm data/` with `data/raw` a symlink to a folder on another disk",
        "1 run (and one without --rm)",
        "exit 2 naming the symlinked folder; nothing deleted, nothing untracked; without --rm: untracked only",
    )


@pytest.mark.parametrize("planted", ["staging", "cache", "metadata folder"])
def test_symlinks_planted_in_the_metadata_folder_are_refused(
    mops_env: dict[str, str], tmp_path: Path, planted: str, trial: Trial
) -> None:
    """``.modelops-bundle/staging`` (pull sweeps it), ``.modelops-bundle/cache`` (push builds packs and
    sweeps temp files there) or ``.modelops-bundle`` itself as a symlink to a folder outside: status, pull
    and push exit 2 naming it, and the folder outside keeps its file."""
    author = _pushed_project(mops_env, tmp_path / "author")
    clone = BundleProject.create(tmp_path / "clone", mops_env)
    config = clone.meta / "config.yaml"
    config.write_text(config.read_text().replace("registry_ref: clone", "registry_ref: author"))
    outside, precious = _outside(tmp_path)
    if planted == "metadata folder":
        shutil.copytree(clone.meta, outside / "meta")
        shutil.rmtree(clone.meta)
        os.symlink(outside / "meta", clone.meta)
        link = clone.meta
        (outside / "meta" / "staging").mkdir()
        (outside / "meta" / "staging" / "pull-old").mkdir()  # what the sweep of a pull would delete
        guarded = [precious, outside / "meta" / "staging" / "pull-old"]
    else:
        link = clone.meta / planted
        shutil.rmtree(link, ignore_errors=True)
        (outside / "pull-old").mkdir()
        (outside / ".x.tmp").write_text("old temp name")
        os.symlink(outside, link)
        guarded = [precious, outside / "pull-old", outside / ".x.tmp"]
    before = sorted(p.name for p in outside.rglob("*"))
    for command in (("status",), ("pull",), ("push",), ("add", ".")):
        result = clone.run(*command)
        failed_cleanly(result, link.name, "symlink", code=2)
    assert all(path.exists() for path in guarded)
    assert sorted(p.name for p in outside.rglob("*")) == before
    assert author.root.exists()
    trial.record(
        "hostile input",
        f"`.modelops-bundle/{'' if planted == 'metadata folder' else planted}` planted as a symlink to a folder "
        "outside the project",
        "status, pull, push, add .",
        "exit 2 naming the symlink; nothing written or deleted outside",
    )


@pytest.mark.parametrize("planted", ["tmp", "trees", "objects", "locks"])
def test_symlinks_planted_in_the_shared_cache_are_refused(
    mops_env: dict[str, str], tmp_path: Path, planted: str, trial: Trial
) -> None:
    """A folder of the shared cache replaced by a symlink to a folder outside: materialise (of a tree that
    must be rebuilt), ``gc`` and ``verify --cache`` refuse naming it, and nothing outside is written or
    deleted (``gc`` removes every unlocked entry of ``tmp/``; ``verify`` deletes damaged objects)."""
    project = _pushed_project(mops_env, tmp_path / "project")
    cache = tmp_path / "cache"
    env = {**mops_env, "MODELOPS_BUNDLE_CACHE": str(cache)}
    ref = "project@" + json.loads((project.meta / "state.json").read_text())["last_push_digest"]
    api.materialize(ref, environ=env)
    for marker in (cache / "trees").glob("*/*.complete"):
        marker.unlink()  # the next materialise rebuilds: every cache folder is used on the way
    shutil.rmtree(cache / "objects")  # ... and fetches every object again
    (cache / "objects").mkdir()
    outside, precious = _outside(tmp_path)
    (outside / "dead-fetch").mkdir()  # an unlocked "staging folder" gc would remove
    shutil.rmtree(cache / planted)
    os.symlink(outside, cache / planted)
    before = sorted(p.name for p in outside.rglob("*"))
    with pytest.raises(BundleError, match="symlink"):
        api.materialize(ref, environ=env)
    for command in (("gc", "--keep-days", "0"), ("verify", "--cache")):
        result = project.run(*command, input_env={"MODELOPS_BUNDLE_CACHE": str(cache)})
        failed_cleanly(result, planted, "symlink", code=2)
    assert precious.exists() and (outside / "dead-fetch").exists()
    assert sorted(p.name for p in outside.rglob("*")) == before
    trial.record(
        "hostile input",
        f"shared cache: `{planted}/` planted as a symlink to a folder outside",
        "api.materialize, gc --keep-days 0, verify --cache",
        "refused naming the symlink (exit 2); nothing written or deleted outside",
    )


def test_symlinks_planted_in_modelops_home_are_refused(mops_env: dict[str, str], tmp_path: Path, trial: Trial) -> None:
    """``$MODELOPS_HOME/locks`` (push's tag lock), ``$MODELOPS_HOME/cache`` (the default shared cache)
    and a folder of the embedded registry (``registry/<repo>/blobs`` of a repository not pushed yet) as
    symlinks to a folder outside."""
    home = Path(mops_env["MODELOPS_HOME"])
    project = _pushed_project(mops_env, tmp_path / "project")
    project.write("src/model.py", "X = 2\n")
    ok(project.run("add", ".", "--json"))
    fresh = BundleProject.create(tmp_path / "fresh", mops_env)  # never pushed: its layout folder is new
    fresh.write("a.txt", "a\n")
    ok(fresh.run("add", ".", "--json"))
    runs = 0
    for planted in ("locks", "cache", "registry/fresh/blobs"):
        outside, precious = _outside(tmp_path, f"outside-{planted.replace('/', '-')}")
        target = home / planted
        aside = tmp_path / f"aside-{planted.replace('/', '-')}"
        if target.exists():
            shutil.move(str(target), aside)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(outside, target)
        before = sorted(p.name for p in outside.rglob("*"))
        if planted == "cache":
            with pytest.raises(BundleError, match="symlink"):
                api.materialize("project:latest", environ=mops_env)
            failed_cleanly(project.run("gc"), "cache", "symlink", code=2)
            runs += 2
        else:
            pusher = fresh if planted.startswith("registry") else project
            failed_cleanly(pusher.run("push"), Path(planted).name, "symlink", code=2)
            runs += 1
        assert precious.exists() and sorted(p.name for p in outside.rglob("*")) == before
        target.unlink()
        if aside.exists():
            shutil.move(str(aside), target)
    trial.record(
        "hostile input",
        "`$MODELOPS_HOME/locks`, `$MODELOPS_HOME/cache` and `registry/<repo>/blobs` planted as symlinks",
        f"{runs} runs (push, api.materialize, gc)",
        "refused naming the symlink (exit 2); nothing written outside",
    )
