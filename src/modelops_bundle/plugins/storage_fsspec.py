"""Built-in storage providers, all on fsspec: ``local``, ``fsspec`` (any URL), ``azure``, ``s3``, ``gcs``,
plus ``oci`` (keep files in the registry).

Every SDK (fsspec itself, adlfs, s3fs, gcsfs) is imported when a provider first touches its store,
never when this module is imported: the CLI imports every built-in plugin at start-up, and
``mops bundle --help`` must stay fast.

:class:`FsspecProvider` maps the provider primitives onto one fsspec filesystem; subclasses only say how
to build the filesystem, where a key lives in it and how to explain their SDK's errors.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import uuid
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from modelops_bundle.plugin import (
    BundleError,
    ByteCounter,
    ConfigError,
    ProviderSettings,
    StorageError,
    StorageProvider,
    check_key,
    expand_path,
    is_secret_name,
    modelops_home,
)

MIB = 1024 * 1024
#: Multipart uploads: parts of ``PART_SIZE`` bytes, ``PART_CONCURRENCY`` in flight per file, so memory per
#: transfer stays near ``2 * PART_SIZE * PART_CONCURRENCY`` (the SDKs copy a part once) whatever the file
#: size. Measured against moto with 256 MiB: 8 MiB x 3 gives s3fs's default speed with 39 MiB instead of
#: 505 MiB. Overridable per environment: ``storage: {part_size_mib, part_concurrency}``.
PART_SIZE = 8 * MIB
PART_CONCURRENCY = 3
#: Network defaults, overridable per environment (``storage: {connect_timeout, read_timeout, retries}``).
#: Bounded on purpose: a storage service that is gone must fail a command in seconds, not minutes.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0
RETRIES = 3


def option_float(settings: ProviderSettings, name: str, default: float) -> float:
    raw = settings.options.get(name, default)
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"storage option {name!r} must be a number, not {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"storage option {name!r} must be positive, not {raw!r}")
    return value


def option_int(settings: ProviderSettings, name: str, default: int) -> int:
    return max(1, int(option_float(settings, name, default)))


def require_container(settings: ProviderSettings, word: str) -> str:
    """The container/bucket name, or a configuration error saying where to set it."""
    container = (settings.container or "").strip().strip("/")
    if not container:
        raise ConfigError(
            f"storage provider {settings.provider!r} needs a {word}",
            hint="set storage.container in .modelops-bundle/config.yaml or 'container' in the environment file",
        )
    if "/" in container:
        raise ConfigError(f"storage {word} {container!r} must be a plain name (use storage.prefix for folders)")
    return container


def quiet_loggers(*names: str) -> None:
    """Keep SDK log records (gcsfs logs every exhausted retry with a traceback) off the terminal.

    Without a handler of their own, records of level WARNING and above reach Python's last-resort
    handler and are printed to stderr, on top of the one clear error this tool reports. A
    ``NullHandler`` stops that and nothing else: with logging configured (``-v``), records still reach it.
    """
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
            logger.addHandler(logging.NullHandler())


@functools.cache
def _callback_class() -> type:
    from fsspec.callbacks import Callback

    class ByteRelay(Callback):  # type: ignore[misc]  # fsspec is untyped
        """Turns fsspec's absolute/relative progress updates into byte increments."""

        def __init__(self, on_bytes: ByteCounter) -> None:
            super().__init__()
            self._on_bytes = on_bytes
            self._seen = 0

        def call(self, hook_name: str | None = None, **kwargs: Any) -> None:
            value = int(self.value or 0)
            if value > self._seen:
                self._on_bytes(value - self._seen)
                self._seen = value

    return ByteRelay


def byte_callback(on_bytes: ByteCounter) -> Any:
    return _callback_class()(on_bytes)


