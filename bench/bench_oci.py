"""OCI benchmark (issue 3, "Speed and memory"): mops push and pull against skopeo and oras-py, side by side.

Starts its own CNCF distribution registry (``/usr/bin/docker-registry``) on 127.0.0.1 -- a fresh one for
every round, so that nothing is skipped by accident (skopeo remembers where it pushed blobs and mounts
them across repositories of the same registry) -- and measures, with every command a child process timed
by wall clock and its peak RSS taken by GNU time (``/usr/bin/time -f %M``):

``large``   1 GiB in 100 files: ``mops bundle push`` and ``mops bundle ensure --dest DIR --ref DIGEST``
            against ``skopeo copy`` of an OCI image layout holding the same 100 files as layers (push
            ``oci:LAYOUT:v1`` -> ``docker://``, pull ``docker://`` -> ``oci:DIR:v1``) and against oras-py
            (``OrasClient(insecure=True).push(target, files=[...])`` / ``.pull(target, outdir=...)``).
            Target: push and pull no slower than skopeo (ratio <= 1.0).
``small``   5,000 small files (20 MiB): mops push and pull (target <= 5 s each); oras-py push and pull
            for reference, each given up after ``--oras-timeout`` seconds; skopeo only on a
            ``--skopeo-small-files`` subset (500), since 5,000 layers take it many minutes.
``change``  one file of the ``large`` bundle replaced (same size, new bytes): mops re-push as a share of
            the mops full push (target <= 10%), bytes uploaded (from ``push --json``, cross-checked
            against the growth of the registry's blob store), and skopeo's re-push of the updated layout
            as a share of its own full push.
``single``  one 2 GiB file: mops push and pull peak RSS (target <= 150 MB) and time against skopeo
            (ratio <= 1.0).

Beside the ``large`` and ``single`` cases, the raw floor (issue 19): the same blobs uploaded and
downloaded by ``curl`` alone -- a monolithic upload per blob (``POST`` for a session, then one ``PUT
?digest=`` with the file as the body), the manifest ``PUT``, and one ``GET`` per blob to a file, nothing
verified on the client -- with as many ``curl`` processes at once as mops uses connections (5; the
single file: one). Targets: mops push and pull <= 1.15x that floor (the 2 GiB file: its pull).

Run from the repository root with the virtualenv's interpreter::

    .venv/bin/python bench/bench_oci.py                          # full size, 3 rounds (about 6 min)
    .venv/bin/python bench/bench_oci.py --quick                  # smoke run at small sizes (about 1 min)
    .venv/bin/python bench/bench_oci.py --only single --rounds 1 --markdown /tmp/oci.md

The work folder (``bench/.work/oci-*``, git-ignored) is removed at the end unless ``--keep DIR``; each
case removes its own data when it is done, so the disk holds at most about three copies of the largest
case (project, registry, one pull).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    GIB,
    MIB,
    REPO_ROOT,
    Measured,
    describe_code,
    fmt_bytes,
    fmt_mb,
    fmt_time,
    isolated_env,
    log,
    machine_line,
    make_work_dir,
    measure,
    median,
    read_all,
    remove_work_dir,
    render_table,
    require_free_space,
    sha256_file,
    tree_size,
    write_from_pool,
)

sys.path.insert(0, str(REPO_ROOT))
from tests.oci.registries import RunningRegistry, start_distribution

CASES = ("large", "small", "change", "single")
TOOLS = ("mops", "skopeo", "oras", "floor")
#: Layer media type of the peers' layouts: not a tar type, so skopeo neither compresses nor unpacks it.
PEER_LAYER_MEDIA_TYPE = "application/octet-stream"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
RACY_CLEAN_WAIT = 2.5  # seconds between writing files and the first add (see bench_workspace.py)
RSS_TARGET = 150e6
SMALL_PUSH_TARGET = 5.0
CHANGE_TARGET = 0.10
#: What the issue measured for skopeo on 5,000 small files (not re-run: it takes many minutes).
SKOPEO_SMALL_ANCHOR = (
    "issue 3 measured skopeo pushing 5,000 small files as layers: it did not finish in 5 min "
    "(1,000 files: 51 s; 2,000: 163 s)"
)

#: The raw floor: curl alone moves the same blobs, ``jobs`` at once (argv: mode host repository listing
#: jobs [dest]); the listing is JSON ``[[path, "sha256:...", size], ...]``.
CURL_SCRIPT = """
import json, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
mode, host, repository, listing, jobs = sys.argv[1:6]
blobs = json.load(open(listing))
base = f"http://{host}/v2/{repository}"

def curl(*args):
    return subprocess.run(["curl", "-sS", "--fail", *args], check=True, capture_output=True).stdout

def push(blob):
    path, digest, size = blob
    headers = curl("-X", "POST", "-D", "-", "-o", "/dev/null", f"{base}/blobs/uploads/").decode()
    location = next(l.split(":", 1)[1].strip() for l in headers.splitlines() if l.lower().startswith("location:"))
    location = location if location.startswith("http") else f"http://{host}{location}"
    sep = "&" if "?" in location else "?"
    curl("-T", path, "-H", "Content-Type: application/octet-stream", f"{location}{sep}digest={digest}")  # streams

