"""Materialisation through the shared cache: full and selective trees, links, reuse, bad digests, and
the CLI's ``pull --model`` / ``ensure --model``."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle import api
from modelops_bundle.core.cache import OBJECT_MTIME_NS
from modelops_bundle.core.errors import RegistryError, UsageError
from tests.bundle.conftest import ok, read_tree
from tests.workers.conftest import MODEL_ID, Pushed

SEIR_MODEL_FILES = {
    ".modelops-bundle/registry.yaml",
    "data/contact_patterns.csv",
    "data/demographics.csv",
    "models/__init__.py",
    "models/base.py",
    "models/helpers.py",
    "models/numerics.py",
    "models/seir.py",
    "pyproject.toml",
}


def test_materialize_full_tree_then_from_cache(layout_bundle: Pushed) -> None:
    first = api.materialize_report(layout_bundle.ref, environ=layout_bundle.env)
    assert not first.from_cache and first.stats["fetched_objects"] == first.files
    tree = read_tree(first.path, skip_meta=False)
    assert {k: v for k, v in tree.items() if not k.startswith(".modelops-bundle")} == read_tree(
        layout_bundle.project.root
    )
    second = api.materialize_report(layout_bundle.digest, environ=layout_bundle.env)  # bare digest: cache only
    assert second.from_cache and second.path == first.path and second.stats["fetched_objects"] == 0
    st = os.stat(first.path / "models/seir.py")
    assert stat.S_IMODE(st.st_mode) == 0o444 and st.st_nlink >= 2 and st.st_mtime_ns == OBJECT_MTIME_NS
    assert api.resolve("seir:latest", environ=layout_bundle.env) == layout_bundle.digest


def test_materialize_into_destination_and_selective(layout_bundle: Pushed, tmp_path: Path) -> None:
    dest = tmp_path / "run"
    path = api.materialize(layout_bundle.ref, dest, models=[MODEL_ID], environ=layout_bundle.env)
    assert path == dest
    assert set(read_tree(dest, skip_meta=False)) == SEIR_MODEL_FILES
    report = api.materialize_report(layout_bundle.ref, models=[MODEL_ID], environ=layout_bundle.env)
    assert report.path.name.startswith(layout_bundle.digest.split(":")[1] + "+")
    assert set(read_tree(report.path, skip_meta=False)) == SEIR_MODEL_FILES
    assert report.stats["fetched_objects"] == 0  # the destination checkout fetched them already
    with pytest.raises(UsageError, match="no model or target 'nope'"):
        api.materialize(layout_bundle.ref, models=["nope"], environ=layout_bundle.env)
    assert list(api.models(layout_bundle.ref, environ=layout_bundle.env)) == [MODEL_ID]
    assert list(api.load_registry(dest).models) == [MODEL_ID]


def test_bad_digests(layout_bundle: Pushed) -> None:
    unknown = "sha256:" + "0" * 64
    with pytest.raises(RegistryError, match="not found"):
        api.materialize(f"seir@{unknown}", environ=layout_bundle.env)
    with pytest.raises(UsageError, match="not in the cache"):
        api.materialize(unknown, environ=layout_bundle.env)
    with pytest.raises(UsageError, match="not a sha256/sha512 digest"):
        api.materialize("seir@sha256:xyz", environ=layout_bundle.env)
    cache = Path(layout_bundle.env["MODELOPS_BUNDLE_CACHE"])
    assert not list((cache / "trees").rglob("*.complete")) if (cache / "trees").exists() else True


def test_push_dir_and_project_path_refs(layout_bundle: Pushed) -> None:
    project = layout_bundle.project
    project.write("models/extra_note.txt", "note\n")
    ok(project.run("add", "models/extra_note.txt", "--json"))
    digest = api.push_dir(project.root, "v2", annotations={"org.example.run": "7"}, environ=layout_bundle.env)
    assert digest != layout_bundle.digest
    assert api.resolve("seir:v2", environ=layout_bundle.env) == digest
    assert api.resolve(project.root, environ=layout_bundle.env) == layout_bundle.digest  # default tag: latest
    assert api.provenance("seir:v2", environ=layout_bundle.env)["annotations"] == {"org.example.run": "7"}


def test_pull_and_ensure_by_model(layout_bundle: Pushed, make_project: Any, tmp_path: Path) -> None:
    dest = tmp_path / "ensured"
    shown = ok(layout_bundle.project.run("ensure", "--dest", str(dest), "--model", MODEL_ID, "--json"))
    assert shown["models"] == [MODEL_ID] and set(read_tree(dest, skip_meta=False)) == SEIR_MODEL_FILES
    other = make_project("other", ref="seir")
    pulled = ok(other.run("pull", "--model", MODEL_ID, "--json"))
    assert set(pulled["add"]) == SEIR_MODEL_FILES
    assert (
        set(read_tree(other.root, skip_meta=False))
        - {
            p
            for p in read_tree(other.root, skip_meta=False)
            if p.startswith(".modelops-bundle/") and "registry" not in p
        }
        == SEIR_MODEL_FILES
    )
    state = (other.meta / "state.json").read_text()
    assert '"last_pull_digest": null' in state  # a partial pull is not a sync
    refused = other.run("push", "--json")
    assert refused.exit_code == 1 and "only part of it was pulled here" in refused.stderr
    full = ok(other.run("pull", "--json"))
    assert "data/extra/unused.bin" in full["add"]
