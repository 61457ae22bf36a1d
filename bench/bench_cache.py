"""Cache benchmark (issue 6): materialising a bundle already in the cache vs cold, and eight processes
materialising one cold digest at once.

    .venv/bin/python bench/bench_cache.py [--gib 1.0] [--keep DIR]

The bundle (``--gib`` of incompressible data in 8 large files plus 200 small ones) is pushed to the
embedded OCI layout registry of an isolated ``MODELOPS_HOME``; every materialisation runs in a fresh
process and is timed inside it around ``api.materialize_report`` (interpreter start-up excluded, and
reported separately). Targets: warm <= 5% of cold; eight concurrent cold processes download exactly one
copy of the bundle between them (summed from each process's cache statistics).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    GIB,
    MIB,
    fmt_bytes,
    fmt_time,
    isolated_env,
    log,
    machine_line,
    make_work_dir,
    median,
    remove_work_dir,
    require_free_space,
    write_from_pool,
)

CHILD = """
import json, sys, time
t0 = time.perf_counter()
from modelops_bundle import api
t1 = time.perf_counter()
report = api.materialize_report(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "seconds": t2 - t1, "from_cache": report.from_cache, "stats": report.stats}))
"""


def mops(env: dict[str, str], cwd: Path, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "modelops_bundle.cli.main", *args, "--json"]
        if False
        else [str(Path(sys.executable).with_name("mops")), "bundle", *args, "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"mops bundle {' '.join(args)} failed: {done.stderr}")
    return json.loads(done.stdout) if done.stdout.strip() else {}


def child(env: dict[str, str], ref: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD, ref], env=env, stdout=subprocess.PIPE, text=True)


def run_one(env: dict[str, str], ref: str) -> dict[str, object]:
    process = child(env, ref)
    out, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit("a materialisation failed")
    result: dict[str, object] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0, help="bundle size in GiB (default 1)")
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep the work folder here")
    args = parser.parse_args()
    work = make_work_dir(args.keep, "cache")
    try:
        total = int(args.gib * GIB)
        require_free_space(work, total * 4)
        env = isolated_env(work)
        project = work / "bundle"
        project.mkdir()
        mops(env, project, "init", ".")
        pool = os.urandom(64 * MIB)
        large = total // 8
        for number in range(8):
            write_from_pool(project / "data" / f"part{number}.bin", large, pool, number * 7919, f"{number}".encode())
        for number in range(200):
            path = project / "src" / f"m{number // 20}" / f"f{number}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"VALUE = {number}\n" * 20)
        log(f"pushing a {fmt_bytes(total)} bundle to the embedded OCI layout")
        mops(env, project, "add", ".")
        digest = str(mops(env, project, "push")["digest"])
        ref = f"bundle@{digest}"

        cold_env = {**env, "MODELOPS_BUNDLE_CACHE": str(work / "cache-a")}
        log("cold materialisation")
        cold = run_one(cold_env, ref)
        warm = [run_one(cold_env, ref) for _ in range(args.warm_runs)]
        assert all(item["from_cache"] for item in warm)
        warm_s = median([float(item["seconds"]) for item in warm])  # type: ignore[arg-type]
        cold_s = float(cold["seconds"])  # type: ignore[arg-type]

        log("eight processes, one cold digest")
        race_env = {**env, "MODELOPS_BUNDLE_CACHE": str(work / "cache-b")}
        started = time.perf_counter()
        processes = [child(race_env, ref) for _ in range(8)]
        results = [json.loads(p.communicate()[0]) for p in processes]
        race_wall = time.perf_counter() - started
        downloaded = sum(int(r["stats"]["downloaded_bytes"]) for r in results)
        fetched = sum(int(r["stats"]["fetched_bytes"]) for r in results)
        bundle_bytes = int(cold["stats"]["fetched_bytes"])  # type: ignore[index]
        layer_bytes = int(cold["stats"]["downloaded_bytes"])  # type: ignore[index]

        print(machine_line())
        print(
            f"bundle: {fmt_bytes(bundle_bytes)} of files ({fmt_bytes(layer_bytes)} of registry blobs), "
            f"checkout by {cold['stats']['checkout_method']}"
        )  # type: ignore[index]
        print("| metric | value | target | result |")
        print("|---|---:|---|---|")
        ratio = warm_s / cold_s
        print(f"| cold materialise (in process) | {fmt_time(cold_s)} | - | - |")
        print(f"| warm materialise (in process, median of {args.warm_runs}) | {fmt_time(warm_s)} | - | - |")
        print(f"| warm / cold | {ratio:.2%} | <= 5% | {'PASS' if ratio <= 0.05 else 'FAIL'} |")
        imports = median([float(item["imports"]) for item in warm])  # type: ignore[arg-type]
        print(f"| interpreter + `import modelops_bundle.api` (not counted above) | {fmt_time(imports)} | - | - |")
        print(f"| 8 processes, one cold digest: wall | {fmt_time(race_wall)} | - | - |")
        ok = downloaded == layer_bytes and fetched == bundle_bytes
        print(
            f"| 8 processes: registry bytes downloaded, all together | {fmt_bytes(downloaded)} "
            f"(one copy: {fmt_bytes(layer_bytes)}) | = one copy | {'PASS' if ok else 'FAIL'} |"
        )
        print(
            f"| 8 processes: processes that downloaded anything | "
            f"{sum(1 for r in results if r['stats']['downloaded_blobs'])} | 1 | - |"
        )
    finally:
        remove_work_dir(work, args.keep)


if __name__ == "__main__":
    main()
