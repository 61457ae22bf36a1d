"""Model status (Ready / Stale / Broken, explain, cloud state), digests refresh, preflight, fingerprints."""

from __future__ import annotations

import os
import time

import pytest

from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.hashing import resolve_hasher
from modelops_bundle.core.model_registry import (
    code_fingerprinter,
    combined_digest,
    load_registry,
    parse_registry_bytes,
    refresh_dependencies,
    refresh_digests,
    render_registry,
    save_registry,
)
from modelops_bundle.core.model_status import RegistryStatus, apply_cloud_states, compute_status, explain_lines, impact
from modelops_bundle.core.plugins import PluginHost, build_plugin_host
from modelops_bundle.core.preflight import PreflightError, check_before_push, preflight
from modelops_bundle.core.project import Project
from modelops_bundle.core.workspace import Scan, Workspace
from modelops_bundle.plugins.code_fingerprint import fingerprint_source
from modelops_bundle.testing import BundleProject
from tests.registry.test_register_cli import make_project


class Session:
    """The core calls a ``status`` or ``push`` makes, on a project the CLI set up."""

    def __init__(self, project: BundleProject) -> None:
        self.project = project
        self.host: PluginHost = build_plugin_host(project.env)

    def scan(self) -> tuple[Workspace, Scan]:
        ws = Workspace(Project(self.project.root))
        return ws, ws.scan(resolve_hasher(self.host.hook, "sha256"))

    def status(self) -> RegistryStatus:
        ws, scan = self.scan()
        registry = load_registry(ws)
        return compute_status(
            registry, scan, ws.project.root, fingerprinter=code_fingerprinter(self.host, ws.project.root)
        )

    def states(self) -> dict[str, str]:
        report = self.status()
        return {item.id: item.label() for item in (*report.models, *report.targets)}


def edit(project: BundleProject, rel: str, text: str) -> None:
    path = project.write(rel, text)
    later = time.time() + 5  # beyond the stat cache's racy window, whatever the file system's clock grain
    os.utime(path, (later, later))


@pytest.fixture
def session(bundle_project: BundleProject) -> Session:
    make_project(bundle_project)
    assert bundle_project.run("register-model", "models/seir.py", "--class", "SEIRModel", "--data", "data/contacts").ok
    assert bundle_project.run("register-target", "targets/incidence.py").ok
    return Session(bundle_project)


def test_ready_then_stale_after_code_data_and_transitive_helper(session: Session) -> None:
    project = session.project
    assert session.states() == {"seir_seirmodel": "Ready", "incidence": "Ready"}
    edit(project, "models/numerics.py", "def step():\n    return 2\n")  # imported by helpers.py, not by seir.py
    assert session.states()["seir_seirmodel"] == "Stale (1 changed)"
    edit(project, "data/contacts/home.csv", "a,b\n9,9\n")
    report = session.status()
    model = report.find("SEIRModel")  # by class name as well as by id
    assert model is not None and model.label() == "Stale (2 changed)"
    assert [dep.path for dep in model.changed] == ["models/numerics.py", "data/contacts/home.csv"]
    lines = explain_lines(model)
    assert lines[0].startswith("model seir_seirmodel (models.seir:SEIRModel): Stale (2 changed)")
    assert any("recorded sha256:" in line for line in lines) and any("now      sha256:" in line for line in lines)
    assert session.states()["incidence"] == "Ready"  # the target shares none of these files

    # a push refreshes the digests from its own scan: everything is Ready again and the saved registry
    # describes exactly the scanned files
    ws, scan = session.scan()
    registry = load_registry(ws)
    assert refresh_digests(registry, scan) == []
    save_registry(ws, registry)
    entry = registry.models["seir_seirmodel"]
    assert entry.code_digests["models/numerics.py"] == scan.files["models/numerics.py"].digest
    lines = [(rel, scan.files[rel].digest) for rel, _ in entry.dependencies()]
    assert entry.model_digest == combined_digest(lines)
    assert session.states() == {"seir_seirmodel": "Ready", "incidence": "Ready"}


def test_refresh_dependencies_follows_new_imports(session: Session) -> None:
    project = session.project
    project.write("models/extra.py", "VALUE = 1\n")
    edit(project, "models/helpers.py", project.read("models/helpers.py") + "from models.extra import VALUE\n")
    ws, _scan = session.scan()
    registry = load_registry(ws)
    assert refresh_dependencies(ws, session.host, registry) == ["models/extra.py"]  # to be tracked before the push
    assert "models/extra.py" in registry.models["seir_seirmodel"].code


def test_broken_when_a_dependency_is_missing_or_untracked(session: Session) -> None:
    project = session.project
    os.remove(project.path("data/observed.csv"))
    assert project.run("remove", "models/numerics.py").ok
    report = session.status()
    target = report.find("incidence")
    model = report.find("seir_seirmodel")
    assert target is not None and target.label() == "Broken (1 missing)"
    assert model is not None and model.label() == "Broken (1 untracked)"
    recorded = load_registry(session.scan()[0]).models["seir_seirmodel"].code_digests["models/numerics.py"]
    assert model.to_json()["files"] == [
        {"path": "models/numerics.py", "kind": "code", "state": "untracked", "recorded": recorded, "current": None},
    ]


