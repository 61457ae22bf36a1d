"""Hostile input, systematically: every hostile version through every consumer (pull, ensure, materialize
into the cache and into a folder) over a real registry; malformed content in every file the tool reads;
malformed references. ``tests/bundle/test_hostile.py`` checks a first set against ``pull`` on the
embedded layout; this extends it to all consumers, more variants and the HTTP path."""

from __future__ import annotations

import os
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelops_bundle import api
from modelops_bundle.core.errors import BundleError, UsageError
from modelops_bundle.core.packaging import pack_descriptor, raw_layer_descriptor
from modelops_bundle.testing import BundleProject
from tests.oci.registries import RunningRegistry
from tests.reliability.conftest import Trial
from tests.reliability.refusal import Stage, make_stage
from tests.reliability.support import (
    file_entry,
    member,
    new_project,
    ok,
    pack,
    publish,
    raw_files,
    sha,
    write_env,
)


@pytest.fixture
def stage(reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path) -> Stage:
    return make_stage(reliability_registry, mops_env, tmp_path)


Variant = tuple[str, Callable[[], dict[str, Any]], str]
PAYLOAD = b"#!/bin/sh\necho owned\n"


def _raw(path: str, **changes: Any) -> dict[str, Any]:
    files, layers = raw_files((path, PAYLOAD))
    files[0].update(changes)
    return {"files": files, "layers": layers}


def _two(first: str, second: str) -> dict[str, Any]:
    files, layers = raw_files((first, PAYLOAD), (second, PAYLOAD + b"2"))
    return {"files": files, "layers": layers}


