"""Two installs of mops side by side: did a change make the warm ``status`` slower?

The workspace bench (``bench_workspace.py``) measures one install against git; between two runs of it this
machine's speed drifts by 5-20 %, more than a regression worth catching. This bench puts a *baseline*
install (an earlier release, or main before a change) and a *candidate* (this checkout) on copies of one
synthetic project and times their warm ``status`` and ``status --offline`` in turn, round by round, with
``git status`` on the same tree as a reference. Each side's package is byte-compiled first.

Make a baseline install from any revision, then run::

    git worktree add /tmp/mops-base REV && python3 -m venv /tmp/mops-base/.venv
    /tmp/mops-base/.venv/bin/pip install -e /tmp/mops-base
    .venv/bin/python bench/bench_versions.py --baseline /tmp/mops-base/.venv/bin/mops
    .venv/bin/python bench/bench_versions.py --baseline /tmp/mops-base/.venv/bin/mops --files 2000 --rounds 11

``--candidate`` defaults to this virtualenv's ``mops``. For an even comparison give both installs the same
packages (a test virtualenv with every extra installed starts Python more slowly than a bare one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import MIB, fmt_time, log, machine_line, make_work_dir, median, remove_work_dir, render_table
from bench_workspace import plan_project, write_project

SIDES = ("baseline", "candidate")


def _version(mops: Path) -> str:
    """``mops --version`` and the git revision of the source the install imports (editable installs)."""
    version = subprocess.run([str(mops), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    where = _package_dir(mops)
    revision = subprocess.run(
        ["git", "-C", where, "log", "-1", "--format=%h %cs"], capture_output=True, text=True, timeout=60
    ).stdout.strip()
    return f"{version}, {revision}" if revision else version


def _package_dir(mops: Path) -> str:
    python = mops.parent / "python"
    return subprocess.run(
        [str(python), "-c", "import modelops_bundle, os; print(os.path.dirname(modelops_bundle.__file__))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


def _compile(mops: Path) -> None:
    """Byte-compile the package the install imports (``PYTHONDONTWRITEBYTECODE`` would otherwise make
    every run compile what changed)."""
    python = mops.parent / "python"
    subprocess.run(
        [str(python), "-m", "compileall", "-q", _package_dir(mops)], check=True, capture_output=True, timeout=300
    )


def _timed(command: Sequence[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(list(command), cwd=cwd, env=env, capture_output=True, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed in {cwd}: {done.stderr.decode()[-500:]}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the mops executable to compare against")
    parser.add_argument("--candidate", type=Path, default=Path(sys.executable).parent / "mops")
    parser.add_argument("--files", type=int, default=10_000, help="files in the project (default 10,000)")
    parser.add_argument("--total-mib", type=int, default=200, help="their total size, MiB (default 200)")
    parser.add_argument("--rounds", type=int, default=31, help="timed rounds (default 31)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--keep", type=Path, metavar="DIR")
    parser.add_argument("--markdown", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    installs = {"baseline": args.baseline.absolute(), "candidate": args.candidate.absolute()}
    for side, mops in installs.items():
        if not mops.exists():
            raise SystemExit(f"bench: the {side} executable {mops} does not exist")

    work = make_work_dir(args.keep, "versions")
    try:
        files = plan_project(args.files, args.total_mib * MIB, args.seed)
        log(f"writing {len(files):,} files ({args.total_mib} MiB) and a copy per side")
        tree = work / "tree"
        write_project(tree, files, args.seed)
        envs: dict[str, dict[str, str]] = {}
        for side, mops in installs.items():
            _compile(mops)
            shutil.copytree(tree, work / side, symlinks=True)
            home = work / f"home-{side}"
            env = {k: v for k, v in os.environ.items() if not k.startswith(("MOPS_", "MODELOPS_", "REGISTRY_"))}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env.update(HOME=str(home), MODELOPS_HOME=str(home / ".modelops"))
            envs[side] = env
            _timed([str(mops), "bundle", "init", "-q", "."], work / side, env)
            _timed([str(mops), "bundle", "add", "-q", "."], work / side, env)
        _timed(["git", "init", "-q"], tree, envs["baseline"])
        _timed(["git", "add", "-A"], tree, envs["baseline"])
        time.sleep(2.5)  # no file "racily clean" for either side
        for side, mops in installs.items():  # warm-up: caches settled, pages in memory
            for _ in range(3):
                _timed([str(mops), "bundle", "status"], work / side, envs[side])

        log(f"warm status and status --offline of each side, and git status, in turn ({args.rounds} rounds)")
        taken: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for side, mops in installs.items():
                for label, extra in (("status", []), ("status --offline", ["--offline"])):
                    seconds = _timed([str(mops), "bundle", "status", *extra], work / side, envs[side])
                    taken.setdefault(f"{side} {label}", []).append(seconds)
            taken.setdefault("git status", []).append(_timed(["git", "status"], tree, envs["baseline"]))

        rows = []
        for label in ("status", "status --offline"):
            base, cand = median(taken[f"baseline {label}"]), median(taken[f"candidate {label}"])
            difference = f"{(cand - base) * 1000:+.1f} ms"
            rows.append([f"warm `{label}`", fmt_time(base), fmt_time(cand), difference, f"{cand / base:.3f}x"])
        git = median(taken["git status"])
        rows.append(["`git status` (reference)", fmt_time(git), fmt_time(git), "-", "-"])
        text = "\n".join(
            [
                f"{args.files:,} files, {args.total_mib} MiB (seed {args.seed}); "
                f"medians of {args.rounds} alternating rounds",
                f"baseline: {_version(installs['baseline'])} ({installs['baseline']})",
                f"candidate: {_version(installs['candidate'])} ({installs['candidate']})",
                machine_line(),
                "",
                render_table(["metric", "baseline", "candidate", "difference", "ratio"], rows, right=(1, 2, 3, 4)),
            ]
        )
        print(text)
        if args.markdown:
            args.markdown.write_text(text + "\n", encoding="utf-8")
    finally:
        remove_work_dir(work, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