def pull(blob):
    path, digest, size = blob
    curl("-o", f"{sys.argv[6]}/{digest.split(':')[1]}", f"{base}/blobs/{digest}")

with ThreadPoolExecutor(int(jobs)) as pool:
    list(pool.map(push if mode == "push" else pull, blobs))
if mode == "push":  # the manifest (its config blob is the listing's last entry)
    config, *layers = blobs[-1:] + blobs[:-1]
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": config[1], "size": config[2]},
                "layers": [{"mediaType": "application/octet-stream", "digest": d, "size": n} for _p, d, n in layers]}
    curl("-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
         "--data-binary", json.dumps(manifest), f"{base}/manifests/v1")
"""
#: Connections mops uses for a push or pull of many blobs (``DEFAULT_JOBS`` of core/push.py and pull.py).
MOPS_JOBS = 5
FLOOR_TARGET = 1.15

ORAS_SCRIPT = """
import sys
import oras.client
import oras.logger
oras.logger.setup_logger(quiet=True)
mode, target, arg = sys.argv[1:4]
client = oras.client.OrasClient(insecure=True)
if mode == "push":
    with open(arg, encoding="utf-8") as handle:
        files = handle.read().splitlines()
    client.push(target=target, files=files, quiet=True)
else:
    client.pull(target=target, outdir=arg)
