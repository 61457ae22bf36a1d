"""Blob storage: the provider contract, content-addressed keys, pointers and verified transfers.

Files above the storage threshold live in object storage; the bundle index keeps only a
:class:`BlobPointer` (URI, size, digest) -- never a credential or a signed URL. Objects are keyed by
content (``<prefix>/sha256/ab/cd/<hex>``), so an upload whose object already exists is skipped and two
projects sharing a file share one object.

Providers are named plugins (``mops_storage_providers``); each subclasses :class:`StorageProvider` and
implements a handful of primitives (stat, upload, download). Everything that must be the same for every
provider lives here, in the base class, so a third-party provider gets it for free:

* downloads go to a partial file next to the destination, are checked for size and digest, and only
  then renamed into place -- a bad or interrupted download never leaves a file behind;
* uploads are skipped when an object of the same size already exists at the content key;
* many transfers run concurrently on threads (``jobs``), largest first, failing fast;
* every failure is a :class:`StorageError` (or :class:`IntegrityError`) naming the provider, the
  container and the key, with every configured secret scrubbed from the text.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from modelops_bundle.core.errors import BundleError, ConfigError, IntegrityError, PluginError, StorageError, UsageError
from modelops_bundle.core.fsutil import create_temp_file, describe_os_error
from modelops_bundle.core.hashing import signature as stat_signature
from modelops_bundle.core.hashing import split_digest
from modelops_bundle.core.registry import TransferProgress, TransferStats
from modelops_bundle.core.secrecy import Secret, secret_values
from modelops_bundle.core.settings import StoragePolicy, StorageSection

if TYPE_CHECKING:
    from modelops_bundle.core.blob_seals import BlobSeals
    from modelops_bundle.core.hashing import Hasher
    from modelops_bundle.core.index import IndexEntry
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.providers import StorageProviderClass

#: Concurrent transfers unless the caller says otherwise.
DEFAULT_JOBS = 5
#: Names that select another provider's class (ecosystem environment files use them).
PROVIDER_ALIASES: Mapping[str, str] = {"azurite": "azure", "minio": "s3"}
#: The provider a project gets when neither its config nor its environment names one.
DEFAULT_PROVIDER = "local"

_READ_CHUNK = 1024 * 1024
_HEX = re.compile(r"^[0-9a-f]+$")
_ALGORITHM = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_REASON_LIMIT = 300

ByteCounter = Callable[[int], None]
"""Receives the number of bytes moved since the last call (progress reporting)."""


# ---------------------------------------------------------------------------------------------- keys


def normalise_prefix(prefix: str) -> str:
    """``prefix`` without surrounding or doubled slashes; refuses ``.``/``..`` segments."""
    parts = [part for part in prefix.strip().split("/") if part]
    if any(part in {".", ".."} for part in parts):
        raise ConfigError(f"storage prefix {prefix!r} must not contain '.' or '..' segments")
    return "/".join(parts)


def blob_key(prefix: str, digest: str) -> str:
    """The content-addressed object key: ``<prefix>/<algorithm>/ab/cd/<hex>``.

    The two fan-out levels keep any one "folder" small on file-system-like stores; with an empty
    prefix the key has no leading slash.
    """
    algorithm, hexdigest = split_digest(digest)
    if not _ALGORITHM.match(algorithm) or len(hexdigest) < 8 or not _HEX.match(hexdigest):
        raise IntegrityError(f"malformed digest {digest!r} (expected '<algorithm>:<lowercase hex>')")
    parts = [normalise_prefix(prefix), algorithm, hexdigest[:2], hexdigest[2:4], hexdigest]
    return "/".join(part for part in parts if part)


def check_key(key: str) -> str:
    """A relative object key without empty, ``.`` or ``..`` segments (pointers come from bundles,
    which may come from anyone: a key must never climb out of its container or folder)."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in {"", ".", ".."} for part in parts) or "\\" in key:
        raise StorageError(f"invalid object key {key!r}")
    return key


