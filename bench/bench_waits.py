"""Bounded waits (issue 16, item 3): how long commands take against a black-holed registry.

Starts a CNCF distribution registry on 127.0.0.1 with the fault proxy of the test suite in front of it
(``tests/oci/registries.FaultProxy``), tells the proxy to read every request and never answer (the
connection stays open: a registry that "accepts TCP connections and never answers"), and times the real
``mops`` executable in a small project pinned to that registry:

* ``mops bundle status`` with the default limit (``MOPS_STATUS_TIMEOUT`` unset: 8 s) and with
  ``MOPS_STATUS_TIMEOUT=2`` -- ``--runs`` each; the target is to return within the limit (plus start-up);
* ``mops bundle push`` once with the default timeouts (``--push``; reported, no target: the connection
  check gets two attempts of the 30 s read timeout).

Run from the repository root::

    .venv/bin/python bench/bench_waits.py [--runs N] [--push] [--markdown FILE] [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import (  # the bench folder is not a package
    describe_code,
    fmt_time,
    isolated_env,
    log,
    machine_line,
    make_work_dir,
    measure,
    median,
    remove_work_dir,
    render_table,
)

#: Slack over the limit allowed for start-up, hashing and output (the target's "generous margin").
MARGIN = 1.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="status runs per limit (default 3)")
    parser.add_argument("--push", action="store_true", help="also time one push with the default timeouts (~60 s)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--keep", type=Path, help="keep the work folder here")
    args = parser.parse_args(argv)

    from tests.oci.registries import FaultProxy, start_distribution

    work = make_work_dir(args.keep, prefix="waits")
    registry = start_distribution(work / "registry")
    proxy = FaultProxy(registry.port, stall_seconds=600).start()
    mops = str(Path(sys.executable).parent / "mops")
    try:
        env = isolated_env(work)
        folder = Path(env["MODELOPS_HOME"]) / "bundle-env"
        folder.mkdir(parents=True)
        (folder / "hole.yaml").write_text(
            f"environment: hole\nregistry:\n  provider: docker\n  login_server: {proxy.host}\n"
        )
        project = work / "project"
        measure([mops, "bundle", "init", "-q", "--env", "hole", str(project)], cwd=work, env=env)
        (project / "data.csv").write_text("a,b\n1,2\n")
        measure([mops, "bundle", "add", "."], cwd=project, env=env)
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
            proxy.inject(method, ".", "stall", 1_000_000)

        rows: list[list[str]] = []
        for label, limit, extra in (("default", 8.0, {}), ("MOPS_STATUS_TIMEOUT=2", 2.0, {"MOPS_STATUS_TIMEOUT": "2"})):
            times = []
            for run in range(args.runs):
                done = measure([mops, "bundle", "status"], cwd=project, env={**env, **extra}, timeout=120)
                if b"Remote: unknown (no answer from registry" not in done.stdout:
                    raise SystemExit(f"bench: unexpected status output:\n{done.stdout.decode(errors='replace')}")
                times.append(done.seconds)
                log(f"status, limit {label}, run {run + 1}: {done.seconds:.2f} s")
            worst = max(times)
            verdict = "pass" if worst <= limit + MARGIN else "FAIL"
            rows.append(
                [
                    f"`mops bundle status` ({label})",
                    f"{limit:g} s",
                    fmt_time(median(times)),
                    fmt_time(worst),
                    f"<= limit + {MARGIN:g} s",
                    verdict,
                ]
            )
        if args.push:
            done = measure([mops, "bundle", "push"], cwd=project, env=env, timeout=600, check=False)
            log(f"push: {done.seconds:.2f} s, exit {done.returncode}: {done.stderr.decode(errors='replace').strip()}")
            rows.append(["`mops bundle push` (default timeouts)", "-", fmt_time(done.seconds), "-", "report", "-"])
        table = render_table(["command, black-holed registry", "limit", "median", "worst", "target", "result"], rows)
        text = f"{machine_line()}; {describe_code()}; {args.runs} runs per limit\n\n{table}\n"
        print(text)
        if args.markdown:
            args.markdown.write_text(text)
    finally:
        proxy.stop()
        registry.stop()
        remove_work_dir(work, args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