class FsspecProvider(StorageProvider):
    """A provider over one fsspec filesystem, built on first use (thread-safe)."""

    #: The ``modelops-bundle[extra]`` that installs this provider's SDK (for the "not installed" hint).
    extra: ClassVar[str | None] = None
    #: Loggers of this provider's SDK, kept off the terminal (see :func:`quiet_loggers`).
    sdk_loggers: ClassVar[tuple[str, ...]] = ()

    #: This provider's default part size (bytes) for multipart uploads.
    default_part_size: ClassVar[int] = PART_SIZE

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        self._fs: Any = None
        self._fs_lock = threading.Lock()
        self.part_size = option_int(settings, "part_size_mib", self.default_part_size // MIB) * MIB
        self.part_concurrency = option_int(settings, "part_concurrency", PART_CONCURRENCY)
        #: File-system stores write to a temporary name and rename, so a reader never sees half an object.
        self.atomic_rename = False

    @abstractmethod
    def _make_filesystem(self) -> Any:
        """Build the fsspec filesystem (import the SDK here)."""

    @abstractmethod
    def fs_path(self, key: str) -> str:
        """The path of ``key`` inside the filesystem (``bucket/key``)."""

    def _put_options(self, size: int) -> dict[str, Any]:
        """Extra keyword arguments for ``fs.put_file`` (part sizes, concurrency)."""
        return {}

    def _get_options(self, size: int) -> dict[str, Any]:
        """Extra keyword arguments for ``fs.get_file``."""
        return {}

    @property
    def fs(self) -> Any:
        with self._fs_lock:
            if self._fs is None:
                self._fs = self._build()
            return self._fs

    def _build(self) -> Any:
        quiet_loggers("fsspec", *self.sdk_loggers)
        try:
            return self._make_filesystem()
        except BundleError:
            raise
        except ImportError as exc:
            install = f"pip install 'modelops-bundle[{self.extra}]'" if self.extra else "install its fsspec package"
            raise ConfigError(
                f"storage provider {self.name!r} is not installed ({exc.name or exc})", hint=install
            ) from exc
        except Exception as exc:
            raise StorageError(
                self._scrub(f"{self.name}: cannot set up {self.describe()}: {self._explain(exc)}")
            ) from exc

    def close(self) -> None:
        with self._fs_lock:
            self._fs = None  # the SDK's finalisers close its sessions

    def add_secret(self, value: str | None) -> None:
        """Scrub ``value`` from messages too (a credential found outside the settings)."""
        if value and len(value) >= 4 and value not in self._secrets:
            self._secrets = sorted({*self._secrets, value}, key=len, reverse=True)

    # ------------------------------------------------------------------------------ primitives

    def _stat_size(self, key: str) -> int | None:
        fs = self.fs
        try:
            info = fs.info(self.fs_path(key))
        except FileNotFoundError:
            return None
        if info.get("type") == "directory" or info.get("size") is None:
            return None
        return int(info["size"])

    def _upload(self, path: Path, key: str, size: int, on_bytes: ByteCounter) -> None:
        fs = self.fs
        target = self.fs_path(key)
        callback = byte_callback(on_bytes)
        if not self.atomic_rename:
            fs.put_file(str(path), target, callback=callback, **self._put_options(size))
            return
        temporary = f"{target}.{uuid.uuid4().hex[:12]}.partial"
        try:
            fs.put_file(str(path), temporary, callback=callback, **self._put_options(size))
            fs.mv(temporary, target)
        except BaseException:
            try:
                fs.rm_file(temporary)
            except Exception:
                pass  # the original error matters, not the clean-up's
            raise

    def _download(self, key: str, partial: Path, size: int, on_bytes: ByteCounter) -> None:
        self.fs.get_file(self.fs_path(key), str(partial), callback=byte_callback(on_bytes), **self._get_options(size))


# ---------------------------------------------------------------------------------------------- local


class ObjectStoreProvider(FsspecProvider):
    """Objects in one named bucket (or container) of an object store; pointers ``<scheme>://<bucket>/<key>``.

    Subclasses set ``schemes`` (the first is written into pointers), ``bucket_word`` and ``endpoint``.
    """

    #: What the store calls its top-level namespace, for messages ("bucket", "container").
    bucket_word: ClassVar[str] = "bucket"

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        self.bucket = require_container(settings, self.bucket_word)
        self.endpoint: str | None = None

    def fs_path(self, key: str) -> str:
        return f"{self.bucket}/{check_key(key)}"

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"{self.name} {self.bucket_word} {self.bucket!r}{self._describe_owner()}{where}"

    def _describe_owner(self) -> str:
        """Who owns the bucket, when the store has such a level (an Azure account)."""
        return ""

    def uri(self, key: str) -> str:
        return f"{self.schemes[0]}://{self.bucket}/{check_key(key)}"

    def parse_uri(self, uri: str) -> str:
        scheme, _, rest = uri.partition("://")
        bucket, _, key = rest.partition("/")
        if scheme.lower() not in self.schemes or bucket != self.bucket:
            raise self.foreign_uri(uri, f"{self.schemes[0]}://{self.bucket}/")
        return check_key(key)

    def _container_exists(self) -> bool | None:
        return bool(self.fs.exists(self.bucket))


#: ``storage: {verify: ...}`` of a local store: ``seal`` (default) re-hashes an object only when it changed
#: since it was last verified (``StorageProvider.use_seals``); ``always`` hashes every download.
VERIFY_MODES = ("seal", "always")
#: The folder of the ``local`` store under ``$MODELOPS_HOME`` when the environment names none (the embedded
#: ``local`` environment names this very folder).
LOCAL_BLOBS = "blobs"


class LocalProvider(FsspecProvider):
    """Blobs in a local (or mounted) folder: ``storage.path`` of the environment, default
    ``$MODELOPS_HOME/blobs``. Pointers are ``local://<key>``: the folder is machine-specific, so it is
    the environment, not the bundle, that says where it is."""

    name = "local"
    schemes = ("local",)

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        folder = expand_path(settings.path) if settings.path else modelops_home(settings.environ) / LOCAL_BLOBS
        self.root = folder.absolute()
        self.atomic_rename = True
        verify = str(settings.options.get("verify", "seal")).strip().lower()
        if verify not in VERIFY_MODES:
            raise ConfigError(
                f"storage option 'verify' must be one of {', '.join(VERIFY_MODES)}, not {settings.options['verify']!r}",
                hint="it is set in the storage: section of the environment file (mops bundle env show)",
            )
        if verify == "seal":
            self.use_seals(self.root, self.fs_path)

    def close(self) -> None:
        self.save_seals()
        super().close()

    def _make_filesystem(self) -> Any:
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(auto_mkdir=True)

    def fs_path(self, key: str) -> str:
        return f"{self.root.as_posix()}/{check_key(key)}"

    def describe(self) -> str:
        return f"local folder {self.root}"

    def uri(self, key: str) -> str:
        return f"local://{check_key(key)}"

    def parse_uri(self, uri: str) -> str:
        scheme, _, key = uri.partition("://")
        if scheme.lower() != "local":
            raise self.foreign_uri(uri, "local://")
        return check_key(key)

    def _container_exists(self) -> bool | None:
        return self.root.is_dir()


# -------------------------------------------------------------------------------------- generic fsspec

_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*@")


class FsspecUrlProvider(FsspecProvider):
    """Any fsspec URL as the store: ``storage.container`` (or ``storage.path``) is the base URL, e.g.
    ``memory://bucket`` or ``file:///srv/blobs``; ``storage_options`` in the environment's ``storage:``
    section go to the filesystem. Pointers are ``<base URL>/<key>``."""

    name = "fsspec"

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        url = (settings.container or settings.path or "").strip()
        if "://" not in url:
            raise ConfigError(
                "storage provider 'fsspec' needs a URL in storage.container (or the environment's storage.path)",
                hint="for example memory://bundles or file:///srv/blobs",
            )
        if _USERINFO.match(url) or "?" in url:
            raise ConfigError(
                "the fsspec storage URL must not carry credentials (they would end up in every pointer)",
                hint="put credentials in storage.storage_options of the environment file",
            )
        self.base = url.rstrip("/")
        options = settings.options.get("storage_options") or {}
        if not isinstance(options, dict):
            raise ConfigError("storage.storage_options must be a mapping")
        self.storage_options: dict[str, Any] = dict(options)
        for name, value in self.storage_options.items():
            if isinstance(value, str) and is_secret_name(name):
                self.add_secret(value)
        self.protocol = self.base.partition("://")[0].lower()
        self._root: str | None = None

    def _make_filesystem(self) -> Any:
        from fsspec.core import url_to_fs
        from fsspec.implementations.local import LocalFileSystem

        try:
            fs, root = url_to_fs(self.base, **self.storage_options)
        except ValueError as exc:  # unknown protocol
            raise ConfigError(f"storage provider 'fsspec': {exc}") from exc
        self._root = str(root).rstrip("/")
        if isinstance(fs, LocalFileSystem):
            self.atomic_rename = True
            fs.auto_mkdir = True
        return fs

    def fs_path(self, key: str) -> str:
        if self._root is None:
            _ = self.fs
        return f"{self._root}/{check_key(key)}"

    def describe(self) -> str:
        return f"fsspec store {self.base}"

    def uri(self, key: str) -> str:
        return f"{self.base}/{check_key(key)}"

    def parse_uri(self, uri: str) -> str:
        if not uri.startswith(self.base + "/"):
            raise self.foreign_uri(uri, self.base + "/")
        return check_key(uri[len(self.base) + 1 :])

    def _container_exists(self) -> bool | None:
        root = self._root
        return None if root is None else bool(self.fs.exists(root))


# ----------------------------------------------------------------------------------------------- hook
