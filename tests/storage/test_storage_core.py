"""The provider contract and its shared logic: keys, pointers, selection, errors, concurrency."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from modelops_bundle import hookimpl
from modelops_bundle.core.errors import ConfigError, IntegrityError, PluginError, StorageError, UsageError
from modelops_bundle.core.index import BlobRef, IndexEntry
from modelops_bundle.core.plugins import PluginHost, build_plugin_host
from modelops_bundle.core.secrecy import Secret
from modelops_bundle.core.settings import StoragePolicy, StorageSection, build
from modelops_bundle.core.storage import (
    BlobDownload,
    BlobPointer,
    BlobTransfers,
    BlobUpload,
    StorageProvider,
    available_providers,
    blob_key,
    open_storage,
    pointer_provider,
    resolve_settings,
)
from modelops_bundle.plugins.storage_azure import AZURITE_KEY, AzureProvider
from modelops_bundle.plugins.storage_fsspec import FsspecUrlProvider, LocalProvider
from modelops_bundle.plugins.storage_oci import OciStorageProvider
from modelops_bundle.plugins.storage_s3 import S3Provider
from modelops_bundle.storage_conformance import RecordingProgress, write_random_file

HEX = hashlib.sha256(b"x").hexdigest()
DIGEST = f"sha256:{HEX}"


def open_with(host: PluginHost, tmp_path: Path, policy: StoragePolicy | None = None, **env: Any) -> StorageProvider:
    storage = build(StorageSection, env) if env else None
    return open_storage(host, storage, policy or StoragePolicy(), {"MODELOPS_HOME": str(tmp_path / "home")})


# -------------------------------------------------------------------------------------------- keys


def test_blob_key_layout() -> None:
    assert blob_key("", DIGEST) == f"sha256/{HEX[:2]}/{HEX[2:4]}/{HEX}"
    assert blob_key("/team//proj/", DIGEST) == f"team/proj/sha256/{HEX[:2]}/{HEX[2:4]}/{HEX}"


@pytest.mark.parametrize("digest", ["sha256", "sha256:", "sha256:XYZ0000000", f"sha256:{HEX.upper()}", "../x:abcdef01"])
def test_blob_key_refuses_malformed_digests(digest: str) -> None:
    with pytest.raises(IntegrityError):
        blob_key("", digest)


def test_blob_key_refuses_climbing_prefix() -> None:
    with pytest.raises(ConfigError):
        blob_key("a/../b", DIGEST)


def test_pointer_round_trip_and_validation() -> None:
    pointer = BlobPointer(uri=f"s3://bucket/sha256/{HEX}", size=3, digest=DIGEST)
    assert BlobPointer.from_dict(pointer.to_dict()) == pointer
    assert pointer.scheme == "s3"
    for uri in (
        "s3://bucket/key?X-Amz-Signature=abc",  # a signed URL
        "https://user:pass@host/key",  # credentials in the URI
        "no-scheme/key",
    ):
        with pytest.raises(IntegrityError):
            BlobPointer(uri=uri, size=1, digest=DIGEST)
    with pytest.raises(IntegrityError):
        BlobPointer(uri="s3://b/k", size=-1, digest=DIGEST)
    with pytest.raises(IntegrityError):
        BlobPointer.from_dict({"uri": "s3://b/k", "size": True, "digest": DIGEST})


def test_pointer_keys_cannot_escape_the_store(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = open_with(plugin_host, tmp_path, provider="local", path=str(tmp_path / "blobs"))
    for uri in ("local://../secret", "local:///etc/passwd", "local://a//b", "local://a/./b"):
        with pytest.raises(StorageError):
            provider.parse_uri(uri)


# --------------------------------------------------------------------------------------- selection


def test_default_is_local_under_modelops_home(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = open_with(plugin_host, tmp_path)
    assert isinstance(provider, LocalProvider)
    assert provider.root == tmp_path / "home" / "blobs"
    from modelops_bundle.core.envfiles import LOCAL_BLOBS  # the embedded local environment's folder

    assert provider.root.name == LOCAL_BLOBS
    assert provider.pointer(DIGEST, 1).uri == f"local://sha256/{HEX[:2]}/{HEX[2:4]}/{HEX}"


def test_aliases_select_the_provider_and_keep_their_flavour(plugin_host: PluginHost, tmp_path: Path) -> None:
    azurite = open_with(plugin_host, tmp_path, provider="azurite", container="bundles")
    assert isinstance(azurite, AzureProvider)
    assert azurite.settings.flavour == "azurite"
    assert azurite.connection_string is not None and AZURITE_KEY in azurite.connection_string
    minio = open_with(plugin_host, tmp_path, provider="minio", container="b", endpoint="http://127.0.0.1:9000")
    assert isinstance(minio, S3Provider)
    with pytest.raises(ConfigError, match="endpoint"):
        open_with(plugin_host, tmp_path, provider="minio", container="b")


def test_unknown_provider_lists_the_known_ones(plugin_host: PluginHost, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        open_with(plugin_host, tmp_path, provider="dropbox")
    assert "dropbox" in str(caught.value)
    assert caught.value.hint is not None
    for name in ("azure", "fsspec", "gcs", "local", "oci", "s3", "azurite -> azure"):
        assert name in caught.value.hint


def test_missing_container_and_credentials_are_configuration_errors(plugin_host: PluginHost, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bucket"):
        open_with(plugin_host, tmp_path, provider="s3")
    with pytest.raises(ConfigError, match="credentials"):
        open_with(plugin_host, tmp_path, provider="azure", container="c")
    with pytest.raises(ConfigError, match="URL"):
        open_with(plugin_host, tmp_path, provider="fsspec")
    with pytest.raises(ConfigError, match="credentials"):
        open_with(plugin_host, tmp_path, provider="fsspec", container="s3://key:secret@bucket")


def test_project_policy_wins_and_foreign_credentials_stay_out() -> None:
    env = StorageSection(
        provider="azure", container="env-container", connection_string=Secret("AccountKey=k;AccountName=a")
    )
    same = resolve_settings(env, StoragePolicy(container="project-container", prefix="/p/"), {})
    assert (same.provider, same.container, same.prefix) == ("azure", "project-container", "p")
    assert same.connection_string is not None
    other = resolve_settings(env, StoragePolicy(provider="s3", container="bucket"), {})
    assert (other.provider, other.container, other.connection_string) == ("s3", "bucket", None)


def test_credentials_from_the_standard_environment(plugin_host: PluginHost, tmp_path: Path) -> None:
    connection = f"AccountName=acct;AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:1/acct;"
    environ = {
        "AZURE_STORAGE_CONNECTION_STRING": connection,
        "AWS_ACCESS_KEY_ID": "AKID",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
    }
    azure = open_storage(plugin_host, StorageSection(provider="azure", container="c"), StoragePolicy(), environ)
    assert isinstance(azure, AzureProvider) and azure.connection_string == connection
    assert azure.account == "acct"
    s3 = open_storage(plugin_host, StorageSection(provider="s3", container="b"), StoragePolicy(), environ)
    assert isinstance(s3, S3Provider) and (s3.key, s3.secret) == ("AKID", "s3cr3t")


class _Replacement(LocalProvider):
    name = "s3"


class _NotAProvider:
    name = "weird"


def test_plugins_replace_builtins_and_must_subclass_the_base(tmp_path: Path) -> None:
    class Plugin:
        @hookimpl
        def mops_storage_providers(self) -> list[type]:
            return [_Replacement]

    host = build_plugin_host({"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"}, extra_plugins=[("mine", Plugin())])
    assert available_providers(host)["s3"] is _Replacement
    assert isinstance(open_with(host, tmp_path, provider="s3"), _Replacement)

    class Broken:
        @hookimpl
        def mops_storage_providers(self) -> list[type]:
            return [_NotAProvider]

    host = build_plugin_host({"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"}, extra_plugins=[("broken", Broken())])
    with pytest.raises(PluginError, match="weird"):
        available_providers(host)


def test_pointer_provider_names_the_owner(plugin_host: PluginHost) -> None:
    providers = available_providers(plugin_host)
    assert pointer_provider("gs://b/k", providers) == "gcs"
    assert pointer_provider("az://c/k", providers) == "azure"
    assert pointer_provider("ftp://x/k", providers) is None


# -------------------------------------------------------------------------------- foreign pointers


def test_pointer_of_another_provider_is_refused_before_any_transfer(plugin_host: PluginHost, tmp_path: Path) -> None:
    s3 = open_with(plugin_host, tmp_path, provider="s3", container="bundles", endpoint="http://127.0.0.1:1")
    foreign = BlobPointer(uri=f"az://bundles/sha256/{HEX}", size=1, digest=DIGEST)
    with pytest.raises(StorageError) as caught:
        s3.download_many([BlobDownload(foreign, tmp_path / "out" / "f")])
    assert "'azure'" in str(caught.value) and "'s3'" in str(caught.value)
    assert not (tmp_path / "out").exists()
    other_bucket = BlobPointer(uri=f"s3://elsewhere/sha256/{HEX}", size=1, digest=DIGEST)
    with pytest.raises(StorageError, match="elsewhere"):
        s3.download_many([BlobDownload(other_bucket, tmp_path / "f")])


def test_oci_provider_offloads_nothing(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = open_with(plugin_host, tmp_path, provider="oci")
    assert isinstance(provider, OciStorageProvider) and provider.is_registry_tier
    source = tmp_path / "f"
    digest = write_random_file(source, 10)
    with pytest.raises(UsageError, match="registry"):
        provider.put_file(blob_key("", digest), source, 10)
    with pytest.raises(UsageError, match="registry"):
        provider.upload_many([BlobUpload(source, digest, 10)])
    pointer = BlobPointer(uri=f"s3://b/{blob_key('', digest)}", size=10, digest=digest)
    with pytest.raises(StorageError, match="'s3'"):
        provider.download_many([BlobDownload(pointer, tmp_path / "out")])


# ------------------------------------------------------------------------------------------ errors


def test_secrets_are_scrubbed_from_every_message(plugin_host: PluginHost, tmp_path: Path) -> None:
    secret_key = "very-secret-value-123"
    connection = f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={AZURITE_KEY};BlobEndpoint=http://h/acct;"
    cases = [
        (
            open_with(plugin_host, tmp_path, provider="s3", container="b", access_key="AK", secret_key=secret_key),
            [secret_key],
        ),
        (open_with(plugin_host, tmp_path, provider="azure", container="c", connection_string=connection), [connection]),
    ]
    source = tmp_path / "f"
    digest = write_random_file(source, 10)
    key = blob_key("", digest)
    for provider, secrets in cases:
        assert not any(secret in repr(provider.settings) for secret in secrets)

        def leak(*_args: object, secrets: list[str] = secrets) -> int:
            # An SDK error that quotes the credentials it was given (some do).
            raise RuntimeError(f"request failed: {' '.join(secrets)}")

        provider._stat_size = leak  # type: ignore[method-assign,assignment]
        for action in (lambda p=provider: p.exists(key), lambda p=provider: p.put_file(key, source, 10)):
            with pytest.raises(StorageError) as caught:
                action()
            message = str(caught.value)
            assert provider.name in message and key in message and "********" in message
            assert not any(secret in message for secret in secrets)
            assert AZURITE_KEY not in message


def test_changed_file_is_not_uploaded(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = open_with(plugin_host, tmp_path, provider="local", path=str(tmp_path / "blobs"))
    source = tmp_path / "f"
    digest = write_random_file(source, 100)
    with pytest.raises(IntegrityError, match="changed since it was hashed"):
        provider.put_file(blob_key("", digest), source, 99)
    assert not (tmp_path / "blobs").exists()


def test_failures_stop_the_batch_and_are_reported(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = open_with(plugin_host, tmp_path, provider="local", path=str(tmp_path / "blobs"))
    missing = [
        BlobUpload(tmp_path / f"gone-{i}", f"sha256:{hashlib.sha256(bytes([i])).hexdigest()}", 5) for i in range(4)
    ]
    with pytest.raises(StorageError, match="cannot read"):
        provider.upload_many(missing, jobs=1)
    with pytest.raises(StorageError, match="cannot read"):
        provider.upload_many(missing, jobs=4)


def test_progress_counts_skipped_files(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = open_with(plugin_host, tmp_path, provider="local", path=str(tmp_path / "blobs"))
    source = tmp_path / "f"
    digest = write_random_file(source, 1234)
    provider.upload_many([BlobUpload(source, digest, 1234)])
    progress = RecordingProgress()
    stats = provider.upload_many([BlobUpload(source, digest, 1234)], progress=progress)
    assert stats.skipped_blobs == 1
    assert (progress.started, progress.files, progress.nbytes, progress.closed) == ([(1, 1234)], 1, 1234, True)


class _XorHasher:
    """A toy digest algorithm that hashlib does not know, offered by a plugin's hasher."""

    algorithm = "xsum"

    def digest_file(self, path: str) -> str:
        return self.digest_bytes(Path(path).read_bytes())

    def digest_fileobj(self, handle: BinaryIO) -> str:
        return self.digest_bytes(handle.read())

    def digest_bytes(self, data: bytes) -> str:
        return hashlib.sha256(b"xsum" + data).hexdigest()