def test_preflight_lists_every_problem(session: Session) -> None:
    project = session.project
    ws, scan = session.scan()
    assert preflight(ws, session.host, scan=scan) == []
    edit(project, "models/seir.py", "class Other:\n    pass\n")  # the class is gone
    edit(project, "models/helpers.py", "from .numerics import step\nfrom .gone import x\n")
    os.remove(project.path("data/contacts/work.csv"))
    edit(project, "targets/incidence.py", "def incidence_target(:\n")
    ws, scan = session.scan()
    messages = [str(problem) for problem in preflight(ws, session.host, scan=scan)]
    assert "model seir_seirmodel: models/seir.py: entrypoint models.seir:SEIRModel: no class 'SEIRModel' " \
        "(classes there: Other)" in messages  # fmt: skip
    assert "model seir_seirmodel: data dependency missing: data/contacts/work.csv" in messages
    assert any(
        "import does not resolve: models/helpers.py:2: from .gone import ...: no such module" in m for m in messages
    )
    assert any(m.startswith("target incidence: targets/incidence.py:1: entrypoint") and "syntax error" in m
               for m in messages)  # fmt: skip
    with pytest.raises(PreflightError) as refused:
        check_before_push(ws, session.host, scan=scan)
    assert refused.value.exit_code == 2 and len(refused.value.problems) == len(messages)


def test_preflight_target_output_no_model_provides(session: Session) -> None:
    project = session.project
    edit(project, "models/seir.py", project.read("models/seir.py").replace('"incidence"', '"cases"'))
    assert project.run("register-model", "models/seir.py", "--class", "SEIRModel").ok
    ws, scan = session.scan()
    messages = [str(problem) for problem in preflight(ws, session.host, scan=scan)]
    assert messages == [
        "target incidence: targets/incidence.py: model_output 'incidence' is not an output of any registered model "
        "(outputs: cases)"
    ]


def test_ast_fingerprint_ignores_comments_not_docstrings(session: Session) -> None:
    project = session.project
    path = project.meta / "registry.yaml"
    path.write_text(path.read_text().replace("fingerprint: bytes", "fingerprint: ast"))
    assert project.run("register-model", "models/seir.py", "--class", "SEIRModel").ok  # records fingerprints
    registry = load_registry(session.scan()[0])
    assert registry.models["seir_seirmodel"].code_fingerprints["models/seir.py"].startswith("pyast1-sha256:")
    edit(project, "models/numerics.py", "# a comment\ndef step( ):\n\n    return (1)\n")
    report = session.status()
    assert report.models[0].label() == "Ready"
    assert [(dep.path, dep.state) for dep in report.models[0].issues] == [("models/numerics.py", "cosmetic")]
    edit(project, "models/numerics.py", 'def step():\n    """Now documented."""\n    return 1\n')
    assert session.status().models[0].label() == "Stale (1 changed)"


def test_fingerprint_plugin() -> None:
    base = fingerprint_source(b"def f(x):\n    return x + 1\n")
    assert base is not None and base.startswith("pyast1-sha256:")
    assert fingerprint_source(b"# c\ndef f( x ):  # c\n    return (x+1)\n") == base
    assert fingerprint_source(b"def f(x):\n    return x + 2\n") != base
    assert fingerprint_source(b"def f(:\n") is None


def test_cloud_state(session: Session) -> None:
    project = session.project
    ws, scan = session.scan()
    local = load_registry(ws)
    pushed = parse_registry_bytes(render_registry(local).encode(), "remote:registry.yaml")
    synced = {rel: info.digest for rel, info in scan.files.items()}

    def cloud(remote_files: dict[str, str] | None = None, base: dict[str, str] = synced, remote=pushed) -> str:
        ws, scan = session.scan()
        report = compute_status(local, scan, ws.project.root)
        apply_cloud_states(report, local, remote, scan, base, remote_files=remote_files)
        assert report.models[0].cloud is not None
        return report.models[0].cloud

    assert cloud(remote=None) == "not pushed"
    assert cloud() == "synced"
    remote_files = dict(synced, **{"models/numerics.py": "sha256:" + "f" * 64})
    assert cloud(remote_files) == "behind"
    edit(project, "data/contacts/home.csv", "a,b\n5,5\n")
    assert cloud() == "ahead"
    assert cloud(remote_files) == "diverged"
    assert cloud(base={}) == "diverged"  # differing, and no common version to tell who moved


def test_impact_names_the_models_and_targets_a_change_touches(session: Session) -> None:
    registry = load_registry(session.scan()[0])
    found = impact([registry], {"data/contacts/home.csv": "modified", "targets/incidence.py": "modified"})
    assert [line for item in found for line in item.describe()] == [
        "seir_seirmodel (SEIRModel): data/contacts/home.csv modified",
        "incidence: targets/incidence.py modified",
    ]


def test_remote_registry_errors_name_their_origin() -> None:
    with pytest.raises(ConfigError, match=r"^remote:registry\.yaml, line \d+: invalid YAML"):
        parse_registry_bytes(b"models: [1, 2", "remote:registry.yaml")
    with pytest.raises(ConfigError, match=r"invalid: models \(line 1\): Input should be a valid dictionary"):
        parse_registry_bytes(b"models: [1, 2]", "remote:registry.yaml")
