"""Load benchmark (issue 7): push and pull of 20,000 files, and of one 5 GiB file, against a CNCF
distribution registry on 127.0.0.1 -- wall time and peak RSS of each command.

Every command is a child process (``mops bundle ...``) timed by wall clock, its peak RSS taken by GNU
time (``/usr/bin/time -f %M``; see ``_common.measure``). For each case:

``files``   20,000 small files (1-6 KiB, 16 top-level folders, nested) : ``add .`` (reported), ``push``
            (timed), then ``pull`` into a fresh project pinned to the same environment (timed) and a
            byte-for-byte check of the pulled tree.
``large``   one 5 GiB file: ``add`` (hashing, reported), ``push`` (streamed in chunks), ``pull`` into a
            fresh project, and a sha256 check of the pulled file.

Run from the repository root::

    .venv/bin/python bench/bench_load.py                          # both cases, full size
    .venv/bin/python bench/bench_load.py --only files             # one case
    .venv/bin/python bench/bench_load.py --quick                  # 2,000 files and 256 MiB (smoke run)
    .venv/bin/python bench/bench_load.py --markdown /tmp/load.md  # also write the table

It checks free disk first (about 3.3x the data: project, registry storage, pulled copy), works under
``bench/.work/load-*`` (removed at the end unless ``--keep DIR``), and stops the registry it started.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    GIB,
    KIB,
    MIB,
    REPO_ROOT,
    Measured,
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
    require_free_space,
    sha256_file,
    write_from_pool,
)

sys.path.insert(0, str(REPO_ROOT))
from tests.oci.registries import start_distribution

RACY_CLEAN_WAIT = 2.5  # seconds between writing files and the add (no "racily clean" re-hash)


@dataclass
class Row:
    case: str
    step: str
    measured: Measured
    note: str = ""


def mops_binary() -> str:
    return str(Path(sys.executable).parent / "mops")


def make_files(root: Path, count: int, seed: int) -> int:
    """``count`` small files of 1-6 KiB in 16 folders, two levels deep; returns the total bytes."""
    rng = random.Random(seed)
    pool = rng.randbytes(4 * MIB)
    total = 0
    for number in range(count):
        size = rng.randint(1 * KIB, 6 * KIB)
        rel = Path(f"data{number % 16:02d}") / f"part{(number // 16) % 25:02d}" / f"file{number:05d}.dat"
        write_from_pool(root / rel, size, pool, rng.randrange(len(pool)), header=f"{number}\n".encode())
        total += size
    return total


def make_large(root: Path, size: int, seed: int) -> None:
    pool = random.Random(seed).randbytes(64 * MIB)
    write_from_pool(root / "model" / "weights.bin", size, pool, 0, header=b"mops load bench\n")


def tree_digest(root: Path) -> str:
    """One digest over every file's path and bytes below ``root`` (``.modelops-bundle/`` excluded)."""
    paths: list[Path] = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name != ".modelops-bundle"]
        paths += [Path(folder) / name for name in filenames]
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + sha256_file(path).encode())
    return digest.hexdigest()


def run_case(case: str, work: Path, sizes: dict[str, int], seed: int) -> list[Row]:
    rows: list[Row] = []
    folder = work / case
    folder.mkdir()
    registry = start_distribution(folder / "registry")
    try:
        env = isolated_env(folder)
        env_dir = Path(env["MODELOPS_HOME"]) / "bundle-env"
        env_dir.mkdir(parents=True, exist_ok=True)
        (env_dir / "bench.yaml").write_text(
            f"environment: bench\nregistry:\n  provider: docker\n  login_server: {registry.host}\n"
        )
        mops = mops_binary()
        project = folder / "project"
        measure([mops, "bundle", "init", "--env", "bench", str(project)], cwd=folder, env=env)
        for scaffolded in (".modelopsignore", "pyproject.toml"):
            (project / scaffolded).unlink(missing_ok=True)
        log(f"{case}: writing data")
        if case == "files":
            total = make_files(project, sizes["files"], seed)
        else:
            make_large(project, sizes["large"], seed)
            total = sizes["large"]
        files = sum(1 for path in project.rglob("*") if path.is_file() and ".modelops-bundle" not in path.parts)
        read_all(path for path in project.rglob("*") if path.is_file())
        time.sleep(RACY_CLEAN_WAIT)
        what = f"{files:,} files, {fmt_bytes(total)}"
        log(f"{case}: add ({what})")
        rows.append(Row(case, "add .", measure([mops, "bundle", "--json", "add", "."], cwd=project, env=env), what))
        log(f"{case}: push")
        pushed = measure([mops, "bundle", "--json", "push"], cwd=project, env=env, timeout=3600)
        result = json.loads(pushed.stdout)
        store = registry.root
        stored = sum(p.stat().st_size for p in store.rglob("data") if p.is_file())
        rows.append(
            Row(
                case,
                "push",
                pushed,
                f"{result['layers']} layers, {result['uploaded_blobs']} blobs / {fmt_bytes(result['uploaded_bytes'])} "
                f"uploaded; registry holds {fmt_bytes(stored)}",
            )
        )
        clone = folder / "clone"
        measure([mops, "bundle", "init", "--env", "bench", str(clone)], cwd=folder, env=env)
        for scaffolded in (".modelopsignore", "pyproject.toml"):
            (clone / scaffolded).unlink(missing_ok=True)
        measure([mops, "bundle", "config", "repository", "project"], cwd=clone, env=env)
        log(f"{case}: pull")
        pulled = measure(
            [mops, "bundle", "--json", "pull", "--ref", str(result["digest"])], cwd=clone, env=env, timeout=3600
        )
        info = json.loads(pulled.stdout)
        log(f"{case}: checking the pulled tree")
        same = tree_digest(clone) == tree_digest(project)
        rows.append(
            Row(
                case,
                "pull (fresh project)",
                pulled,
                f"{info['downloaded_files']:,} files, {fmt_bytes(info['downloaded_bytes'])}; "
                f"{'identical' if same else 'DIFFERENT'} bytes",
            )
        )
        if not same:
            ours = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
            theirs = {p.relative_to(clone).as_posix() for p in clone.rglob("*") if p.is_file()}
            raise SystemExit(f"bench: pulled tree of {case} differs: {sorted(ours ^ theirs)[:10]}")
    finally:
        registry.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=("files", "large"), help="run only this case")
    parser.add_argument("--quick", action="store_true", help="2,000 files and 256 MiB")
    parser.add_argument("--files", type=int, default=None, help="number of small files (default 20,000)")
    parser.add_argument("--large-mib", type=int, default=None, help="size of the large file (default 5120)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = {"files": 2_000 if args.quick else 20_000, "large": (256 * MIB) if args.quick else 5 * GIB}
    if args.files is not None:
        sizes["files"] = args.files
    if args.large_mib is not None:
        sizes["large"] = args.large_mib * MIB
    cases = args.only or ["files", "large"]
    work = make_work_dir(args.keep, "load")
    need = int(3.3 * max(sizes["large"] if "large" in cases else 0, sizes["files"] * 6 * KIB)) + GIB
    require_free_space(work, need)
    rows: list[Row] = []
    try:
        for case in cases:
            rows += run_case(case, work, sizes, args.seed)
    finally:
        remove_work_dir(work, args.keep)
    table = render_table(
        ["case", "step", "wall time", "peak RSS", "notes"],
        [[row.case, row.step, fmt_time(row.measured.seconds), fmt_mb(row.measured.max_rss), row.note] for row in rows],
        right=(2, 3),
    )
    text = f"{machine_line()}\n\n{table}\n"
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