def test_digests_of_other_algorithms_are_refused_even_with_a_plugin_hasher(
    plugin_host: PluginHost, tmp_path: Path
) -> None:
    """Only sha256 and sha512 are file digests (decisions/0023): a download is checked by the one routine."""
    provider = open_with(plugin_host, tmp_path, provider="local", path=str(tmp_path / "blobs"))
    source = tmp_path / "f"
    source.write_bytes(b"payload")
    digest = "xsum:" + _XorHasher().digest_bytes(b"payload")
    key = blob_key("", digest)
    provider.put_file(key, source, 7)
    for hasher in (None, _XorHasher()):
        with pytest.raises(IntegrityError, match="cannot check a 'xsum' digest: file digests are sha256 or sha512"):
            provider.get_to_file(key, tmp_path / "out", 7, digest, hasher=hasher)
        assert not (tmp_path / "out").exists()
    sha512 = "sha512:" + hashlib.sha512(b"payload").hexdigest()
    provider.put_file(blob_key("", sha512), source, 7)
    provider.get_to_file(blob_key("", sha512), tmp_path / "out", 7, sha512)
    assert (tmp_path / "out").read_bytes() == b"payload"


def test_generic_provider_refuses_unknown_protocols(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = open_with(plugin_host, tmp_path, provider="fsspec", container="nosuchproto://x")
    assert isinstance(provider, FsspecUrlProvider)
    with pytest.raises(ConfigError, match="nosuchproto"):
        provider.exists(blob_key("", DIGEST))


def test_cli_start_imports_no_storage_sdk() -> None:
    code = (
        "import sys\n"
        "from modelops_bundle.cli.main import mops_main\n"
        "try:\n    mops_main(['bundle', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'fsspec', 'adlfs', 's3fs', 'gcsfs', 'azure', 'botocore', 'aiobotocore', 'google'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_blob_transfers_serve_push_and_pull(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = open_with(
        plugin_host, tmp_path, StoragePolicy(prefix="proj"), provider="local", path=str(tmp_path / "b")
    )
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    entries: list[IndexEntry] = []
    for name, size in (("data/a.bin", 3000), ("data/b.bin", 70_000), ("data/same.bin", 3000)):
        source = root / name
        digest = write_random_file(source, size) if name != "data/same.bin" else entries[0].digest
        if name == "data/same.bin":
            source.write_bytes((root / "data/a.bin").read_bytes())
        entries.append(IndexEntry(path=name, size=size, digest=digest, algorithm="sha256", storage="blob"))
    transfers = BlobTransfers(provider)
    pointed = [e.replace(blobRef=BlobRef(uri=transfers.uri_for(e))) for e in entries]
    assert pointed[0].blobRef is not None and pointed[0].blobRef.uri.startswith("local://proj/sha256/")
    assert transfers.missing(entries) == entries[:2]  # one per content: what a dry run reports
    first = transfers.upload(root, entries, jobs=2)
    assert (first.uploaded_blobs, first.uploaded_bytes, first.skipped_blobs) == (2, 73_000, 0)  # same content once
    again = transfers.upload(root, entries, jobs=2)
    assert (again.uploaded_blobs, again.uploaded_bytes, again.skipped_blobs) == (0, 0, 2)
    assert transfers.missing(entries) == []
    assert transfers.describe().startswith("local folder ")

    staging = tmp_path / "staging"
    transfers(pointed[1], staging / "one")
    assert (staging / "one").read_bytes() == (root / "data/b.bin").read_bytes()
    stats = transfers.fetch_many([(entry, staging / entry.path) for entry in pointed], jobs=3)
    assert stats.downloaded_blobs == 3
    for entry in entries:
        assert (staging / entry.path).read_bytes() == (root / entry.path).read_bytes()
    with pytest.raises(IntegrityError, match="blobRef"):
        transfers(entries[0], staging / "x")


def test_unplaceable_download_leaves_nothing_behind(plugin_host: PluginHost, tmp_path: Path) -> None:
    provider = open_with(plugin_host, tmp_path, provider="local", path=str(tmp_path / "blobs"))
    source = tmp_path / "f"
    digest = write_random_file(source, 500)
    key = blob_key("", digest)
    provider.put_file(key, source, 500)
    out = tmp_path / "out"
    (out / "taken" / "child").mkdir(parents=True)  # a non-empty folder where the file should go
    with pytest.raises(StorageError, match="cannot write"):
        provider.get_to_file(key, out / "taken", 500, digest)
    assert sorted(p.name for p in out.iterdir()) == ["taken"]
