"""The stat cache's base and delta files (core/cache_delta.py): a few changes are written as a delta,
many as a new base; a delta that is not the base's own, or not well formed, is ignored as a whole."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from modelops_bundle.core import cache_delta
from modelops_bundle.core.cache_delta import DELTA_MIN_ROWS, delta_path
from modelops_bundle.core.hashing import StatCache

OLD_NS = (time.time_ns() // 1_000_000_000 - 3600) * 1_000_000_000  # an hour ago: never racily clean


def _row(number: int, hexdigest: str = "ab") -> tuple[object, ...]:
    return (2049, 1000 + number, 10 + number, OLD_NS + number, hexdigest)


def _base(path: Path, count: int = 1000) -> StatCache:
    cache = StatCache(path)
    for number in range(count):
        cache.entries[f"f{number}"] = _row(number)
        cache.changed_entries.add(f"f{number}")
    cache.dirty = True
    cache.save()
    return StatCache.load(path)


def _change_and_save(cache: StatCache, *numbers: int, hexdigest: str = "cd") -> None:
    """Rows ``f<number>`` of the base changed in memory, then saved."""
    for number in numbers:
        cache.entries[f"f{number}"] = _row(number, hexdigest)
        cache.changed_entries.add(f"f{number}")
    cache.dirty = True
    cache.save()


def test_a_few_changes_go_to_a_delta_and_leave_the_base_alone(tmp_path: Path) -> None:
    path = tmp_path / "stat-cache.json"
    cache = _base(path)
    base_bytes = path.read_bytes()
    cache.entries["f1"] = _row(1, "cd")
    cache.changed_entries.add("f1")
    cache.forget([f"f{number}" for number in range(1000) if number != 7])
    cache.listings.put("data", _folder_stat(tmp_path), ["a.csv"], [], time.time_ns() + 10**10)
    cache.dirty = True
    cache.save()

    assert path.read_bytes() == base_bytes
    delta = json.loads(delta_path(path).read_text())
    assert set(delta["entries"]) == {"f1", "f7"} and delta["entries"]["f7"] is None
    reloaded = StatCache.load(path)
    assert reloaded.entries["f1"] == _row(1, "cd") and "f7" not in reloaded.entries
    assert len(reloaded.entries) == 999
    assert reloaded.listings.folders["data"][2] == "a.csv"
    assert not reloaded.dirty  # reading a delta writes nothing


def test_many_changes_write_a_new_base_and_drop_the_delta(tmp_path: Path) -> None:
    path = tmp_path / "stat-cache.json"
    cache = _base(path)
    _change_and_save(cache, 1)
    assert delta_path(path).exists()
    first_id = cache.base_id

    cache = StatCache.load(path)
    for number in range(DELTA_MIN_ROWS + 1):
        cache.store(f"new{number}", _stat(tmp_path), "ef")
    cache.save()
    assert not delta_path(path).exists()
    reloaded = StatCache.load(path)
    assert reloaded.base_id not in (None, first_id)
    assert reloaded.entries["f1"] == _row(1, "cd") and len(reloaded.entries) == 1000 + DELTA_MIN_ROWS + 1


def test_a_delta_of_another_base_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "stat-cache.json"
    cache = _base(path)
    _change_and_save(cache, 1)
    stale = delta_path(path).read_bytes()
    cache = StatCache.load(path)
    cache.use_algorithm("sha512")  # a new base
    cache.use_algorithm("sha256")
    cache.entries = {"f1": _row(1, "00")}
    cache.save()
    delta_path(path).write_bytes(stale)  # e.g. a concurrent command's, written for the old base
    assert StatCache.load(path).entries == {"f1": _row(1, "00")}


def test_a_malformed_delta_is_ignored_as_a_whole(tmp_path: Path) -> None:
    path = tmp_path / "stat-cache.json"
    cache = _base(path)
    _change_and_save(cache, 1, 2)
    for spoil in (
        lambda d: d["entries"]["f2"].__setitem__(2, True),  # a boolean is no size
        lambda d: d["entries"]["f2"].pop(),
        lambda d: d.__setitem__("entries", []),
        lambda d: d.__setitem__("listings", {"x": [1, 2, "a"]}),
        lambda d: d.__setitem__("algorithm", "sha512"),
    ):
        document = json.loads(delta_path(path).read_text())
        good = json.dumps(document)
        spoil(document)
        delta_path(path).write_text(json.dumps(document))
        reloaded = StatCache.load(path)
        assert reloaded.entries["f1"] == _row(1) and reloaded.entries["f2"] == _row(2)  # neither row applied
        delta_path(path).write_text(good)
    assert StatCache.load(path).entries["f1"] == _row(1, "cd")


def test_rows_too_recent_to_trust_are_smudged_in_the_delta(tmp_path: Path) -> None:
    path = tmp_path / "stat-cache.json"
    cache = _base(path)
    fresh = tmp_path / "fresh.txt"
    fresh.write_text("new")
    cache.store("fresh.txt", os.stat(fresh), "ff")
    cache.save()
    assert json.loads(delta_path(path).read_text())["entries"]["fresh.txt"][2] == -1
    assert StatCache.load(path).lookup("fresh.txt", os.stat(fresh)) is None  # hashed again next time


def test_an_older_cache_version_is_read_and_rewritten_with_an_id(tmp_path: Path) -> None:
    path = tmp_path / "stat-cache.json"
    _base(path)
    document = json.loads(path.read_text())
    document["version"] = 2
    del document["id"]
    path.write_text(json.dumps(document))
    cache = StatCache.load(path)
    assert len(cache.entries) == 1000 and cache.base_id is None and cache.dirty
    cache.save()
    assert json.loads(path.read_text())["id"] and not delta_path(path).exists()


@settings(max_examples=40, deadline=None)
@given(
    rounds=st.lists(
        st.lists(
            st.tuples(st.sampled_from(["store", "drop"]), st.integers(0, 30), st.integers(0, 3)),
            max_size=40,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_every_save_and_load_gives_back_what_was_in_memory(tmp_path_factory, rounds) -> None:  # type: ignore[no-untyped-def]
    """Whatever mix of deltas and new bases the saves choose, a load sees exactly the saved state."""
    path = tmp_path_factory.mktemp("cache") / "stat-cache.json"
    with mock.patch.object(cache_delta, "DELTA_MIN_ROWS", 4):  # small: both kinds of save happen
        _saves_and_loads(path, rounds)


def _saves_and_loads(path: Path, rounds: list[list[tuple[str, int, int]]]) -> None:
    cache = _base(path, count=20)
    for operations in rounds:
        for operation, number, value in operations:
            if operation == "store":
                cache.entries[f"f{number}"] = _row(number, f"{value:02x}")
                cache.changed_entries.add(f"f{number}")
            else:
                cache.forget(rel for rel in cache.entries if rel != f"f{number}")
        cache.dirty = True
        expected_entries = dict(cache.entries)
        cache.save()
        cache = StatCache.load(path)
        assert cache.entries == expected_entries


def _stat(where: Path) -> os.stat_result:
    target = where / "old.txt"
    target.write_text("x")
    past = OLD_NS / 1e9
    os.utime(target, (past, past))
    return os.stat(target)


def _folder_stat(where: Path) -> os.stat_result:
    return os.stat(where)
