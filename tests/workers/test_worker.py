"""The ModelOps worker entry point, and many processes materialising one cold digest at once."""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from modelops_bundle.core.errors import RegistryError
from modelops_bundle.worker import BundleRepository, LocalBundle
from tests.bundle.conftest import read_tree
from tests.workers.conftest import Pushed


def test_entry_point_is_registered() -> None:
    found = [ep for ep in entry_points(group="modelops.bundle_repos") if ep.name == "modelops_bundle"]
    assert found and found[0].load() is BundleRepository


def test_ensure_local_and_exists(layout_bundle: Pushed, tmp_path: Path) -> None:
    repo = BundleRepository(registry_ref="seir", cache_dir=tmp_path / "c", environ=layout_bundle.env)
    assert not repo.exists("sha256:" + "1" * 64) and not repo.exists("not a ref")
    assert repo.exists(layout_bundle.digest)  # asks the registry
    path = repo.ensure_local(layout_bundle.digest)
    digest, same = path  # ModelOps' (digest, path) contract
    assert isinstance(path, LocalBundle) and digest == layout_bundle.digest and same == Path(path)
    assert (path / "models/seir.py").is_file()
    assert repo.ensure_local(f"seir@{layout_bundle.digest}") == path
    assert repo.ensure_local("seir:latest") == path
    with pytest.raises(RegistryError, match="not found"):
        repo.ensure_local("sha256:" + "1" * 64)
    # upstream-style construction: keyword arguments only, environment for the rest
    upstream = BundleRepository(
        registry_ref="seir",
        cache_dir=str(tmp_path / "c"),
        cache_structure="digest_short",
        default_tag="latest",
        insecure=False,
        environ=layout_bundle.env,
    )
    assert upstream.ensure_local(layout_bundle.digest) == path


RACER = textwrap.dedent(
    """
    import json, sys
    from modelops_bundle.worker import BundleRepository
    repo = BundleRepository(registry_ref=sys.argv[1])
    path = repo.ensure_local(sys.argv[2])
    print(json.dumps({"path": str(path), "stats": repo._engine().cache.stats.to_json()}))
    """
)


def test_eight_processes_materialise_one_cold_digest_downloading_each_blob_once(http_bundle: Pushed) -> None:
    import json

    base = http_bundle.ref.split("@")[0]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, base, http_bundle.digest], env=http_bundle.env, stdout=subprocess.PIPE
        )
        for _ in range(8)
    ]
    results = [json.loads(child.communicate(timeout=120)[0]) for child in children]
    assert all(child.returncode == 0 for child in children)
    assert len({result["path"] for result in results}) == 1
    gets = collections.Counter(http_bundle.blob_gets())
    assert gets and max(gets.values()) == 1, gets  # every blob (config, layers) fetched exactly once
    fetched = sum(result["stats"]["downloaded_bytes"] for result in results)
    assert fetched == sum(r["stats"]["downloaded_bytes"] for r in results if r["stats"]["downloaded_blobs"])
    assert sum(1 for r in results if r["stats"]["downloaded_blobs"]) == 1
    tree = read_tree(Path(results[0]["path"]), skip_meta=True)
    assert tree == read_tree(http_bundle.project.root)
