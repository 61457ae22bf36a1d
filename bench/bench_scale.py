"""Scale benchmark (issue 19): a hundred thousand to a million files, mops beside git, dvc and the floor.

Builds a deterministic tree (by ``--seed``) -- folders of about ten files, nested like a real project,
log-normal sizes (mostly small, a few large) scaled to ``--total-mib`` -- and measures, each command a
child process timed by wall clock with its peak RSS from GNU time (``/usr/bin/time -f %M``):

1. the first ``mops bundle add .`` + ``mops bundle status`` against the bare Python floor (a fresh
   interpreter that walks the tree and sha256-hashes every file on all cores, then one that ``lstat``s
   every folder and file: bench_workspace.py's floor) -- alternating, the median of ``--first-rounds``;
2. ``git add -A`` (once) and then, taking turns round by round, warm ``mops bundle status``,
   ``status --offline`` and ``git status`` (medians of ``--runs``);
3. ``mops bundle status`` and ``git status`` after appending a byte to ``--touch`` files (100);
4. ``mops bundle push`` to a CNCF distribution registry on 127.0.0.1 (``tests/oci/registries``), ``pull``
   into a freshly initialised clone (checked: file count, bytes, and a sample of files byte for byte),
   ``ensure --dest DIR --ref DIGEST`` into an empty folder through a fresh cache, and an incremental
   ``push`` after ``--change`` files (10) got new bytes;
5. ``dvc add`` of the top-level folders and a warm ``dvc status`` (dvc in its own virtualenv under
   ``bench/.work/tools-venv``, never the project's; given up after ``--cap`` seconds, recorded as such).

Presets: ``--preset mixed`` (100,000 files, 10 GiB, sigma 2.0) and ``--preset small`` (1,000,000 files of
about 4 KiB, sigma 0.5); ``--files``, ``--total-mib`` and ``--sigma`` override them, so a reduced run is
quick::

    .venv/bin/python bench/bench_scale.py --preset mixed --json /tmp/mixed.json --markdown /tmp/mixed.md
    .venv/bin/python bench/bench_scale.py --preset small --skip dvc
    .venv/bin/python bench/bench_scale.py --files 10000 --total-mib 100 --runs 3     # about 2 min

The exit code is 0 whether or not targets are met; the table's last column says pass or FAIL. Free disk
is checked first (``df``); the work folder (``bench/.work/scale-*``, git-ignored) is removed at the end
unless ``--keep DIR``; large copies (git's objects, the clone, the ensured tree) are removed as soon as
they have been measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # the bench folder is not a package
    BARE_ADD,
    BARE_STATUS,
    DEFAULT_WORK_ROOT,
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
    read_all,
    remove_work_dir,
    render_table,
    sha256_file,
)

sys.path.insert(0, str(REPO_ROOT))
from tests.oci.registries import RunningRegistry, start_distribution

RACY_CLEAN_WAIT = 2.5  # seconds between writing files and a scan, so no file is "racily clean"
TOOLS_VENV = DEFAULT_WORK_ROOT / "tools-venv"  # dvc (and matplotlib for plot_scale.py), never the project's
TOP_FOLDERS = ("data", "inputs", "models", "outputs", "params", "populations", "regions", "scripts")
TEXT_BELOW = 64 * 1024  # files smaller than this are CSV-like text (compressible); larger ones binary
PRESETS: dict[str, dict[str, float]] = {
    "mixed": {"files": 100_000, "total_mib": 10 * 1024, "sigma": 2.0},
    "small": {"files": 1_000_000, "total_mib": 3906, "sigma": 0.5},  # about 4 KiB a file
}
TARGETS = {"warm_status": 2.0, "first": 1.3, "rss": 300e6, "incremental": 3.0}


# ------------------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Tree:
    rels: list[str]
    sizes: list[int]

    @property
    def total(self) -> int:
        return sum(self.sizes)


def plan_tree(n_files: int, total_bytes: int, sigma: float, seed: int) -> Tree:
    """Paths in folders of 1-19 files (about ten), the folders nested ten to a parent under a few
    top-level folders, and log-normal sizes scaled to sum to ``total_bytes`` (each at least 1 byte)."""
    rng = random.Random(seed)
    weights = [rng.lognormvariate(0.0, sigma) for _ in range(n_files)]
    scale = total_bytes / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    largest = max(range(n_files), key=sizes.__getitem__)
    sizes[largest] = max(1, sizes[largest] + total_bytes - sum(sizes))
    n_folders = max(1, n_files // 10)
    per_top = max(1, math.ceil(n_folders / len(TOP_FOLDERS)))
    depth = max(1, math.ceil(math.log10(per_top))) if per_top > 1 else 1
    rels: list[str] = []
    folder = 0
    while len(rels) < n_files:
        top = TOP_FOLDERS[folder % len(TOP_FOLDERS)]
        number = f"{folder // len(TOP_FOLDERS):0{depth}d}"
        # digits as nested folders: r1/s2/t3 -- at most ten subfolders (or files' folders) per folder
        parts = [f"{'rstuvwxyz'[level % 9]}{digit}" for level, digit in enumerate(number)]
        prefix = "/".join([top, *parts])
        for _ in range(min(rng.randint(1, 19), n_files - len(rels))):
            rels.append(f"{prefix}/f{len(rels):07d}{'.csv' if rng.random() < 0.7 else '.bin'}")
        folder += 1
    return Tree(rels, sizes)


def text_pool(rng: random.Random, size: int) -> bytes:
    lines, count = [], 0
    while count < size:
        line = ",".join(f"{rng.random() * 1000:.4f}" for _ in range(8)) + "\n"
        lines.append(line)
        count += len(line)
    return "".join(lines).encode()[:size]


def write_tree(root: Path, tree: Tree, seed: int) -> None:
    """Each file: its path as a header, then bytes from a seeded pool (text when small, random when
    large) at a seeded offset -- the same bytes for the same seed on every machine."""
    rng = random.Random(seed + 1)
    binary, text = rng.randbytes(64 * MIB), text_pool(rng, 8 * MIB)
    made: set[str] = set()
    for rel, size in zip(tree.rels, tree.sizes, strict=True):
        folder, _, _ = rel.rpartition("/")
        if folder not in made:
            os.makedirs(root / folder, exist_ok=True)
            made.add(folder)
        pool = text if size < TEXT_BELOW else binary
        offset = rng.randrange(len(pool))
        with open(root / rel, "wb") as out:
            out.write(rel.encode()[:size] + b"\n"[: max(0, size - len(rel))])
            remaining = size - min(size, len(rel) + 1)
            while remaining > 0:
                piece = pool[offset : offset + min(remaining, len(pool) - offset)]
                out.write(piece)
                remaining -= len(piece)
                offset = (offset + len(piece)) % len(pool)


def size_summary(sizes: Sequence[int]) -> str:
    ordered = sorted(sizes)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    big = sum(1 for s in sizes if s >= MIB)
    return (
        f"sizes: median {fmt_bytes(pick(0.5))}, 90th percentile {fmt_bytes(pick(0.9))}, "
        f"largest {fmt_bytes(ordered[-1])}; {big:,} files of 1 MiB or more hold "
        f"{sum(s for s in sizes if s >= MIB) / max(1, sum(sizes)):.0%} of the bytes"
    )


# ------------------------------------------------------------------------------------- the floor


# ------------------------------------------------------------------------------------- results


@dataclass
class Result:
    """Everything measured in one run (also written as JSON for plot_scale.py)."""

    files: int
    total: int
    sigma: float
    seed: int
    runs: int
    machine: str = ""
    code: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float | None] = field(default_factory=dict)
    rss: dict[str, int | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def put(self, key: str, measured: Measured | None, seconds: float | None = None) -> None:
        if measured is None:
            self.seconds[key], self.rss[key] = seconds, None
            return
        self.seconds[key] = measured.seconds if measured.ok else None
        self.rss[key] = measured.max_rss or None if measured.ok else None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# ------------------------------------------------------------------------------------- the bench


class ScaleBench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.mops = str(Path(sys.executable).parent / "mops")
        self.project = work / "project"
        self.env = isolated_env(work)
        self.env_dir = Path(self.env["MODELOPS_HOME"]) / "bundle-env"
        self.env_dir.mkdir(parents=True, exist_ok=True)
        self.result = Result(args.files, 0, args.sigma, args.seed, args.runs)
        self.tree: Tree | None = None
        self.paths: list[Path] = []
        self.registry: RunningRegistry | None = None

    def start_registry(self) -> None:
        """The registry runs from the start: a plain ``status`` asks it where the tag stands."""
        self.registry = start_distribution(self.work / "registry")
        self.write_env(self.registry.host)

    def stop_registry(self) -> None:
        if self.registry is not None:
            self.registry.stop()
            shutil.rmtree(self.work / "registry", ignore_errors=True)
            self.registry = None

    # --------------------------------------------------------------------------------- plumbing

    def run(self, argv: Sequence[str], cwd: Path | None = None, timeout: float | None = None) -> Measured:
        return measure(argv, cwd=cwd or self.project, env=self.env, timeout=timeout or self.args.cap, check=True)

    def attempt(
        self, argv: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None, cap: float | None = None
    ) -> Measured:
        """A peer's command: never raises; a failure or timeout is recorded by the caller."""
        return measure(argv, cwd=cwd or self.project, env=env or self.env, timeout=cap or self.args.cap, check=False)

    def mops_json(self, *args: str, cwd: Path | None = None) -> tuple[Measured, dict[str, Any]]:
        measured = self.run([self.mops, "bundle", "--json", *args], cwd=cwd)
        return measured, json.loads(measured.stdout)

    def write_env(self, host: str) -> None:
        (self.env_dir / "bench.yaml").write_text(
            f"environment: bench\nregistry: {{provider: docker, login_server: '{host}'}}\n", encoding="utf-8"
        )

    def git(self, *args: str) -> list[str]:
        return ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", *args]

    # --------------------------------------------------------------------------------- steps

    def build(self) -> None:
        args = self.args
        self.start_registry()
        self.run([self.mops, "bundle", "init", "--env", "bench", str(self.project)], cwd=self.work)
        tree = plan_tree(args.files, args.total_mib * MIB, args.sigma, args.seed)
        self.tree = tree
        self.result.total = tree.total
        self.result.notes["sizes"] = size_summary(tree.sizes)
        log(f"writing {args.files:,} files, {fmt_bytes(tree.total)} ({self.result.notes['sizes']})")
        start = time.perf_counter()
        write_tree(self.project, tree, args.seed)
        self.written = time.monotonic()
        log(f"wrote them in {time.perf_counter() - start:.1f} s; reading them once (warm page cache)")
        self.paths = [self.project / rel for rel in tree.rels]
        read_all(self.paths)

    def settle(self, since: float) -> None:
        time.sleep(max(0.0, since + RACY_CLEAN_WAIT - time.monotonic()))

    def first_add_and_floor(self) -> None:
        """First add + status (fresh metadata each round) alternating with the bare floor."""
        rounds = self.args.first_rounds
        log(f"first mops bundle add . + status, and the bare floor on {os.cpu_count()} cores (median of {rounds})")
        self.settle(self.written)
        firsts: list[tuple[Measured, Measured]] = []
        floors: list[tuple[Measured, Measured]] = []
        listing = self.work / "bare-listing.txt"
        threads = str(os.cpu_count() or 2)
        for number in range(rounds):
            if number:
                shutil.rmtree(self.project / ".modelops-bundle")
                self.run([self.mops, "bundle", "init", "--env", "bench", str(self.project)], cwd=self.work)
                time.sleep(RACY_CLEAN_WAIT)
            bare_add = self.run([sys.executable, "-c", BARE_ADD, str(self.project), str(listing), threads])
            bare_status = self.run([sys.executable, "-c", BARE_STATUS, str(listing)])
            floors.append((bare_add, bare_status))
            add = self.run([self.mops, "bundle", "add", "."])
            done = time.monotonic()
            status = self.run([self.mops, "bundle", "status"])
            firsts.append((add, status))
        self.add_done = done
        listing.unlink(missing_ok=True)
        add, status = _median_pair(firsts)
        bare_add, bare_status = _median_pair(floors)
        r = self.result
        r.put("first_add", add)
        r.put("first_status", status)
        r.seconds["first_total"] = add.seconds + status.seconds
        r.put("floor_add", bare_add)
        r.put("floor_status", bare_status)
        r.seconds["floor_total"] = bare_add.seconds + bare_status.seconds

    def git_and_warm_status(self) -> None:
        r = self.result
        log("git init + git add -A")
        self.run(self.git("init", "-q", "."))
        git_add = self.attempt(self.git("add", "-A"))
        r.put("git_add", git_add)
        if not git_add.ok:
            r.notes["git"] = (
                f"git add -A {'gave up after' if git_add.timed_out else 'failed in'} {git_add.seconds:.0f} s"
            )
        os.sync()
        self.settle(self.add_done)
        time.sleep(RACY_CLEAN_WAIT)  # after git's index was written too
        runs = self.args.runs
        log(f"warm mops bundle status, status --offline and git status, in turn (medians of {runs})")
        commands = {
            "warm_status": [self.mops, "bundle", "status"],
            "warm_offline": [self.mops, "bundle", "status", "--offline"],
        }
        if git_add.ok:
            commands["git_status"] = self.git("status")
        for argv in commands.values():  # one warm-up each
            self.run(argv)
        taken: dict[str, list[Measured]] = {key: [] for key in commands}
        for _ in range(runs):
            for key, argv in commands.items():
                taken[key].append(self.run(argv))
        for key, series in taken.items():
            r.put(key, _median_run(series))
            r.rss[key] = max(m.max_rss for m in series) or None

        log(f"status after touching {self.args.touch} files (mops, then git; medians of {runs})")
        rng = random.Random(self.args.seed + 2)
        touched = [self.paths[i] for i in rng.sample(range(len(self.paths)), self.args.touch)]

        def touch() -> None:
            for path in touched:
                with open(path, "ab") as handle:
                    handle.write(b"\n")

        after: dict[str, list[Measured]] = {"touched_status": []}
        if git_add.ok:
            after["git_touched_status"] = []
        for _ in range(runs):
            touch()
            after["touched_status"].append(self.run([self.mops, "bundle", "status", "--offline"]))
            if git_add.ok:
                touch()
                after["git_touched_status"].append(self.run(self.git("status")))
        for key, series in after.items():
            r.put(key, _median_run(series))
        # git's copy of every file goes now: the registry, the clone and the ensured tree need the room
        shutil.rmtree(self.project / ".git", ignore_errors=True)
        # the touched files settle before the push scans them (no racy re-hash in the timed push)
        self.run([self.mops, "bundle", "status", "--offline"])
        time.sleep(RACY_CLEAN_WAIT)

    def registry_steps(self) -> None:
        r = self.result
        try:
            log("mops bundle push (first)")
            pushed, report = self.mops_json("push")
            r.put("push", pushed)
            r.notes["push"] = (
                f"{report['layers']} layers, {report['uploaded_blobs']} blobs, "
                f"{fmt_bytes(report['uploaded_bytes'])} uploaded"
            )
            digest = str(report["digest"])
            clone = self.work / "clone"
            self.run([self.mops, "bundle", "init", "--env", "bench", str(clone)], cwd=self.work)
            self.run([self.mops, "bundle", "config", "repository", "project"], cwd=clone)
            for scaffolded in (".modelopsignore", "pyproject.toml"):  # the pull brings the project's own
                (clone / scaffolded).unlink(missing_ok=True)
            log("mops bundle pull into a fresh clone")
            pulled = self.run([self.mops, "bundle", "--json", "pull", "--ref", digest], cwd=clone)
            r.put("pull", pulled)
            self.check_copy(clone, "pull")
            shutil.rmtree(clone)
            dest = self.work / "ensured"
            cache = self.work / "ensure-cache"
            log("mops bundle ensure --dest DIR --ref DIGEST (fresh cache)")
            self.env["MODELOPS_BUNDLE_CACHE"] = str(cache)
            try:
                ensured = self.run([self.mops, "bundle", "--json", "ensure", "--dest", str(dest), "--ref", digest])
            finally:
                del self.env["MODELOPS_BUNDLE_CACHE"]
            r.put("ensure", ensured)
            self.check_copy(dest, "ensure")
            shutil.rmtree(dest)
            shutil.rmtree(cache, ignore_errors=True)

            change = self.args.change
            log(f"incremental push after {change} files changed")
            rng = random.Random(self.args.seed + 3)
            for index in rng.sample(range(len(self.paths)), change):
                path = self.paths[index]
                size = path.stat().st_size
                path.write_bytes(f"changed {index} {time.time()}\n".encode().ljust(max(size, 1), b"x")[: max(size, 1)])
            time.sleep(RACY_CLEAN_WAIT)
            again, report = self.mops_json("push")
            r.put("incremental_push", again)
            r.notes["incremental_push"] = (
                f"{report['uploaded_blobs']} blobs, {fmt_bytes(report['uploaded_bytes'])} uploaded "
                f"of {report['layers']} layers"
            )
        finally:
            self.stop_registry()

    def check_copy(self, dest: Path, what: str) -> None:
        """Same file count and bytes as the project, and a sample of files identical byte for byte."""
        assert self.tree is not None
        found = total = 0
        for folder, dirs, names in os.walk(dest):
            dirs[:] = [d for d in dirs if d != ".modelops-bundle"]
            for name in names:
                found += 1
                total += os.lstat(os.path.join(folder, name)).st_size
        want_files = sum(1 for p in self.project.iterdir() if p.is_file()) + len(self.paths)
        want_bytes = sum(p.stat().st_size for p in self.project.iterdir() if p.is_file()) + sum(
            p.stat().st_size for p in self.paths
        )
        rng = random.Random(len(what))
        sample = rng.sample(self.tree.rels, min(200, len(self.tree.rels)))
        bad = [rel for rel in sample if sha256_file(dest / rel) != sha256_file(self.project / rel)]
        if found != want_files or total != want_bytes or bad:
            raise SystemExit(
                f"bench: {what} left {found:,} files / {total:,} B (expected {want_files:,} / {want_bytes:,}); "
                f"differing sample files: {bad[:5]}"
            )

    def dvc_steps(self) -> None:
        r = self.result
        dvc = TOOLS_VENV / "bin" / "dvc"
        if not dvc.exists():
            r.notes["dvc"] = f"not run: {dvc} missing (run with --install-tools, or see bench/README.md)"
            return
        env = dict(self.env, DVC_NO_ANALYTICS="1", DVC_SITE_CACHE_DIR=str(self.work / "dvc-site"))
        self.run([str(dvc), "init", "--no-scm", "-q"])
        tops = sorted({rel.partition("/")[0] for rel in self.tree.rels}) if self.tree else []
        time.sleep(RACY_CLEAN_WAIT)
        cap = self.args.dvc_cap or self.args.cap
        log(f"dvc add of {len(tops)} top-level folders (gives up after {cap:.0f} s)")
        added = self.attempt([str(dvc), "add", "-q", *tops], env=env, cap=cap)
        r.put("dvc_add", added)
        version = subprocess.run([str(dvc), "--version"], capture_output=True, text=True).stdout.strip()
        r.versions["dvc"] = f"dvc {version}"
        if not added.ok:
            why = "gave up after" if added.timed_out else "failed after"
            r.notes["dvc"] = f"`dvc add` {why} {added.seconds:.0f} s: {added.stderr.decode(errors='replace')[-300:]}"
            return
        time.sleep(RACY_CLEAN_WAIT)
        statuses = [
            self.attempt([str(dvc), "status", "-q"], env=env, cap=cap) for _ in range(max(1, min(3, self.args.runs)))
        ]
        ok = [m for m in statuses if m.ok or m.returncode == 1]  # 1: "changed" is still an answer
        if len(ok) == len(statuses):
            r.put("dvc_status", _median_run(ok))
            r.seconds["dvc_status"] = statistics.median(m.seconds for m in ok)
        else:
            r.notes["dvc"] = "`dvc status` did not finish within the cap"

    def versions(self) -> None:
        def out(argv: list[str]) -> str:
            try:
                return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.strip()
            except OSError:
                return "?"

        self.result.versions.update(mops=out([self.mops, "--version"]), git=out(["git", "--version"]))