def _packed(*members: tuple[Any, bytes | None], entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    info, blob = pack(list(members))
    files = entries or [file_entry("data/x.txt", b"one", info.tar_digest)]
    for entry in files:
        entry["layer"] = info.tar_digest
    return {"files": files, "layers": [(pack_descriptor("data", info), blob)]}


def _layer_media(media_type: str) -> dict[str, Any]:
    files, layers = raw_files(("data/x.txt", PAYLOAD))
    descriptor = layers[0][0]
    layers = [(descriptor.__class__(media_type, descriptor.digest, descriptor.size, descriptor.annotations), PAYLOAD)]
    return {"files": files, "layers": layers}


def _blob_pointer(uri: str) -> dict[str, Any]:
    entry = file_entry("data/big.bin", PAYLOAD, "")
    entry.pop("layer")
    entry.update(storage="blob", blobRef={"uri": uri})
    files, layers = raw_files(("data/x.txt", b"x"))
    return {"files": [*files, entry], "layers": layers}


VARIANTS: list[Variant] = [
    ("path with `..`", lambda: _raw("../escape.sh"), "'..'"),
    ("path with `..` in the middle", lambda: _raw("data/../../escape.sh"), "'..'"),
    ("absolute path", lambda: _raw("/tmp/abs.sh"), "absolute path"),
    ("Windows drive path", lambda: _raw("C:/evil.sh"), "absolute path"),
    ("backslash path", lambda: _raw("..\\evil.sh"), "backslash"),
    ("NUL in path", lambda: _raw("data/a\x00b.sh"), "control character"),
    ("newline in path", lambda: _raw("data/a\nb.sh"), "control character"),
    ("escape character in path", lambda: _raw("data/\x1b[2Jx.sh"), "control character"),
    ("empty path", lambda: _raw(""), "empty path"),
    ("`.` segment", lambda: _raw("./data/x.sh"), "segment"),
    ("into `.git/`", lambda: _raw(".git/hooks/post-checkout"), ".git"),
    ("into `.GIT/` (case)", lambda: _raw("sub/.GIT/config"), ".git"),
    ("into project metadata", lambda: _raw(".modelops-bundle/state.json"), "project metadata"),
    ("duplicate path", lambda: {**_raw("data/x.sh"), "files": _raw("data/x.sh")["files"] * 2}, "duplicate path"),
    ("a path that is both file and folder", lambda: _two("data/x", "data/x/y.sh"), "both a file and a folder"),
    ("absurd size (2^60)", lambda: _raw("data/x.sh", size=1 << 60), "invalid index"),
    ("negative size", lambda: _raw("data/x.sh", size=-1), "invalid index"),
    ("size as a string", lambda: _raw("data/x.sh", size="21"), "invalid index"),
    ("unknown hash algorithm", lambda: _raw("data/x.sh", algorithm="md5", digest="md5:" + "0" * 32), "algorithm"),
    ("malformed digest", lambda: _raw("data/x.sh", digest="sha256:XYZ"), "digest"),
    ("mode 4755 (setuid)", lambda: _raw("data/x.sh", mode=0o4755), "mode"),
    ("unknown key in an entry", lambda: _raw("data/x.sh", extra="x"), "invalid index"),
    ("layer with a foreign media type", lambda: _layer_media("text/plain"), "unexpected media type"),
    (
        "layer with a docker media type",
        lambda: _layer_media("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        "media type",
    ),
    ("pack member `../x`", lambda: _packed((member("../x.txt", b"one"), b"one")), "unexpected member"),
    ("pack member absolute", lambda: _packed((member("/etc/x.txt", b"one"), b"one")), "unexpected member"),
    (
        "pack member is a hard link",
        lambda: _packed((member("data/x.txt", kind=tarfile.LNKTYPE, link="/etc/passwd"), None)),
        "not a regular file",
    ),
    (
        "pack member is a device",
        lambda: _packed((member("data/x.txt", kind=tarfile.CHRTYPE), None)),
        "not a regular file",
    ),
    (
        "pack member is a folder",
        lambda: _packed((member("data/x.txt", kind=tarfile.DIRTYPE), None)),
        "not a regular file",
    ),
    (
        "pack larger than its files (gzip bomb)",
        lambda: _packed(
            (member("data/x.txt", b"one"), b"one"), (member("data/pad.bin", bytes(5_000_000)), bytes(5_000_000))
        ),
        "unexpected member",
    ),
    ("blob pointer with credentials", lambda: _blob_pointer("https://user:secret@evil.example/x"), "blob"),
    ("blob pointer with a query (signed URL)", lambda: _blob_pointer("s3://bucket/key?X-Amz-Signature=abc"), "blob"),
    ("blob pointer to a local file", lambda: _blob_pointer("file:///etc/passwd"), "blob"),
    ("blob pointer with `..` key", lambda: _blob_pointer("local://../../etc/passwd"), "blob"),
    # issue 15, items 4 and 9: limits every stored path keeps, checked when the index is read
    ("a path 1,900 folders deep", lambda: _raw("/".join(["d"] * 1900) + "/x.sh"), "segments deep"),
    ("a 300-byte name (over NAME_MAX)", lambda: _raw("data/" + "n" * 300 + ".sh"), "a name of 303 bytes"),
    ("a 3,500-byte path", lambda: _raw("/".join(["p" * 250] * 14) + "/x.sh"), "bytes long"),
]


def test_hostile_versions_through_every_consumer(stage: Stage, trial: Trial) -> None:
    backend = stage.backend()
    for title, build, needle in VARIANTS:
        parts = build()
        publish(backend, stage.repository, "evil", parts["files"], parts["layers"])
        messages = stage.refused(codes=(1, 2))
        assert any(needle.lower() in message.lower() for message in messages), (title, needle, messages)
        trial.record(
            "hostile input",
            f"version with {title}",
            "pull, ensure, materialize (cache and folder)",
            "refused; nothing placed, project untouched",
        )


def test_symlinks_in_the_destination_are_never_followed(stage: Stage, tmp_path: Path, trial: Trial) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, stage.victim.root / "linked")
    files, layers = raw_files(("linked/payload.sh", PAYLOAD))
    publish(stage.backend(), stage.repository, "evil", files, layers)
    result = stage.victim.run("pull", "--ref", "evil", "--overwrite")
    assert result.exit_code == 1 and "symlink" in result.stderr, result
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "linked")
    assert stage.victim.run("ensure", "--dest", str(dest), "--ref", "evil").exit_code == 1
    with pytest.raises(BundleError, match="symlink"):
        api.materialize(f"{stage.registry.host}/{stage.repository}:evil", dest, environ=stage.env)
    assert list(outside.iterdir()) == []
    trial.record(
        "hostile input",
        "version writing through a symlinked folder of the destination (pull, ensure, materialize)",
        "3 consumers",
        "refused naming the symlink; nothing written outside",
    )


