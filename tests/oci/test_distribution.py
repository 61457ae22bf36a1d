"""The HTTP backend against real servers: auth, errors, plain-HTTP policy, retries, chunk fall-back."""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from modelops_bundle.core.errors import ConfigError, ExitCode, RegistryError
from modelops_bundle.core.registry import OCI_MANIFEST
from modelops_bundle.plugins import registry_distribution
from modelops_bundle.plugins.registry_distribution import OciDistributionRegistry
from tests.oci.conftest import PASSWORD, USER, blob
from tests.oci.registries import FaultProxy, RunningRegistry
from tests.oci.test_conformance import manifest_for
from tests.support.oras_adapter import oras_client
from tests.support.servers import free_port

Make = Callable[..., OciDistributionRegistry]


def roundtrip(backend: OciDistributionRegistry, repo: str, tmp_path: Path, size: int = 3000) -> None:
    """Push two blobs and a manifest, then read everything back."""
    config, layer = blob(b'{"n": %d}' % size), blob(os.urandom(size))
    stats = backend.put_blobs(repo, [config, layer], jobs=2, progress=None)
    assert stats.uploaded_blobs + stats.skipped_blobs == 2
    digest = backend.put_manifest(repo, manifest_for(config, layer), OCI_MANIFEST, "v1")
    assert backend.resolve(repo, "v1") == digest
    target = tmp_path / "pulled.bin"
    backend.get_blobs_to_files(repo, [(layer.digest, layer.size, target)], jobs=1, progress=None)
    assert target.read_bytes() == layer.open().read()
    assert "v1" in backend.list_tags(repo)


# ---------------------------------------------------------------------------------------------- auth


def test_basic_auth_from_registry_env_vars(
    auth_distribution: RunningRegistry, make_distribution: Make, clean_environ: dict[str, str], tmp_path: Path
) -> None:
    environ = {**clean_environ, "REGISTRY_USERNAME": USER, "REGISTRY_PASSWORD": PASSWORD}
    roundtrip(make_distribution(auth_distribution.host, environ=environ), "auth/env", tmp_path)


def test_basic_auth_from_docker_config(
    auth_distribution: RunningRegistry, make_distribution: Make, clean_environ: dict[str, str], tmp_path: Path
) -> None:
    config_dir = Path(clean_environ["DOCKER_CONFIG"])
    config_dir.mkdir()
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (config_dir / "config.json").write_text(
        json.dumps({"auths": {f"http://{auth_distribution.host}": {"auth": encoded}}})
    )
    roundtrip(make_distribution(auth_distribution.host), "auth/docker-config", tmp_path)


def test_basic_auth_from_credential_helper(
    auth_distribution: RunningRegistry, make_distribution: Make, clean_environ: dict[str, str], tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-mopstest"
    answer = json.dumps({"ServerURL": auth_distribution.host, "Username": USER, "Secret": PASSWORD})
    helper.write_text(
        f'#!/bin/sh\nread host\n[ "$1" = get ] && [ "$host" = {auth_distribution.host} ] && echo \'{answer}\'\n'
    )
    helper.chmod(0o755)
    config_dir = Path(clean_environ["DOCKER_CONFIG"])
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"credHelpers": {auth_distribution.host: "mopstest"}}))
    environ = {**clean_environ, "PATH": f"{bin_dir}:{clean_environ['PATH']}"}
    roundtrip(make_distribution(auth_distribution.host, environ=environ), "auth/helper", tmp_path)


def test_environment_file_credentials(
    auth_distribution: RunningRegistry, make_distribution: Make, tmp_path: Path
) -> None:
    roundtrip(make_distribution(auth_distribution.host, username=USER, password=PASSWORD), "auth/envfile", tmp_path)


