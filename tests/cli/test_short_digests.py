"""Short digests everywhere a version is named: ``pull``, ``ensure``, ``diff``, ``verify``, ``manifest``,
``tags`` and the Python API take any unique prefix of 7+ hex digits, with or without ``sha256:``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelops_bundle import api
from modelops_bundle.core.errors import UsageError
from modelops_bundle.testing import BundleProject


def push(project: BundleProject, *args: str) -> str:
    result = project.run("push", "--json", *args)
    assert result.exit_code == 0, result
    digest = result.json()["digest"]
    assert isinstance(digest, str)
    return digest


@pytest.fixture
def two_versions(bundle_project: BundleProject) -> tuple[BundleProject, str, str]:
    """``v1`` and then ``latest`` (and ``v2``) at a newer version; the first is tagged only ``v1``."""
    bundle_project.write("data/a.csv", "x\n1\n")
    assert bundle_project.run("add", ".").ok
    first = push(bundle_project, "--tag", "v1")
    bundle_project.write("data/a.csv", "x\n2\n")
    second = push(bundle_project)
    assert push(bundle_project, "--tag", "v2") == second
    return bundle_project, first, second


def hexes(digest: str, count: int) -> str:
    return digest.partition(":")[2][:count]


def test_every_command_takes_a_short_digest(two_versions: tuple[BundleProject, str, str], tmp_path: Path) -> None:
    project, first, second = two_versions
    for named in (f"sha256:{hexes(first, 12)}", hexes(first, 7), f"sha256:{hexes(first, 7)}"):
        manifest = project.run("manifest", named, "--json")
        assert manifest.exit_code == 0, manifest
        assert manifest.json()["digest"] == first
        assert manifest.json()["reference"] == f"{project.root.name}@{first}"  # printed in full
    assert project.run("manifest", hexes(first, 7)).stdout.splitlines()[0] == f"{project.root.name}@{first}"

    diff = project.run("diff", hexes(first, 9), f"sha256:{hexes(second, 8)}", "--json").json()
    assert (diff["base"], diff["target"]) == (f"{project.root.name}@{first}", f"{project.root.name}@{second}")
    assert diff["modified"] == ["data/a.csv"]
    assert project.run("diff", "--ref", hexes(first, 7), "--json").json()["base"].endswith(first)

    verify = project.run("verify", hexes(first, 7))
    assert verify.exit_code == 1 and "data/a.csv" in verify.stdout  # the working tree holds the second
    assert project.run("verify", hexes(second, 7)).exit_code == 0

    ensure = project.run("ensure", "--dest", str(tmp_path / "copy"), f"sha256:{hexes(first, 10)}", "--json")
    assert ensure.exit_code == 0, ensure
    assert ensure.json()["digest"] == first and (tmp_path / "copy" / "data/a.csv").read_text() == "x\n1\n"

    tags = project.run("tags", hexes(second, 7), "--json").json()
    assert [(v["digest"], v["tags"]) for v in tags["versions"]] == [(second, ["latest", "v2"])]
    assert project.run("tags", "-q", f"sha256:{hexes(first, 7)}").stdout == "v1\n"


def test_pull_records_and_prints_the_full_digest(two_versions: tuple[BundleProject, str, str]) -> None:
    project, first, _second = two_versions
    pulled = project.run("pull", hexes(first, 7), "--overwrite")
    assert pulled.exit_code == 0, pulled
    assert f"Updated from {project.root.name}@{first}" in pulled.stdout
    assert project.read("data/a.csv") == "x\n1\n"
    state = json.loads(project.read(".modelops-bundle/state.json"))
    assert state["last_pull_digest"] == first
    assert state["last_synced_ref"] == f"{project.root.name}@{first}"  # never the prefix as typed


def test_an_untagged_version_is_found_through_its_referrer(bundle_project: BundleProject) -> None:
    """Pushed to ``latest``, then ``latest`` moved on: no tag names the first version any more, but its
    provenance referrer (the ``sha256-<hex>`` fallback tag) still does."""
    bundle_project.write("a.txt", "1\n")
    assert bundle_project.run("add", ".").ok
    first = push(bundle_project)
    bundle_project.write("a.txt", "2\n")
    push(bundle_project)
    listed = bundle_project.run("tags", "--json").json()
    assert first not in [v["digest"] for v in listed["versions"]]
    shown = bundle_project.run("manifest", f"sha256:{hexes(first, 7)}", "--json")
    assert shown.exit_code == 0, shown
    assert shown.json()["digest"] == first


def test_an_ambiguous_prefix_lists_the_candidates(two_versions: tuple[BundleProject, str, str]) -> None:
    """Two real digests sharing seven hex digits are rare; the project's history (state.json's
    known_digests) is one of the places a prefix is looked up, so a made-up neighbour goes there."""
    project, first, _second = two_versions
    state_path = project.meta / "state.json"
    state = json.loads(state_path.read_text())
    ninth = first[len("sha256:") + 8]  # the twin differs from the ninth digit on: nine digits are unique
    twin = first[: len("sha256:") + 8] + ("0" if ninth != "0" else "1") * 56
    state["known_digests"].append(twin)
    state_path.write_text(json.dumps(state))
    before = project.read(".modelops-bundle/state.json")
    for command in (("manifest",), ("pull", "--dry-run"), ("diff",), ("verify",)):
        result = project.run(*command, hexes(first, 8))
        assert result.exit_code == 2, (command, result)
        assert f"short digest sha256:{hexes(first, 8)} is ambiguous" in result.stderr
        assert first in result.stderr and twin in result.stderr and "(v1)" in result.stderr
        assert "hint: give more hex digits" in result.stderr
    as_json = project.run("manifest", hexes(first, 8), "--json")
    assert as_json.json()["ok"] is False and as_json.json()["exit_code"] == 2
    assert project.run("manifest", hexes(first, 9), "--json").json()["digest"] == first  # one more digit
    assert project.read(".modelops-bundle/state.json") == before  # nothing written


def test_what_is_not_a_short_digest(two_versions: tuple[BundleProject, str, str]) -> None:
    project, first, _second = two_versions
    short = project.run("manifest", f"sha256:{hexes(first, 6)}")  # six digits: too few
    assert short.exit_code == 2 and "invalid reference" in short.stderr
    bare = project.run("manifest", hexes(first, 6))  # a tag name then, and no such tag
    assert bare.exit_code == 1 and f"tag {hexes(first, 6)} not found" in bare.stderr
    nothing = project.run("manifest", "sha256:0000000")
    assert nothing.exit_code == 1
    assert "no version in" in nothing.stderr and "has a digest starting with sha256:0000000" in nothing.stderr
    neither = project.run("manifest", "abcdef0")
    assert neither.exit_code == 1 and "tag abcdef0 not found" in neither.stderr
    assert "nor a version whose digest starts with it" in neither.stderr


def test_a_hex_tag_that_exists_wins_and_push_never_reads_one_as_a_digest(
    two_versions: tuple[BundleProject, str, str],
) -> None:
    project, first, second = two_versions
    clash = hexes(first, 7)  # a CI tagging by commit could name a tag like this
    project.write("data/a.csv", "x\n3\n")
    third = push(project, "--tag", clash)  # a tag, even though it looks like the first version's prefix
    assert third not in (first, second)
    assert project.run("manifest", clash, "--json").json()["digest"] == third
    assert project.run("manifest", f"sha256:{clash}", "--json").json()["digest"] == first
    refused = project.run("push", "--tag", f"sha256:{clash}")
    assert refused.exit_code == 2 and "push needs a tag, not a digest" in refused.stderr


def test_the_python_api_takes_short_digests(two_versions: tuple[BundleProject, str, str]) -> None:
    project, first, _second = two_versions
    name, env = project.root.name, project.env
    assert api.resolve(f"{name}@{hexes(first, 7)}", environ=env) == first
    assert api.resolve(f"{name}@sha256:{hexes(first, 10)}", environ=env) == first
    assert api.resolve(f"{name}:{hexes(first, 7)}", environ=env) == first  # a hex "tag" that is no tag
    root = api.materialize(f"{name}@{hexes(first, 7)}", environ=env)
    assert (root / "data/a.csv").read_text() == "x\n1\n"
    # A bare short digest is looked up in the cache (which now holds that version) ...
    assert api.resolve(f"sha256:{hexes(first, 7)}", environ=env) == first
    assert api.provenance_tags(f"sha256:{hexes(first, 7)}", environ=env)["bundle.digest"] == first
    # ... and one the cache does not know is an error that says where it looked.
    with pytest.raises(UsageError, match=r"no version in the cache .* has a digest starting with sha256:0000000"):
        api.resolve("sha256:0000000", environ=env)
