"""Helpers of the reliability suite: projects pinned to a real registry, and checks made directly
against the registry (never through the fault proxy)."""

from __future__ import annotations

import os
import random
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelops_bundle.core.errors import BundleError
from modelops_bundle.core.reference import Reference
from modelops_bundle.core.versions import fetch_version, resolve_digest
from modelops_bundle.plugins.registry_distribution import OciDistributionRegistry
from modelops_bundle.testing import BundleProject, CliResult
from tests.support.indexes import file_entry, sha

#: Retry and timeout settings for environments the suite writes: fast backoff, and a read timeout
#: short enough that a stalled connection is given up in about a second.
FAST_REGISTRY = {"retries": 4, "retry_base": 0.01, "timeout": [2, 1.5]}


def write_env(
    environ: Mapping[str, str],
    name: str,
    host: str,
    *,
    registry: Mapping[str, Any] | None = None,
    storage: str | None = None,
) -> Path:
    """Write ``$MODELOPS_HOME/bundle-env/<name>.yaml`` for an HTTP registry at ``host``."""
    folder = Path(environ["MODELOPS_HOME"]) / "bundle-env"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"environment: {name}", "registry:", "  provider: docker", f"  login_server: {host}"]
    for key, value in {**FAST_REGISTRY, **(registry or {})}.items():
        lines.append(f"  {key}: {value!r}" if isinstance(value, str) else f"  {key}: {value}")
    if storage:
        lines += ["storage:", textwrap.indent(textwrap.dedent(storage).strip(), "  ")]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def new_project(
    environ: dict[str, str], root: Path, env_name: str | None = None, *, ref: str | None = None
) -> BundleProject:
    """An initialised project without the scaffolded files, pinned to ``env_name``."""
    project = BundleProject.create(root, environ, *(("--env", env_name) if env_name else ()))
    for scaffolded in (".modelopsignore", "pyproject.toml"):
        (project.root / scaffolded).unlink(missing_ok=True)
    if ref is not None:
        assert project.run("config", "repository", ref).ok
    return project


def fill(
    project: BundleProject, seed: int, *, small: int = 30, large: int = 2, large_size: int = 1_200_000
) -> dict[str, bytes]:
    """Write deterministic content: ``small`` small files in folders (packs) and ``large`` raw layers."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {}
    for number in range(small):
        folder = ("data", "src", "conf")[number % 3]
        files[f"{folder}/f{number:03d}.txt"] = f"seed {seed} file {number} ".encode() * rng.randint(1, 40)
    for number in range(large):
        files[f"big/blob{number}.bin"] = rng.randbytes(large_size)
    for rel, data in files.items():
        project.write(rel, data)
    return files


def ok(result: CliResult) -> Any:
    assert result.exit_code == 0, result
    return result.json()


def failed_cleanly(result: CliResult, *needles: str, code: int = 1) -> str:
    """The command failed with ``code``, a message on stderr, no traceback; returns stderr."""
    assert result.exit_code == code, result
    assert "Traceback" not in result.stderr, result.stderr
    assert "unexpected error" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    return result.stderr


def direct_backend(host: str) -> OciDistributionRegistry:
    """A backend that talks to the registry itself (no proxy, no faults) with a clean environment."""
    return OciDistributionRegistry({"url": host, "retry_base": 0.01, "environ": {"HOME": "/nonexistent"}})


def complete_version(host: str, repository: str, tag: str) -> str | None:
    """The digest the tag points at, after checking the registry holds *everything* it names: the
    manifest, the index (parsed and matched against the manifest) and every layer. ``None`` when the
    tag does not exist. Raises AssertionError when the tag points at incomplete content."""
    backend = direct_backend(host)
    try:
        reference = Reference(repository, tag=tag)
        digest = resolve_digest(backend, reference)
        if digest is None:
            return None
        try:
            version = fetch_version(backend, reference, digest)
        except BundleError as exc:
            raise AssertionError(f"{repository}:{tag} -> {digest} is not a readable version: {exc}") from None
        for layer in version.manifest.layers:
            assert backend.blob_exists(repository, layer.digest), f"{repository}:{tag}: layer {layer.digest} missing"
        return digest
    finally:
        backend.close()


def tree_files(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` outside ``.modelops-bundle/``, with its bytes."""
    result: dict[str, bytes] = {}
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name != ".modelops-bundle"]
        for name in filenames:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                result[path.relative_to(root).as_posix()] = path.read_bytes()
    return result


