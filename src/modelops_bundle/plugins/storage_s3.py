"""The ``s3`` storage provider (s3fs): AWS S3 and S3-compatible services (``minio`` flavour, moto).

Credentials: ``access_key``/``secret_key`` of the environment file, else ``AWS_ACCESS_KEY_ID``/
``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``), else a ``profile`` option or ``AWS_PROFILE``, else
botocore's own chain (config files, instance roles). ``endpoint`` selects a non-AWS service.
"""

from __future__ import annotations

import math
from typing import Any

from modelops_bundle.plugin import ConfigError, ProviderSettings
from modelops_bundle.plugins.storage_fsspec import (
    CONNECT_TIMEOUT,
    MIB,
    READ_TIMEOUT,
    RETRIES,
    ObjectStoreProvider,
    option_float,
    option_int,
)

#: S3 allows at most 10,000 parts per upload (larger files get larger parts), each at least 5 MiB.
MAX_PARTS = 10_000
MIN_PART = 5 * MIB

_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "403"}


class S3Provider(ObjectStoreProvider):
    """Blobs in one S3 bucket; pointers are ``s3://<bucket>/<key>``."""

    name = "s3"
    schemes = ("s3", "s3a")
    extra = "s3"
    sdk_loggers = ("s3fs", "botocore", "aiobotocore")

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        environ = settings.environ
        self.endpoint = settings.endpoint or environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
        if settings.flavour == "minio" and not self.endpoint:
            raise ConfigError("storage provider 'minio' needs an endpoint (the MinIO server's URL)")
        if settings.secret_key is not None:
            self.key = settings.access_key
            self.secret: str | None = settings.secret_key.get_secret_value()
            self.token: str | None = None
        else:
            self.key = settings.access_key or environ.get("AWS_ACCESS_KEY_ID")
            self.secret = environ.get("AWS_SECRET_ACCESS_KEY")
            self.token = environ.get("AWS_SESSION_TOKEN")
        if bool(self.key) != bool(self.secret):
            raise ConfigError("s3 storage needs both an access key and a secret key (or neither, for the AWS chain)")
        self.add_secret(self.secret)
        self.add_secret(self.token)
        self.profile = settings.options.get("profile") or (None if self.key else environ.get("AWS_PROFILE"))
        self.region = settings.options.get("region") or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        self.retries = option_int(settings, "retries", RETRIES)
        self.connect_timeout = option_float(settings, "connect_timeout", CONNECT_TIMEOUT)
        self.read_timeout = option_float(settings, "read_timeout", READ_TIMEOUT)

    def _make_filesystem(self) -> Any:
        from s3fs import S3FileSystem

        options: dict[str, Any] = {
            "skip_instance_cache": True,
            "endpoint_url": self.endpoint,
            "default_block_size": self.part_size,
            "max_concurrency": self.part_concurrency,
            "config_kwargs": {
                "connect_timeout": self.connect_timeout,
                "read_timeout": self.read_timeout,
                "retries": {"max_attempts": self.retries, "mode": "standard"},
            },
        }
        if self.key:
            options.update(key=self.key, secret=self.secret, token=self.token)
        elif self.profile:
            options["profile"] = self.profile
        if self.region:
            options["client_kwargs"] = {"region_name": self.region}
        fs = S3FileSystem(**options)
        fs.retries = self.retries  # s3fs retries on top of botocore: keep the product bounded
        return fs

    def _put_options(self, size: int) -> dict[str, Any]:
        # s3fs defaults to 50 MiB parts, 10 in flight, and reads files under 100 MiB whole into memory.
        part = max(self.part_size, MIN_PART, math.ceil(size / MAX_PARTS / MIB) * MIB)
        return {"chunksize": part, "max_concurrency": self.part_concurrency}

    def _get_options(self, size: int) -> dict[str, Any]:
        # One streaming GET per file: s3fs's ranged path holds every part of a batch in memory (twice,
        # while aiohttp assembles it); parallelism comes from transferring several files at once.
        return {"max_concurrency": 1}

    def _reason(self, exc: BaseException) -> str | None:
        module = type(exc).__module__
        if not module.startswith(("botocore", "aiobotocore")):
            return None
        kind = type(exc).__name__
        response = getattr(exc, "response", None)
        code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
        if code in _DENIED:
            return f"access denied ({code}): check the access key, secret and bucket policy"
        if code in ("NoSuchBucket",):
            return f"{self.describe()} does not exist"
        if code in ("NoSuchKey", "404"):
            return "object not found"
        if kind in ("EndpointConnectionError", "ConnectionClosedError", "ProxyConnectionError"):
            return "cannot reach the storage endpoint (is the service running and the address right?)"
        if kind in ("ConnectTimeoutError", "ReadTimeoutError"):
            return "the storage endpoint did not answer in time"
        if kind in ("NoCredentialsError", "PartialCredentialsError", "ProfileNotFound"):
            return f"no usable AWS credentials ({kind}): set access_key/secret_key or the AWS_* variables"
        return None
