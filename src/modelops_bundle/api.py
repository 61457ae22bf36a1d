"""The stable Python surface of modelops-bundle, for workers, notebooks and other tools.

Everything here is typed and keeps its signature across minor releases. A *ref* is one of:

* a full reference: ``host[:port]/repo@sha256:...``, ``host/repo:tag``, ``repo:tag``, ``repo`` (tag
  ``latest``), resolved in an *environment* (``env=`` argument, else ``$MOPS_ENV``, else ``local``);
* a bare digest ``sha256:...``: found in the cache, else fetched from ``$MODELOPS_BUNDLE_REGISTRY``
  (``host/repo``);
* a project folder (``str`` or :class:`~pathlib.Path` holding ``.modelops-bundle/``): its
  repository and default tag, where its settings send versions (unless ``env=`` names another environment).

Everything fetched goes through the shared cache (:mod:`modelops_bundle.core.cache`): ``$MODELOPS_BUNDLE_CACHE``,
else the project's ``cache_dir``, else ``$MODELOPS_HOME/cache``. A ``trust:`` policy in the environment
file is enforced by ``materialize``/``materialize_report``/``run_model`` before anything is placed or
imported, cached versions included (:mod:`modelops_bundle.core.trust`; ``TrustError`` when refused).

Example::

    from modelops_bundle import api

    digest = api.resolve("127.0.0.1:5000/flu:v3")
    root = api.materialize(digest, models=["seir_seirmodel"])    # a verified, read-only tree
    registry = api.load_registry(root)
    tags = api.provenance_tags(digest)                           # attach these to every result
    result = api.run_model(digest, "seir_seirmodel", {"R0": 2.0}, seed=1)   # outputs + provenance tags
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.envfiles import LOCAL_ENV, chosen_environment
from modelops_bundle.core.runner import ModelResult

if TYPE_CHECKING:
    from modelops_bundle.core.cache import BundleCache
    from modelops_bundle.core.materialize import Materialized, Materializer
    from modelops_bundle.core.model_registry import ModelRecord, Registry, TargetRecord
    from modelops_bundle.core.reference import Reference

__all__ = [
    "DEFAULT_ENV",
    "REGISTRY_ENV",
    "ModelResult",
    "load_registry",
    "materialize",
    "materialize_report",
    "models",
    "open_cache",
    "pin",
    "provenance",
    "provenance_tags",
    "push_dir",
    "resolve",
    "run_model",
    "targets",
    "unpin",
]

DEFAULT_ENV = LOCAL_ENV
#: Where a bare digest is fetched from when the cache does not know it: ``host[:port]/repository``.
REGISTRY_ENV = "MODELOPS_BUNDLE_REGISTRY"
RefLike = str | os.PathLike[str]


@dataclass
class _Source:
    materializer: Materializer
    reference: Reference
    env_name: str

    def close(self) -> None:
        self.materializer.close()

    def enforce_trust(self, digest: str) -> None:
        """Refuse the version (``TrustError``) unless the trust policy in force lets it through --
        before any of its files is fetched or placed."""
        from modelops_bundle.core.materialize import origin_of
        from modelops_bundle.core.trust import enforce_trust, trust_policy

        policy = trust_policy(self.env_name, self.materializer.environ)
        reference = self.reference
        if reference.repository == "_":  # a bare digest: the cache knows where it came from
            reference = origin_of(self.materializer.cache, digest) or reference
        engine = self.materializer
        enforce_trust(
            policy, reference.repository, digest, backend=lambda: engine.backend(reference), cache=engine.cache
        )


def _environ(environ: Mapping[str, str] | None) -> dict[str, str]:
    return dict(os.environ if environ is None else environ)


def _project_folder(ref: RefLike) -> Path | None:
    from modelops_bundle.core.project import META_DIR

    if isinstance(ref, os.PathLike) or (isinstance(ref, str) and ("/" in ref or ref in (".", ".."))):
        path = Path(os.fspath(ref)).expanduser()
        if (path / META_DIR).is_dir():
            return path
        if isinstance(ref, os.PathLike):
            from modelops_bundle.core.errors import UsageError

            raise UsageError(f"{path} is not a modelops-bundle project (no {META_DIR}/)")
    return None


def _source(
    ref: RefLike,
    *,
    env: str | None,
    environ: Mapping[str, str] | None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> _Source:
    from modelops_bundle.core.cache import BundleCache, cache_root
    from modelops_bundle.core.materialize import Materializer
    from modelops_bundle.core.plugins import build_plugin_host
    from modelops_bundle.core.reference import Reference, is_digest, parse_prefix, parse_reference
    from modelops_bundle.core.settings_files import load_environment

    values = _environ(environ)
    host = build_plugin_host(values)
    folder = _project_folder(ref)
    if folder is not None:
        from modelops_bundle.core.project import find_project
        from modelops_bundle.core.session import Session
        from modelops_bundle.core.workspace import Workspace

        session = Session(host, Workspace(find_project(folder)), values, env_name=env)
        try:
            root = Path(os.fspath(cache_dir)) if cache_dir is not None else cache_root(values, session.config.cache_dir)
            materializer = Materializer(
                BundleCache(root), host, session.environment, values, pinned=session.config.registry
            )
            return _Source(materializer, session.reference(), session.env_name)
        finally:
            session.save_caches()
    else:
        text = os.fspath(ref).strip()
        prefix = parse_prefix(text, bare=False)  # a short digest, ``sha256:eba4b34``
        if is_digest(text) or prefix is not None:
            base = values.get(REGISTRY_ENV, "").strip()
            where = parse_reference(base) if base else Reference("_")
            reference = where.with_digest(text) if prefix is None else where._replace(prefix=prefix)
        else:
            reference = parse_reference(text, short_digests=True)
            if reference.tag is None and reference.digest is None and reference.prefix is None:
                reference = reference.with_tag("latest")
        env_name = chosen_environment(env, values)
    root = Path(os.fspath(cache_dir)) if cache_dir is not None else cache_root(values)
    environment = load_environment(env_name, values)
    return _Source(Materializer(BundleCache(root), host, environment, values), reference, env_name)


def open_cache(
    cache_dir: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> BundleCache:
    """The shared cache (``cache_dir``, else ``$MODELOPS_BUNDLE_CACHE``, else ``$MODELOPS_HOME/cache``)."""
    from modelops_bundle.core.cache import BundleCache, cache_root

    return BundleCache(Path(os.fspath(cache_dir)) if cache_dir is not None else cache_root(_environ(environ)))


def resolve(ref: RefLike, *, env: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The manifest digest ``ref`` names now (a tag is looked up once; a digest is checked to exist)."""
    source = _source(ref, env=env, environ=environ)
    try:
        return source.materializer.resolve(source.reference)
    finally:
        source.close()