def test_wrong_password_is_a_clear_error_without_the_password(
    auth_distribution: RunningRegistry, make_distribution: Make, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wr0ng-Secret-Value"
    backend = make_distribution(auth_distribution.host, username=USER, password=wrong)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RegistryError) as caught:
        backend.list_tags("auth/wrong")
    error = caught.value
    text = f"{error} {error.hint} {error!r} {backend!r} {backend.http!r} {backend.http.auth!r}"
    assert "authentication to registry 127.0.0.1" in str(error) and "rejected" in str(error)
    encoded = base64.b64encode(f"{USER}:{wrong}".encode()).decode()
    for secret in (wrong, encoded):
        assert secret not in text
        assert secret not in caplog.text


def test_missing_credentials_say_so(auth_distribution: RunningRegistry, make_distribution: Make) -> None:
    with pytest.raises(RegistryError, match="requires authentication and no credentials were found"):
        make_distribution(auth_distribution.host).resolve("auth/none", "latest")


def test_bearer_tokens_are_cached_per_scope_and_renewed_mid_transfer(
    proxy_for: Callable[..., FaultProxy], make_distribution: Make, tmp_path: Path
) -> None:
    proxy = proxy_for(bearer=True, users={USER: PASSWORD})
    backend = make_distribution(proxy.host, username=USER, password=PASSWORD)
    roundtrip(backend, "bearer/repo", tmp_path)
    scopes = [path for path in proxy.token_requests if "scope=" in path]
    assert len(scopes) == 2, scopes  # one token for pull, one for pull,push: reused for every request
    proxy.inject("PUT", r"/blobs/uploads/", "401")  # the token "expires" in the middle of an upload
    stats = backend.put_blobs("bearer/repo", [blob(os.urandom(5000))], jobs=1, progress=None)
    assert stats.uploaded_blobs == 1
    assert len(proxy.token_requests) > len(scopes)


def test_bearer_with_wrong_password(proxy_for: Callable[..., FaultProxy], make_distribution: Make) -> None:
    proxy = proxy_for(bearer=True, users={USER: PASSWORD})
    backend = make_distribution(proxy.host, username=USER, password="not-it-at-all")
    with pytest.raises(RegistryError, match="rejected") as caught:
        backend.list_tags("bearer/repo")
    assert "not-it-at-all" not in f"{caught.value} {caught.value.hint}"


# -------------------------------------------------------------------------------------------- errors


def test_unreachable_registry_fails_fast(make_distribution: Make) -> None:
    backend = make_distribution(f"127.0.0.1:{free_port()}", retry_base=0.5)
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"cannot connect to registry 127\.0\.0\.1:\d+ .*connection refused"):
        backend.resolve("some/repo", "latest")
    assert time.monotonic() - started < 3


