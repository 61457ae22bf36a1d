"""Workspace benchmark (issue 2, "Speed"): mops against its peers, measured side by side in one run.

Builds a synthetic project (default 10,000 files, 1 GiB in all, nested folders, mixed sizes,
deterministic pseudo-random content) in a work folder with HOME and MODELOPS_HOME isolated, then times:

1. the first ``mops bundle add .`` + ``mops bundle status`` against the hashing limit: hashlib sha256
   over the same files on 2 threads (1 MiB ``readinto``, in-process, warm page cache); beside it the
   floor of any Python tool: a bare ``add`` (walk, hash on 2 threads) and a bare ``status`` (``lstat``
   every folder and file), each a fresh interpreter doing nothing else;
2. a warm ``mops bundle status`` with nothing changed against ``git status`` on the same tree after
   ``git add -A`` -- and ``status --offline``, which like ``git status`` does not ask the registry --
   the three taking turns, round by round;
3. ``mops bundle status`` after appending a byte to 10 files, against the warm status;
4. the start-up time of ``mops --version`` and ``mops bundle --help``;
5. ``git add -A``, for reference.

Run from the repository root::

    .venv/bin/python bench/bench_workspace.py                        # full size
    .venv/bin/python bench/bench_workspace.py --files 2000 --total-mib 200 --markdown out.md

The work folder (default ``bench/.work/``, git-ignored) is removed at the end unless ``--keep DIR``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # the bench folder is not a package
    BARE_ADD,
    BARE_STATUS,
    MIB,
    compile_bytecode,
    fmt_time,
    log,
    make_work_dir,
    read_all,
    remove_work_dir,
    sha256_limit,
)

COMMAND_TIMEOUT = 1800.0  # seconds; one command of a 1 GiB run takes seconds, not minutes
FIRST_ROUNDS = 3  # first add + status, and the bare floor: median of this many rounds
RACY_CLEAN_WAIT = 2.5  # seconds between the add and the warm runs, so no file is "racily clean"
EXTENSIONS = (".csv", ".py", ".json", ".bin", ".parquet", ".txt", ".yaml", ".nc")


# --------------------------------------------------------------------------- the synthetic project


@dataclass(frozen=True)
class ProjectFile:
    rel: str
    size: int


def plan_project(n_files: int, total_bytes: int, seed: int) -> list[ProjectFile]:
    """Paths in nested folders (depth 1-4) and log-uniform sizes scaled to sum to ``total_bytes``."""
    rng = random.Random(seed)
    weights = [math.exp(rng.uniform(math.log(256), math.log(8 * MIB))) for _ in range(n_files)]
    scale = total_bytes / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    largest = max(range(n_files), key=sizes.__getitem__)
    sizes[largest] = max(1, sizes[largest] + total_bytes - sum(sizes))
    n_top = max(1, round(n_files ** (1 / 3)))
    files = []
    for i, size in enumerate(sizes):
        depth = rng.randint(1, 4)
        folders = [f"{'abcdefgh'[level]}{rng.randrange(n_top):02d}" for level in range(depth)]
        name = f"f{i:06d}{EXTENSIONS[rng.randrange(len(EXTENSIONS))]}"
        files.append(ProjectFile("/".join([*folders, name]), size))
    return files


def write_project(root: Path, files: Sequence[ProjectFile], seed: int) -> None:
    """Each file: its own path as a header, then bytes from a seeded random pool at a random offset."""
    rng = random.Random(seed + 1)
    pool = rng.randbytes(16 * MIB)
    for f in files:
        path = root / f.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        header = f.rel.encode() + b"\n"
        remaining = f.size
        offset = rng.randrange(len(pool))
        with open(path, "wb") as out:
            head = header[:remaining]
            out.write(head)
            remaining -= len(head)
            while remaining > 0:
                chunk = pool[offset : offset + min(remaining, len(pool) - offset)]
                out.write(chunk)
                remaining -= len(chunk)
                offset = (offset + len(chunk)) % len(pool)


def bare_add_status(project: Path, listing: Path) -> float:
    """Seconds for :data:`BARE_ADD` then :data:`BARE_STATUS`, each in a fresh interpreter."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", BARE_ADD, str(project), str(listing), "2"], check=True, timeout=COMMAND_TIMEOUT
    )
    subprocess.run([sys.executable, "-c", BARE_STATUS, str(listing)], check=True, timeout=COMMAND_TIMEOUT)
    return time.perf_counter() - start


# --------------------------------------------------------------------------- running commands


