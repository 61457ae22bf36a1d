"""Every hook of modelops-bundle.

Conventions (see docs/plugins.md for the guide with examples):

* Every hook name starts with ``mops_``; plugins implement them with :data:`modelops_bundle.plugin.hookimpl`
  and take their types from :mod:`modelops_bundle.plugin`, the public plugin API.
* Built-in implementations are marked ``trylast=True``, so an installed plugin runs first and, for a
  *first-result* hook, wins. Among third-party plugins pluggy calls the last registered first (LIFO).
* *Named-provider* hooks (storage, registry) return classes carrying a ``name``; configuration picks one by
  name. A third-party class replaces a built-in of the same name; two third-party classes with one name is
  an error (:func:`modelops_bundle.core.hooks.by_name`).
* Hook arguments are passed by keyword; an implementation may accept any subset of them.
* The core calls every hook through the typed facade :class:`modelops_bundle.core.hooks.Hooks`
  (``host.hook``), one method per hook here, and every call goes through pluggy: hook wrappers work on all.

Type names are imported only for type checkers, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from modelops_bundle import PROJECT_NAME

if TYPE_CHECKING:
    from pathlib import Path

    from modelops_bundle.core.commands import CommandRegistry
    from modelops_bundle.core.discovery import CodeDependencies, DiscoveredModel, DiscoveredTarget, SourceFile
    from modelops_bundle.core.hashing import Hasher
    from modelops_bundle.core.index import BundleIndex, IndexEntry
    from modelops_bundle.core.keys import Signer
    from modelops_bundle.core.packaging import LayerPlan
    from modelops_bundle.core.project import Project
    from modelops_bundle.core.providers import RegistryBackendClass, StorageProviderClass
    from modelops_bundle.core.runner import ModelRunner, RunnableModel
    from modelops_bundle.core.settings import StoragePolicy

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

# --------------------------------------------------------------------------------------------- commands


@hookspec
def mops_add_commands(registry: CommandRegistry) -> None:
    """Add CLI commands.

    When: once per process, while the CLI builds its parser (``mops bundle --help`` included).
    Arguments: ``registry`` -- call ``registry.add(Command(...))`` for each command.
    Returns: nothing (collecting hook; every implementation runs).
    Ordering: third-party plugins run before the built-ins (``trylast``); the first command registered
    under a name wins, so a plugin can replace a built-in command by adding one of the same name.
    Keep this cheap: import heavy modules inside the command's ``run`` function, not here.
    """


# -------------------------------------------------------------------------------------------- discovery


@hookspec
def mops_discover_models(source: SourceFile) -> list[DiscoveredModel] | None:
    """Find model classes in one Python source file, without importing it.

    When: ``register-model PATH`` (and preflight) for every file it inspects.
    Arguments: ``source`` -- project-relative path, absolute path, text and parsed ``ast.Module``.
    Returns: the models found (possibly empty) or ``None``.
    Ordering: collecting hook; results of all plugins are concatenated, duplicates (same class) merged.
    """


@hookspec
def mops_discover_targets(source: SourceFile) -> list[DiscoveredTarget] | None:
    """Find calibration targets in one Python source file, without importing it.

    When: ``register-target PATH`` and preflight.
    Returns: the targets found or ``None``. Collecting hook, like :func:`mops_discover_models`.
    """


@hookspec
def mops_code_dependencies(model: DiscoveredModel, project: Project) -> CodeDependencies | None:
    """Project-local code a model depends on (the transitive closure of its imports).

    When: ``register-model`` and before every push, to refresh the model registry's code digests.
    Returns: the dependencies, or ``None`` to leave the decision to other plugins.
    Ordering: collecting hook; the union of all answers is used.
    """


# ---------------------------------------------------------------------------------------------- running


@hookspec(firstresult=True)
def mops_model_runner(model: RunnableModel) -> ModelRunner | None:
    """Provide the runner for one registered model: how to build it, run it with parameters and a seed,
    and hand back its outputs.

    When: once per run, by :func:`modelops_bundle.api.run_model` (and so by the ModelOps worker and the
    Dask integration), after the bundle is materialised and *before* any model code is imported.
    Arguments: ``model`` -- the registered model: ``id``, ``framework`` (``"calabaria"`` for a registry
    entry that names none, as upstream ModelOps tools write them), ``entrypoint``, its registry
    ``record`` and the ``root`` of the materialised tree.
    Returns: a :class:`~modelops_bundle.core.runner.ModelRunner` -- ``run(target, request) -> RunOutput``,
    called with the object the entrypoint names, imported from the tree in isolation -- or ``None`` when
    this plugin does not run models of ``model.framework``. First-result hook; the built-in runners
    (``calabaria``, ``starsim``) are ``trylast``, so a plugin can replace them. A model no plugin answers
    for fails with an error naming its framework and this hook, before its code is imported.
    """


# ---------------------------------------------------------------------------------------------- hashing


@hookspec(firstresult=True)
def mops_file_hasher(algorithm: str) -> Hasher | None:
    """Provide the content hasher for ``algorithm``: ``"sha256"`` (the default) or ``"sha512"`` -- the only
    digests a bundle index records; any other ``hash_algorithm`` is refused before this hook is asked.

    When: once per command that hashes files. The core owns the stat cache and the worker threads and
    calls the returned hasher's ``digest_fileobj`` only for files whose stat signature changed.
    Returns: a :class:`~modelops_bundle.core.hashing.Hasher` whose ``algorithm`` is ``algorithm``, or
    ``None`` if this plugin does not provide it. The hasher must compute the *standard* digests (faster,
    perhaps): every check of bytes recomputes them through ``core.hashing.new_content_hash``, and a
    hasher that differs on a probe is refused the first time it hashes. First-result hook: the built-in
    ``sha256`` plugin is ``trylast``.
    """


@hookspec(firstresult=True)
def mops_code_fingerprint(path: Path, source: bytes) -> str | None:
    """A digest of Python source that ignores what cannot change behaviour (comments, formatting).

    When: computing a model's code digest when the model registry asks for fingerprints.
    Returns: ``"<algorithm>:<hex>"`` or ``None`` to defer to the next plugin. First-result hook.
    """


# ---------------------------------------------------------------------------------------------- storage


@hookspec
def mops_storage_providers() -> Sequence[StorageProviderClass]:
    """Blob-storage provider classes (``local``, ``azure``, ``s3``, ``gcs``, ``oci``, ...).

    When: when a command needs to read or write blob-stored files, and by ``mops bundle plugins``.
    Returns: classes with a class attribute ``name``; configuration selects one by that name.
    Ordering: named providers -- a third-party class replaces a built-in of the same name.
    """


# --------------------------------------------------------------------------------------------- registry


@hookspec
def mops_registry_backends() -> Sequence[RegistryBackendClass]:
    """OCI registry backend classes (``oci-layout``, ``oci-distribution``, ...).

    When: when a command talks to a registry (push, pull, diff, tags, ensure).
    Returns: classes with a class attribute ``name``; the environment's ``registry.provider`` selects one
    by that name, and it is constructed with the registry settings (a ``dict``).
    Ordering: named providers, as for :func:`mops_storage_providers`.
    """


# -------------------------------------------------------------------------------------------- packaging


@hookspec(firstresult=True)
def mops_storage_tier(entry: IndexEntry, policy: StoragePolicy, blob_available: bool) -> str | None:
    """Decide where one file is stored: ``"oci"`` (in the registry) or ``"blob"`` (object storage).

    When: for every tracked file while a push builds its index. ``policy`` is the project's
    ``storage:`` section; ``blob_available`` says whether the push has a blob store to send files to.
    Returns: ``"oci"``, ``"blob"`` or ``None`` to defer. First-result hook; the built-in applies the
    ``storage:`` policy of ``config.yaml`` (mode, threshold, force patterns) and is ``trylast``.
    """


@hookspec(firstresult=True)
def mops_plan_layers(entries: Sequence[IndexEntry], policy: StoragePolicy) -> LayerPlan | None:
    """Group registry-stored files into OCI layers (raw layers for large files, packed tar+gzip for small).

    When: once per push, after tiers are decided.
    Returns: a :class:`~modelops_bundle.core.packaging.LayerPlan` or ``None`` to defer. First-result hook.
    """


@hookspec
def mops_manifest_annotations(index: BundleIndex, project: Project) -> Mapping[str, str] | None:
    """Extra annotations for the manifest of a version being pushed.

    When: once per push, after the index is built.
    Returns: a mapping of annotation keys to string values (use your own reverse-DNS prefix).
    Ordering: collecting hook; results are merged, earlier (third-party) results win on equal keys.
    """


@hookspec
def mops_extra_files(project: Project) -> Sequence[str] | None:
    """Project-relative paths that must travel in every version even when not tracked.

    When: once per push and status. The model registry (``.modelops-bundle/registry.yaml``) comes in
    through this hook. Returns: POSIX paths relative to the project root. Collecting hook (union).
    """


# ---------------------------------------------------------------------------------------------- signing


@hookspec
def mops_signers() -> Sequence[type[Signer]]:
    """Signer classes that keep private keys outside the tool (a PKCS#11 token, a cloud KMS, a lab's HSM).

    When: when ``sign``, ``push --sign`` or ``key export --public`` is given ``--key SCHEME:KEY``.
    Returns: classes with a class attribute ``name`` (the scheme), constructed as
    ``cls(key=KEY, environ=...)``, with ``public_key_pem() -> bytes`` (an ECDSA P-256 or Ed25519
    SubjectPublicKeyInfo PEM) and ``sign(data: bytes) -> bytes`` (:class:`~modelops_bundle.core.keys.Signer`).
    Every signature is checked against the public key before it is used.
    Ordering: named providers -- a third-party class replaces a built-in of the same name (there is none:
    the built-in key store and PEM files are not plugins).
    """


# ----------------------------------------------------------------------------------------------- events


@hookspec
def mops_push_finished(result: Mapping[str, Any]) -> None:
    """Observe a completed push.

    When: after the manifest is stored and the tag moved. ``result`` holds at least ``reference``,
    ``digest``, ``uploaded_bytes`` and ``files``. Returns nothing; exceptions are reported, not raised.
    """


@hookspec
def mops_pull_finished(result: Mapping[str, Any]) -> None:
    """Observe a completed pull or ensure.

    When: after every file is placed. ``result`` holds at least ``reference``, ``digest``,
    ``destination`` and ``files``. Returns nothing; exceptions are reported, not raised.
    """
