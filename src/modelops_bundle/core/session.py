"""A project session: one command's plugin host, workspace, environment and settings, opened once.

Everything that asks "where does this project's version go?" asks the session: its
:attr:`~Session.target` (registry and why), :meth:`~Session.reference` (the repository and tag, or a
``--ref``), :meth:`~Session.open_registry` and :meth:`~Session.open_blob_store`. Settings are read on
first use, so a command pays only for what it touches (a warm ``status --offline`` never reads an
environment file).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelops_bundle.core.errors import BundleError, StorageError
from modelops_bundle.core.reference import Reference, parse_ref_option

if TYPE_CHECKING:
    from pathlib import Path

    from modelops_bundle.core.hashing import Hasher
    from modelops_bundle.core.index import IndexEntry
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.registry import RegistryBackend
    from modelops_bundle.core.registry_select import RegistryTarget
    from modelops_bundle.core.settings import Environment, ProjectConfig
    from modelops_bundle.core.storage import BlobTransfers
    from modelops_bundle.core.workspace import Workspace


class Session:
    """One project as a command sees it. ``env_name`` overrides the project's pinned environment
    (``api.materialize(folder, env=...)``). Call :meth:`save_caches` at the end."""

    def __init__(
        self, host: PluginHost, ws: Workspace, environ: Mapping[str, str], *, env_name: str | None = None
    ) -> None:
        self.host = host
        self.ws = ws
        self.environ = environ
        self._env_name = env_name
        self._config: ProjectConfig | None = None
        self._environment: Environment | None = None
        self._target: RegistryTarget | None = None
        #: Things the user should know that are not errors (a pinned registry kept on migration).
        self.notices: list[str] = []

    # ------------------------------------------------------------------------------------- settings

    @property
    def env_name(self) -> str:
        return self._env_name or self.ws.env_name()

    @property
    def environment(self) -> Environment:
        """The environment the project pins (or ``env_name`` names); a pin naming no environment is an
        error naming the pin file."""
        if self._environment is None:
            from modelops_bundle.core.envfiles import environment_exists
            from modelops_bundle.core.settings_files import load_environment

            name = self.env_name
            if self._env_name is None and not environment_exists(name, self.environ):
                from modelops_bundle.core.envfiles import list_environments
                from modelops_bundle.core.errors import ConfigError

                raise ConfigError(
                    f"{self.ws.project.env_path}: the project's environment {name!r} does not exist",
                    hint=f"available: {', '.join(list_environments(self.environ))}; pick one with "
                    "'mops bundle env switch NAME'",
                )
            self._environment = load_environment(name, self.environ, self.ws.memo)
        return self._environment

    @property
    def config(self) -> ProjectConfig:
        """``config.yaml``; one written by an earlier release is migrated on first read
        (:func:`.config_migration.migrate_registry_ref`)."""
        if self._config is None:
            file = self.ws.config_file()
            config = file.config
            if file.legacy_registry_ref is not None:
                from modelops_bundle.core.config_migration import migrate_registry_ref

                config, notice = migrate_registry_ref(self.ws, file, self.environment, self.env_name)
                if notice:
                    self.notices.append(notice)
            self._config = config
        return self._config

    def use_config(self, config: ProjectConfig) -> None:
        """Go on with ``config`` (the ``config`` command just wrote it): the target is decided again."""
        self._config = config
        self._target = None

    @property
    def repository(self) -> str:
        """The repository versions go to: ``config.yaml``'s, else named after the project folder."""
        return self.config.repository or self.ws.project.name

    @property
    def target(self) -> RegistryTarget:
        """Where versions go, and why (:func:`.registry_select.resolve_target`)."""
        if self._target is None:
            from modelops_bundle.core.registry_select import resolve_target

            self._target = resolve_target(self.environment, self.environ, pinned=self.config.registry)
        return self._target

    def reference(self, value: str | None = None) -> Reference:
        """The project's repository at its default tag, or ``value`` (``--ref``: a tag, a digest, a short
        digest or a full reference) against it."""
        base = Reference(self.repository, None, self.config.default_tag)
        if not value:
            return base
        reference = parse_ref_option(value, base)
        if reference.prefix is not None:  # a short digest also knows the versions this project synced
            reference = reference._replace(prefix=reference.prefix.knowing(self.ws.state().known()))
        return reference

    def describe(self, reference: Reference) -> str:
        """``reference`` with the registry it lives on: ``host/namespace/repo:tag`` for an HTTP
        registry, ``repo:tag`` for a layout (whose folder ``target.display()`` names)."""
        if reference.registry is not None:
            return str(reference)
        from modelops_bundle.core.registry_select import LAYOUT
        from modelops_bundle.core.settings import split_address

        try:
            target = self.target
        except BundleError:
            return str(reference)
        if target.backend == LAYOUT:
            return str(reference)
        host, namespace = split_address(target.address)
        repository = f"{namespace}/{reference.repository}" if namespace else reference.repository
        return str(reference._replace(registry=host, repository=repository))

    def blob_store_summary(self) -> tuple[str, str]:
        """``(what, why)``: the blob store a push would use, without opening it -- ``("azure container
        'c'", "environment 'dev'")`` -- or ``("none", why)`` when every file stays in the registry."""
        from modelops_bundle.core.storage import DEFAULT_PROVIDER, requested_provider

        policy = self.ws.config().storage
        storage = self.environment.storage
        if policy.mode == "oci":
            return "none", "the project's config.yaml (storage.mode: oci)"
        if not self.blob_tier_available(uploading=True):
            return "none", f"environment {self.env_name!r} has no blob store"
        name = requested_provider(storage, policy) or DEFAULT_PROVIDER
        own = bool(policy.provider)
        where = policy.container or (storage.container if storage is not None else None)
        if where is None and storage is not None and storage.path and not own:
            where = storage.path
        what = f"{name} {where}" if where else name
        why = "the project's config.yaml (storage.provider)" if own else f"environment {self.env_name!r}"
        return what, why

    def hasher(self) -> Hasher:
        from modelops_bundle.core.hashing import resolve_hasher

        return resolve_hasher(self.host.hook, self.ws.config().hash_algorithm)

    # -------------------------------------------------------------------------------- opening stores

    def open_registry(self, reference: Reference) -> RegistryBackend:
        """The registry backend ``reference`` lives on (no network traffic yet)."""
        from modelops_bundle.core.registry_select import open_registry, reference_target

        target = reference_target(self.environment, self.environ, reference, pinned=self.config.registry)
        return open_registry(self.host, target, self.environ)

    def blob_tier_available(self, *, uploading: bool) -> bool:
        """Whether files can go to (or come from) a blob store -- known without opening one, so
        ``status --files`` connects to nothing (:func:`.storage.blob_tier_available`)."""
        from modelops_bundle.core.storage import blob_tier_available

        policy = self.ws.config().storage
        return blob_tier_available(self.host, self.environment.storage, policy, uploading=uploading)

    def open_blob_store(self, *, uploading: bool, progress: Any = None) -> BlobTransfers | None:
        """The blob store of the environment and the project's ``storage:`` policy (``None`` when there
        is none, or the policy keeps every file in the registry while ``uploading``)."""
        from modelops_bundle.core.storage import open_blob_transfers

        return open_blob_transfers(
            self.host,
            self.environment.storage,
            self.ws.config().storage,
            self.environ,
            progress=progress,
            hasher=self.hasher(),
            uploading=uploading,
        )

    def blob_fetcher(self, progress: Any = None) -> LazyBlobFetcher:
        return LazyBlobFetcher(self, progress)

    def save_caches(self) -> None:
        """Save what this command learnt (stat cache, settings memo); best effort."""
        self.ws.save_caches()


class LazyBlobFetcher:
    """A pull's blob fetcher that opens the environment's blob store only if a version needs it, so a
    version kept wholly in the registry never depends on blob-store settings or SDKs."""

    def __init__(self, session: Session, progress: Any = None) -> None:
        self._session = session
        self._progress = progress
        self._store: BlobTransfers | None = None

    def _open(self) -> BlobTransfers:
        if self._store is None:
            store = self._session.open_blob_store(uploading=False, progress=self._progress)
            if store is None:
                raise StorageError(
                    "this version keeps files in blob storage, and no blob store is configured for the "
                    f"environment {self._session.env_name!r}",
                    hint="add a storage: section to the environment file (mops bundle env show)",
                )
            self._store = store
        return self._store

    def __call__(self, entry: IndexEntry, dest: Path) -> None:
        self._open()(entry, dest)

    def fetch_many(self, items: list[tuple[IndexEntry, Path]], *, jobs: int) -> Any:
        return self._open().fetch_many(items, jobs=jobs)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
