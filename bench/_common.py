"""Helpers shared by the benchmark scripts in ``bench/`` (not a benchmark itself).

Work folders live under ``bench/.work/`` (git-ignored) and are removed at the end of a run unless the
caller keeps them; every child process runs with ``HOME`` and ``MODELOPS_HOME`` inside the work folder
and is timed by wall clock, with its peak resident memory taken from the kernel's ``wait4`` accounting.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_WORK_ROOT = BENCH_DIR / ".work"
KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * MIB
READ_CHUNK = MIB
TIME_BINARY = "/usr/bin/time"  # GNU time, for the peak RSS of a command
#: Environment variables of the caller that must not leak into a measured command.
LEAKY_PREFIXES = ("MOPS_", "MODELOPS_", "REGISTRY_", "DOCKER_", "GIT_", "AWS_", "AZURE_", "GOOGLE_", "GCSFS_")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------- work folders


def make_work_dir(keep: Path | None, prefix: str = "run") -> Path:
    """``keep`` (new or empty, kept afterwards), else a fresh ``bench/.work/<prefix>-<time>-<pid>``."""
    if keep is not None:
        keep = keep.resolve()
        if keep.exists() and any(keep.iterdir()):
            raise SystemExit(f"bench: --keep {keep}: folder exists and is not empty")
        keep.mkdir(parents=True, exist_ok=True)
        return keep
    DEFAULT_WORK_ROOT.mkdir(parents=True, exist_ok=True)
    work = DEFAULT_WORK_ROOT / f"{prefix}-{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
    work.mkdir()
    return work


def remove_work_dir(work: Path, keep: Path | None) -> None:
    """Remove ``work`` (unless it is the kept folder), then ``bench/.work`` if no other run uses it."""
    if keep is not None:
        print(f"kept work folder {work}")
        return
    shutil.rmtree(work, ignore_errors=True)
    try:
        DEFAULT_WORK_ROOT.rmdir()
    except OSError:
        pass


def require_free_space(where: Path, need: int) -> None:
    free = shutil.disk_usage(where).free
    if free < need:
        raise SystemExit(f"bench: needs about {need // MIB:,} MiB free in {where}, has {free // MIB:,} MiB")


def compile_bytecode() -> None:
    """Byte-compile the package, as ``pip install`` does: an editable checkout run with
    ``PYTHONDONTWRITEBYTECODE=1`` (set on some machines) would otherwise compile every module it
    imports from source on every run, tens of milliseconds that no installed copy pays."""
    import compileall

    package = REPO_ROOT / "src" / "modelops_bundle"
    if not compileall.compile_dir(str(package), quiet=1):
        raise SystemExit(f"bench: could not byte-compile {package}")


def isolated_env(work: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without anything that configures mops, registries or clouds, with
    ``HOME``, ``MODELOPS_HOME`` and ``DOCKER_CONFIG`` inside ``work``; the package byte-compiled first
    (:func:`compile_bytecode`)."""
    compile_bytecode()
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY_PREFIXES)}
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        MODELOPS_HOME=str(work / "modelops-home"),
        DOCKER_CONFIG=str(home / ".docker"),
        GIT_CONFIG_NOSYSTEM="1",
    )
    env.update(extra)
    return env


# ------------------------------------------------------------------------------------------ files


