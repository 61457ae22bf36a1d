"""The folder-listing cache of the walk: an unchanged folder is not listed again, and the cached walk
always returns what a fresh walk returns."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import modelops_bundle.core.walk as walk_module
from modelops_bundle.core.ignore import IgnoreRules
from modelops_bundle.core.walk import ListingCache, WalkResult, walk

RULES = IgnoreRules.from_text("*.tmp\nbuild/\n")


@pytest.fixture
def no_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """ctime cannot be set from user space: let listings of just-made folders count as settled."""
    monkeypatch.setattr(walk_module, "LISTING_MARGIN_NS", 0)


@pytest.fixture
def scandirs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every folder ``os.scandir`` lists (as a path relative to nothing: what the walk passed)."""
    listed: list[str] = []
    real = os.scandir

    def counting(path: object) -> object:
        listed.append(str(path))
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(walk_module.os, "scandir", counting)
    return listed


def make_tree(root: Path) -> None:
    for rel in ("a.txt", "data/x.csv", "data/deep/y.csv", "data/deep/z.tmp", "src/m.py", "build/out.bin"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)


def fresh(root: Path) -> WalkResult:
    return walk(str(root), "", RULES)


def cached(root: Path, listings: ListingCache) -> WalkResult:
    return walk(str(root), "", RULES, listings=listings)


def listed_tree(root: Path, rules: str) -> ListingCache:
    """The listings of a walk of the test tree, made under the ignore rules named ``rules``."""
    make_tree(root)
    listings = ListingCache()
    listings.use_rules(rules)
    cached(root, listings)
    return listings


@pytest.mark.usefixtures("no_margin")
def test_an_unchanged_tree_is_not_listed_again(tmp_path: Path, scandirs: list[str]) -> None:
    make_tree(tmp_path)
    listings = ListingCache()
    first = cached(tmp_path, listings)
    assert first.files == fresh(tmp_path).files == ["a.txt", "data/deep/y.csv", "data/x.csv", "src/m.py"]
    assert listings.dirty and set(listings.folders) == {"", "data", "data/deep", "src"}  # build/ is ignored
    scandirs.clear()
    again = cached(tmp_path, listings)
    assert again.files == first.files
    assert scandirs == []
    assert sorted(again.folders) == ["", "data", "data/deep", "src"]


@pytest.mark.usefixtures("no_margin")
def test_created_deleted_and_renamed_entries_are_seen(tmp_path: Path, scandirs: list[str]) -> None:
    make_tree(tmp_path)
    listings = ListingCache()
    cached(tmp_path, listings)
    (tmp_path / "data/deep/new.csv").write_text("new")
    (tmp_path / "src/m.py").unlink()
    os.rename(tmp_path / "data/x.csv", tmp_path / "data/renamed.csv")
    scandirs.clear()
    result = cached(tmp_path, listings)
    listed = sorted(Path(p).name for p in scandirs)
    assert listed == ["data", "deep", "src"]  # only the changed folders
    expected = ["a.txt", "data/deep/new.csv", "data/deep/y.csv", "data/renamed.csv"]
    assert result.files == fresh(tmp_path).files == expected
    shutil.rmtree(tmp_path / "data")
    result = cached(tmp_path, listings)
    assert result.files == ["a.txt"] and "data" not in listings.folders


@pytest.mark.usefixtures("no_margin")
def test_a_folder_with_a_symlink_is_always_listed(tmp_path: Path, scandirs: list[str]) -> None:
    make_tree(tmp_path)
    os.symlink("x.csv", tmp_path / "data/link.csv")
    listings = ListingCache()
    cached(tmp_path, listings)
    assert "data" not in listings.folders  # a symlink's verdict depends on its target
    (tmp_path / "data/x.csv").unlink()  # the link dangles now; the folder's listing is not trusted
    scandirs.clear()
    result = cached(tmp_path, listings)
    assert dict(result.skipped)["data/link.csv"] == "dangling symlink"
    assert [Path(p).name for p in scandirs] == ["data"]


@pytest.mark.usefixtures("no_margin")
def test_listings_of_other_ignore_rules_are_dropped(tmp_path: Path) -> None:
    listings = listed_tree(tmp_path, "rules-1")
    assert listings.folders
    listings.use_rules("rules-2")
    assert listings.folders == {} and listings.rules == "rules-2"


