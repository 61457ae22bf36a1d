"""Model-registry benchmark (issue 5, "Speed"): status with registered models against plain status.

Builds a synthetic project (default 10,000 files in nested folders) plus 50 model files, each a
``BaseModel`` subclass importing a shared helper and depending on its own data file, then times, side by
side in one run, a warm ``mops bundle status --offline`` of the same tree

1. before any model is registered (the plain file status), and
2. after ``register-model`` for all 50 models (status then also computes the model table),

and prints the ratio (target <= 1.2). ``--offline`` keeps the registry round trip out of both sides:
the comparison is about the model table, not the network.

Run from the repository root::

    .venv/bin/python bench/bench_registry.py [--files N] [--models M] [--runs R] [--markdown FILE] [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # the bench folder is not a package
    MIB,
    fmt_time,
    isolated_env,
    log,
    machine_line,
    make_work_dir,
    measure,
    median,
    remove_work_dir,
)
from bench_workspace import plan_project, write_project

RACY_CLEAN_WAIT = 2.5  # seconds: files written just before a scan are re-hashed once (racy-clean rule)
TARGET = 1.2

HELPER = '''"""Shared numerics of the synthetic models."""


def growth(rate: float, days: int) -> list[float]:
    return [(1.0 + rate) ** day for day in range(days)]
'''

MODEL = '''"""Synthetic model {i}."""

from modelops_calabaria import BaseModel

from models.common import growth


class Model{i:02d}(BaseModel):
    def simulate(self, params, seed):
        return {{"cases": growth(0.01 * {i}, 30)}}
'''


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000, help="synthetic files besides the models")
    parser.add_argument("--total-mib", type=int, default=200, help="their total size (status does not read them)")
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--runs", type=int, default=9, help="timed status runs per side (median)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--keep", type=Path, help="work in this (new or empty) folder and keep it")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    mops = str(Path(sys.executable).with_name("mops"))
    work = make_work_dir(args.keep, prefix="registry")
    try:
        return run(args, work, mops)
    finally:
        remove_work_dir(work, args.keep)


def run(args: argparse.Namespace, work: Path, mops: str) -> int:
    project = work / "project"
    env = isolated_env(work)
    log(f"writing {args.files:,} files ({args.total_mib} MiB) and {args.models} models")
    write_project(project, plan_project(args.files, args.total_mib * MIB, args.seed), args.seed)
    (project / "models").mkdir(exist_ok=True)
    (project / "models" / "__init__.py").write_text("")
    (project / "models" / "common.py").write_text(HELPER)
    (project / "data").mkdir(exist_ok=True)
    for i in range(args.models):
        (project / "models" / f"m{i:02d}.py").write_text(MODEL.format(i=i))
        (project / "data" / f"m{i:02d}.csv").write_text(f"day,cases\n0,{i}\n")
    measure([mops, "bundle", "init", "."], cwd=project, env=env)
    measure([mops, "bundle", "add", "."], cwd=project, env=env)
    time.sleep(RACY_CLEAN_WAIT)

    status = [mops, "bundle", "status", "--offline"]

    def warm_median() -> float:
        measure(status, cwd=project, env=env)  # warm-up: memoises anything that changed
        return median([measure(status, cwd=project, env=env).seconds for _ in range(args.runs)])

    log("plain status (no models registered)")
    plain = warm_median()
    log(f"registering {args.models} models")
    for i in range(args.models):
        measure(
            [mops, "bundle", "register-model", f"models/m{i:02d}.py", "--data", f"data/m{i:02d}.csv"],
            cwd=project,
            env=env,
        )
    time.sleep(RACY_CLEAN_WAIT)
    log("status with the model table")
    with_models = warm_median()
    table = measure([*status, "--json"], cwd=project, env=env).stdout
    registered = table.count(b'"kind": "model"')

    ratio = with_models / plain
    verdict = "pass" if ratio <= TARGET else "FAIL"
    lines = [
        f"{args.files:,} files + {args.models} models ({registered} in the status table); medians of {args.runs} "
        f"warm runs of `mops bundle status --offline`",
        machine_line(),
        "",
        "| metric | with models | plain status | ratio | target | result |",
        "|---|---:|---:|---:|---|---|",
        f"| warm `status`, nothing changed | {fmt_time(with_models)} | {fmt_time(plain)} | {ratio:.2f}x "
        f"| <= {TARGET}x | {verdict} |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
        log(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