def read_all(paths: Iterable[Path]) -> None:
    """Read every file once so that all timed runs see a warm page cache."""
    buf = bytearray(READ_CHUNK)
    for path in paths:
        with open(path, "rb", buffering=0) as handle:
            while handle.readinto(buf):
                pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    buf = bytearray(READ_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


def write_from_pool(path: Path, size: int, pool: bytes, offset: int, header: bytes = b"") -> None:
    """``size`` bytes: ``header`` then bytes of ``pool`` from ``offset`` on (wrapping around)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remaining = size
    with open(path, "wb") as out:
        head = header[:remaining]
        out.write(head)
        remaining -= len(head)
        offset %= len(pool)
        while remaining > 0:
            chunk = pool[offset : offset + min(remaining, len(pool) - offset)]
            out.write(chunk)
            remaining -= len(chunk)
            offset = (offset + len(chunk)) % len(pool)


def tree_size(root: Path) -> tuple[int, int]:
    """``(files, bytes)`` of the regular files below ``root`` (symlinks not followed)."""
    files = total = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(folder, name))
            if stat.S_ISREG(st.st_mode):
                files += 1
                total += st.st_size
    return files, total


# ------------------------------------------------------------------------------------ measuring


@dataclass
class Measured:
    """One finished (or abandoned) child process: wall time, peak RSS, exit code and output."""

    argv: list[str]
    seconds: float
    max_rss: int  # bytes, of the command's own process (0 when unknown)
    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def check(self) -> Measured:
        """Raise SystemExit with the command's output unless it succeeded."""
        if self.timed_out:
            raise SystemExit(f"bench: {' '.join(self.argv[:4])} ... did not finish in time")
        if self.returncode != 0:
            raise SystemExit(
                f"bench: {' '.join(self.argv[:6])} exited {self.returncode}\n"
                f"{self.stderr.decode(errors='replace')[-4000:]}{self.stdout.decode(errors='replace')[-2000:]}"
            )
        return self


def measure(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 1800.0, check: bool = True
) -> Measured:
    """Run ``argv`` in its own process group: wall time and peak RSS.

    The peak RSS comes from GNU time (``/usr/bin/time -f %M``), which forks the command from a small
    process: a child forked straight from this (large) Python process would inherit its memory
    high-water mark in ``ru_maxrss``. On ``timeout`` the child's process group (and only it) is killed
    and ``timed_out`` is set; a failure raises SystemExit when ``check`` is true.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        wrapped = [TIME_BINARY, "-f", "%M", "-o", str(rss_file), *argv] if os.access(TIME_BINARY, os.X_OK) else argv
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(wrapped),
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        try:
            rss = int(rss_file.read_text().split()[-1]) * 1024
        except (OSError, ValueError, IndexError):
            rss = 0
        returncode = proc.returncode
        stderr = err.read()
        if wrapped is not argv and returncode != 0 and stderr.startswith(b"Command exited with non-zero status"):
            stderr = stderr.partition(b"\n")[2]
        result = Measured(list(argv), seconds, rss, returncode, out.read(), stderr, expired.is_set())
    return result.check() if check and not result.timed_out else result


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# ------------------------------------------------------------------------------------- formatting


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_bytes(count: float | None) -> str:
    if count is None:
        return "-"
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(count) >= size:
            return f"{count / size:,.1f} {unit}"
    return f"{count:,.0f} B"


def fmt_mb(count: float | None) -> str:
    """Memory in MB (10^6 bytes), as the issue's targets are written."""
    return "-" if count is None else f"{count / 1e6:,.0f} MB"


def machine_line() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"Python {platform.python_version()}; {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"load average {load}; {dt.date.today().isoformat()}"
    )


def describe_code() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    return f"commit {commit}" + (" plus uncommitted changes" if dirty else "")


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """A Markdown table; columns whose index is in ``right`` are right-aligned."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


# ------------------------------------------------------------------------ the floor of any Python tool

# sha256 of every file on ``threads`` threads (1 MiB ``readinto``), as source: the in-process hashing
# limit runs it, and the bare Python floor below runs the very same code in a fresh interpreter.
HASH_ON_THREADS = """
import hashlib, itertools, threading

def hash_on_threads(paths, threads=2):
    next_index = itertools.count()  # next() on a count is atomic under the GIL: a lock-free work queue

    def worker():
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while (i := next(next_index)) < len(paths):
            digest = hashlib.sha256()
            with open(paths[i], "rb", buffering=0) as handle:
                while n := handle.readinto(buf):
                    digest.update(view[:n])
            digest.hexdigest()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
"""
_hashing: dict[str, Any] = {}
exec(HASH_ON_THREADS, _hashing)


def sha256_limit(paths: Sequence[Path], threads: int = 2) -> float:
    """Seconds to sha256 every file on ``threads`` threads: the floor for a first ``add``."""
    start = time.perf_counter()
    _hashing["hash_on_threads"](paths, threads)
    return time.perf_counter() - start


# The floor of any Python tool for "first add + status": two fresh interpreters doing only the
# unavoidable work -- no ignore rules, no cache, no metadata, no output.
BARE_ADD = (
    HASH_ON_THREADS
    + """
import os, sys
root, listing, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
files, stack = [], [root]
while stack:
    with os.scandir(stack.pop()) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in (".modelops-bundle", ".git", ".dvc"):
                    stack.append(entry.path)
            else:
                files.append(entry.path)
hash_on_threads(files, threads)
with open(listing, "w") as out:
    out.write("\\n".join(files))
"""
)
BARE_STATUS = """
import os, sys
files = open(sys.argv[1]).read().split("\\n")
for folder in {os.path.dirname(f) for f in files}:
    os.lstat(folder)
for f in files:
    os.lstat(f)
"""
