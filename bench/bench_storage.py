"""Storage benchmark (issue 4, "Speed"): blob-tier push and pull through each provider against that
provider's own fsspec ``put``/``get`` of the same files, side by side in one run.

For every provider -- ``local`` (a folder), ``azure`` (Azurite), ``s3`` (moto's server) and ``gcs``
(fake-gcs-server) -- every round gives each tool a fresh registry and a fresh storage service on
127.0.0.1 (so nothing is skipped because it already exists, and no tool works on a server another tool
has filled: fake-gcs-server slows down as it fills), then times as child processes:

* ``mops bundle push`` of a project whose 4 large files (1 GiB in all) go to blob storage
  (``storage: {mode: auto, threshold_bytes: 1 MiB}``, the environment file naming the provider), and
  ``mops bundle ensure --dest DIR --ref DIGEST`` of that version into an empty folder;
* the same files through the provider's own fsspec filesystem built with plain settings
  (``LocalFileSystem``, ``adlfs.AzureBlobFileSystem``, ``s3fs.S3FileSystem``, ``gcsfs.GCSFileSystem``):
  ``fs.put(local_paths, remote_paths)`` and ``fs.get(remote_paths, local_paths)``;
* with ``--api`` (or automatically when ``push`` does not yet send files to blob storage), the
  provider API of ``modelops_bundle.core.storage`` directly: ``open_storage(...).upload_many`` and
  ``download_many``, each in its own process like the others.

Each round points the project at its fresh servers (``env switch``, which validates the environment
file, and an edit of ``config.yaml``, validated by an untimed ``status --offline``): the timed push is
not the first command after an edit. Every timed step starts alike (:meth:`StorageBench.settle`):
``sync``, the page cache dropped (as root), then the step's inputs, the tool's registry and storage
folders and both tools' code read back into it.

Target: mops / fsspec <= 1.2 for push and for pull. mops's figures include what fsspec does not do:
interpreter start-up and plugin loading, hashing nothing (the files were added before) but checking the
store for each object first, verifying every download's sha256, and the registry round trips for the
bundle index, the manifest and the project's two small scaffold files.

Run from the repository root with the virtualenv's interpreter::

    .venv/bin/python bench/bench_storage.py                       # 4 x 256 MiB, 3 rounds, all providers
    .venv/bin/python bench/bench_storage.py --quick               # 4 x 16 MiB, 1 round
    .venv/bin/python bench/bench_storage.py --only s3 --only gcs --markdown /tmp/storage.md

The work folder (``bench/.work/storage-*``) is removed at the end unless ``--keep DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # the bench folder is not a package
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
from tests.storage import services

PROVIDERS = ("local", "azure", "s3", "gcs")
BUCKET = "bench"
RATIO_TARGET = 1.2
RACY_CLEAN_WAIT = 2.5
THRESHOLD = 1 * MIB

FSSPEC_SCRIPT = """
import json, sys
spec = json.load(open(sys.argv[1], encoding="utf-8"))
kind = spec["kind"]
if kind == "local":
    from fsspec.implementations.local import LocalFileSystem
    fs = LocalFileSystem(auto_mkdir=True)
elif kind == "azure":
    import adlfs
    fs = adlfs.AzureBlobFileSystem(connection_string=spec["connection_string"])
elif kind == "s3":
    import s3fs
    fs = s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=spec["endpoint"])
else:
    import gcsfs
    fs = gcsfs.GCSFileSystem(token="anon", project="test", endpoint_url=spec["endpoint"])
if spec["mode"] == "put":
    fs.put(spec["local"], spec["remote"])
else:
    fs.get(spec["remote"], spec["local"])
"""

#: Run after the page cache was dropped: imports what either tool imports, so that the timed step
#: after it finds its code in memory as a user's second command would.
WARM_CODE_SCRIPT = """
import importlib, importlib.metadata, pkgutil
importlib.metadata.entry_points()
import modelops_bundle
names = [info.name for info in pkgutil.walk_packages(modelops_bundle.__path__, "modelops_bundle.")]
names += ["fsspec.implementations.local", "adlfs", "s3fs", "gcsfs", "requests", "oras.client"]
for name in names:
    if ".templates" in name:
        continue
    try:
        importlib.import_module(name)
    except Exception:
        pass
