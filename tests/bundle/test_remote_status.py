"""The remote half of ``status`` (core.remote_status.remote_status)."""

from __future__ import annotations

from collections.abc import Callable

from modelops_bundle.core.bundle_files import bundle_paths
from modelops_bundle.core.hashing import resolve_hasher
from modelops_bundle.core.plugins import build_plugin_host
from modelops_bundle.core.project import Project
from modelops_bundle.core.remote_status import RemoteStatus, remote_status
from modelops_bundle.core.session import Session
from modelops_bundle.core.workspace import Workspace
from modelops_bundle.testing import BundleProject
from tests.bundle.conftest import ok, pushed_and_cloned


def status_of(project: BundleProject) -> RemoteStatus:
    host = build_plugin_host(project.env)
    ws = Workspace(Project(project.root))
    scan = ws.scan(resolve_hasher(host.hook, "sha256"), paths=bundle_paths(host, ws))
    return remote_status(Session(host, ws, project.env), scan)


def test_remote_states(project: BundleProject, clone: Callable[[str], BundleProject]) -> None:
    assert status_of(project).state == "not-pushed"
    pushed = ok(project.run("push", "--json"))
    synced = status_of(project)
    assert (synced.state, synced.remote_digest, synced.push["action"]) == ("synced", pushed["digest"], "none")
    project.write("data/a.csv", "mine\n")
    ahead = status_of(project)
    assert ahead.state == "ahead" and ahead.push["modified"] == 1
    other = clone("other")
    ok(other.run("pull", "--json"))
    other.write("data/b.csv", "theirs\n")
    ok(other.run("push", "--json"))
    diverged = status_of(project)
    assert diverged.state == "diverged" and diverged.pull["update"] == ["data/b.csv"]
    assert diverged.pull["kept_local"] == ["data/a.csv"]
    project.write("data/a.csv", "x,y\n1,2\n")
    assert status_of(project).state == "behind"
    assert status_of(project).to_json()["error"] is None


def test_status_names_the_files_a_pull_would_refuse(
    project: BundleProject, clone: Callable[[str], BundleProject]
) -> None:
    """Found by hand: a diverged status advised 'mops bundle pull', which then refused the conflicting file."""
    other, _ = pushed_and_cloned(project, clone)
    other.write("data/a.csv", "theirs\n")
    ok(other.run("push", "--json"))
    project.write("data/a.csv", "mine\n")
    text = project.run("status").stdout
    assert "Changed here and in the registry: data/a.csv" in text
    assert "'mops bundle pull --overwrite'" in text and "Run 'mops bundle pull' to bring" not in text
    assert project.run("pull").exit_code == 1  # as the status said
    project.write("data/a.csv", "x,y\n1,2\n")  # no conflict any more: the plain advice again
    assert "Run 'mops bundle pull' to bring in the remote changes" in project.run("status").stdout
