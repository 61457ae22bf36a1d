"""Other OCI tools read what we write: skopeo (an independent Go client) on both backends."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from modelops_bundle.core.registry import OCI_MANIFEST
from modelops_bundle.plugins.registry_distribution import OciDistributionRegistry
from modelops_bundle.plugins.registry_layout import OciLayoutRegistry
from tests.oci.conftest import blob
from tests.oci.registries import RunningRegistry
from tests.oci.test_conformance import manifest_for
from tests.support.servers import require_binary


def skopeo(*args: str) -> bytes:
    completed = subprocess.run([require_binary("skopeo"), *args], capture_output=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    return completed.stdout


def test_skopeo_reads_a_pushed_manifest(
    distribution: RunningRegistry, make_distribution: Callable[..., OciDistributionRegistry]
) -> None:
    backend = make_distribution(distribution.host)
    config, layer = blob(b'{"files": ["a.bin"]}'), blob(os.urandom(2048))
    backend.put_blobs("interop/app", [config, layer], jobs=2, progress=None)
    data = manifest_for(config, layer, note="skopeo")
    backend.put_manifest("interop/app", data, OCI_MANIFEST, "v1")
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{distribution.host}/interop/app:v1")
    assert raw.strip() == data
    assert json.loads(raw)["artifactType"] == "application/vnd.modelops.bundle.test.v1"


def test_skopeo_reads_the_layout(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    layout = OciLayoutRegistry({"path": str(root)})
    config, layer = blob(b'{"files": ["b.bin"]}'), blob(os.urandom(1024))
    layout.put_blobs("interop/app", [config, layer], jobs=2, progress=None)
    data = manifest_for(config, layer, note="layout")
    layout.put_manifest("interop/app", data, OCI_MANIFEST, "v1")
    layout.put_manifest("interop/app", manifest_for(config, note="other"), OCI_MANIFEST, "v2")
    assert skopeo("inspect", "--raw", f"oci:{root}/interop/app:v1").strip() == data
    copied = tmp_path / "copy"
    skopeo("copy", f"oci:{root}/interop/app:v1", f"dir:{copied}")
    assert (copied / layer.digest.split(":")[1]).read_bytes() == layer.open().read()