"""


@dataclass(frozen=True)
class Sizes:
    large_files: int
    large_bytes: int
    small_files: int
    small_bytes: int
    skopeo_small_files: int
    single_bytes: int


FULL = Sizes(100, GIB, 5000, 20 * MIB, 500, 2 * GIB)
QUICK = Sizes(20, 128 * MIB, 500, 2 * MIB, 100, 256 * MIB)


# ------------------------------------------------------------------------------------------ results


@dataclass
class Series:
    """Measurements of one tool doing one thing, over rounds."""

    runs: list[Measured] = field(default_factory=list)

    def add(self, measured: Measured) -> Measured:
        self.runs.append(measured)
        return measured

    @property
    def done(self) -> list[Measured]:
        return [run for run in self.runs if run.ok]

    @property
    def seconds(self) -> float | None:
        done = self.done
        return median([run.seconds for run in done]) if done and len(done) == len(self.runs) else None

    @property
    def rss(self) -> int | None:
        done = self.done
        return max(run.max_rss for run in done) if done else None

    def time_cell(self, suffix: str = "") -> str:
        if not self.runs:
            return "-"
        if any(run.timed_out for run in self.runs):
            limit = max(run.seconds for run in self.runs if run.timed_out)
            return f"> {limit:.0f} s (gave up){suffix}"
        if self.seconds is None:
            return f"failed{suffix}"
        text = fmt_time(self.seconds)
        if len(self.runs) > 1:
            low, high = min(r.seconds for r in self.runs), max(r.seconds for r in self.runs)
            text += f" ({fmt_time(low)}-{fmt_time(high)})"
        return text + suffix


def ratio_cell(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}x" if ours is not None and theirs else "-"


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "-"
    return "pass" if value <= limit else "FAIL"


@dataclass
class Section:
    title: str
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    header: tuple[str, ...] = ("metric", "mops", "skopeo", "oras-py", "mops / skopeo", "target", "result")

    def render(self) -> str:
        header = list(self.header)
        parts = [f"### {self.title}"]
        if self.rows:
            parts += ["", render_table(header, self.rows, right=tuple(range(1, len(header) - 2)))]
        if self.notes:
            parts += ["", *[f"- {note}" for note in self.notes]]
        return "\n".join(parts)


# ------------------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, sizes: Sizes) -> None:
        self.args = args
        self.work = work
        self.sizes = sizes
        self.mops = str(Path(sys.executable).parent / "mops")
        self.skopeo = shutil.which("skopeo") or "/usr/bin/skopeo"
        self.env = isolated_env(work)
        self.env_dir = Path(self.env["MODELOPS_HOME"]) / "bundle-env"
        self.env_dir.mkdir(parents=True, exist_ok=True)
        self.write_env("127.0.0.1:5000")  # rewritten with the real port whenever a registry starts
        self.digests: dict[tuple[int, int, int], str] = {}
        self.sections: list[Section] = []
        self.rng = random.Random(args.seed)

    # ---------------------------------------------------------------------------- infrastructure

    def write_env(self, host: str) -> None:
        (self.env_dir / "bench.yaml").write_text(
            f"environment: bench\nregistry: {{provider: docker, login_server: '{host}'}}\n", encoding="utf-8"
        )

    @contextlib.contextmanager
    def registry(self, name: str) -> Iterator[RunningRegistry]:
        """A fresh distribution registry for ``name`` (storage removed when it stops)."""
        folder = self.work / f"registry-{name}"
        registry = start_distribution(folder)
        self.write_env(registry.host)
        try:
            yield registry
        finally:
            registry.stop()
            shutil.rmtree(folder, ignore_errors=True)

    def run(self, argv: Sequence[str], cwd: Path, timeout: float = 1800.0) -> Measured:
        return measure(argv, cwd=cwd, env=self.env, timeout=timeout)

    def digest_of(self, path: Path) -> str:
        st = path.stat()
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key not in self.digests:
            self.digests[key] = sha256_file(path)
        return self.digests[key]

    # ---------------------------------------------------------------------------------- mops side

    def mops_project(self, root: Path) -> Path:
        self.run([self.mops, "bundle", "init", "--env", "bench", str(root)], cwd=self.work)
        return root

    def mops_target(self, project: Path, host: str, repository: str) -> None:
        """Point the project at ``host/repository`` and forget packs built for another registry."""
        self.run([self.mops, "bundle", "config", "registry", host], cwd=project)
        self.run([self.mops, "bundle", "config", "repository", repository], cwd=project)
        (project / ".modelops-bundle" / "cache" / "packs.json").unlink(missing_ok=True)

    def mops_push(self, project: Path) -> tuple[Measured, dict[str, object]]:
        measured = self.run([self.mops, "bundle", "--json", "push"], cwd=project)
        return measured, json.loads(measured.stdout)

    def mops_pull(self, project: Path, dest: Path, digest: str) -> Measured:
        argv = [self.mops, "bundle", "--json", "ensure", "--dest", str(dest), "--ref", digest]
        return self.run(argv, cwd=project)

    # -------------------------------------------------------------------------------- peers' side

    def build_layout(self, layout: Path, files: Sequence[tuple[Path, str]], tag: str = "v1") -> None:
        """An OCI image layout whose manifest has one layer per file (blobs hard-linked, not copied)."""
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True, exist_ok=True)
        (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        layers = []
        for path, title in files:
            hexdigest = self.digest_of(path)
            blob = blobs / hexdigest
            if not blob.exists():
                os.link(path, blob)
            layers.append(
                {
                    "mediaType": PEER_LAYER_MEDIA_TYPE,
                    "digest": f"sha256:{hexdigest}",
                    "size": path.stat().st_size,
                    "annotations": {"org.opencontainers.image.title": title},
                }
            )
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            }
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": "sha256:" + self._put_blob(blobs, config),
                    "size": len(config),
                },
                "layers": layers,
            }
        ).encode()
        descriptor = {
            "mediaType": OCI_MANIFEST,
            "digest": "sha256:" + self._put_blob(blobs, manifest),
            "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }
        (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))

    @staticmethod
    def _put_blob(blobs: Path, data: bytes) -> str:
        hexdigest = hashlib.sha256(data).hexdigest()
        (blobs / hexdigest).write_bytes(data)
        return hexdigest

    def skopeo_push(self, layout: Path, host: str, repository: str, tag: str = "v1") -> Measured:
        argv = [self.skopeo, "copy", "--quiet", "--dest-tls-verify=false"]
        return self.run([*argv, f"oci:{layout}:{tag}", f"docker://{host}/{repository}:{tag}"], cwd=self.work)

    def skopeo_pull(self, host: str, repository: str, dest: Path, tag: str = "v1") -> Measured:
        argv = [self.skopeo, "copy", "--quiet", "--src-tls-verify=false"]
        return self.run([*argv, f"docker://{host}/{repository}:{tag}", f"oci:{dest}:{tag}"], cwd=self.work)

    def oras_push(self, project: Path, rels: Sequence[str], target: str, timeout: float) -> Measured:
        listing = self.work / "oras-files.txt"
        listing.write_text("\n".join(rels) + "\n", encoding="utf-8")
        argv = [sys.executable, "-c", ORAS_SCRIPT, "push", target, str(listing)]
        return measure(argv, cwd=project, env=self.env, timeout=timeout)

    def oras_pull(self, target: str, dest: Path, timeout: float) -> Measured:
        dest.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-c", ORAS_SCRIPT, "pull", target, str(dest)]
        return measure(argv, cwd=self.work, env=self.env, timeout=timeout)

    def floor_listing(self, paths: Sequence[Path], name: str) -> Path:
        """The blobs of the floor: the files, and a small config blob last."""
        config = self.work / f"floor-config-{name}.json"
        config.write_text(json.dumps({"floor": name}), encoding="utf-8")
        blobs = [[str(path), "sha256:" + self.digest_of(path), path.stat().st_size] for path in [*paths, config]]
        listing = self.work / f"floor-{name}.json"
        listing.write_text(json.dumps(blobs), encoding="utf-8")
        return listing

    def floor_push(self, listing: Path, host: str, repository: str, jobs: int) -> Measured:
        argv = [sys.executable, "-c", CURL_SCRIPT, "push", host, repository, str(listing), str(jobs)]
        return self.run(argv, cwd=self.work)

    def floor_pull(self, listing: Path, host: str, repository: str, jobs: int, dest: Path) -> Measured:
        dest.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-c", CURL_SCRIPT, "pull", host, repository, str(listing), str(jobs), str(dest)]
        return self.run(argv, cwd=self.work)

    def floor_section(self, title: str, rows: Sequence[tuple[str, Series, Series, bool]], note: str) -> None:
        """``rows``: (label, mops series, floor series, whether the 1.15x target applies)."""
        section = Section(
            f"Against the raw floor (curl): {title}",
            header=("metric", "mops", "curl floor", "mops / floor", "target", "result"),
        )
        for label, ours, floor, targeted in rows:
            value = ratio(ours.seconds, floor.seconds)
            section.rows.append(
                [
                    label,
                    ours.time_cell(),
                    floor.time_cell(),
                    ratio_cell(ours.seconds, floor.seconds),
                    f"<= {FLOOR_TARGET}x floor" if targeted else "report",
                    verdict(value, FLOOR_TARGET) if targeted else "-",
                ]
            )
        section.notes.append(note)
        self.sections.append(section)

    # ---------------------------------------------------------------------------------- test data

    def write_binary_files(self, root: Path, rels: Sequence[str], sizes: Sequence[int]) -> list[Path]:
        """Incompressible files: a header naming the file, then bytes of a random pool."""
        pool = self.rng.randbytes(64 * MIB)
        paths = []
        for rel, size in zip(rels, sizes, strict=True):
            path = root / rel
            write_from_pool(path, size, pool, self.rng.randrange(len(pool)), header=rel.encode() + b"\n")
            paths.append(path)
        return paths

    def replace_file(self, path: Path) -> None:
        """New bytes, same size, new inode (a layout blob hard-linked to the old file keeps its bytes)."""
        size = path.stat().st_size
        temporary = path.with_name(path.name + ".new")
        write_from_pool(temporary, size, self.rng.randbytes(4 * MIB), 0, header=f"changed {time.time()}\n".encode())
        os.replace(temporary, path)

    def settle_and_add(self, project: Path, paths: Sequence[Path], written: float) -> None:
        """``mops bundle add .`` once no file is racily clean, then read every file (warm page cache)."""
        time.sleep(max(0.0, written + RACY_CLEAN_WAIT - time.monotonic()))
        self.run([self.mops, "bundle", "add", "."], cwd=project)
        read_all(paths)

    # ------------------------------------------------------------------------------------- cases

    def case_large(self, *, pulls: bool, change: bool, oras: bool) -> None:
        n, total = self.sizes.large_files, self.sizes.large_bytes
        base = self.work / "large"
        project = self.mops_project(base / "project")
        rels = [f"data/part-{i % 4}/file-{i:03d}.bin" for i in range(n)]
        sizes = [total // n + (1 if i < total % n else 0) for i in range(n)]
        log(f"large: writing {n} files, {fmt_bytes(total)}")
        paths = self.write_binary_files(project, rels, sizes)
        self.settle_and_add(project, paths, time.monotonic())
        layout = base / "layout"
        push = {tool: Series() for tool in TOOLS}
        pull = {tool: Series() for tool in TOOLS}
        repush = {tool: Series() for tool in ("mops", "skopeo")}
        changes: list[tuple[int, int, int, int]] = []  # (file size, uploaded, blobs, registry growth)
        tools = [tool for tool in TOOLS if (oras or tool != "oras") and (pulls or tool != "floor")]
        listing = self.floor_listing(paths, "large") if "floor" in tools else None
        for number in range(1, self.args.rounds + 1):
            order = tools[number - 1 :] + tools[: number - 1]
            with self.registry(f"large-r{number}") as registry:
                host = registry.host
                repo = {tool: f"bench/{tool}-large-r{number}" for tool in tools}
                digest = ""
                for tool in order:
                    log(f"large round {number}: {tool} push")
                    if tool == "mops":
                        self.mops_target(project, host, repo["mops"])
                        measured, report = self.mops_push(project)
                        push["mops"].add(measured)
                        digest = str(report["digest"])
                        if int(report["uploaded_blobs"]) < n:  # type: ignore[call-overload]
                            raise SystemExit(f"bench: mops uploaded only {report['uploaded_blobs']} blobs")
                    elif tool == "skopeo":
                        self.build_layout(layout, [(p, rel) for p, rel in zip(paths, rels, strict=True)])
                        push["skopeo"].add(self.skopeo_push(layout, host, repo["skopeo"]))
                    elif tool == "floor":
                        assert listing is not None
                        push["floor"].add(self.floor_push(listing, host, repo["floor"], MOPS_JOBS))
                    else:
                        push["oras"].add(self.oras_push(project, rels, f"{host}/{repo['oras']}:v1", 900))
                if pulls:
                    for tool in order:
                        log(f"large round {number}: {tool} pull")
                        dest = base / f"pull-{tool}"
                        if tool == "mops":
                            pull["mops"].add(self.mops_pull(project, dest, digest))
                        elif tool == "skopeo":
                            pull["skopeo"].add(self.skopeo_pull(host, repo["skopeo"], dest))
                        elif tool == "floor":
                            assert listing is not None
                            pull["floor"].add(self.floor_pull(listing, host, repo["floor"], MOPS_JOBS, dest))
                        else:
                            pull["oras"].add(self.oras_pull(f"{host}/{repo['oras']}:v1", dest, 900))
                        check_tree(dest, n, total, tool)
                        shutil.rmtree(dest)
                if change:
                    victim = (number * 37) % n
                    log(f"large round {number}: replace {rels[victim]}, re-push (mops, then skopeo)")
                    self.replace_file(paths[victim])
                    before = registry_blob_bytes(registry)
                    measured, report = self.mops_push(project)
                    repush["mops"].add(measured)
                    growth = registry_blob_bytes(registry) - before
                    uploaded, blobs = int(report["uploaded_bytes"]), int(report["uploaded_blobs"])  # type: ignore[call-overload]
                    changes.append((sizes[victim], uploaded, blobs, growth))
                    self.build_layout(layout, [(p, rel) for p, rel in zip(paths, rels, strict=True)])
                    repush["skopeo"].add(self.skopeo_push(layout, host, repo["skopeo"]))
        shutil.rmtree(base, ignore_errors=True)

        rounds = self.args.rounds
        title = f"{n} files, {fmt_bytes(total)} in all (median of {rounds} round{'s' * (rounds > 1)})"
        if pulls or oras or not change:
            section = Section(f"Large files: {title}")
            sk_push, sk_pull = push["skopeo"].seconds, pull["skopeo"].seconds
            section.rows.append(
                [
                    "push",
                    push["mops"].time_cell(),
                    push["skopeo"].time_cell(),
                    push["oras"].time_cell(),
                    ratio_cell(push["mops"].seconds, sk_push),
                    "<= 1.0x skopeo",
                    verdict(ratio(push["mops"].seconds, sk_push), 1.0),
                ]
            )
            if pulls:
                section.rows.append(
                    [
                        "pull (`ensure --dest DIR --ref DIGEST`)",
                        pull["mops"].time_cell(),
                        pull["skopeo"].time_cell(),
                        pull["oras"].time_cell(),
                        ratio_cell(pull["mops"].seconds, sk_pull),
                        "<= 1.0x skopeo",
                        verdict(ratio(pull["mops"].seconds, sk_pull), 1.0),
                    ]
                )
            section.rows.append(
                [
                    "push peak RSS",
                    fmt_mb(push["mops"].rss),
                    fmt_mb(push["skopeo"].rss),
                    fmt_mb(push["oras"].rss),
                    "-",
                    "report",
                    "-",
                ]
            )
            if pulls:
                section.rows.append(
                    [
                        "pull peak RSS",
                        fmt_mb(pull["mops"].rss),
                        fmt_mb(pull["skopeo"].rss),
                        fmt_mb(pull["oras"].rss),
                        "-",
                        "report",
                        "-",
                    ]
                )
            section.notes.append(
                "skopeo copies an OCI image layout whose manifest has the same files as layers "
                f"(`{PEER_LAYER_MEDIA_TYPE}`, hard-linked blobs); oras-py pushes the same files by path. "
                "mops also pushes its index and the project's two scaffold files (`.modelopsignore`, "
                "`pyproject.toml`)."
            )
            self.sections.append(section)
            if pulls:
                self.floor_section(
                    title,
                    [("push", push["mops"], push["floor"], True), ("pull", pull["mops"], pull["floor"], True)],
                    f"The floor: {MOPS_JOBS} `curl` processes at once (mops's connections), one monolithic "
                    "upload (`POST` + `PUT ?digest=`) or `GET` per blob, plus the manifest `PUT`; nothing "
                    "verified on the client. mops also hashes what it downloads, unpacks nothing here "
                    "(raw layers) and writes its index and state.",
                )
        if change:
            self._change_section(title, push, repush, changes)

    def _change_section(
        self,
        title: str,
        push: dict[str, Series],
        repush: dict[str, Series],
        changes: list[tuple[int, int, int, int]],
    ) -> None:
        section = Section(f"One file changed: {title}")
        shares = {tool: share(repush[tool].seconds, push[tool].seconds) for tool in ("mops", "skopeo")}
        section.rows.append(
            [
                "re-push after replacing one file",
                repush["mops"].time_cell(),
                repush["skopeo"].time_cell(),
                "-",
                ratio_cell(repush["mops"].seconds, repush["skopeo"].seconds),
                "report",
                "-",
            ]
        )
        section.rows.append(
            [
                "re-push as a share of the full push",
                pct(shares["mops"]),
                pct(shares["skopeo"]),
                "-",
                "-",
                f"<= {CHANGE_TARGET:.0%}",
                verdict(shares["mops"], CHANGE_TARGET),
            ]
        )
        file_size, uploaded, blobs, growth = changes[-1]
        extra = uploaded - file_size
        section.rows.append(
            [
                "bytes uploaded by the mops re-push",
                f"{uploaded:,} B in {blobs} blobs",
                "-",
                "-",
                "-",
                "the file + index + manifest",
                "pass" if 0 <= extra <= 4 * MIB and all(c[1] - c[0] <= 4 * MIB for c in changes) else "FAIL",
            ]
        )
        section.notes.append(
            f"The replaced file has {file_size:,} B, so mops sent {extra:,} B more (its bundle index, a "
            f"blob); the registry's blob store grew by {growth:,} B (the file, the index and the manifest)."
        )
        section.notes.append(
            "mops re-pushes first in every round, skopeo second (to the repository of its own full push)."
        )
        self.sections.append(section)

    def case_small(self) -> None:
        n, total, subset = self.sizes.small_files, self.sizes.small_bytes, self.sizes.skopeo_small_files
        base = self.work / "small"
        project = self.mops_project(base / "project")
        rels, sizes = plan_small(n, total, self.args.seed)
        log(f"small: writing {n:,} files, {fmt_bytes(total)}")
        text_pool = make_text_pool(self.rng, 8 * MIB)
        paths = []
        for rel, size in zip(rels, sizes, strict=True):
            path = project / rel
            write_from_pool(path, size, text_pool, self.rng.randrange(len(text_pool)), header=rel.encode() + b"\n")
            paths.append(path)
        self.settle_and_add(project, paths, time.monotonic())
        push = {tool: Series() for tool in TOOLS}
        pull = {tool: Series() for tool in TOOLS}
        timeout = self.args.oras_timeout
        with self.registry("small") as registry:
            host = registry.host
            for number in range(1, self.args.rounds + 1):
                log(f"small round {number}: mops push + pull")
                self.mops_target(project, host, f"bench/mops-small-r{number}")
                measured, report = self.mops_push(project)
                push["mops"].add(measured)
                dest = base / "pull-mops"
                pull["mops"].add(self.mops_pull(project, dest, str(report["digest"])))
                check_tree(dest, n, total, "mops")
                shutil.rmtree(dest)
            layers = int(report["layers"])  # type: ignore[call-overload]
            log(f"small: oras-py push of {n:,} files (gives up after {timeout:.0f} s)")
            target = f"{host}/bench/oras-small:v1"
            if push["oras"].add(self.oras_push(project, rels, target, timeout)).ok:
                log("small: oras-py pull")
                dest = base / "pull-oras"
                if pull["oras"].add(self.oras_pull(target, dest, timeout)).ok:
                    check_tree(dest, n, total, "oras")
                shutil.rmtree(dest, ignore_errors=True)
            log(f"small: skopeo push + pull of {subset:,} of the files as layers")
            step = max(1, n // subset)
            chosen = list(range(0, n, step))[:subset]
            layout = base / "layout"
            self.build_layout(layout, [(paths[i], rels[i].replace("/", "_")) for i in chosen])
            push["skopeo"].add(self.skopeo_push(layout, host, "bench/skopeo-small"))
            dest = base / "pull-skopeo"
            pull["skopeo"].add(self.skopeo_pull(host, "bench/skopeo-small", dest))
            shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)

        subset_bytes = sum(sizes[i] for i in chosen)
        rounds = self.args.rounds
        section = Section(
            f"Small files: {n:,} files, {fmt_bytes(total)} in all (mops: median of {rounds} round"
            f"{'s' * (rounds > 1)}; oras-py and skopeo: one run)"
        )
        suffix = f" ({len(chosen):,} files)"
        for label, series in (("push", push), ("pull (`ensure`)", pull)):
            section.rows.append(
                [
                    label,
                    series["mops"].time_cell(),
                    series["skopeo"].time_cell(suffix),
                    series["oras"].time_cell(),
                    "-",
                    f"<= {SMALL_PUSH_TARGET:.0f} s",
                    verdict(series["mops"].seconds, SMALL_PUSH_TARGET),
                ]
            )
        for label, series in (("push, per file", push), ("pull, per file", pull)):
            counts = {"mops": n, "skopeo": len(chosen), "oras": n}
            cells = {
                tool: (
                    f"{series[tool].seconds / counts[tool] * 1000:.2f} ms" if series[tool].seconds is not None else "-"
                )
                for tool in TOOLS
            }
            section.rows.append([label, cells["mops"], cells["skopeo"], cells["oras"], "-", "report", "-"])
        section.notes.append(
            f"mops packed the files into {layers} layers (tar+gzip packs per folder, see docs/formats.md); "
            f"oras-py and skopeo push one layer per file. skopeo ran on every {step}th file only "
            f"({len(chosen):,} files, {fmt_bytes(subset_bytes)}); {SKOPEO_SMALL_ANCHOR}."
        )
        section.notes.append(
            "Files are text (CSV-like lines, compressible about 2x), sizes spread 1-7 KiB, in nested folders."
        )
        self.sections.append(section)

    def case_single(self) -> None:
        size = self.sizes.single_bytes
        base = self.work / "single"
        project = self.mops_project(base / "project")
        log(f"single: writing one file of {fmt_bytes(size)}")
        paths = self.write_binary_files(project, ["model/weights.bin"], [size])
        self.settle_and_add(project, paths, time.monotonic())
        layout = base / "layout"
        self.build_layout(layout, [(paths[0], "weights.bin")])
        push = {tool: Series() for tool in TOOLS}
        pull = {tool: Series() for tool in TOOLS}
        tools = ["mops", "skopeo", "floor"]
        listing = self.floor_listing(paths, "single")
        for number in range(1, self.args.rounds + 1):
            order = tools[number - 1 :] + tools[: number - 1]
            with self.registry(f"single-r{number}") as registry:
                host = registry.host
                digest = ""
                for tool in order:
                    log(f"single round {number}: {tool} push")
                    if tool == "mops":
                        self.mops_target(project, host, f"bench/mops-single-r{number}")
                        measured, report = self.mops_push(project)
                        push["mops"].add(measured)
                        digest = str(report["digest"])
                    elif tool == "floor":
                        push["floor"].add(self.floor_push(listing, host, f"bench/floor-single-r{number}", 1))
                    else:
                        push["skopeo"].add(self.skopeo_push(layout, host, f"bench/skopeo-single-r{number}"))
                for tool in order:
                    log(f"single round {number}: {tool} pull")
                    dest = base / f"pull-{tool}"
                    if tool == "mops":
                        pull["mops"].add(self.mops_pull(project, dest, digest))
                    elif tool == "floor":
                        pull["floor"].add(self.floor_pull(listing, host, f"bench/floor-single-r{number}", 1, dest))
                    else:
                        pull["skopeo"].add(self.skopeo_pull(host, f"bench/skopeo-single-r{number}", dest))
                    check_tree(dest, 1, size, tool)
                    shutil.rmtree(dest)
        shutil.rmtree(base, ignore_errors=True)

        rounds = self.args.rounds
        section = Section(f"One file of {fmt_bytes(size)} (median of {rounds} round{'s' * (rounds > 1)})")
        for label, series in (("push", push), ("pull (`ensure`)", pull)):
            sk = series["skopeo"].seconds
            section.rows.append(
                [
                    label,
                    series["mops"].time_cell(),
                    series["skopeo"].time_cell(),
                    "-",
                    ratio_cell(series["mops"].seconds, sk),
                    "<= 1.0x skopeo",
                    verdict(ratio(series["mops"].seconds, sk), 1.0),
                ]
            )
        for label, series in (("push peak RSS", push), ("pull peak RSS", pull)):
            section.rows.append(
                [
                    label,
                    fmt_mb(series["mops"].rss),
                    fmt_mb(series["skopeo"].rss),
                    "-",
                    "-",
                    f"<= {RSS_TARGET / 1e6:.0f} MB",
                    verdict(series["mops"].rss, RSS_TARGET),
                ]
            )
        section.notes.append(
            "Peak RSS (GNU time `%M`) is the largest over the rounds (oras-py is not run here: "
            "issue 3 measured it holding 2.1 GB to push this file)."
        )
        self.sections.append(section)
        self.floor_section(
            f"one file of {fmt_bytes(size)}",
            [("push", push["mops"], push["floor"], False), ("pull (`ensure`)", pull["mops"], pull["floor"], True)],
            "The floor: one `curl` (a monolithic `PUT` of the whole file; one `GET` to a file, not verified). "
            "mops uploads files of 64 MiB or more in 32 MiB chunks (`PATCH`), resumable, and hashes what it "
            "downloads as it streams.",
        )


# ------------------------------------------------------------------------------------------ helpers


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours is not None and theirs else None


def share(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def check_tree(dest: Path, files: int, total: int, tool: str) -> None:
    """A pull left at least ``files`` files and ``total`` bytes (cheap sanity check, not a hash)."""
    found, size = tree_size(dest)
    if found < files or size < total:
        raise SystemExit(f"bench: {tool} pull left {found} files / {size:,} B in {dest}, expected {files} / {total:,}")


def registry_blob_bytes(registry: RunningRegistry) -> int:
    blobs = registry.root / "docker" / "registry" / "v2" / "blobs"
    return tree_size(blobs)[1] if blobs.exists() else 0


def plan_small(n: int, total: int, seed: int) -> tuple[list[str], list[int]]:
    """Paths in nested folders (depth 1-3) and sizes spread 1-7 KiB-ish, scaled to sum to ``total``."""
    rng = random.Random(seed + 7)
    weights = [rng.uniform(0.25, 1.75) for _ in range(n)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[0] += total - sum(sizes)
    n_top = max(1, round(n ** (1 / 3)))
    rels = []
    for i in range(n):
        depth = rng.randint(1, 3)
        folders = [f"{'abc'[level]}{rng.randrange(n_top):02d}" for level in range(depth)]
        rels.append("/".join([*folders, f"f{i:05d}.csv"]))
    return rels, sizes


def make_text_pool(rng: random.Random, size: int) -> bytes:
    """CSV-like text: lines of numbers, compressible about 2x like real small data files."""
    lines = []
    count = 0
    while count < size:
        line = ",".join(f"{rng.random() * 1000:.4f}" for _ in range(8)) + "\n"
        lines.append(line)
        count += len(line)
    return "".join(lines).encode()[:size]


def tool_versions(bench: Bench) -> str:
    mops = subprocess.run([bench.mops, "--version"], capture_output=True, text=True).stdout.strip()
    skopeo = subprocess.run([bench.skopeo, "--version"], capture_output=True, text=True).stdout.strip()
    registry = subprocess.run(["/usr/bin/docker-registry", "--version"], capture_output=True, text=True).stdout.strip()
    try:
        from importlib.metadata import version

        oras = f"oras-py {version('oras')}"
    except Exception:
        oras = "oras-py ?"
    return f"{mops}; {skopeo}; {oras}; {registry or 'docker-registry'}"


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and one round: a smoke run (~1 min)")
    parser.add_argument(
        "--only", action="append", choices=CASES, metavar="CASE", help=f"run only this case (repeatable): {CASES}"
    )
    parser.add_argument("--rounds", type=int, help="rounds per case, each on a fresh registry (default 3; quick 1)")
    parser.add_argument("--oras-timeout", type=float, help="give oras-py up after S seconds (default 120; quick 60)")
    parser.add_argument("--large-mib", type=int, help="size of the large case (default 1024; quick 128)")
    parser.add_argument("--large-files", type=int, help="files of the large case (default 100; quick 20)")
    parser.add_argument("--small-files", type=int, help="files of the small case (default 5,000; quick 500)")
    parser.add_argument("--small-mib", type=int, help="size of the small case (default 20; quick 2)")
    parser.add_argument("--skopeo-small-files", type=int, help="files skopeo pushes in the small case (default 500)")
    parser.add_argument("--single-mib", type=int, help="size of the single file (default 2048; quick 256)")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of paths, sizes and content")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR (new or empty) and keep it")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the report to FILE")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    args.sizes = Sizes(
        large_files=args.large_files or base.large_files,
        large_bytes=(args.large_mib * MIB) if args.large_mib else base.large_bytes,
        small_files=args.small_files or base.small_files,
        small_bytes=(args.small_mib * MIB) if args.small_mib else base.small_bytes,
        skopeo_small_files=args.skopeo_small_files or base.skopeo_small_files,
        single_bytes=(args.single_mib * MIB) if args.single_mib else base.single_bytes,
    )
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.oras_timeout = args.oras_timeout or (60.0 if args.quick else 120.0)
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be 1-20")
    s = args.sizes
    if not (1 <= s.large_files <= 1000 and 1 <= s.small_files <= 100_000 and s.skopeo_small_files >= 1):
        parser.error("file counts out of range")
    if min(s.large_bytes, s.small_bytes, s.single_bytes) < s.large_files or s.single_bytes > 64 * GIB:
        parser.error("sizes out of range")
    args.cases = tuple(case for case in CASES if not args.only or case in args.only)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (Path(sys.executable).parent / "mops").exists():
        raise SystemExit("bench: mops not found next to this interpreter: run with .venv/bin/python")
    for binary in ("/usr/bin/docker-registry", shutil.which("skopeo")):
        if not binary or not os.access(binary, os.X_OK):
            raise SystemExit("bench: needs /usr/bin/docker-registry and skopeo (Debian packages)")
    work = make_work_dir(args.keep, prefix="oci")
    try:
        s = args.sizes
        biggest = max(
            s.large_bytes if {"large", "change"} & set(args.cases) else 0,
            s.single_bytes if "single" in args.cases else 0,
            s.small_bytes * 4,
        )
        require_free_space(work, int(biggest * 3.3) + GIB)
        return run(args, work)
    finally:
        remove_work_dir(work, args.keep)


def run(args: argparse.Namespace, work: Path) -> int:
    bench = Bench(args, work, args.sizes)
    load_before = os.getloadavg()
    started = time.monotonic()
    cases = set(args.cases)
    steps = []
    if cases & {"large", "change"}:
        large = functools.partial(
            bench.case_large, pulls="large" in cases, change="change" in cases, oras="large" in cases
        )
        steps.append(("large" if "large" in cases else "change", large))
    if "small" in cases:
        steps.append(("small", bench.case_small))
    if "single" in cases:
        steps.append(("single", bench.case_single))
    for name, step in steps:
        try:
            step()
        except (SystemExit, RuntimeError) as exc:  # a failed command or server: report it, go on
            log(f"{name}: {exc}")
            bench.sections.append(Section(f"{name}: FAILED", notes=[str(exc).strip()[:2000]]))
    elapsed = time.monotonic() - started
    header = (
        f"{tool_versions(bench)}\n"
        f"{machine_line()} (at the start: {', '.join(f'{x:.2f}' for x in load_before)}); "
        f"{describe_code()}; whole run {elapsed / 60:.1f} min"
    )
    report = header + "\n\n" + "\n\n".join(section.render() for section in bench.sections) + "\n"
    print(report)
    if args.markdown:
        args.markdown.write_text(report, encoding="utf-8")
        log(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