@dataclass(frozen=True)
class BlobPointer:
    """Where a blob-stored file's bytes are: provider-neutral, credential-free, verifiable.

    ``uri`` is ``<scheme>://<container>/<key>`` (``s3://bucket/prefix/sha256/ab/cd/<hex>``); ``size`` and
    ``digest`` (``sha256:<hex>``) are what every download is checked against.
    """

    uri: str
    size: int
    digest: str

    def __post_init__(self) -> None:
        scheme, sep, rest = self.uri.partition("://")
        if not sep or not scheme or not rest:
            raise IntegrityError(f"blob pointer {self.uri!r} is not a URI ('<scheme>://...')")
        # A pointer travels inside bundles: refuse anything that could carry a credential.
        if "?" in rest or "#" in rest or "@" in rest.split("/", 1)[0]:
            raise IntegrityError(f"blob pointer {self.uri!r} must not carry credentials, queries or signatures")
        if self.size < 0:
            raise IntegrityError(f"blob pointer {self.uri!r} has a negative size")
        split_digest(self.digest)

    @property
    def scheme(self) -> str:
        return self.uri.partition("://")[0].lower()

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "size": self.size, "digest": self.digest}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BlobPointer:
        uri, size, digest = data.get("uri"), data.get("size"), data.get("digest")
        if (
            not isinstance(uri, str)
            or not isinstance(size, int)
            or isinstance(size, bool)
            or not isinstance(digest, str)
        ):
            raise IntegrityError(f"malformed blob pointer {dict(data)!r} (needs uri, size, digest)")
        return cls(uri=uri, size=size, digest=digest)


@dataclass(frozen=True)
class BlobUpload:
    """One file to store: its path, digest and size as hashed; ``label`` names it in messages.

    ``hashed_at`` is the file's ``(device, inode, size, mtime_ns)`` when its digest was computed, when
    known: a file that still has it before and after the upload changed nothing since, so a store with
    seals may vouch for the object it became.
    """

    path: Path
    digest: str
    size: int
    label: str = ""
    hashed_at: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class BlobDownload:
    """One object to fetch to ``dest`` (verified against ``pointer`` before it appears there)."""

    pointer: BlobPointer
    dest: Path
    label: str = ""


# ------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class ProviderSettings:
    """What a provider is constructed from: the project policy merged with the environment.

    ``provider`` is the name that selected the class; ``flavour`` is the environment's own spelling
    (``azurite``, ``minio``), so a provider can apply that flavour's defaults; ``options`` are the extra
    keys of the environment's ``storage:`` section (``region``, ``account_name``, ``project``,
    ``storage_options`` ...). ``environ`` is where credential chains (``AZURE_STORAGE_CONNECTION_STRING``,
    ``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``) are read; ``scheme_owners`` maps URI schemes to
    provider names, for messages about foreign pointers. Nothing that may hold a secret is in the repr.
    """

    provider: str
    flavour: str = ""
    container: str | None = None
    prefix: str = ""
    path: str | None = None
    endpoint: str | None = None
    connection_string: Secret | None = None
    access_key: str | None = None
    secret_key: Secret | None = None
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    scheme_owners: Mapping[str, str] = field(default_factory=dict, repr=False)

    def secret_values(self) -> list[str]:
        """Every configured secret, for scrubbing messages (longest first, so parts do not win)."""
        pairs = [("connection_string", self.connection_string), ("secret_key", self.secret_key)]
        return secret_values([*pairs, *self.options.items()])


def canonical_provider(name: str) -> str:
    lowered = name.strip().lower()
    return PROVIDER_ALIASES.get(lowered, lowered)


def requested_provider(env_storage: StorageSection | None, policy: StoragePolicy) -> str | None:
    """The provider name the project's policy, else its environment, asks for (``None``: neither)."""
    name = policy.provider or (env_storage.provider if env_storage is not None else None)
    return name.strip() if name else None


def resolve_settings(
    env_storage: StorageSection | None,
    policy: StoragePolicy,
    environ: Mapping[str, str],
    *,
    scheme_owners: Mapping[str, str] | None = None,
) -> ProviderSettings:
    """Merge the project's ``storage:`` policy with the environment's ``storage:`` section.

    The project is more specific than the environment, so its ``provider`` and ``container`` win
    (like git's local config over the global one). The environment's credentials and endpoint belong
    to the environment's provider: they apply only when both name the same provider (after aliases),
    otherwise the chosen provider falls back to its standard credential chain.
    """
    env = env_storage if env_storage is not None else StorageSection()
    requested = requested_provider(env_storage, policy) or DEFAULT_PROVIDER
    if not requested:
        raise ConfigError("storage provider name is empty")
    same = env.provider is None or canonical_provider(env.provider) == canonical_provider(requested)
    return ProviderSettings(
        provider=requested,
        flavour=(env.provider if same and env.provider else requested).strip().lower(),
        container=policy.container or (env.container if same else None),
        prefix=normalise_prefix(policy.prefix),
        path=env.path if same else None,
        endpoint=env.endpoint if same else None,
        connection_string=env.connection_string if same else None,
        access_key=env.access_key if same else None,
        secret_key=env.secret_key if same else None,
        options=dict(env.options) if same else {},
        environ=dict(environ),
        scheme_owners=dict(scheme_owners or {}),
    )