def materialize_report(
    ref: RefLike,
    dest: str | os.PathLike[str] | None = None,
    *,
    models: Sequence[str] | None = None,
    env: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Materialized:
    """:func:`materialize`, returning the details: digest, path, file count, whether the cache already
    held the tree, and what this process fetched (``stats``)."""
    if dest is None and not models:
        ready = _ready(ref, env, environ, cache_dir)
        if ready is not None:
            return ready
    source = _source(ref, env=env, environ=environ, cache_dir=cache_dir)
    try:
        digest = source.reference.digest or source.materializer.resolve(source.reference)
        source.enforce_trust(digest)
        target = Path(os.fspath(dest)) if dest is not None else None
        return source.materializer.materialize(source.reference, digest, target, models=models)
    finally:
        source.close()


def _ready(
    ref: RefLike, env: str | None, environ: Mapping[str, str] | None, cache_dir: str | os.PathLike[str] | None
) -> Materialized | None:
    """The hot path: a digest whose full tree is complete in the cache needs no plugins, environment
    or registry -- only a stat of each file (and, under a trust policy, a check of the signatures kept
    beside it in the cache)."""
    from modelops_bundle.core.cache import BundleCache, read_marker
    from modelops_bundle.core.materialize import Materialized, Materializer

    if isinstance(ref, os.PathLike):
        return None
    digest = ref.strip().rpartition("@")[2]
    from modelops_bundle.core.reference import is_digest

    if not is_digest(digest):
        return None
    cache = open_cache(cache_dir, environ=environ)
    engine = Materializer(cache, None, None, {})  # type: ignore[arg-type]  # the cache alone answers
    with cache.using():
        tree = engine.ready_tree(digest)
    if tree is None:
        return None
    _enforce_trust_cached(ref.strip(), digest, cache, env, _environ(environ))
    count = len(read_marker(BundleCache.marker_path(tree)) or ())
    return Materialized(digest, tree, count, None, True, cache.stats.to_json())


def _enforce_trust_cached(text: str, digest: str, cache: BundleCache, env: str | None, values: dict[str, str]) -> None:
    """:func:`~modelops_bundle.core.trust.enforce_trust` for a version complete in the cache: its kept
    signatures are checked against the policy in force; the registry is opened only when they do not
    satisfy it (a new policy, new keys)."""
    from modelops_bundle.core.materialize import origin_of
    from modelops_bundle.core.reference import Reference, is_digest, parse_reference
    from modelops_bundle.core.trust import enforce_trust, trust_policy

    env_name = chosen_environment(env, values)
    policy = trust_policy(env_name, values)
    if policy is None:
        return
    if is_digest(text):
        base = values.get(REGISTRY_ENV, "").strip()
        reference = parse_reference(base).with_digest(digest) if base else Reference("_", None, None, digest)
    else:
        reference = parse_reference(text)
    if reference.repository == "_":
        reference = origin_of(cache, digest) or reference
    opened: list[Any] = []

    def backend() -> Any:
        from modelops_bundle.core.plugins import build_plugin_host
        from modelops_bundle.core.registry_select import open_reference
        from modelops_bundle.core.settings_files import load_environment

        environment = load_environment(env_name, values)
        opened.append(open_reference(build_plugin_host(values), environment, reference, values))
        return opened[-1]

    try:
        enforce_trust(policy, reference.repository, digest, backend=backend, cache=cache)
    finally:
        for item in opened:
            item.close()


def materialize(
    ref: RefLike,
    dest: str | os.PathLike[str] | None = None,
    *,
    models: Sequence[str] | None = None,
    env: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """A verified tree of the version ``ref`` names; returns its folder.

    ``dest`` None: a shared, read-only tree in the cache (``trees/sha256/<hex>``), built once per machine
    and reused by every process. With ``dest``: the files are linked (reflink, else hard link, else copy)
    into that folder, replacing files at the same paths and leaving others alone. ``models``: only what
    those models (or targets) need -- their code closure and data, the model registry and the project's
    root metadata (pyproject.toml, lock files, requirements).
    """
    return materialize_report(ref, dest, models=models, env=env, cache_dir=cache_dir, environ=environ).path


def load_registry(path: str | os.PathLike[str]) -> Registry:
    """The model registry of a project folder, a materialised tree, or a ``registry.yaml`` file itself
    (an empty registry when a folder has none)."""
    from modelops_bundle.core.model_registry import Registry, parse_registry
    from modelops_bundle.core.project import REGISTRY_REL
    from modelops_bundle.core.validation import read_text

    target = Path(os.fspath(path)).expanduser()
    if target.is_dir():
        target = target / REGISTRY_REL
        if not target.exists():
            return Registry()
    return parse_registry(read_text(target, what="model registry"), target)


def _registry_of(ref: RefLike, env: str | None, environ: Mapping[str, str] | None) -> Registry:
    from modelops_bundle.core.model_registry import Registry

    if isinstance(ref, os.PathLike) or (isinstance(ref, str) and Path(ref).expanduser().is_dir()):
        return load_registry(ref)
    source = _source(ref, env=env, environ=environ)
    try:
        digest = source.reference.digest or source.materializer.resolve(source.reference)
        version = source.materializer.version(source.reference, digest)
        return source.materializer.registry_of(version) or Registry()
    finally:
        source.close()


def models(ref: RefLike, *, env: str | None = None, environ: Mapping[str, str] | None = None) -> dict[str, ModelRecord]:
    """The registered models of a bundle (a ref) or of a folder, by id. Fetches only ``registry.yaml``."""
    return dict(_registry_of(ref, env, environ).models)


def targets(
    ref: RefLike, *, env: str | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, TargetRecord]:
    """The registered calibration targets of a bundle (a ref) or of a folder, by id."""
    return dict(_registry_of(ref, env, environ).targets)


def push_dir(
    path: str | os.PathLike[str],
    tag: str | None = None,
    *,
    annotations: Mapping[str, str] | None = None,
    force: bool = False,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Push the project at ``path`` (tracked files, in its pinned environment) as ``tag`` (default: its
    ``default_tag``); returns the version digest. Provenance is recorded as by ``mops bundle push``."""
    from modelops_bundle.core.errors import UsageError
    from modelops_bundle.core.plugins import build_plugin_host
    from modelops_bundle.core.project import find_project
    from modelops_bundle.core.provenance import parse_annotation
    from modelops_bundle.core.push import PushOptions, push
    from modelops_bundle.core.session import Session
    from modelops_bundle.core.workspace import Workspace

    values = _environ(environ)
    checked = dict(parse_annotation(f"{key}={value}") for key, value in (annotations or {}).items())
    host = build_plugin_host(values)
    session = Session(host, Workspace(find_project(Path(os.fspath(path)))), values)
    reference = session.reference(tag)
    if reference.digest or not reference.tag:
        raise UsageError(f"push needs a tag, not a digest: {tag}")
    reference = reference.with_tag(reference.tag)  # a hex tag is a tag here, never a short digest
    backend = session.open_registry(reference)
    blobs = session.open_blob_store(uploading=True)
    try:
        result = push(session, backend, reference, PushOptions(force=force, annotations=checked), blob_uploader=blobs)
    finally:
        if blobs is not None:
            blobs.close()
        backend.close()
    assert result.digest is not None
    return result.digest


def provenance(
    ref: RefLike, *, env: str | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """The provenance document recorded when the version was pushed, or ``None`` when it has none."""
    from modelops_bundle.core.provenance import fetch

    source = _source(ref, env=env, environ=environ)
    try:
        digest = source.reference.digest or source.materializer.resolve(source.reference)
        version = source.materializer.version(source.reference, digest)
        found = fetch(source.materializer.backend(version.reference), version.reference.repository, digest)
        return None if found is None else found[0]
    finally:
        source.close()


def provenance_tags(
    digest: RefLike,
    *,
    env: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The tags a result computed from this bundle should carry (all strings):

    ``bundle.digest``, ``bundle.reference`` (``[host/]repo@digest``) and, from the version's manifest,
    ``bundle.created``, ``bundle.git.source``, ``bundle.git.revision``, ``bundle.git.dirty``,
    ``bundle.tool``, ``bundle.python``, ``bundle.lockfile.digest`` where recorded. Answered from the
    cache when the version is there (no registry access), else from the registry.
    """
    from modelops_bundle.core.gitinfo import ANNOTATION_GIT_DIRTY, ANNOTATION_REVISION, ANNOTATION_SOURCE
    from modelops_bundle.core.packaging import ANNOTATION_CREATED
    from modelops_bundle.core.provenance import ANNOTATION_LOCKFILE_DIGEST, ANNOTATION_PYTHON, ANNOTATION_TOOL

    source = _source(digest, env=env, environ=environ, cache_dir=cache_dir)
    try:
        pinned = source.reference.digest or source.materializer.resolve(source.reference)
        version = source.materializer.version(source.reference, pinned)
        reference = version.reference
        where = f"{reference.registry}/{reference.repository}" if reference.registry else reference.repository
        tags = {"bundle.digest": pinned, "bundle.reference": f"{where}@{pinned}"}
        names = {
            ANNOTATION_CREATED: "bundle.created",
            ANNOTATION_SOURCE: "bundle.git.source",
            ANNOTATION_REVISION: "bundle.git.revision",
            ANNOTATION_GIT_DIRTY: "bundle.git.dirty",
            ANNOTATION_TOOL: "bundle.tool",
            ANNOTATION_PYTHON: "bundle.python",
            ANNOTATION_LOCKFILE_DIGEST: "bundle.lockfile.digest",
        }
        for key, name in names.items():
            value = version.manifest.annotations.get(key)
            if value:
                tags[name] = value
        return tags
    finally:
        source.close()


def pin(
    digest: str, *, cache_dir: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> None:
    """Keep a version in the cache whatever its age (``gc`` never removes pinned versions)."""
    open_cache(cache_dir, environ=environ).pin(digest)


def unpin(
    digest: str, *, cache_dir: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> bool:
    """Undo :func:`pin`; False when it was not pinned."""
    return open_cache(cache_dir, environ=environ).unpin(digest)


def run_model(
    digest_or_ref: RefLike,
    model_id: str,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    *,
    model_kwargs: Mapping[str, Any] | None = None,
    env: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    extra_plugins: Sequence[tuple[str, object]] = (),
) -> ModelResult:
    """Run the registered model ``model_id`` of a bundle once (as a Dask task, or anywhere).

    The bundle is materialised (only what the model needs) through the shared cache: after a Dask
    ``BundlePlugin`` or an earlier run, that is a check of the completion marker and nothing is fetched.
    The model class is imported from the tree in isolation (:mod:`modelops_bundle.core.runner`) and
    constructed with ``model_kwargs``; ``params`` (a mapping; ``None`` for the defaults) and ``seed`` go to
    the runner the ``mops_model_runner`` hook provides for the model's framework (Calabaria:
    ``default_parameters(**params)`` then ``simulate(params, seed)``; Starsim: build the sim with
    ``params``, run it with ``rand_seed=seed``). A model whose framework no plugin runs raises
    :class:`~modelops_bundle.core.runner.NoRunnerError` before any of its code is imported.
    ``extra_plugins``: ``(name, plugin)`` pairs registered after the installed plugins, as
    :mod:`modelops_bundle.testing` does for commands -- to test a framework plugin before it is installed.
    """
    from modelops_bundle.core.plugins import build_plugin_host
    from modelops_bundle.core.runner import run_in_tree

    merged = {**os.environ, **dict(environ or {})}
    report = materialize_report(digest_or_ref, models=[model_id], env=env, cache_dir=cache_dir, environ=merged)
    host = build_plugin_host(merged, extra_plugins=extra_plugins)
    registry = load_registry(report.path)
    record, outputs, used = run_in_tree(
        host, report.path, registry, model_id, params, seed, model_kwargs, bundle=report.digest
    )
    tags = provenance_tags(report.digest, env=env, cache_dir=cache_dir, environ=merged)
    tags.update({"model.id": model_id, "model.digest": record.model_digest or ""})
    return ModelResult(report.digest, model_id, seed, used, outputs, tags)