def test_a_folder_changed_within_the_margin_is_not_cached(tmp_path: Path) -> None:
    make_tree(tmp_path)  # just made: every folder changed less than LISTING_MARGIN_NS ago
    listings = ListingCache()
    cached(tmp_path, listings)
    assert listings.folders == {}


def test_a_folder_replaced_by_a_symlink_is_reported_not_followed(tmp_path: Path, no_margin: None) -> None:
    make_tree(tmp_path)
    listings = ListingCache()
    cached(tmp_path, listings)
    shutil.rmtree(tmp_path / "src")
    os.symlink("data", tmp_path / "src")  # a folder name now a symlink to a folder: never descended
    result = cached(tmp_path, listings)
    assert result.files == fresh(tmp_path).files
    assert "src/m.py" not in result.files
    assert dict(result.skipped)["src"] == "symlink to a directory (not followed)"


@pytest.mark.usefixtures("no_margin")
def test_listings_survive_their_json_form(tmp_path: Path) -> None:
    listings = listed_tree(tmp_path, "r")
    again = ListingCache.from_json(json.loads(json.dumps(listings.to_json())))
    assert again.folders == listings.folders and again.rules == "r"


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw.update(dirs=raw["dirs"][1:]),  # columns of different lengths
        lambda raw: raw.update(signatures="not base64!"),
        lambda raw: raw.update(signatures=raw["signatures"][:8]),  # too few numbers
        lambda raw: raw["files"].__setitem__(0, 7),  # a name list that is not a string
        lambda raw: raw.pop("folders"),
    ],
)
def test_a_damaged_listing_cache_is_dropped(tmp_path: Path, no_margin: None, damage: Callable[[dict], None]) -> None:
    make_tree(tmp_path)
    listings = ListingCache()
    cached(tmp_path, listings)
    raw = json.loads(json.dumps(listings.to_json()))
    damage(raw)
    assert ListingCache.from_json(raw).folders == {}
    assert ListingCache.from_json(["nonsense"]).folders == {}


@pytest.mark.usefixtures("no_margin")
@pytest.mark.parametrize("seed", range(5))
def test_the_cached_walk_always_equals_a_fresh_walk(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    names = ["a", "b", "c.tmp", "build", "d"]
    listings = ListingCache()

    def mutate(step: int) -> None:
        for _ in range(rng.randrange(1, 6)):
            depth = rng.randrange(1, 4)
            rel = Path(*(rng.choice(names) for _ in range(depth)))
            path = tmp_path / rel
            action = rng.random()
            try:
                if action < 0.5:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    if not path.is_dir():
                        path.write_text(f"{step}")
                elif action < 0.8 and path.exists():
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
                elif path.is_file():
                    os.rename(path, path.with_name(rng.choice(names)))
            except OSError:
                pass  # a file where a folder was wanted, or the reverse: the tree stays as it is

    def check() -> None:
        expected, got = fresh(tmp_path), cached(tmp_path, listings)
        assert got.files == expected.files
        assert sorted(got.skipped) == sorted(expected.skipped)

    for step in range(12):
        mutate(step)
        check()


def test_names_no_bundle_path_can_hold_are_skipped_and_reported_every_time(tmp_path: Path, no_margin: None) -> None:
    """A newline would split the name into two lines of the tracked list; a backslash and a name that is
    not UTF-8 are refused too."""
    make_tree(tmp_path)
    (tmp_path / "data" / "two\nlines.csv").write_text("x")
    (tmp_path / "data" / "back\\slash.csv").write_text("y")
    (tmp_path / "tab\tfolder").mkdir()
    (tmp_path / "tab\tfolder" / "inside.txt").write_text("z")
    (tmp_path / "src" / "latin\udce9.py").write_text("not UTF-8")  # the bytes b"latin\xe9.py"
    listings = ListingCache()
    for _ in range(2):  # the folders holding them are never cached, so the second walk reports them too
        result = cached(tmp_path, listings)
        assert result.files == fresh(tmp_path).files == ["a.txt", "data/deep/y.csv", "data/x.csv", "src/m.py"]
        assert sorted(rel for rel, _ in result.skipped) == [
            "data/back\\slash.csv",
            "data/two\nlines.csv",
            "src/latin\udce9.py",
            "tab\tfolder",
        ]
        assert not {"", "data", "src"} & set(listings.folders) and "data/deep" in listings.folders
