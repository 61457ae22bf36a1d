"""Fleet benchmark (issue 19, "Fleet scale"): several nodes of Dask workers materialising one version at once.

A real Dask cluster (``distributed.SpecCluster``, one-thread worker processes under Nannies) on 127.0.0.1
forms ``--nodes`` "nodes": the workers of a node share one cache folder (``MODELOPS_BUNDLE_CACHE``), as
the workers of one machine share its disk. A version (``--large-files`` files of ``--mib`` MiB in all,
plus ``--small-files`` small text files) is pushed to a CNCF distribution registry; the workers read it
through a counting proxy (``tests/oci/registries.FaultProxy``). Measured:

1. a single cold materialisation on an idle node (a fresh process and cache; median of ``--rounds``);
2. every worker of every node materialising the version at the same moment: each worker's time from the
   common start, failures, blob GETs per blob digest and bytes through the proxy (target: each blob once
   per node, no failure, every tree verified against the project's files, the slowest worker within 1.5x
   the single cold materialisation);
3. ``modelops_bundle.dask.prefetch`` into emptied caches: all nodes at once, then one node at a time,
   followed by ``client.register_plugin`` (which then only finds trees);
4. the per-request costs ``bench/sim_fleet.py`` extrapolates from: the latency of a small registry
   request through the proxy, and the throughput of one node's cold materialisation.

Run from the repository root::

    .venv/bin/python bench/bench_fleet.py                             # 4 nodes x 8 workers, 512 MiB
    .venv/bin/python bench/bench_fleet.py --nodes 2 --workers 3 --mib 64 --rounds 1     # about 1 min
    .venv/bin/python bench/bench_fleet.py --json bench/fleet-costs.json --markdown /tmp/fleet.md

The work folder (``bench/.work/fleet-*``) is removed at the end unless ``--keep DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    MIB,
    REPO_ROOT,
    describe_code,
    fmt_bytes,
    fmt_time,
    isolated_env,
    log,
    machine_line,
    make_work_dir,
    measure,
    remove_work_dir,
    render_table,
    require_free_space,
    write_from_pool,
)

sys.path.insert(0, str(REPO_ROOT))
from tests.oci.registries import FaultProxy, start_distribution
from tests.workers.fleet import BlobTraffic, node_cluster, run_at_once, tree_digests

SLOWEST_TARGET = 1.5
RACY_CLEAN_WAIT = 2.5

COLD_SCRIPT = """
import json, sys, time
from modelops_bundle import api
start = time.perf_counter()
report = api.materialize_report(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - start, "stats": report.to_json()["stats"]}))
"""


def make_project(bench_env: dict[str, str], work: Path, args: argparse.Namespace) -> Path:
    mops = str(Path(sys.executable).parent / "mops")
    project = work / "project"
    measure([mops, "bundle", "init", "--env", "bench", str(project)], cwd=work, env=bench_env)
    rng = random.Random(args.seed)
    pool = rng.randbytes(32 * MIB)
    each = args.mib * MIB // max(1, args.large_files)
    for number in range(args.large_files):
        write_from_pool(project / f"data/large/part-{number:03d}.bin", each, pool, rng.randrange(len(pool)))
    text = "".join(f"{rng.random():.6f},{rng.random():.6f}\n" for _ in range(100_000)).encode()
    for number in range(args.small_files):
        rel = f"inputs/region-{number // 10:04d}/file-{number:05d}.csv"
        write_from_pool(project / rel, rng.randint(1024, 7168), text, rng.randrange(len(text)))
    time.sleep(RACY_CLEAN_WAIT)
    measure([mops, "bundle", "add", "."], cwd=project, env=bench_env)
    return project


def request_latency(proxy_host: str, repository: str, digest: str, count: int = 50) -> float:
    """Median seconds of a small registry request (GET of the manifest) through the proxy."""
    url = f"http://{proxy_host}/v2/{repository}/manifests/{digest}"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    taken = []
    for _ in range(count):
        start = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, headers=accept), timeout=30) as answer:
            answer.read()
        taken.append(time.perf_counter() - start)
    return statistics.median(taken)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=4, help="nodes, each with a cache of its own (default 4)")
    parser.add_argument("--workers", type=int, default=8, help="worker processes per node (default 8)")
    parser.add_argument("--mib", type=int, default=512, help="bytes in large files, MiB (default 512)")
    parser.add_argument("--large-files", type=int, default=32, help="large files (default 32)")
    parser.add_argument("--small-files", type=int, default=2000, help="small text files (default 2,000)")
    parser.add_argument("--rounds", type=int, default=3, help="single cold materialisations (default 3)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--keep", type=Path, metavar="DIR")
    parser.add_argument("--markdown", type=Path, metavar="FILE")
    parser.add_argument("--json", type=Path, metavar="FILE", help="the measured costs, for sim_fleet.py")
    args = parser.parse_args(argv)
    if not (1 <= args.nodes <= 16 and 1 <= args.workers <= 16 and 1 <= args.rounds <= 9):
        parser.error("--nodes and --workers must be 1-16, --rounds 1-9")
    work = make_work_dir(args.keep, prefix="fleet")
    try:
        require_free_space(work, (args.nodes + 3) * (args.mib * MIB + args.small_files * 8192) + 512 * MIB)
        return run(args, work)
    finally:
        remove_work_dir(work, args.keep)


def run(args: argparse.Namespace, work: Path) -> int:
    load_before = os.getloadavg()
    started = time.monotonic()
    registry = start_distribution(work / "registry")
    proxy = FaultProxy(registry.port).start()
    try:
        env = isolated_env(work)
        env_dir = Path(env["MODELOPS_HOME"]) / "bundle-env"
        env_dir.mkdir(parents=True, exist_ok=True)
        (env_dir / "bench.yaml").write_text(
            f"environment: bench\nregistry: {{provider: docker, login_server: '{registry.host}'}}\n"
        )
        log(f"pushing {args.large_files} files of {fmt_bytes(args.mib * MIB)} + {args.small_files:,} small files")
        project = make_project(env, work, args)
        mops = str(Path(sys.executable).parent / "mops")
        pushed = json.loads(measure([mops, "bundle", "--json", "push"], cwd=project, env=env).stdout)
        digest, layers = str(pushed["digest"]), int(pushed["layers"])
        ref = f"{proxy.host}/project@{digest}"
        worker_env = {key: env[key] for key in ("HOME", "MODELOPS_HOME")} | {"MOPS_ENV": "bench"}
        expected = tree_digests(project)

        log(f"single cold materialisation on an idle node ({args.rounds} rounds)")
        cold: list[float] = []
        for number in range(args.rounds):
            cache = work / f"cold-{number}"
            run_env = dict(env, MOPS_ENV="bench", MODELOPS_BUNDLE_CACHE=str(cache))
            out = subprocess.run(
                [sys.executable, "-c", COLD_SCRIPT, ref], env=run_env, capture_output=True, check=True, timeout=1800
            )
            cold.append(json.loads(out.stdout)["seconds"])
            shutil.rmtree(cache, ignore_errors=True)
        single = statistics.median(cold)
        bundle_bytes = proxy.bytes_out // args.rounds
        latency = request_latency(proxy.host, "project", digest)
        proxy.clear()

        n_workers = args.nodes * args.workers
        log(f"starting {args.nodes} nodes x {args.workers} workers")
        caches_base = work / "caches"
        with node_cluster(args.nodes, args.workers, caches_base, worker_env, timeout=600) as (client, caches):
            log("every worker materialises the version at the same moment")
            at_once = run_at_once(client, ref, worker_env, delay=3.0)
            start = min(o["started"] for o in at_once.values())
            times = sorted(o["ended"] - start for o in at_once.values())
            failed = [o["error"] for o in at_once.values() if not o["ok"]]
            traffic = BlobTraffic.of(proxy)
            fleet_bytes = proxy.bytes_out
            trees = {o["path"] for o in at_once.values() if o["ok"]}
            log(f"verifying {len(trees)} trees")
            files = {o["files"] for o in at_once.values() if o["ok"]}
            bad = []
            for tree in trees:
                listing = tree_digests(Path(tree))
                if len(listing) not in files or any(
                    expected.get(rel) != hexdigest for rel, hexdigest in listing.items()
                ):
                    bad.append(tree)
            complete = len(files) == 1

            from modelops_bundle.dask import BundlePlugin, prefetch

            prefetches: dict[str, float] = {}
            prefetch_bytes: dict[str, int] = {}
            for label, wave in (("all nodes at once", None), ("one node at a time", 1)):
                for cache in caches.values():
                    shutil.rmtree(cache, ignore_errors=True)
                proxy.clear()
                plugin = BundlePlugin(ref, environ=worker_env)
                log(f"prefetch, {label}")
                done = prefetch(client, plugin, nodes_at_once=wave)
                prefetches[label] = done.seconds
                prefetch_bytes[label] = proxy.bytes_out
            gets_before = sum(BlobTraffic.of(proxy).gets.values())
            begin = time.monotonic()
            client.register_plugin(plugin)
            register_seconds = time.monotonic() - begin
            registered_gets = sum(BlobTraffic.of(proxy).gets.values()) - gets_before
    finally:
        proxy.stop()
        registry.stop()

    slowest = times[-1]
    per_blob = traffic.per_blob
    rows = [
        ["single cold materialisation, idle node", fmt_time(single), "-", "-"],
        [
            f"{n_workers} workers at once: fastest / median / slowest",
            f"{fmt_time(times[0])} / {fmt_time(statistics.median(times))} / {fmt_time(slowest)}",
            "-",
            "-",
        ],
        [
            "slowest worker / single cold",
            f"{slowest / single:.2f}x",
            f"<= {SLOWEST_TARGET}x",
            "pass" if slowest / single <= SLOWEST_TARGET else "FAIL",
        ],
        ["workers that failed", str(len(failed)), "0", "pass" if not failed else "FAIL"],
        [
            "GETs per blob (each of the version's blobs)",
            ", ".join(map(str, sorted(per_blob))),
            f"{args.nodes} (once per node)",
            "pass" if per_blob == {args.nodes} else "FAIL",
        ],
        [
            "bytes through the proxy",
            f"{fmt_bytes(fleet_bytes)} = {fleet_bytes / max(1, bundle_bytes):.2f} x one copy",
            f"{args.nodes} copies",
            "pass" if fleet_bytes <= (args.nodes + 0.05) * bundle_bytes else "FAIL",
        ],
        [
            "trees verified (one per node)",
            f"{len(trees) - len(bad)} of {len(trees)}",
            str(args.nodes),
            "pass" if not bad and len(trees) == args.nodes and complete else "FAIL",
        ],
    ]
    rows += [
        [f"`prefetch`, {label}", f"{fmt_time(seconds)}, {fmt_bytes(prefetch_bytes[label])}", "report", "-"]
        for label, seconds in prefetches.items()
    ]
    rows.append(
        [
            "`register_plugin` after the prefetch",
            f"{fmt_time(register_seconds)}, {registered_gets} blob GETs",
            "report",
            "-",
        ]
    )
    rows.append(["small request through the proxy (median of 50)", fmt_time(latency), "report", "-"])
    header = (
        f"{args.nodes} nodes x {args.workers} workers (one thread each); version {digest[:19]}: {layers} layers, "
        f"{fmt_bytes(bundle_bytes)} through the proxy for one copy ({args.large_files} files of "
        f"{fmt_bytes(args.mib * MIB // max(1, args.large_files))} + {args.small_files:,} small files)\n"
        f"{machine_line()} (at the start: {', '.join(f'{x:.2f}' for x in load_before)}); {describe_code()}; "
        f"whole run {(time.monotonic() - started) / 60:.1f} min"
    )
    text = f"{header}\n\n{render_table(['metric', 'value', 'target', 'result'], rows, right=(1,))}\n"
    if failed:
        text += "\nFailures:\n" + "\n".join(f"- {error}" for error in failed[:10]) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    if args.json:
        costs = {
            "request_seconds": latency,
            "bundle_bytes": bundle_bytes,
            "blobs": len(traffic.gets),
            "single_cold_seconds": single,
            "node_bytes_per_second": bundle_bytes / single,
            "nodes": args.nodes,
            "workers_per_node": args.workers,
            "slowest_worker_seconds": slowest,
            "fleet_bytes": fleet_bytes,
            "registry_bytes_per_second": fleet_bytes / slowest,
            "machine": machine_line(),
        }
        args.json.write_text(json.dumps(costs, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