# ------------------------------------------------------------------------------- hand-made versions


def publish(
    backend: Any,
    repository: str,
    tag: str,
    files: list[dict[str, Any]],
    layers: list[tuple[Any, bytes]],
    *,
    index: bytes | None = None,
    config_media_type: str | None = None,
    artifact_type: str | None = None,
    manifest_media_type: str | None = None,
    extra_blobs: tuple[bytes, ...] = (),
) -> str:
    """Push a hand-made version (``layers`` = ``(Descriptor, bytes)``) to ``backend``; returns its digest.
    ``index`` replaces the index bytes built from ``files``; the other overrides bend the manifest."""
    import io
    import json

    from modelops_bundle.core.index import INDEX_MEDIA_TYPE
    from modelops_bundle.core.packaging import ARTIFACT_TYPE, Descriptor, build_manifest
    from modelops_bundle.core.registry import OCI_MANIFEST, BlobSource

    index_bytes = (
        index
        if index is not None
        else json.dumps({"mediaType": INDEX_MEDIA_TYPE, "schemaVersion": 1, "files": files}).encode()
    )
    blobs = {sha(data): data for data in (index_bytes, *(data for _, data in layers), *extra_blobs)}
    backend.put_blobs(
        repository,
        [BlobSource(d, len(b), lambda b=b: io.BytesIO(b)) for d, b in blobs.items()],  # type: ignore[misc]
        jobs=1,
        progress=None,
    )
    config = Descriptor(config_media_type or INDEX_MEDIA_TYPE, sha(index_bytes), len(index_bytes))
    manifest = json.loads(build_manifest(config, [d for d, _ in layers], {}))
    manifest["artifactType"] = artifact_type or ARTIFACT_TYPE
    if manifest_media_type is not None:
        manifest["mediaType"] = manifest_media_type
    data = json.dumps(manifest).encode()
    backend.put_manifest(repository, data, manifest_media_type or OCI_MANIFEST, tag)
    return sha(data)


def raw_files(*items: tuple[str, bytes]) -> tuple[list[dict[str, Any]], list[tuple[Any, bytes]]]:
    """Index entries and raw layers for ``(path, bytes)`` pairs (one layer per distinct content)."""
    from modelops_bundle.core.packaging import raw_layer_descriptor

    files = [file_entry(path, data, sha(data)) for path, data in items]
    layers: dict[str, tuple[Any, bytes]] = {}
    for path, data in items:
        layers.setdefault(sha(data), (raw_layer_descriptor(path, sha(data), len(data)), data))
    return files, list(layers.values())


def pack(members: list[tuple[Any, bytes | None]]) -> tuple[Any, bytes]:
    """A gzip'd tar of ``(TarInfo, data)`` members: ``(PackInfo, blob bytes)``."""
    import gzip
    import io
    import tarfile

    from modelops_bundle.core.packaging import PackInfo

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    tar_bytes = raw.getvalue()
    blob = gzip.compress(tar_bytes, mtime=0)
    return PackInfo(sha(tar_bytes), len(tar_bytes), sha(blob), len(blob)), blob


def member(name: str, data: bytes = b"", kind: bytes = b"0", link: str = "", size: int | None = None) -> Any:
    import tarfile

    info = tarfile.TarInfo(name)
    info.size = len(data) if size is None else size
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info
