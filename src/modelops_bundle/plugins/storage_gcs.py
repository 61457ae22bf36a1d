"""The ``gcs`` storage provider (gcsfs): Google Cloud Storage and emulators (fake-gcs-server).

Endpoint: ``endpoint`` of the environment file or ``STORAGE_EMULATOR_HOST``. Credentials: a ``token``
option (a service-account JSON path, ``anon``, ``google_default``, ...), else
``GOOGLE_APPLICATION_CREDENTIALS``, else anonymous for an emulator endpoint and Google's default chain
for the real service.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from modelops_bundle.plugin import ProviderSettings
from modelops_bundle.plugins.storage_fsspec import (
    CONNECT_TIMEOUT,
    MIB,
    READ_TIMEOUT,
    RETRIES,
    ObjectStoreProvider,
    option_float,
    option_int,
)


@functools.cache
def bounded_gcs_class(retries: int) -> type:
    """``GCSFileSystem`` with ``retries`` attempts instead of six.

    gcsfs fixes its retry count when the class is defined (6 attempts with 1, 2, 4, 8, 16 s pauses), so
    a dead endpoint costs half a minute per request; re-decorating the two request methods with its
    own ``retry_request`` is the only knob it offers.
    """
    # Without this, gcsfs enables zonal/HNS bucket support, which probes every bucket over gRPC+TLS:
    # a 60 s timeout per bucket against an emulator (see reference/services.md).
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    from gcsfs.core import GCSFileSystem
    from gcsfs.retry import retry_request

    bounded = retry_request(retries=retries)
    namespace = {
        name: bounded(getattr(GCSFileSystem, name).__wrapped__)
        for name in ("_request", "_get_file_request")
        if hasattr(getattr(GCSFileSystem, name, None), "__wrapped__")
    }
    return type("BoundedGCSFileSystem", (GCSFileSystem,), namespace)


class GcsProvider(ObjectStoreProvider):
    """Blobs in one Google Cloud Storage bucket; pointers are ``gs://<bucket>/<key>``."""

    name = "gcs"
    schemes = ("gs", "gcs")
    extra = "gcs"
    # Resumable uploads go chunk by chunk, one in flight, so the chunk size sets the request count:
    # gcsfs's own default (50 MiB) -- 16 MiB took a third longer per file on fake-gcs-server (which
    # slows with every chunk) and saves memory (about 24 against 146 MiB per transfer): environments
    # short of memory set ``storage: {part_size_mib: 16}``.
    default_part_size = 50 * MIB
    sdk_loggers = ("gcsfs", "google")

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        environ = settings.environ
        self.endpoint = settings.endpoint or environ.get("STORAGE_EMULATOR_HOST")
        if self.endpoint and "://" not in self.endpoint:
            self.endpoint = f"http://{self.endpoint}"  # STORAGE_EMULATOR_HOST is often host:port
        self.token: Any = settings.options.get("token") or environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if self.token is None and self.endpoint:
            self.token = "anon"  # emulators accept anything; asking Google's chain would only fail slowly
        self.project = str(settings.options.get("project") or environ.get("GOOGLE_CLOUD_PROJECT") or "")
        self.retries = option_int(settings, "retries", RETRIES)
        self.connect_timeout = option_float(settings, "connect_timeout", CONNECT_TIMEOUT)
        self.read_timeout = option_float(settings, "read_timeout", READ_TIMEOUT)

    def _make_filesystem(self) -> Any:
        import aiohttp

        cls = bounded_gcs_class(self.retries)
        return cls(
            project=self.project,
            token=self.token,
            endpoint_url=self.endpoint,
            skip_instance_cache=True,
            requests_timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout
            ),
        )

    def _put_options(self, size: int) -> dict[str, Any]:
        return {"chunksize": self.part_size}

    def _get_options(self, size: int) -> dict[str, Any]:
        # One streaming GET: gcsfs's concurrent path prefetches up to 128 MiB and probes the bucket type.
        return {"concurrency": 1}

    def _reason(self, exc: BaseException) -> str | None:
        module = type(exc).__module__
        if module.startswith("gcsfs"):
            code = getattr(exc, "code", None)
            if code in (401, 403):
                return f"access denied ({code}): check the token or GOOGLE_APPLICATION_CREDENTIALS"
            return None
        if module.startswith("aiohttp"):
            kind = type(exc).__name__
            if "Connect" in kind:
                return "cannot reach the storage endpoint (is the service running and the address right?)"
            if "Timeout" in kind:
                return "the storage endpoint did not answer in time"
            return None
        if module.startswith("google.auth"):
            return f"no usable Google credentials ({type(exc).__name__}): set token or GOOGLE_APPLICATION_CREDENTIALS"
        if type(exc) is OSError and str(exc).startswith("Forbidden"):
            return "access denied (403): check the token or GOOGLE_APPLICATION_CREDENTIALS"
        return None