def test_wrong_manifest_media_types(stage: Stage, trial: Trial) -> None:
    """The tag points at an image index (of a valid bundle) or at a docker v2 image manifest."""
    import json

    files, layers = raw_files(("data/x.txt", PAYLOAD))
    backend = stage.backend()
    inner = publish(backend, stage.repository, "inner", files, layers)
    size = len(backend.get_manifest(stage.repository, inner).data)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": inner, "size": size}],
    }
    config = b'{"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}'
    publish(backend, stage.repository, "scratch", files, layers, extra_blobs=(config,))
    docker = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": sha(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": sha(PAYLOAD),
                "size": len(PAYLOAD),
            }
        ],
    }
    for document in (index, docker):
        backend.put_manifest(stage.repository, json.dumps(document).encode(), str(document["mediaType"]), "evil")
        stage.refused(needle="not a modelops bundle", codes=(1,))
        trial.record(
            "hostile input",
            f"tag pointing at a {document['mediaType']}",
            "4 consumers",
            "refused: not a modelops bundle",
        )


# ----------------------------------------------------------------------------------- malformed files

GARBAGE = {
    "yaml-syntax": "key: [unclosed\n  - x: {\n",
    "binary": "\x00\x01\x02\xff",
    "wrong-shape": "- just\n- a list\n",
    "empty": "",
    "escaping-paths": "data/a.csv\n../../etc/passwd\n",
    "duplicate-lines": "data/a.csv\ndata/a.csv\n",
    "absolute-path": "/etc/passwd\n",
    # issue 15, item 13: a tracked list cut short, or written by another tool
    "truncated": "data/a.csv\nsrc/mod",
    "crlf": "data/a.csv\r\nsrc/model.py\r\n",
    "byte-order-mark": "\ufeffdata/a.csv\nsrc/model.py\n",
    # issue 15, item 14: a digest that names nothing
    "malformed-digest": '{"last_push_digest": "sha256:xyz", "last_synced_files": {}}\n',
}

YAML_GARBAGE = ("yaml-syntax", "binary", "wrong-shape", "empty")
TRACKED_GARBAGE = (
    "binary",
    "escaping-paths",
    "duplicate-lines",
    "absolute-path",
    "truncated",
    "crlf",
    "byte-order-mark",
    "empty",
)


def _project(environ: dict[str, str], tmp: Path, registry: RunningRegistry) -> BundleProject:
    write_env(environ, "garbage", registry.host)
    project = new_project(environ, tmp / f"garbage-{uuid.uuid4().hex[:8]}", "garbage")
    project.write("data/a.csv", "x\n1\n")
    project.write("src/model.py", "X = 1\n")
    ok(project.run("add", ".", "--json"))
    ok(project.run("push", "--json"))
    return project