"""

API_SCRIPT = """
import json, os, sys
from pathlib import Path
from modelops_bundle.core.settings import StoragePolicy
from modelops_bundle.core.settings_files import load_environment
from modelops_bundle.core.plugins import build_plugin_host
from modelops_bundle.core.storage import BlobDownload, BlobUpload, open_storage
spec = json.load(open(sys.argv[1], encoding="utf-8"))
environ = dict(os.environ)
env = load_environment(spec["env"], environ)
provider = open_storage(build_plugin_host(environ), env.storage, StoragePolicy(prefix=spec["prefix"]), environ)
files = [(Path(path), digest, size) for path, digest, size in spec["files"]]
if spec["mode"] == "put":
    provider.upload_many([BlobUpload(path, digest, size) for path, digest, size in files], jobs=5)
else:
    dest = Path(spec["dest"])
    provider.download_many(
        [BlobDownload(provider.pointer(digest, size), dest / path.name) for path, digest, size in files], jobs=5
    )
provider.close()
"""


@dataclass
class Series:
    runs: list[Measured] = field(default_factory=list)

    def add(self, measured: Measured) -> Measured:
        self.runs.append(measured)
        return measured

    @property
    def seconds(self) -> float | None:
        return median([run.seconds for run in self.runs]) if self.runs else None

    @property
    def rss(self) -> int | None:
        return max(run.max_rss for run in self.runs) if self.runs else None

    def time_cell(self) -> str:
        if not self.runs:
            return "-"
        text = fmt_time(self.seconds)
        if len(self.runs) > 1:
            text += f" ({fmt_time(min(r.seconds for r in self.runs))}-{fmt_time(max(r.seconds for r in self.runs))})"
        return text


@dataclass
class ProviderResult:
    name: str
    service: str
    push: dict[str, Series] = field(default_factory=lambda: {k: Series() for k in ("mops", "api", "fsspec")})
    pull: dict[str, Series] = field(default_factory=lambda: {k: Series() for k in ("mops", "api", "fsspec")})
    cli_blob_tier: bool = True
    note: str = ""


class StorageBench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.mops = str(Path(sys.executable).parent / "mops")
        self.env = isolated_env(work, AWS_DEFAULT_REGION="us-east-1", GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="false")
        self.env_dir = Path(self.env["MODELOPS_HOME"]) / "bundle-env"
        self.env_dir.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(args.seed)
        self.results: list[ProviderResult] = []
        self.use_api = args.api

    def run(self, argv: Sequence[str], cwd: Path) -> Measured:
        return measure(argv, cwd=cwd, env=self.env, timeout=self.args.timeout)

    def settle(self, inputs: Sequence[Path], folders: Sequence[Path]) -> None:
        """The same start for every timed step, whichever tool and whatever ran before it: nothing left
        to write back (``sync``), the page cache emptied (as root) and refilled with what the step reads --
        the project's files, the files under ``folders`` (the tool's own registry and storage) and the
        code of both tools (:data:`WARM_CODE_SCRIPT`).

        Measured on this machine: copying 1 GiB took 0.28 s, then 2.6 s from the fourth GiB written on
        (the fresh memory the page cache grows into is slow to get); with the cache dropped first, 0.28 s
        every time.
        """
        os.sync()
        with contextlib.suppress(OSError):
            Path("/proc/sys/vm/drop_caches").write_text("1\n")
        found = [path for folder in folders for path in sorted(folder.rglob("*")) if path.is_file()]
        read_all([*inputs, *(path for path in found if not path.is_symlink())])
        self.run([sys.executable, "-c", WARM_CODE_SCRIPT], cwd=self.work)

    # ------------------------------------------------------------------------------------- services

    @contextlib.contextmanager
    def service(self, provider: str, folder: Path) -> Iterator[dict[str, str]]:
        """Start the provider's server (none for ``local``) with an empty bucket; yields its settings."""
        folder.mkdir(parents=True, exist_ok=True)
        if provider == "local":
            yield {"kind": "local", "root": str(folder / "store"), "describe": "a local folder"}
        elif provider == "azure":
            with services.azurite(folder) as svc:
                services.create_azure_container(svc.url, BUCKET)
                yield {
                    "kind": "azure",
                    "connection_string": services.azure_connection_string(svc.url),
                    "describe": "Azurite",
                }
        elif provider == "s3":
            with services.moto_s3(folder) as svc:
                services.create_s3_bucket(svc.url, BUCKET)
                yield {"kind": "s3", "endpoint": svc.url, "describe": "moto S3 server"}
        else:
            with services.fake_gcs(folder) as svc:
                services.create_gcs_bucket(svc.url, BUCKET)
                yield {"kind": "gcs", "endpoint": svc.url, "describe": "fake-gcs-server"}

    def write_env(self, name: str, registry: RunningRegistry, svc: dict[str, str]) -> None:
        kind = svc["kind"]
        if kind == "local":
            storage: dict[str, object] = {"provider": "local", "path": svc["root"]}
        elif kind == "azure":
            storage = {"provider": "azurite", "container": BUCKET, "connection_string": svc["connection_string"]}
        elif kind == "s3":
            storage = {
                "provider": "s3",
                "container": BUCKET,
                "endpoint": svc["endpoint"],
                "access_key": "testing",
                "secret_key": "testing",
            }
        else:
            storage = {"provider": "gcs", "container": BUCKET, "endpoint": svc["endpoint"]}
        document = {
            "environment": name,
            "registry": {"provider": "docker", "login_server": registry.host},
            "storage": storage,
        }
        (self.env_dir / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")

    # -------------------------------------------------------------------------------------- project

    def make_project(self) -> tuple[Path, list[Path], list[str], list[tuple[str, int]]]:
        n, total = self.args.files, self.args.total_mib * MIB
        root = self.work / "project"
        local = {"environment": "bench-init", "registry": {"provider": "docker", "login_server": "127.0.0.1:5000"}}
        (self.env_dir / "bench-init.yaml").write_text(yaml.safe_dump(local), encoding="utf-8")
        self.run([self.mops, "bundle", "init", "--env", "bench-init", str(root)], cwd=self.work)
        pool = self.rng.randbytes(64 * MIB)
        rels = [f"models/part-{i}.bin" for i in range(n)]
        paths = []
        log(f"writing {n} files, {fmt_bytes(total)}")
        for i, rel in enumerate(rels):
            path = root / rel
            size = total // n + (1 if i < total % n else 0)
            write_from_pool(path, size, pool, self.rng.randrange(len(pool)), header=rel.encode() + b"\n")
            paths.append(path)
        written = time.monotonic()
        facts = [(f"sha256:{sha256_file(path)}", path.stat().st_size) for path in paths]
        time.sleep(max(0.0, written + RACY_CLEAN_WAIT - time.monotonic()))
        self.run([self.mops, "bundle", "add", "."], cwd=root)
        read_all(paths)
        return root, paths, rels, facts

    def configure_project(self, root: Path, env_name: str, registry: RunningRegistry, repo: str, prefix: str) -> None:
        self.run([self.mops, "bundle", "env", "switch", env_name], cwd=root)
        config_path = root / ".modelops-bundle" / "config.yaml"
        text = config_path.read_text(encoding="utf-8")
        config = yaml.safe_load(text)
        config.update(registry=registry.host, repository=repo)
        storage = config.setdefault("storage", {})
        storage.update(mode="auto", threshold_bytes=THRESHOLD, prefix=prefix)
        header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
        config_path.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        (root / ".modelops-bundle" / "cache" / "packs.json").unlink(missing_ok=True)
        # The edited config.yaml is validated by the next command, once (pydantic, about 60 ms): here,
        # so that the timed push is a push like every one after the first following an edit.
        self.run([self.mops, "bundle", "status", "--offline"], cwd=root)

    # ---------------------------------------------------------------------------------------- peers

    def spec_file(self, spec: dict[str, object]) -> Path:
        path = self.work / "spec.json"
        path.write_text(json.dumps(spec), encoding="utf-8")
        return path

    def fsspec(self, svc: dict[str, str], mode: str, local: list[str], remote: list[str]) -> Measured:
        spec = {**svc, "mode": mode, "local": local, "remote": remote}
        return self.run([sys.executable, "-c", FSSPEC_SCRIPT, str(self.spec_file(spec))], cwd=self.work)

    def api(self, env_name: str, mode: str, prefix: str, files: list[list[object]], dest: Path | None) -> Measured:
        spec = {"env": env_name, "mode": mode, "prefix": prefix, "files": files, "dest": str(dest or "")}
        return self.run([sys.executable, "-c", API_SCRIPT, str(self.spec_file(spec))], cwd=self.work)

    # ---------------------------------------------------------------------------------------- rounds

    def push_and_pull(
        self,
        tool: str,
        provider: str,
        number: int,
        result: ProviderResult,
        svc: dict[str, str],
        root: Path,
        paths: list[Path],
        rels: list[str],
        files: list[list[object]],
    ) -> None:
        """One tool's push, then its pull into ``<round folder>/pull-<tool>``, on the current server."""
        folder = self.work / f"{provider}-r{number}"
        dest = folder / f"pull-{tool}"
        log(f"{provider} round {number}: {tool} push and pull")
        tool_folders = [folder / f"registry-{tool}", folder / f"service-{tool}"]

        def settle() -> None:
            self.settle(paths, tool_folders)

        if tool == "mops":
            settle()
            measured = result.push["mops"].add(self.run([self.mops, "bundle", "--json", "push"], cwd=root))
            report = json.loads(measured.stdout)
            if int(report["layers"]) >= len(paths):
                result.cli_blob_tier = False
            argv = [self.mops, "bundle", "--json", "ensure", "--dest", str(dest), "--ref", str(report["digest"])]
            settle()
            result.pull["mops"].add(self.run(argv, cwd=root))
        elif tool == "fsspec":
            base = f"{svc['root']}" if provider == "local" else BUCKET
            remote = [f"{base}/fsspec-r{number}/{Path(rel).name}" for rel in rels]
            settle()
            result.push["fsspec"].add(self.fsspec(svc, "put", [str(p) for p in paths], remote))
            dest.mkdir(parents=True)
            settle()
            result.pull["fsspec"].add(self.fsspec(svc, "get", [str(dest / Path(rel).name) for rel in rels], remote))
        else:
            env_name = f"bench-{provider}"
            settle()
            result.push["api"].add(self.api(env_name, "put", f"api-r{number}", files, None))
            dest.mkdir(parents=True)
            settle()
            result.pull["api"].add(self.api(env_name, "get", f"api-r{number}", files, dest))
        pushed, pulled = result.push[tool].runs[-1], result.pull[tool].runs[-1]
        log(f"{provider} round {number}: {tool} push {fmt_time(pushed.seconds)}, pull {fmt_time(pulled.seconds)}")

    def bench_provider(
        self, provider: str, root: Path, paths: list[Path], rels: list[str], facts: list[tuple[str, int]]
    ) -> None:
        n, total = len(paths), sum(size for _, size in facts)
        env_name = f"bench-{provider}"
        result = ProviderResult(provider, provider)
        self.results.append(result)
        files = [[str(path), digest, size] for path, (digest, size) in zip(paths, facts, strict=True)]
        for number in range(1, self.args.rounds + 1):
            folder = self.work / f"{provider}-r{number}"
            # Every tool pushes to a storage server of its own, fresh, and pulls back from it: some
            # emulators slow down as they fill (fake-gcs-server's resumable uploads did), and a tool
            # measured on a server another tool already filled would pay for it.
            tools = ["mops", "fsspec"] if number % 2 else ["fsspec", "mops"]
            if self.use_api or not result.cli_blob_tier:
                tools.append("api")
            try:
                for tool in tools:
                    registry = start_distribution(folder / f"registry-{tool}")
                    try:
                        with self.service(provider, folder / f"service-{tool}") as svc:
                            result.service = svc["describe"]
                            self.write_env(env_name, registry, svc)
                            self.configure_project(
                                root, env_name, registry, f"bench/{provider}-r{number}", f"mops-r{number}"
                            )
                            self.push_and_pull(tool, provider, number, result, svc, root, paths, rels, files)
                            # Kept until the round ends: this disk is mounted with online discard, and
                            # deleting 1 GiB made the next tool's pull wait for the discards (2-7x slower).
                            check_tree(folder / f"pull-{tool}", n, total, tool)
                    finally:
                        registry.stop()
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        if not result.cli_blob_tier:
            result.note = (
                "`mops bundle push` kept the large files in the registry (blob-tier push not wired in yet): "
                "the mops column is not a blob-storage figure; the ratio uses the provider API."
            )

    # --------------------------------------------------------------------------------------- report

    def report(self) -> str:
        header = [
            "provider",
            "operation",
            "mops (CLI)",
            "mops provider API",
            "fsspec",
            "mops / fsspec",
            "target",
            "result",
        ]
        rows = []
        for result in self.results:
            label = f"{result.name} ({result.service})"
            for op, series in (("push", result.push), ("pull (`ensure`)", result.pull)):
                ours = series["mops"] if result.cli_blob_tier else series["api"]
                ratio = ours.seconds / series["fsspec"].seconds if ours.seconds and series["fsspec"].seconds else None
                rows.append(
                    [
                        label,
                        op,
                        series["mops"].time_cell() if result.cli_blob_tier else "n/a",
                        series["api"].time_cell(),
                        series["fsspec"].time_cell(),
                        "-" if ratio is None else f"{ratio:.2f}x",
                        f"<= {RATIO_TARGET}x",
                        "-" if ratio is None else ("pass" if ratio <= RATIO_TARGET else "FAIL"),
                    ]
                )
            for op, series in (("push peak RSS", result.push), ("pull peak RSS", result.pull)):
                rows.append(
                    [
                        label,
                        op,
                        fmt_mb(series["mops"].rss),
                        fmt_mb(series["api"].rss),
                        fmt_mb(series["fsspec"].rss),
                        "-",
                        "report",
                        "-",
                    ]
                )
        notes = [f"- {r.name}: {r.note}" for r in self.results if r.note]
        return render_table(header, rows, right=(2, 3, 4, 5)) + ("\n\n" + "\n".join(notes) if notes else "")


def check_tree(dest: Path, files: int, total: int, tool: str) -> None:
    found, size = tree_size(dest)
    if found < files or size < total:
        raise SystemExit(f"bench: {tool} pull left {found} files / {size:,} B in {dest}, expected {files} / {total:,}")


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for name in ("modelops-bundle", "fsspec", "adlfs", "s3fs", "gcsfs", "moto"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} ?")
    return ", ".join(parts)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 x 16 MiB, one round: a smoke run")
    parser.add_argument("--only", action="append", choices=PROVIDERS, metavar="PROVIDER", help=f"one of {PROVIDERS}")
    parser.add_argument("--files", type=int, default=4, help="number of large files (default 4)")
    parser.add_argument("--total-mib", type=int, help="their total size in MiB (default 1024; quick 64)")
    parser.add_argument("--rounds", type=int, help="rounds per provider, each on fresh servers (default 3; quick 1)")
    parser.add_argument("--api", action="store_true", help="also time the provider API (upload_many/download_many)")
    parser.add_argument("--timeout", type=float, default=900.0, help="give a command up after S seconds")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the content")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR (new or empty) and keep it")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the report to FILE")
    args = parser.parse_args(argv)
    args.total_mib = args.total_mib or (64 if args.quick else 1024)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if not 1 <= args.files <= 64 or not args.files <= args.total_mib <= 64 * 1024 or not 1 <= args.rounds <= 20:
        parser.error("--files 1-64, --total-mib at least --files and at most 65536, --rounds 1-20")
    if args.total_mib * MIB // args.files < 2 * THRESHOLD:
        parser.error(f"each file must be at least {2 * THRESHOLD // MIB} MiB to be blob-stored")
    args.providers = tuple(p for p in PROVIDERS if not args.only or p in args.only)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (Path(sys.executable).parent / "mops").exists():
        raise SystemExit("bench: mops not found next to this interpreter: run with .venv/bin/python")
    work = make_work_dir(args.keep, prefix="storage")
    try:
        require_free_space(work, int(args.total_mib * MIB * 5.5) + GIB)
        bench = StorageBench(args, work)
        started = time.monotonic()
        load = os.getloadavg()
        root, paths, rels, facts = bench.make_project()
        for provider in args.providers:
            try:
                bench.bench_provider(provider, root, paths, rels, facts)
            except (
                SystemExit,
                RuntimeError,
            ) as exc:  # a failed command or server: report it, go on with the next provider
                log(f"{provider}: {exc}")
                bench.results[-1].note = "FAILED: " + str(exc).splitlines()[0][:300]
        elapsed = time.monotonic() - started
        total = sum(size for _, size in facts)
        rounds = args.rounds
        report = (
            f"{args.files} files, {fmt_bytes(total)} in all, blob tier (threshold {fmt_bytes(THRESHOLD)}); "
            f"median of {rounds} round{'s' * (rounds > 1)}, each tool on a fresh registry and storage server\n"
            f"{versions()}\n{machine_line()} (at the start: {', '.join(f'{x:.2f}' for x in load)}); "
            f"{describe_code()}; whole run {elapsed / 60:.1f} min\n\n{bench.report()}\n"
        )
        print(report)
        if args.markdown:
            args.markdown.write_text(report, encoding="utf-8")
            log(f"wrote {args.markdown}")
        return 0
    finally:
        remove_work_dir(work, args.keep)


if __name__ == "__main__":
    sys.exit(main())
