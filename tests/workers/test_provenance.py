"""Provenance: manifest annotations, the referrer document (tag-schema fallback on CNCF distribution 2.8
and on the OCI layout), ``mops bundle provenance``, ``provenance_tags``, and ``verify --remote``."""

from __future__ import annotations

import json
import platform
import urllib.request
import uuid
from pathlib import Path

from modelops_bundle import __version__, api
from modelops_bundle.core.provenance import fallback_tag
from modelops_bundle.testing import run_command
from tests.bundle.conftest import ok
from tests.oci.registries import FaultProxy, RunningRegistry
from tests.workers.conftest import Pushed, http_environment, seir_project


def _check_document(document: dict, digest: str) -> None:  # type: ignore[type-arg]
    assert document["subject"]["digest"] == digest
    assert document["tool"] == {"name": "modelops-bundle", "version": __version__}
    assert document["python"]["version"] == platform.python_version()
    assert document["lockfiles"] == [] or all(item["digest"].startswith("sha256:") for item in document["lockfiles"])
    names = {plugin["name"] for plugin in document["plugins"]}
    assert {"sha256", "oci-layout", "oci-distribution", "packaging"} <= names


def test_push_records_provenance_in_the_layout(layout_bundle: Pushed) -> None:
    project = layout_bundle.project
    project.write("uv.lock", "version = 1\n")
    ok(project.run("add", "uv.lock", "--json"))
    pushed = ok(project.run("push", "--annotation", "org.example.study=flu-2025", "--annotation", "a=b=c", "--json"))
    assert pushed["provenance"]["method"] == "tag-schema"
    shown = ok(project.run("provenance", "--json"))
    assert shown["digest"] == pushed["digest"] and shown["referrer"] == pushed["provenance"]["digest"]
    document = shown["provenance"]
    _check_document(document, pushed["digest"])
    assert document["annotations"] == {"a": "b=c", "org.example.study": "flu-2025"}
    assert document["lockfiles"][0]["path"] == "uv.lock"
    annotations = shown["annotations"]
    assert annotations["org.example.study"] == "flu-2025" and annotations["io.modelops.bundle.lockfile"] == "uv.lock"
    assert annotations["io.modelops.bundle.tool"] == f"modelops-bundle/{__version__}"
    assert [v["tags"] for v in ok(project.run("tags", "--json"))["versions"]] == [["latest"]]
    layout = Path(layout_bundle.env["MODELOPS_HOME"]) / "registry" / "seir" / "index.json"
    names = [
        d.get("annotations", {}).get("org.opencontainers.image.ref.name")
        for d in json.loads(layout.read_text())["manifests"]
    ]
    assert fallback_tag(pushed["digest"]) in names
    text = project.run("provenance")
    assert text.exit_code == 0 and "org.example.study = flu-2025" in text.stdout
    tags = api.provenance_tags("seir:latest", environ=layout_bundle.env)
    assert tags["bundle.digest"] == pushed["digest"] and tags["bundle.reference"] == f"seir@{pushed['digest']}"
    assert tags["bundle.tool"] == f"modelops-bundle/{__version__}"
    bad = project.run("push", "--annotation", "io.modelops.bundle.tool=x", "--json")
    assert bad.exit_code == 2 and "reserved" in bad.stderr
    bad = project.run("push", "--annotation", "novalue", "--json")
    assert bad.exit_code == 2


def test_provenance_over_http_uses_the_fallback_tag(http_bundle: Pushed, distribution: RunningRegistry) -> None:
    project = http_bundle.project
    name = project.root.name
    shown = ok(project.run("provenance", "--json"))
    _check_document(shown["provenance"], http_bundle.digest)
    ref = f"{distribution.host}/{name}@{http_bundle.digest}"
    outside = run_command(["-C", str(project.root.parent), "provenance", ref, "--json"], http_bundle.env)
    assert outside.exit_code == 0 and outside.json()["referrer"] == shown["referrer"]
    assert api.provenance(ref, environ=http_bundle.env)["subject"]["digest"] == http_bundle.digest
    assert [v["digest"] for v in ok(project.run("tags", "--json"))["versions"]] == [http_bundle.digest]
    assert ok(project.run("verify", "--remote", "--json"))["ok"]
    # a damaged blob in the registry's storage is found by verify --remote, and named
    index = json.loads(run_command(["-C", str(project.root), "manifest", "--json"], http_bundle.env).stdout)
    raw = next(layer for layer in index["layers"] if layer["size"] > 2**20)
    blob = distribution.blob_data_path(raw["digest"])
    data = bytearray(blob.read_bytes())
    data[100] ^= 1
    blob.write_bytes(bytes(data))
    result = project.run("verify", "--remote", "--json")
    assert result.exit_code == 1
    assert [f["path"] for f in result.json()["findings"]] == ["data/extra/unused.bin"]
    blob.write_bytes(bytes(data[:100]) + bytes([data[100] ^ 1]) + bytes(data[101:]))


def test_a_registry_that_indexes_subjects_gets_no_fallback_tag(
    distribution: RunningRegistry, mops_env: dict[str, str], tmp_path: Path
) -> None:
    """OCI 1.1: the registry answers the referrer's PUT with ``OCI-Subject`` (here: distribution behind a
    proxy that adds the referrers API); push trusts it -- no referrers query, no ``sha256-<hex>`` tag --
    and ``provenance`` finds the document through the API."""
    proxy = FaultProxy(distribution.port, referrers=True).start()
    try:
        http_environment(mops_env, "v11", proxy.host)
        name = f"seir-{uuid.uuid4().hex[:8]}"
        project = seir_project(tmp_path / name, mops_env, "--env", "v11")
        pushed = ok(project.run("push", "--json"))
        assert pushed["provenance"]["method"] == "referrers-api"
        assert [path for _, path, _ in proxy.requests if "/referrers/" in path] == []  # the header was enough
        with urllib.request.urlopen(f"http://{distribution.host}/v2/{name}/tags/list", timeout=10) as answer:
            assert json.load(answer)["tags"] == ["latest"]  # no fallback tag was written
        shown = ok(project.run("provenance", "--json"))
        assert shown["referrer"] == pushed["provenance"]["digest"]
        _check_document(shown["provenance"], pushed["digest"])
    finally:
        proxy.stop()