def _median_run(series: Sequence[Measured]) -> Measured:
    ordered = sorted(series, key=lambda m: m.seconds)
    return ordered[(len(ordered) - 1) // 2]


def _median_pair(pairs: Sequence[tuple[Measured, Measured]]) -> tuple[Measured, Measured]:
    totals = statistics.median(a.seconds + b.seconds for a, b in pairs)
    return min(pairs, key=lambda pair: abs(pair[0].seconds + pair[1].seconds - totals))


# ------------------------------------------------------------------------------------- the report


def report(r: Result) -> str:
    s, m = r.seconds, r.rss

    def ratio(a: str, b: str) -> float | None:
        return s[a] / s[b] if s.get(a) is not None and s.get(b) else None  # type: ignore[operator]

    def row(
        label: str, mops: str | None, peer: str | None, peer_name: str, target: str, limit: float | None
    ) -> list[str]:
        value = ratio(mops, peer) if mops and peer else None
        if limit is not None and value is None and mops and peer is None:
            value = s.get(mops)
        verdict = "-" if limit is None or value is None else ("pass" if value <= limit else "FAIL")
        return [
            label,
            fmt_time(s.get(mops)) if mops else "-",
            f"{fmt_time(s.get(peer))} ({peer_name})" if peer and s.get(peer) is not None else "-",
            f"{value:.2f}x" if value is not None and peer else "-",
            target,
            verdict,
        ]

    rows = [
        row("first `add .` + `status`", "first_total", "floor_total", "bare floor", "<= 1.3x floor", TARGETS["first"]),
        row("  of which `add .`", "first_add", "floor_add", "bare walk + hash", "report", None),
        row("  of which first `status`", "first_status", "floor_status", "bare lstat", "report", None),
        row("warm `status`", "warm_status", "git_status", "`git status`", "<= 2.0x git", TARGETS["warm_status"]),
        row(
            "warm `status --offline`",
            "warm_offline",
            "git_status",
            "`git status`",
            "<= 2.0x git",
            TARGETS["warm_status"],
        ),
        row(
            f"`status` after touching {r.notes.get('touch', '100')} files",
            "touched_status",
            "git_touched_status",
            "`git status`",
            "report",
            None,
        ),
        row("`git add -A` (reference)", None, "git_add", "git", "report", None),
        row("`dvc add` (reference)", None, "dvc_add", "dvc", "report", None),
        row("warm `dvc status` (reference)", None, "dvc_status", "dvc", "report", None),
        row("`push` (first)", "push", None, "", "finishes", None),
        row("`pull` into a fresh clone", "pull", None, "", "finishes", None),
        row("`ensure --dest DIR` (fresh cache)", "ensure", None, "", "finishes", None),
        row(
            f"incremental `push` after {r.notes.get('change', '10')} changed files",
            "incremental_push",
            None,
            "",
            "<= 3 s",
            TARGETS["incremental"] if r.files <= 100_000 else None,
        ),
    ]
    time_table = render_table(["step", "mops", "peer", "ratio", "target", "result"], rows, right=(1, 2, 3))
    keys = [
        ("first `add .`", "first_add"),
        ("first `status`", "first_status"),
        ("warm `status`", "warm_status"),
        ("warm `status --offline`", "warm_offline"),
        ("`status` after touching", "touched_status"),
        ("`push`", "push"),
        ("`pull`", "pull"),
        ("`ensure`", "ensure"),
        ("incremental `push`", "incremental_push"),
    ]
    peers = [
        ("bare floor: walk + hash", "floor_add"),
        ("`git add -A`", "git_add"),
        ("`git status`", "git_status"),
        ("`dvc add`", "dvc_add"),
        ("`dvc status`", "dvc_status"),
    ]
    worst = max((m.get(key) or 0 for _label, key in keys), default=0)
    rss_rows = [[label, fmt_mb(m.get(key)), "-"] for label, key in keys]
    rss_rows += [[f"{label} (peer)", fmt_mb(m.get(key)), "-"] for label, key in peers]
    rss_rows.append(
        [
            "largest of mops",
            fmt_mb(worst),
            ("pass" if worst <= TARGETS["rss"] else "FAIL") if r.files >= 1_000_000 else "report",
        ]
    )
    rss_table = render_table(["command", "peak RSS", "target <= 300 MB at 1M files"], rss_rows, right=(1,))
    header = (
        f"{r.files:,} files, {fmt_bytes(r.total)} (log-normal sigma {r.sigma}, seed {r.seed}, folders of about "
        f"ten files); {r.notes.get('sizes', '')}; medians of {r.runs} runs\n"
        f"{'; '.join(v for v in r.versions.values() if v)}\n{r.machine}; {r.code}"
    )
    notes = [f"- {key}: {value}" for key, value in r.notes.items() if key not in ("sizes", "touch", "change")]
    return f"{header}\n\n{time_table}\n\n{rss_table}\n\n" + "\n".join(notes) + "\n"


# ------------------------------------------------------------------------------------- main


def install_tools() -> None:
    """dvc and matplotlib into ``bench/.work/tools-venv`` (pip from the package index; minutes)."""
    if not (TOOLS_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS_VENV)], check=True)
    subprocess.run([str(TOOLS_VENV / "bin" / "pip"), "install", "-q", "dvc", "matplotlib"], check=True, timeout=1800)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="mixed", help="tree shape (default mixed)")
    parser.add_argument("--files", type=int, help="number of files (preset: 100,000 or 1,000,000)")
    parser.add_argument("--total-mib", type=int, help="total size in MiB (preset: 10,240 or 3,906)")
    parser.add_argument("--sigma", type=float, help="log-normal sigma of the sizes (preset: 2.0 or 0.5)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per warm median (default 5)")
    parser.add_argument("--first-rounds", type=int, default=3, help="rounds of first add + status (default 3)")
    parser.add_argument("--touch", type=int, default=100, help="files touched before a status (default 100)")
    parser.add_argument("--change", type=int, default=10, help="files changed before the incremental push (10)")
    parser.add_argument("--cap", type=float, default=1800.0, help="give a command up after S seconds (1800)")
    parser.add_argument("--dvc-cap", type=float, help="give a dvc command up after S seconds (default: --cap)")
    parser.add_argument(
        "--skip", action="append", default=[], choices=("git", "dvc", "registry"), help="leave a part out"
    )
    parser.add_argument(
        "--install-tools", action="store_true", help=f"pip-install dvc and matplotlib into {TOOLS_VENV}"
    )
    parser.add_argument("--seed", type=int, default=20240601, help="seed of paths, sizes and content")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR (new or empty) and keep it")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the report to FILE")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON (plot_scale.py)")
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    args.files = args.files or int(preset["files"])
    args.total_mib = args.total_mib or int(preset["total_mib"])
    args.sigma = args.sigma if args.sigma is not None else preset["sigma"]
    if not 10 <= args.files <= 2_000_000 or not 1 <= args.total_mib <= 64 * 1024:
        parser.error("--files must be 10..2,000,000 and --total-mib 1..65,536")
    if not 1 <= args.touch <= args.files or not 1 <= args.change <= args.files or not 1 <= args.runs <= 51:
        parser.error("--touch and --change must be 1..--files, --runs 1..51")
    return args


