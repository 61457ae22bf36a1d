"""Curves of bench_scale.py runs: time against bytes and files (a bench-only script; needs matplotlib).

matplotlib is not a dependency of modelops-bundle: run this with the bench tools' virtualenv
(``bench_scale.py --install-tools`` makes ``bench/.work/tools-venv`` with dvc and matplotlib) or any
Python that has it (``pip install matplotlib``)::

    bench/.work/tools-venv/bin/python bench/plot_scale.py /tmp/s10k.json /tmp/s100k.json /tmp/s1m.json \\
        --out docs/scale-curves.png --markdown /tmp/curve.md

Each JSON file is one ``bench_scale.py --json`` run; the runs are sorted by file count.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

STEPS = (
    ("push", "push (first)"),
    ("pull", "pull into a fresh clone"),
    ("ensure", "ensure --dest (fresh cache)"),
    ("first_add", "first add ."),
    ("incremental_push", "incremental push (10 files)"),
)
STATUS = (("warm_status", "mops status"), ("warm_offline", "mops status --offline"), ("git_status", "git status"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="bench_scale.py --json files")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--markdown", type=Path, help="also write the table of the curve")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted((json.loads(path.read_text()) for path in args.runs), key=lambda run: run["files"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    gib = [run["total"] / 2**30 for run in runs]
    for key, label in STEPS:
        points = [(g, run["seconds"].get(key)) for g, run in zip(gib, runs, strict=True)]
        points = [(g, s) for g, s in points if s]
        if points:
            left.plot(*zip(*points, strict=True), marker="o", label=label)
    left.set(xscale="log", yscale="log", xlabel="bytes in the tree (GiB)", ylabel="seconds")
    left.set_title("mops: time against bytes")
    files = [run["files"] for run in runs]
    for key, label in STATUS:
        points = [(f, run["seconds"].get(key)) for f, run in zip(files, runs, strict=True)]
        points = [(f, s) for f, s in points if s]
        if points:
            right.plot(*zip(*points, strict=True), marker="o", label=label)
    right.set(xscale="log", yscale="log", xlabel="files in the tree", ylabel="seconds")
    right.set_title("warm status against files")
    for axes in (left, right):
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
    sizes = [f"{r['total'] / 2**20:,.0f} MiB" if r["total"] < 2**30 else f"{r['total'] / 2**30:.1f} GiB" for r in runs]
    names = [f"{run['files']:,} files / {size}" for run, size in zip(runs, sizes, strict=True)]
    figure.suptitle("bench_scale.py: " + ", ".join(names), fontsize=9)
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)
    header = ["step"] + [f"{run['files']:,} files, {run['total'] / 2**30:.2f} GiB" for run in runs]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(runs) + "|"]
    for key, label in (*STEPS, *STATUS):
        cells = []
        for run in runs:
            value = run["seconds"].get(key)
            cells.append("-" if value is None else (f"{value:.2f} s" if value >= 1 else f"{value * 1000:.0f} ms"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| push: seconds per GiB | "
        + " | ".join(
            f"{run['seconds']['push'] / (run['total'] / 2**30):.1f}" if run["seconds"].get("push") else "-"
            for run in runs
        )
        + " |"
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
