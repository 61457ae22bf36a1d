"""The trust policy is enforced at every entry point -- ``pull``, ``ensure``, ``api.materialize`` (into the
cache and into a folder), ``api.run_model``, the worker entry point and the Dask plugin and tasks --
before any file is placed or any code imported, on the embedded layout and on CNCF distribution; and a
version already in the shared cache is checked again against the policy in force."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle import api
from modelops_bundle.core import runner
from modelops_bundle.core.errors import ConfigError, TrustError
from modelops_bundle.testing import BundleProject
from modelops_bundle.worker import BundleRepository
from tests.bundle.conftest import ok, read_tree
from tests.reliability.support import failed_cleanly
from tests.signing.conftest import MODEL_ID, Stage, public_key_path
from tests.workers.conftest import seir_project

SMALL_RUN = {"days": 20}


@pytest.fixture(params=["layout", "http"])
def stage(request: pytest.FixtureRequest) -> Stage:
    return request.getfixturevalue(f"{request.param}_stage")  # type: ignore[no-any-return]


def _victim(stage: Stage, tmp_path: Path) -> BundleProject:
    """A project of the same repository and environment that has pulled nothing yet."""
    project = BundleProject.create(tmp_path / "victim" / stage.repository, stage.project.env, "--env", stage.env_name)
    for scaffolded in (".modelopsignore", "pyproject.toml"):
        (project.root / scaffolded).unlink()
    project.write("notes.txt", "local work\n")
    return project


def _observable(project: BundleProject) -> tuple[dict[str, bytes], bytes, bytes]:
    return (
        read_tree(project.root),
        (project.meta / "state.json").read_bytes(),
        (project.meta / "tracked.txt").read_bytes(),
    )


def _repository(stage: Stage) -> BundleRepository:
    where = f"{stage.host}/{stage.repository}" if stage.host else stage.repository
    return BundleRepository(registry_ref=where, environ=stage.env)


def test_pull_and_ensure_refuse_a_version_the_policy_does_not_trust(stage: Stage, tmp_path: Path) -> None:
    policy = stage.trust_ci()
    victim = _victim(stage, tmp_path)
    before = _observable(victim)
    for argv in (("pull", stage.unsigned), ("pull", "unsigned", "--overwrite"), ("pull", "unsigned", "--dry-run")):
        stderr = failed_cleanly(victim.run(*argv), "refused by the trust policy", str(policy), stage.unsigned)
        assert "it has no signature" in stderr and "hint: expected a signature by one of: sha256:" in stderr
        assert "ci.pub" in stderr
        assert _observable(victim) == before
    dest = tmp_path / "run"
    refused = victim.run("ensure", "--dest", str(dest), "--ref", stage.unsigned, "--json")
    assert refused.exit_code == 1 and refused.json()["ok"] is False
    assert "refused by the trust policy" in refused.json()["error"]
    assert not dest.exists()

    pulled = ok(victim.run("pull", stage.signed, "--json"))
    assert pulled["digest"] == stage.signed and (victim.root / "models" / "seir.py").is_file()
    ensured = ok(victim.run("ensure", "--dest", str(dest), "--ref", "latest", "--json"))
    assert ensured["digest"] == stage.signed and (dest / "models" / "seir.py").is_file()


def test_the_api_and_run_model_refuse_before_placing_or_importing(stage: Stage, tmp_path: Path) -> None:
    stage.trust_ci()
    unsigned = stage.ref(stage.unsigned)
    with pytest.raises(TrustError, match="refused by the trust policy") as refused:
        api.materialize(unsigned, environ=stage.env)
    assert stage.unsigned in refused.value.message and refused.value.hint and "ci.pub" in refused.value.hint
    dest = tmp_path / "dest"
    with pytest.raises(TrustError):
        api.materialize(unsigned, dest, environ=stage.env)
    with pytest.raises(TrustError):
        api.materialize(unsigned, models=[MODEL_ID], environ=stage.env)
    with pytest.raises(TrustError):
        api.run_model(unsigned, MODEL_ID, {"R0": 2.0}, model_kwargs=SMALL_RUN, environ=stage.env)
    assert not dest.exists() and not stage.cache_holds(stage.unsigned)
    assert not any(stage.unsigned.partition(":")[2] in key for key in runner._TREE_MODULES)

    result = api.run_model(
        stage.ref(stage.signed), MODEL_ID, {"R0": 2.0}, seed=1, model_kwargs=SMALL_RUN, environ=stage.env
    )
    assert result.bundle_digest == stage.signed and result.outputs["incidence"]
    tree = api.materialize(stage.ref(stage.signed), environ=stage.env)
    assert (tree / "models" / "seir.py").is_file()
    assert api.materialize(stage.ref(stage.signed), environ=stage.env) == tree  # the hot path, checked too


def test_the_worker_entry_point_refuses_and_keeps_signatures_beside_the_cached_version(stage: Stage) -> None:
    stage.trust_ci()
    repo = _repository(stage)
    with pytest.raises(TrustError, match="it has no signature"):
        repo.ensure_local(stage.unsigned)
    assert not stage.cache_holds(stage.unsigned)
    path = repo.ensure_local(stage.signed)
    assert (path / "models" / "seir.py").is_file()
    kept = stage.cache / "versions" / "sha256" / stage.signed.partition(":")[2] / "signatures.json"
    assert repo.ensure_local(stage.signed) == path and kept.is_file()  # kept once the version is cached
    plain = BundleRepository(environ=stage.env)  # no registry_ref: full references
    assert plain.ensure_local(stage.ref(stage.signed)) == path
    with pytest.raises(TrustError):
        plain.ensure_local(stage.ref(stage.unsigned))
    plain.close()
    repo.close()


def test_a_changed_policy_is_applied_to_versions_already_in_the_cache(stage: Stage) -> None:
    stage.trust_ci()
    repo = _repository(stage)
    path = repo.ensure_local(stage.signed)
    repo.ensure_local(stage.signed)
    kept = stage.cache / "versions" / "sha256" / stage.signed.partition(":")[2] / "signatures.json"
    assert kept.is_file()
    api.materialize(stage.ref(stage.signed), models=[MODEL_ID], environ=stage.env)

    stage.policy(f"keys: [{public_key_path(stage.env, 'other')}]")  # the ci key is no longer trusted
    with pytest.raises(TrustError, match="which the policy does not trust"):
        repo.ensure_local(stage.signed)
    assert not kept.exists()  # the cache no longer vouches for it
    with pytest.raises(TrustError):
        api.materialize(stage.signed, environ={**stage.env, "MODELOPS_BUNDLE_REGISTRY": _where(stage)})
    with pytest.raises(TrustError):
        api.run_model(stage.ref(stage.signed), MODEL_ID, {"R0": 2.0}, model_kwargs=SMALL_RUN, environ=stage.env)
    assert not any(stage.signed.partition(":")[2] in key for key in runner._TREE_MODULES)  # nothing was imported

    stage.policy("require: false")  # no signature required any more
    assert repo.ensure_local(stage.signed) == path
    stage.trust_ci()
    assert repo.ensure_local(stage.signed) == path
    repo.close()


def _where(stage: Stage) -> str:
    return f"{stage.host}/{stage.repository}" if stage.host else stage.repository


def test_a_cached_version_is_checked_without_the_registry(layout_stage: Stage, tmp_path: Path) -> None:
    """Signatures kept in the cache answer the policy on their own: with the registry gone, a trusted
    version is still handed out, and a policy that no longer trusts it still refuses it."""
    stage = layout_stage
    stage.trust_ci()
    repo = _repository(stage)
    path = repo.ensure_local(stage.signed)
    repo.ensure_local(stage.signed)
    registry = Path(stage.env["MODELOPS_HOME"]) / "registry"
    shutil.move(registry, tmp_path / "registry-away")
    assert repo.ensure_local(stage.signed) == path
    assert api.materialize(stage.ref(stage.signed), environ=stage.env) == path
    stage.policy(f"keys: [{public_key_path(stage.env, 'other')}]")
    with pytest.raises(TrustError):
        repo.ensure_local(stage.signed)
    repo.close()


def test_repository_patterns_choose_the_keys(layout_stage: Stage, tmp_path: Path) -> None:
    stage = layout_stage
    other = public_key_path(stage.env, "other")
    policy = stage.policy(f"require: false\nrepositories:\n  'seir-*': [{other}]")
    refused = stage.project.run("ensure", "--dest", str(tmp_path / "a"), "--ref", "latest")
    failed_cleanly(refused, "trust.repositories 'seir-*'", "which the policy does not trust", "other.pub")
    ok(stage.project.run("sign", "latest", "--key", "other", "--json"))
    ok(stage.project.run("ensure", "--dest", str(tmp_path / "a"), "--ref", "latest", "--json"))
    # a repository no pattern names: require false lets its unsigned versions through
    free = seir_project(tmp_path / "free", stage.project.env, "--env", stage.env_name)
    ok(free.run("push", "--json"))
    ok(free.run("ensure", "--dest", str(tmp_path / "b"), "--json"))
    assert policy.is_file()


def test_a_policy_naming_a_bad_key_is_a_configuration_error(layout_stage: Stage, tmp_path: Path) -> None:
    stage = layout_stage
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key\n")
    policy = stage.policy(f"keys: [{public_key_path(stage.env, 'ci')}, {junk}]")
    result = stage.project.run("ensure", "--dest", str(tmp_path / "x"), "--ref", "latest")
    failed_cleanly(result, str(policy), "trust.keys[1]", "not a PEM public key", code=2)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match=r"trust\.keys\[1\]"):
        api.materialize(stage.ref(stage.signed), environ=stage.env)
    assert not stage.cache_holds(stage.signed)


# ------------------------------------------------------------------------------------------------ dask

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as local:
        yield local


def _bundles(dask_worker: Any) -> list[str]:
    from modelops_bundle.dask import WORKER_ATTRIBUTE

    return sorted(getattr(dask_worker, WORKER_ATTRIBUTE, {}))


@pytest.mark.timeout(240)
def test_the_dask_plugin_and_tasks_refuse_what_the_policy_does_not_trust(cluster: Any, stage: Stage) -> None:
    from modelops_bundle.dask import BundlePlugin, run_model

    stage.trust_ci()
    keys = ("MODELOPS_BUNDLE_CACHE", "MOPS_ENV", "MODELOPS_HOME", "HOME")
    environ = {key: stage.env[key] for key in keys}
    with distributed.Client(cluster) as client:
        with pytest.raises(TrustError, match="refused by the trust policy"):
            client.register_plugin(BundlePlugin(stage.ref(stage.unsigned), environ=environ))
        assert all(stage.unsigned not in found for found in client.run(_bundles).values())
        task = client.submit(
            run_model, stage.ref(stage.unsigned), MODEL_ID, {"R0": 2.0}, model_kwargs=SMALL_RUN, environ=environ
        )
        with pytest.raises(TrustError):
            task.result(timeout=120)
        assert not stage.cache_holds(stage.unsigned)

        client.register_plugin(BundlePlugin(stage.ref(stage.signed), environ=environ))
        assert all(stage.signed in found for found in client.run(_bundles).values())
        result = client.submit(
            run_model, stage.ref(stage.signed), MODEL_ID, {"R0": 2.0}, model_kwargs=SMALL_RUN, environ=environ
        ).result(timeout=120)
        assert result.bundle_digest == stage.signed