def check_space(where: Path, args: argparse.Namespace) -> None:
    """Tree, then git's copy or the registry + one copy (clone or ensured tree + its cache) at once."""
    total = args.total_mib * MIB
    need = int(total * 3.3) + args.files * 8192 + 2 * GIB
    free = shutil.disk_usage(where).free
    if free < need:
        raise SystemExit(f"bench: needs about {need // MIB:,} MiB free in {where} (df), has {free // MIB:,} MiB")
    inodes = os.statvfs(where).f_favail
    if inodes < args.files * 5:
        raise SystemExit(f"bench: needs about {args.files * 5:,} free inodes in {where}, has {inodes:,}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (Path(sys.executable).parent / "mops").exists():
        raise SystemExit("bench: mops not found next to this interpreter: run with .venv/bin/python")
    if args.install_tools:
        install_tools()
    work = make_work_dir(args.keep, prefix="scale")
    started = time.monotonic()
    load_before = os.getloadavg()
    bench: ScaleBench | None = None
    try:
        check_space(work, args)
        bench = ScaleBench(args, work)
        bench.result.notes["touch"], bench.result.notes["change"] = str(args.touch), str(args.change)
        bench.versions()
        steps: list[tuple[str, Callable[[], None]]] = [("build", bench.build), ("first", bench.first_add_and_floor)]
        if "git" not in args.skip:
            steps.append(("git", bench.git_and_warm_status))
        if "registry" not in args.skip:
            steps.append(("registry", bench.registry_steps))
        if "dvc" not in args.skip:
            steps.append(("dvc", bench.dvc_steps))
        for name, step in steps:
            try:
                step()
            except (SystemExit, RuntimeError, OSError) as exc:  # report what failed, keep what was measured
                log(f"{name}: {exc}")
                bench.result.notes[f"{name} FAILED"] = str(exc).strip()[:1500]
                if name in ("build", "first"):
                    break
        r = bench.result
        r.machine = f"{machine_line()} (at the start: {', '.join(f'{x:.2f}' for x in load_before)})"
        r.code = f"{describe_code()}; whole run {(time.monotonic() - started) / 60:.1f} min"
    finally:
        if bench is not None:
            bench.stop_registry()
        remove_work_dir(work, args.keep)
    text = report(r)
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(r.to_json(), indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