def _write(path: Path, text: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape") if text != GARBAGE["binary"] else b"\x00\x01\x02\xff"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def test_malformed_files_the_tool_reads(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """Each file, each kind of garbage, each command that reads it: exit 2 (a local file is wrong),
    the message names the file, nothing is overwritten, no traceback."""
    project = _project(mops_env, tmp_path, reliability_registry)
    home = Path(mops_env["MODELOPS_HOME"])
    docker = Path(mops_env["HOME"]) / ".docker" / "config.json"
    targets: dict[str, tuple[Path, tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
        "config.yaml": (
            project.meta / "config.yaml",
            (("status",), ("add", "."), ("push",), ("pull",)),
            YAML_GARBAGE,
        ),
        "environment pin (env)": (
            project.meta / "env",
            (("status",), ("push",), ("pull",)),
            ("binary", "empty", "wrong-shape"),
        ),
        "tracked.txt": (
            project.meta / "tracked.txt",
            (("status",), ("add", "."), ("push",)),
            TRACKED_GARBAGE,
        ),
        "state.json": (
            project.meta / "state.json",
            (("status",), ("push",), ("pull",)),
            (*YAML_GARBAGE, "malformed-digest"),
        ),
        "registry.yaml": (
            project.meta / "registry.yaml",
            (("status",), ("push",)),
            ("yaml-syntax", "binary", "wrong-shape"),
        ),
        "environment file": (home / "bundle-env" / "garbage.yaml", (("status",), ("push",), ("pull",)), YAML_GARBAGE),
        "docker config.json": (docker, (("push",), ("pull",)), ("yaml-syntax", "binary", "wrong-shape")),
        ".modelopsignore": (project.root / ".modelopsignore", (("status",), ("add", ".")), ("binary",)),
    }
    for label, (path, commands, kinds) in targets.items():
        original = path.read_bytes() if path.exists() else None
        for kind in kinds:
            for command in commands:
                written = _write(path, GARBAGE[kind])
                before = {p: p.read_bytes() for p in project.meta.iterdir() if p.is_file() and p.name != "lock"}
                result = project.run(*command, input_env={"DOCKER_CONFIG": str(docker.parent)})
                assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr, result.stderr
                # status too: a broken local file is the user's to fix, not a remote side "unknown"
                assert result.exit_code == 2, (label, kind, command, result)
                assert path.name in result.stderr, (label, kind, command, result.stderr)
                assert path.read_bytes() == written, f"{label} was overwritten by {command}"
                after = {p: p.read_bytes() for p in project.meta.iterdir() if p.is_file() and p.name != "lock"}
                assert after == before, f"{command} changed project metadata despite a broken {label}"
        if original is None:
            path.unlink()
        else:
            path.write_bytes(original)
        trial.record(
            "hostile input",
            f"malformed {label}: {', '.join(kinds)}",
            f"{len(kinds) * len(commands)} runs ({', '.join(' '.join(c) for c in commands)})",
            "exit 2 naming the file; nothing overwritten; no traceback",
        )
    assert ok(project.run("status", "--json"))
    # caches are only caches: garbage there is discarded and rebuilt, never an error
    for cache in ("stat-cache.json", "packs.json", "registry-memo.json"):
        target = project.meta / "cache" / cache
        for kind in YAML_GARBAGE:
            _write(target, GARBAGE[kind])
            assert ok(project.run("status", "--json")), cache
            ok(project.run("push", "--json"))
    trial.record(
        "hostile input",
        "garbage in the caches (stat cache, pack cache, registry memo)",
        f"{3 * len(YAML_GARBAGE)} runs (status, push)",
        "ignored and rebuilt; exit 0",
    )


BAD_REFERENCES = [
    "UPPER/Case:v1",
    "repo:tag:extra",
    "repo@sha256:abc",
    "repo@md5:" + "0" * 32,
    "host:99999x/repo:v1",
    "repo:" + "t" * 129,
    "repo:",
    "re po:v1",
    "repo:v\x01",
    "../escape:v1",
    "-repo:v1",
    "repo//x:v1",
    "repo:.hidden",
    "\x00repo",
    "",
]


def test_malformed_references(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    project = _project(mops_env, tmp_path, reliability_registry)
    config = project.meta / "config.yaml"
    original = config.read_text()
    for reference in BAD_REFERENCES:
        for command in (("pull", "--ref"), ("push", "--tag"), ("ensure", "--dest", str(tmp_path / "d"), "--ref")):
            if not reference:
                continue  # an empty option value means "the default", not a reference
            result = project.run(*command, reference)
            assert result.exit_code == 2, (reference, command, result)
            assert "Traceback" not in result.stderr, result.stderr
            assert "invalid" in result.stderr or "expected one argument" in result.stderr, result.stderr
        with pytest.raises(UsageError):
            api.resolve(reference or " ", environ=mops_env)
        lines = [
            f"repository: {reference!r}" if line.startswith("repository:") else line for line in original.splitlines()
        ]
        config.write_text("\n".join(lines) + "\n")
        result = project.run("push")
        assert result.exit_code == 2 and "config.yaml" in result.stderr, (reference, result)
        config.write_text(original)
    assert not (tmp_path / "d").exists()
    trial.record(
        "hostile input",
        "malformed references (upper case, two tags, short/unknown digests, bad port, 129-char tag, whitespace, "
        "control characters, `..`, empty)",
        f"{len(BAD_REFERENCES)} references x (pull, push, ensure, api.resolve, repository in config.yaml)",
        "exit 2 / UsageError naming the reference; nothing contacted or written",
    )


def test_a_raw_layer_of_the_right_size_but_other_bytes_is_refused(stage: Stage, trial: Trial) -> None:
    """The registry itself is hostile: it serves a layer under a digest whose bytes differ."""
    files, _ = raw_files(("data/x.txt", PAYLOAD))
    other = PAYLOAD.replace(b"owned", b"pwned")
    layers = [(raw_layer_descriptor("data/x.txt", sha(PAYLOAD), len(PAYLOAD)), PAYLOAD)]
    digest = publish(stage.backend(), stage.repository, "evil", files, layers)
    path = stage.registry.blob_data_path(sha(PAYLOAD))
    original = path.read_bytes()
    path.write_bytes(other)
    try:
        stage.refused(needle="does not match")
    finally:
        path.write_bytes(original)
    assert digest
    trial.record(
        "hostile input", "registry serving other bytes under a layer digest", "4 consumers", "refused: digest mismatch"
    )