class Runner:
    """Runs commands in the project with an isolated environment and times them (wall clock)."""

    def __init__(self, project: Path, env: dict[str, str]) -> None:
        self.project = project
        self.env = env

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(list(argv), cwd=self.project, env=self.env, capture_output=True, timeout=COMMAND_TIMEOUT)
        if proc.returncode != 0:
            raise SystemExit(
                f"bench: {' '.join(argv)} exited {proc.returncode}\n{proc.stderr.decode(errors='replace')}"
            )
        return proc

    def time(self, argv: Sequence[str]) -> float:
        start = time.perf_counter()
        self.run(argv)
        return time.perf_counter() - start

    def medians_in_turn(self, commands: Sequence[Sequence[str]], runs: int) -> list[float]:
        """Median of ``runs`` timed runs of each command, the commands taking turns (each warmed up once
        first), so a machine that speeds up or slows down during the run treats them alike."""
        for argv in commands:
            self.run(argv)
        times: list[list[float]] = [[] for _ in commands]
        for _ in range(runs):
            for argv, taken in zip(commands, times, strict=True):
                taken.append(self.time(argv))
        return [statistics.median(taken) for taken in times]

    def median(self, argv: Sequence[str], runs: int, before: Callable[[], None] | None = None) -> float:
        """Median of ``runs`` timed runs after one untimed warm-up; ``before`` runs ahead of each."""
        if before:
            before()
        self.run(argv)
        times = []
        for _ in range(runs):
            if before:
                before()
            times.append(self.time(argv))
        return statistics.median(times)


def git(*args: str) -> list[str]:
    return ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", *args]


# --------------------------------------------------------------------------- report


@dataclass
class Row:
    metric: str
    mops: float | None
    peer: float | None
    peer_name: str
    target: str
    limit: float | None = None  # pass when ratio (or the mops time, if no peer) <= limit

    @property
    def ratio(self) -> float | None:
        return self.mops / self.peer if self.mops is not None and self.peer else None

    @property
    def verdict(self) -> str:
        if self.limit is None:
            return "-"
        value = self.ratio if self.peer is not None else self.mops
        return "pass" if value is not None and value <= self.limit else "FAIL"


def markdown_table(rows: Sequence[Row]) -> str:
    lines = [
        "| metric | mops | peer | ratio | target | result |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        peer = f"{fmt_time(r.peer)} ({r.peer_name})" if r.peer is not None else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        lines.append(f"| {r.metric} | {fmt_time(r.mops)} | {peer} | {ratio} | {r.target} | {r.verdict} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000, help="number of files (default 10,000)")
    parser.add_argument("--total-mib", type=int, default=1024, help="total size in MiB (default 1024)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per median (default 7)")
    parser.add_argument("--touch", type=int, default=10, help="files changed per round (default 10)")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of paths, sizes and content")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="build in DIR (new or empty) and keep it")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the report to FILE")
    args = parser.parse_args(argv)
    if not 1 <= args.files <= 1_000_000:
        parser.error("--files must be between 1 and 1,000,000")
    if not 1 <= args.total_mib <= 64 * 1024:
        parser.error("--total-mib must be between 1 and 65536")
    if not 1 <= args.runs <= 101 or not 1 <= args.touch <= args.files:
        parser.error("--runs must be 1-101 and --touch 1..--files")
    return args


def check_space(where: Path, total_bytes: int) -> None:
    """The files plus git's compressed copy of them (random data does not compress) plus slack."""
    need = int(total_bytes * 2.2) + 256 * MIB
    free = shutil.disk_usage(where).free
    if free < need:
        raise SystemExit(f"bench: needs about {need // MIB} MiB free in {where}, has {free // MIB} MiB")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    mops = Path(sys.executable).parent / "mops"
    if not mops.exists():
        raise SystemExit(f"bench: {mops} not found: run with the virtualenv's python (.venv/bin/python)")
    if shutil.which("git") is None:
        raise SystemExit("bench: git not found on PATH")
    total_bytes = args.total_mib * MIB
    work = make_work_dir(args.keep)
    try:
        check_space(work, total_bytes)
        return run_benchmark(args, work, str(mops), total_bytes)
    finally:
        remove_work_dir(work, args.keep)