# ------------------------------------------------------------------------------------------ provider


class StorageProvider(ABC):
    """Base class of every blob-storage provider.

    A subclass sets ``name`` (what configuration selects), ``schemes`` (URI schemes its pointers use)
    and implements the primitives :meth:`_stat_size`, :meth:`_upload`, :meth:`_download`,
    :meth:`uri`, :meth:`parse_uri` and :meth:`describe`. The primitives may raise anything; the public
    methods turn it into :class:`StorageError` via :meth:`_reason` (override it to explain SDK errors).
    Primitives are called from several threads at once and must be thread-safe.
    """

    name: ClassVar[str] = ""
    #: URI schemes this provider's pointers use; the first one is what :meth:`uri` writes.
    schemes: ClassVar[tuple[str, ...]] = ()
    #: True for a provider that keeps files in the registry (``oci``): packaging offloads nothing.
    is_registry_tier: ClassVar[bool] = False

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.prefix = normalise_prefix(settings.prefix)
        self._secrets = settings.secret_values()
        #: Remembered verifications of this store's objects (:mod:`.blob_seals`): only a provider whose
        #: objects are local files can have them; a download of a sealed, unchanged object is not re-hashed.
        self.seals: BlobSeals | None = None

    # ------------------------------------------------------------------ primitives (subclasses)

    @abstractmethod
    def describe(self) -> str:
        """Human name of the store for messages (``s3 bucket 'b' at http://...``), never a secret."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """The pointer URI for ``key`` (``s3://bucket/key``)."""

    @abstractmethod
    def parse_uri(self, uri: str) -> str:
        """The key of a pointer URI this provider wrote; :class:`StorageError` for any other URI."""

    @abstractmethod
    def _stat_size(self, key: str) -> int | None:
        """Size of the object at ``key``, or ``None`` when there is none."""

    @abstractmethod
    def _upload(self, path: Path, key: str, size: int, on_bytes: ByteCounter) -> None:
        """Stream the local file ``path`` to ``key`` (overwriting); bounded memory whatever ``size``."""

    @abstractmethod
    def _download(self, key: str, partial: Path, size: int, on_bytes: ByteCounter) -> None:
        """Stream the object at ``key`` into the local file ``partial`` (a fresh name: create the file)."""

    def _container_exists(self) -> bool | None:
        """Whether the configured container/bucket exists (``None``: cannot tell). Used only to explain
        a "not found" failure."""
        return None

    def _reason(self, exc: BaseException) -> str | None:
        """A short, secret-free explanation of an SDK error, or ``None`` for the generic one."""
        return None

    def close(self) -> None:
        """Release connections; the provider is not used afterwards."""
        return None

    # -------------------------------------------------------------------------------- public

    def pointer(self, digest: str, size: int) -> BlobPointer:
        """The pointer a file of this digest and size gets -- known before anything is uploaded."""
        self._require_blob_tier()
        return BlobPointer(uri=self.uri(blob_key(self.prefix, digest)), size=size, digest=digest)

    def key_for(self, digest: str) -> str:
        return blob_key(self.prefix, digest)

    def exists(self, key: str) -> bool:
        """Whether an object exists at ``key``."""
        self._require_blob_tier()
        check_key(key)
        try:
            return self._stat_size(key) is not None
        except BundleError:
            raise
        except Exception as exc:
            raise self._failure("check", key, exc) from exc

    def put_file(
        self,
        key: str,
        path: Path,
        size: int,
        *,
        on_bytes: ByteCounter | None = None,
        digest: str | None = None,
        hashed_at: tuple[int, int, int, int] | None = None,
    ) -> bool:
        """Upload ``path`` to ``key`` unless an object of ``size`` bytes is already there.

        Returns ``True`` when bytes were sent, ``False`` when the upload was skipped. The local file
        must still have ``size`` bytes (it was hashed at that size) -- and the signature ``hashed_at``
        when given --, and the stored object is checked for its size afterwards. With ``digest`` and
        ``hashed_at`` a store with seals seals the new object when the file kept its signature throughout.
        """
        self._require_blob_tier()
        check_key(key)
        counter = on_bytes or _ignore_bytes
        try:
            st = os.stat(path)
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if st.st_size != size or (hashed_at is not None and stat_signature(st) != hashed_at):
            now = f"{st.st_size} bytes now, {size} expected" if st.st_size != size else "modified"
            raise IntegrityError(f"{path} changed since it was hashed ({now}); run the command again")
        try:
            if self._stat_size(key) == size:
                return False
            self._upload(Path(path), key, size, counter)
            stored = self._stat_size(key)
        except BundleError:
            raise
        except Exception as exc:
            raise self._failure("upload to", key, exc) from exc
        if stored != size:
            found = "no object" if stored is None else f"{stored} bytes"
            raise StorageError(
                self._scrub(f"{self.name}: upload to {self.uri(key)} left {found}, expected {size} bytes")
            )
        if self.seals is not None and digest is not None and hashed_at is not None:
            with contextlib.suppress(OSError):
                if stat_signature(os.stat(path)) == hashed_at:
                    sealed = self.seals.signature(key)
                    if sealed is not None and sealed[2] == size:
                        self.seals.record(key, digest, sealed)
        return True

    def get_to_file(
        self,
        key: str,
        dest: Path,
        size: int,
        digest: str,
        *,
        on_bytes: ByteCounter | None = None,
        hasher: Hasher | None = None,
    ) -> None:
        """Download ``key`` to ``dest``, verified: streamed into a partial file beside ``dest``, checked
        for ``size`` and ``digest``, then renamed. On any failure the partial file is removed and
        ``dest`` is left as it was; a mismatch raises :class:`IntegrityError` naming provider and object.

        ``hasher``: the project's file hasher, used when it is of ``digest``'s algorithm.
        """
        self._require_blob_tier()
        check_key(key)
        algorithm, expected = split_digest(digest)
        dest = Path(dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, partial_name = create_temp_file(dest.parent, f".{dest.name}.", ".partial")
            os.close(fd)
            # The name is ours (random, and proven writable); the file itself is left for the download
            # to create. An SDK opening an existing empty file with O_TRUNC trips ext4's auto_da_alloc,
            # which writes the whole file back to disk when it is closed: 2x the time of a local copy.
            os.unlink(partial_name)
        except OSError as exc:
            raise StorageError(f"cannot write into {dest.parent}: {exc.strerror or exc}") from exc
        partial = Path(partial_name)
        seals = self.seals
        before = seals.signature(key) if seals is not None else None
        try:
            try:
                self._download(key, partial, size, on_bytes or _ignore_bytes)
            except BundleError:
                raise
            except Exception as exc:
                raise self._failure("download", key, exc) from exc
            try:
                got_size = partial.stat().st_size
            except OSError as exc:  # an SDK removed its output after a failure it did not raise
                raise StorageError(f"{self.name}: download of {self.uri(key)} left no file") from exc
            if got_size != size:
                raise IntegrityError(
                    self._scrub(
                        f"{self.name}: {self.uri(key)} has {got_size} bytes but its pointer says {size}; "
                        "the download was discarded"
                    )
                )
            # The object kept one signature throughout the copy: the bytes copied are the object's as
            # it stood then, so a seal made (or held) for that signature speaks for the copy.
            steady = trusted = False
            if seals is not None and before is not None:
                steady = seals.signature(key) == before
                trusted = steady and seals.vouches(key, digest, before)
            if not trusted:
                got = _file_digest(partial, algorithm, hasher)
                if got != expected:
                    raise IntegrityError(
                        self._scrub(
                            f"{self.name}: {self.uri(key)} does not match its digest "
                            f"(expected {algorithm}:{expected}, got {algorithm}:{got}); the download was discarded"
                        )
                    )
                if steady:
                    assert seals is not None and before is not None
                    seals.record(key, digest, before)
            try:
                os.replace(partial, dest)
            except OSError as exc:
                raise StorageError(describe_os_error("write", dest, exc)) from exc
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise

    def upload_many(
        self, items: Sequence[BlobUpload], *, jobs: int = DEFAULT_JOBS, progress: TransferProgress | None = None
    ) -> TransferStats:
        """Store every file concurrently (``jobs`` threads); files with one digest are sent once.

        Returns counts of uploaded and skipped objects. The first failure stops new transfers; the
        ones running finish, then the failure is raised.
        """
        self._require_blob_tier()
        unique: dict[str, BlobUpload] = {}
        for item in items:
            unique.setdefault(self.key_for(item.digest), item)
        stats = TransferStats()
        lock = threading.Lock()

        def upload(key: str, item: BlobUpload, counter: ByteCounter) -> None:
            sent = self.put_file(
                key, item.path, item.size, on_bytes=counter, digest=item.digest, hashed_at=item.hashed_at
            )
            with lock:
                if sent:
                    stats.uploaded_blobs += 1
                    stats.uploaded_bytes += item.size
                else:
                    stats.skipped_blobs += 1

        tasks = [
            _Task(item.size, item.label or str(item.path), _bind(upload, key, item)) for key, item in unique.items()
        ]
        try:
            _run_tasks(tasks, jobs=jobs, progress=progress)
        finally:
            self.save_seals()
        return stats

    def download_many(
        self,
        items: Sequence[BlobDownload],
        *,
        jobs: int = DEFAULT_JOBS,
        progress: TransferProgress | None = None,
        hasher: Hasher | None = None,
    ) -> TransferStats:
        """Fetch every pointer to its destination concurrently, each verified before it is placed.

        Every pointer is checked first: one that names another provider or container fails the whole
        batch before anything is transferred.
        """
        keys = [self.parse_uri(item.pointer.uri) for item in items]
        self._require_blob_tier()
        stats = TransferStats()
        lock = threading.Lock()

        def download(key: str, item: BlobDownload, counter: ByteCounter) -> None:
            self.get_to_file(key, item.dest, item.pointer.size, item.pointer.digest, on_bytes=counter, hasher=hasher)
            with lock:
                stats.downloaded_blobs += 1
                stats.downloaded_bytes += item.pointer.size

        tasks = [
            _Task(item.pointer.size, item.label or str(item.dest), _bind(download, key, item))
            for key, item in zip(keys, items, strict=True)
        ]
        try:
            _run_tasks(tasks, jobs=jobs, progress=progress)
        finally:
            self.save_seals()
        return stats

    def use_seals(self, root: Path, locate: Callable[[str], str]) -> None:
        """Remember this store's verified objects (decision 0016), for a store whose objects are files in
        the local folder ``root`` (``locate(key)``: an object's path): a download of an object that has
        not changed since it was verified is not hashed again. POSIX only (seals rest on the ctime
        changing with every write); elsewhere every download is hashed."""
        if os.name != "posix":
            return
        from modelops_bundle.core.blob_seals import BlobSeals, seals_path
        from modelops_bundle.core.envfiles import modelops_home

        self.seals = BlobSeals(seals_path(modelops_home(self.settings.environ), root), locate)

    def save_seals(self) -> None:
        """Keep what this process verified about the store's objects (see :mod:`.blob_seals`)."""
        if self.seals is not None:
            self.seals.save()

    # ------------------------------------------------------------------------------- helpers

    def foreign_uri(self, uri: str, expected: str) -> StorageError:
        """The error for a pointer this provider cannot serve, naming who could."""
        scheme = uri.partition("://")[0].lower()
        owner = self.settings.scheme_owners.get(scheme)
        if owner and owner != self.name:
            return StorageError(
                f"blob pointer {uri} belongs to storage provider {owner!r}, but this environment uses {self.name!r}",
                hint=f"use an environment whose storage provider is {owner!r} to fetch this bundle",
            )
        return StorageError(
            f"blob pointer {uri} is not in this environment's storage ({self.describe()}; expected {expected}...)",
            hint="use the environment the bundle was pushed with, or copy its blobs into this storage",
        )

    def _require_blob_tier(self) -> None:
        if self.is_registry_tier:
            raise UsageError(
                f"storage provider {self.name!r} keeps files in the registry: no file is offloaded to blob storage",
                hint="choose a blob provider (local, azure, s3, gcs) in the environment or storage.provider",
            )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text

    def _failure(self, action: str, key: str, exc: BaseException) -> StorageError:
        reason = self._explain(exc)
        where = self.describe()
        context = "" if where in reason else f" ({where})"
        return StorageError(self._scrub(f"{self.name}: cannot {action} {self.uri(key)}: {reason}{context}"))

    def _explain(self, exc: BaseException) -> str:
        chain = list(_exception_chain(exc))
        for item in chain:
            specific = self._reason(item)
            if specific:
                return specific
        for item in chain:
            if isinstance(item, FileNotFoundError):
                return self._not_found()
            if isinstance(item, PermissionError):
                return "access denied (check the storage credentials and their permissions)"
            if isinstance(item, (ConnectionError, socket.gaierror)) or (
                isinstance(item, OSError) and item.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
            ):
                return "cannot reach the storage endpoint (is the service running and the address right?)"
            if isinstance(item, TimeoutError):
                return "the storage endpoint did not answer in time"
        return _generic_reason(exc)

    def _not_found(self) -> str:
        try:
            container = self._container_exists()
        except Exception:
            container = None
        if container is False:
            return f"{self.describe()} does not exist"
        return "object not found"


def available_providers(host: PluginHost) -> dict[str, StorageProviderClass]:
    """Provider classes by name, after plugin overrides. The built-ins are lazy stand-ins
    (:class:`~modelops_bundle.core.providers.LazyProviderClass`): a provider's module is imported only
    when that provider is opened, and checked then; a class given as itself is checked now."""
    from modelops_bundle.core.providers import LazyProviderClass

    providers = host.hook.mops_storage_providers()
    for name, cls in providers.items():
        if not isinstance(cls, LazyProviderClass):
            provider_type(name, cls)
    return providers


def provider_type(name: str, cls: StorageProviderClass) -> type[StorageProvider]:
    """The real class of the provider ``name`` (imported now if it was lazy), checked to be a provider."""
    from modelops_bundle.core.providers import resolve_class

    real = resolve_class(cls)
    if not (isinstance(real, type) and issubclass(real, StorageProvider)):
        raise PluginError(f"storage provider {name!r} ({real!r}) does not subclass modelops_bundle StorageProvider")
    return real


def scheme_owners(providers: Mapping[str, StorageProviderClass]) -> dict[str, str]:
    owners: dict[str, str] = {}
    for name, cls in sorted(providers.items()):
        for scheme in cls.schemes:
            owners.setdefault(scheme.lower(), name)
    return owners


def open_storage(
    host: PluginHost,
    env_storage: StorageSection | None,
    policy: StoragePolicy,
    environ: Mapping[str, str],
) -> StorageProvider:
    """The provider for a project in an environment, selected by name among the plugins' providers.

    ``azurite`` selects ``azure`` and ``minio`` selects ``s3`` unless a plugin provides those names
    itself. An unknown name is a :class:`ConfigError` listing the known ones.
    """
    providers = available_providers(host)
    settings = resolve_settings(env_storage, policy, environ, scheme_owners=scheme_owners(providers))
    cls = provider_class(providers, settings.provider)
    if cls is None:
        known = ", ".join(sorted(providers)) or "(none: is the built-in storage plugin disabled?)"
        aliases = ", ".join(f"{alias} -> {target}" for alias, target in sorted(PROVIDER_ALIASES.items()))
        raise ConfigError(
            f"unknown storage provider {settings.provider!r}",
            hint=f"known providers: {known} (aliases: {aliases})",
        )
    return provider_type(settings.provider, cls)(settings)


def provider_class(providers: Mapping[str, StorageProviderClass], name: str) -> StorageProviderClass | None:
    """The class a provider name selects: a plugin's of that very name, else the alias's target."""
    requested = name.strip().lower()
    return providers.get(requested) or providers.get(canonical_provider(requested))


def blob_tier_available(
    host: PluginHost, env_storage: StorageSection | None, policy: StoragePolicy, *, uploading: bool
) -> bool:
    """Whether files can go to (``uploading``) or come from a blob store, without opening one: a provider
    is named, it is not the registry tier (``oci``), and -- when uploading -- the policy is not ``mode:
    oci``. An unknown provider counts as available, so that opening it explains the name."""
    if uploading and policy.mode == "oci":
        return False
    name = requested_provider(env_storage, policy)
    if name is None:
        return False
    cls = provider_class(available_providers(host), name)
    return cls is None or not cls.is_registry_tier


def open_blob_transfers(
    host: PluginHost,
    env_storage: StorageSection | None,
    policy: StoragePolicy,
    environ: Mapping[str, str],
    *,
    progress: TransferProgress | None = None,
    hasher: Hasher | None = None,
    uploading: bool = True,
) -> BlobTransfers | None:
    """Push and pull's view of the blob store, or ``None`` when there is none: neither the environment
    nor the project names a provider, or the provider is ``oci``. When ``uploading``, a policy of
    ``mode: oci`` also means none (pulls still read blob-stored files of versions pushed otherwise)."""
    if not blob_tier_available(host, env_storage, policy, uploading=uploading):
        return None
    return BlobTransfers(open_storage(host, env_storage, policy, environ), progress=progress, hasher=hasher)


def pointer_provider(uri: str, providers: Mapping[str, StorageProviderClass]) -> str | None:
    """Name of the provider whose pointers use ``uri``'s scheme, if any (for status and messages)."""
    return scheme_owners(providers).get(uri.partition("://")[0].lower())


class BlobTransfers:
    """A provider as push and pull need it: ``core.packaging``'s ``BlobUploader`` protocol and its
    ``BlobFetcher`` callable, for index entries.

    ``uri_for`` is known before anything is sent (keys are content-addressed), so the index can be
    built first; ``upload`` sends what the store lacks, concurrently; calling the object fetches one
    blob-stored entry, verified, to a staging path; ``fetch_many`` fetches many concurrently.
    """

    def __init__(
        self, provider: StorageProvider, *, progress: TransferProgress | None = None, hasher: Hasher | None = None
    ) -> None:
        self.provider = provider
        self.progress = progress
        self.hasher = hasher

    def uri_for(self, entry: IndexEntry) -> str:
        return self.provider.pointer(entry.digest, entry.size).uri

    def describe(self) -> str:
        """The provider's name and where it keeps files (``local folder /...``), for reports."""
        where = self.provider.describe()
        return where if where.startswith(self.provider.name) else f"{self.provider.name}: {where}"

    def missing(self, entries: Sequence[IndexEntry]) -> list[IndexEntry]:
        """The entries whose object the store lacks (one per digest): what an upload would send."""
        unique: dict[str, IndexEntry] = {}
        for entry in entries:
            unique.setdefault(entry.digest, entry)
        return [entry for digest, entry in unique.items() if not self.provider.exists(self.provider.key_for(digest))]

    def close(self) -> None:
        self.provider.close()

    def upload(
        self,
        root: Path,
        entries: Sequence[IndexEntry],
        *,
        jobs: int = DEFAULT_JOBS,
        hashed_at: Mapping[str, tuple[int, int, int, int]] | None = None,
    ) -> TransferStats:
        """Upload the entries' files below ``root``; returns what was sent (``uploaded_blobs`` files of
        ``uploaded_bytes``) and what the store had (``skipped_blobs``). ``hashed_at`` maps paths to the
        signatures their digests were computed at (:attr:`BlobUpload.hashed_at`)."""
        signatures = hashed_at or {}
        items = [
            BlobUpload(
                root / entry.path, entry.digest, entry.size, label=entry.path, hashed_at=signatures.get(entry.path)
            )
            for entry in entries
        ]
        return self.provider.upload_many(items, jobs=jobs, progress=self.progress)

    def __call__(self, entry: IndexEntry, dest: Path) -> None:
        pointer = self.pointer_of(entry)
        key = self.provider.parse_uri(pointer.uri)
        self.provider.get_to_file(key, dest, pointer.size, pointer.digest, hasher=self.hasher)

    def fetch_many(self, items: Sequence[tuple[IndexEntry, Path]], *, jobs: int = DEFAULT_JOBS) -> TransferStats:
        """Fetch ``(entry, destination)`` pairs concurrently, each verified before it is placed."""
        downloads = [BlobDownload(self.pointer_of(entry), dest, label=entry.path) for entry, dest in items]
        return self.provider.download_many(downloads, jobs=jobs, progress=self.progress, hasher=self.hasher)

    @staticmethod
    def pointer_of(entry: IndexEntry) -> BlobPointer:
        if entry.blobRef is None:
            raise IntegrityError(f"{entry.path}: a blob-stored file without a blobRef in the index")
        return BlobPointer(uri=entry.blobRef.uri, size=entry.size, digest=entry.digest)


# ---------------------------------------------------------------------------------------- transfers


@dataclass(frozen=True)
class _Task:
    size: int
    label: str
    run: Callable[[ByteCounter], None]


def _bind(fn: Callable[[str, Any, ByteCounter], None], key: str, item: Any) -> Callable[[ByteCounter], None]:
    return lambda counter: fn(key, item, counter)


def _ignore_bytes(_count: int) -> None:
    return None


class _ProgressRelay:
    """Serialises progress from worker threads, and tops each file up to its exact size."""

    def __init__(self, sink: TransferProgress | None) -> None:
        self.sink = sink
        self.lock = threading.Lock()

    def start(self, files: int, nbytes: int) -> None:
        if self.sink is not None:
            self.sink.start(files, nbytes)

    def counter(self, size: int) -> tuple[ByteCounter, Callable[[], None]]:
        reported = 0

        def on_bytes(count: int) -> None:
            nonlocal reported
            count = max(0, min(count, size - reported))  # SDK retries may report bytes twice
            if count and self.sink is not None:
                with self.lock:
                    reported += count
                    self.sink.advance(0, count)

        def done() -> None:
            if self.sink is not None:
                with self.lock:
                    self.sink.advance(1, max(0, size - reported))

        return on_bytes, done

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()


def _run_tasks(tasks: list[_Task], *, jobs: int, progress: TransferProgress | None) -> None:
    """Run transfer tasks on up to ``jobs`` threads, largest first; fail fast, raise the first error."""
    if not tasks:
        return
    ordered = sorted(tasks, key=lambda task: task.size, reverse=True)
    relay = _ProgressRelay(progress)
    relay.start(len(ordered), sum(task.size for task in ordered))
    counter = itertools.count()
    stop = threading.Event()
    failures: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        while not stop.is_set():
            index = next(counter)  # atomic under the GIL: dynamic load balancing
            if index >= len(ordered):
                return
            task = ordered[index]
            on_bytes, done = relay.counter(task.size)
            try:
                task.run(on_bytes)
            except BaseException as exc:  # reported to the caller's thread below
                with lock:
                    failures.append(exc)
                stop.set()
                return
            done()

    count = max(1, min(jobs, len(ordered)))
    try:
        if count == 1:
            work()
        else:
            workers = [threading.Thread(target=work, name=f"mops-transfer-{i}", daemon=True) for i in range(count)]
            for worker in workers:
                worker.start()
            try:
                for worker in workers:
                    worker.join()
            except BaseException:
                stop.set()  # Ctrl-C: start nothing new; running transfers clean up their partial files
                raise
    finally:
        relay.close()
    if failures:
        _raise_failures(failures)


def _raise_failures(failures: list[BaseException]) -> None:
    first = failures[0]
    if len(failures) == 1 or not all(isinstance(f, BundleError) for f in failures):
        raise first
    messages = [str(f) for f in failures]
    shown = "\n  ".join(messages[:10])
    more = f"\n  ... and {len(messages) - 10} more" if len(messages) > 10 else ""
    cls = IntegrityError if all(isinstance(f, IntegrityError) for f in failures) else StorageError
    raise cls(f"{len(failures)} transfers failed:\n  {shown}{more}") from first


def _file_digest(path: Path, algorithm: str, hasher: Hasher | None) -> str:
    """The hex digest of a downloaded file: by the project's hasher when it is of this algorithm (the
    same digest, computed as the push computed it: ``check_hasher`` holds it to the standard), else
    through the one checking routine."""
    from modelops_bundle.core.hashing import CONTENT_ALGORITHMS, file_digest

    if hasher is not None and hasher.algorithm == algorithm and algorithm in CONTENT_ALGORITHMS:
        return hasher.digest_file(str(path))
    return file_digest(path, algorithm, chunk=_READ_CHUNK).partition(":")[2]  # other algorithms: refused


def _exception_chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _generic_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    if len(text) > _REASON_LIMIT:
        text = text[: _REASON_LIMIT - 3] + "..."
    name = exc.__class__.__name__
    return text if text.startswith(name) else f"{name}: {text}"