def test_plain_http_is_refused_off_loopback(make_distribution: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr("socket.create_connection", no_network)
    monkeypatch.setattr("socket.getaddrinfo", no_network)
    with pytest.raises(ConfigError, match=r"refusing plain HTTP to registry\.example\.invalid") as caught:
        make_distribution("http://registry.example.invalid:5000")
    assert caught.value.exit_code == ExitCode.USAGE
    with pytest.raises(ConfigError, match="only served over HTTPS"):
        make_distribution("http://myteam.azurecr.io", insecure=True)
    # opting in is allowed (and still contacts nothing until used)
    assert make_distribution("http://registry.example.invalid", insecure=True).describe().endswith("(plain HTTP)")
    environ = {"MODELOPS_BUNDLE_INSECURE": "true", "HOME": "/nonexistent"}
    assert make_distribution("registry.example.invalid", environ=environ).endpoint.scheme == "http"
    assert make_distribution("registry.example.invalid").endpoint.scheme == "https"


def test_tags_are_paginated(
    distribution: RunningRegistry, make_distribution: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = make_distribution(distribution.host)
    config = blob(b'{"paginated": true}')
    backend.put_blobs("pages/repo", [config], jobs=1, progress=None)
    wanted = [f"t{i}" for i in range(7)]
    for tag in wanted:
        backend.put_manifest("pages/repo", manifest_for(config, note=tag), OCI_MANIFEST, tag)
    monkeypatch.setattr(registry_distribution, "TAGS_PAGE", 2)
    assert backend.list_tags("pages/repo") == sorted(wanted)


def test_namespace_prefixes_repositories(distribution: RunningRegistry, make_distribution: Make) -> None:
    backend = make_distribution(f"{distribution.host}/team")
    config = blob(b'{"namespaced": true}')
    backend.put_blobs("proj", [config], jobs=1, progress=None)
    backend.put_manifest("proj", manifest_for(config), OCI_MANIFEST, "v1")
    assert make_distribution(distribution.host).list_tags("team/proj") == ["v1"]


# ------------------------------------------------------------------------------------------- retries


def test_transfers_survive_503_429_and_dropped_connections(
    proxy_for: Callable[..., FaultProxy], make_distribution: Make, tmp_path: Path
) -> None:
    proxy = proxy_for()
    backend = make_distribution(proxy.host)
    proxy.inject("HEAD", r"/blobs/sha256:", "503")
    proxy.inject("POST", r"/blobs/uploads/", "429")
    proxy.inject("PUT", r"/blobs/uploads/", "drop")  # the monolithic upload dies mid-request
    proxy.inject("PUT", r"/manifests/", "503")
    proxy.inject("GET", r"/blobs/sha256:", "cut")  # the download dies half-way
    proxy.inject("GET", r"/manifests/", "drop")
    roundtrip(backend, "retry/repo", tmp_path, size=200_000)
    assert backend.get_manifest("retry/repo", "v1").media_type == OCI_MANIFEST
    assert all(fault.times == 0 for fault in proxy.faults), proxy.faults
    statuses = [status for _, _, status in proxy.requests]
    assert 503 in statuses and 429 in statuses and 0 in statuses


def test_chunked_upload_resumes_and_falls_back(
    proxy_for: Callable[..., FaultProxy], make_distribution: Make, tmp_path: Path
) -> None:
    proxy = proxy_for()
    backend = make_distribution(proxy.host, chunk_threshold=1 << 20, chunk_size=256 << 10)
    big = blob(os.urandom(1 << 20 | 12345))
    proxy.inject("PATCH", r"/blobs/uploads/", "drop")  # a lost chunk: resume from the registry's offset
    stats = backend.put_blobs("chunks/repo", [big], jobs=1, progress=None)
    assert stats.extra["chunked_blobs"] == 1
    patches = [r for r in proxy.requests if r[0] == "PATCH"]
    assert len(patches) >= 6  # 5 chunks + the dropped one

    refusing = proxy_for()
    fallback = make_distribution(refusing.host, chunk_threshold=1 << 20, chunk_size=256 << 10)
    refusing.inject("PATCH", r"/blobs/uploads/", "405")
    other = blob(os.urandom(1 << 20 | 999))
    stats = fallback.put_blobs("chunks/repo", [other], jobs=1, progress=None)
    assert stats.extra == {"chunked_blobs": 0, "monolithic_blobs": 1}
    assert fallback.blob_exists("chunks/repo", other.digest)
    target = tmp_path / "other.bin"
    fallback.get_blobs_to_files("chunks/repo", [(other.digest, other.size, target)], jobs=1, progress=None)
    assert target.read_bytes() == other.open().read()


def test_oras_client_methods_run_through_our_transport(
    proxy_for: Callable[..., FaultProxy], make_distribution: Make, tmp_path: Path
) -> None:
    proxy = proxy_for(bearer=True, users={USER: PASSWORD})
    backend = make_distribution(proxy.host, username=USER, password=PASSWORD)
    roundtrip(backend, "oras/repo", tmp_path)
    proxy.inject("GET", r"/tags/list", "503")
    client = oras_client(backend.http)
    assert client.get_tags(f"{proxy.host}/oras/repo") == ["v1"]  # oras-py's own method: auth + retry