def run_benchmark(args: argparse.Namespace, work: Path, mops: str, total_bytes: int) -> int:
    project, home = work / "project", work / "home"
    project.mkdir()
    home.mkdir()
    compile_bytecode()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOPS_", "GIT_"))}
    env.update(HOME=str(home), MODELOPS_HOME=str(work / "modelops-home"), GIT_CONFIG_NOSYSTEM="1")
    runner = Runner(project, env)

    runner.run([mops, "bundle", "init", "."])
    log(f"writing {args.files:,} files, {args.total_mib:,} MiB in {project}")
    files = plan_project(args.files, total_bytes, args.seed)
    start = time.perf_counter()
    write_project(project, files, args.seed)
    written = time.monotonic()
    log(f"wrote them in {time.perf_counter() - start:.1f} s")
    paths = [project / f.rel for f in files]
    read_all(paths)

    log("hashing limit: sha256 on 2 threads (median of 3)")
    limit = statistics.median(sha256_limit(paths) for _ in range(3))

    # A real project's files are older than a few seconds: wait until none is "racily clean", or the
    # first status would re-hash the files written last (by design, see core/hashing.py).
    time.sleep(max(0.0, written + RACY_CLEAN_WAIT - time.monotonic()))
    log(f"first mops bundle add . + status, and the bare Python floor (median of {FIRST_ROUNDS}, alternating)")
    firsts: list[tuple[float, float]] = []
    bare: list[float] = []
    for round_ in range(FIRST_ROUNDS):
        if round_:  # a first add again: the project as init leaves it (no tracked list, no caches)
            shutil.rmtree(project / ".modelops-bundle")
            runner.run([mops, "bundle", "init", "."])
            time.sleep(RACY_CLEAN_WAIT)  # as in the first round, nothing in the tree changed just now
        bare.append(bare_add_status(project, work / "bare-listing.txt"))
        add_time = runner.time([mops, "bundle", "add", "."])
        add_done = time.monotonic()
        firsts.append((add_time, runner.time([mops, "bundle", "status"])))
    first_add, first_status = min(firsts, key=lambda pair: abs(sum(pair) - statistics.median(map(sum, firsts))))
    bare_floor = statistics.median(bare)

    # git's index first (its 1 GiB of objects is written before anything else is timed), then the warm
    # runs of mops and git taken in turn, so both see the machine in the same state.
    log("git init + git add -A")
    runner.run(git("init", "-q", "."))
    git_add = runner.time(git("add", "-A"))
    # Its gigabyte of objects goes to disk now: left dirty, it would be flushed by the next fsync anyone
    # makes (ext4 commits a journal transaction with the data it covers) -- mops's cache saves, below.
    os.sync()
    time.sleep(max(0.0, add_done + RACY_CLEAN_WAIT - time.monotonic()))
    time.sleep(RACY_CLEAN_WAIT)  # after git's index was written too
    log(f"warm mops bundle status, status --offline and git status, in turn (medians of {args.runs})")
    warm_status, warm_offline, git_status = runner.medians_in_turn(
        [[mops, "bundle", "status"], [mops, "bundle", "status", "--offline"], git("status")], args.runs
    )

    rng = random.Random(args.seed + 2)
    touched = [paths[i] for i in rng.sample(range(len(paths)), args.touch)]

    def touch() -> None:
        for path in touched:
            with open(path, "ab") as handle:
                handle.write(b"\n")

    log(f"mops bundle status after touching {args.touch} files (median of {args.runs})")
    touched_status = runner.median([mops, "bundle", "status"], args.runs, before=touch)

    log("start-up: mops --version, mops bundle --help")
    version_time = runner.median([mops, "--version"], args.runs)
    help_time = runner.median([mops, "bundle", "--help"], args.runs)

    touched_bytes = sum(p.stat().st_size for p in touched)
    rows = [
        Row("first `add .` + `status`", first_add + first_status, limit, "sha256, 2 threads", "<= 1.3x", 1.3),
        Row("  of which `add .`", first_add, None, "", "", None),
        Row("  of which first `status`", first_status, None, "", "", None),
        Row("bare Python add + status (the floor)", bare_floor, limit, "sha256, 2 threads", "report"),
        Row("warm `status`, nothing changed", warm_status, git_status, "`git status`", "<= 2.0x", 2.0),
        # git status never asks a remote; `--offline` is mops's like-for-like (local tree only).
        Row("warm `status --offline`, nothing changed", warm_offline, git_status, "`git status`", "<= 2.0x", 2.0),
        Row(f"`status` after touching {args.touch} files", touched_status, warm_status, "warm status", "report"),
        Row("`mops --version`", version_time, None, "", "< 0.3 s", 0.3),
        Row("`mops bundle --help`", help_time, None, "", "< 0.3 s", 0.3),
        Row("`git add -A` (reference)", None, git_add, "git", "report"),
    ]
    version = runner.run([mops, "--version"]).stdout.decode().strip()
    git_version = runner.run(["git", "--version"]).stdout.decode().strip()
    header = (
        f"{args.files:,} files, {total_bytes / MIB:,.0f} MiB in nested folders (seed {args.seed}); "
        f"{args.touch} touched files hold {touched_bytes / 1024:,.0f} KiB; medians of {args.runs} runs\n"
        f"{version}; {git_version}; Python {platform.python_version()}; "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; {dt.date.today().isoformat()}"
    )
    report = f"{header}\n\n{markdown_table(rows)}\n"
    print(report)
    if args.markdown:
        args.markdown.write_text(report, encoding="utf-8")
        log(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
