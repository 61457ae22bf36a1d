"""Hostile files that crash or hang, local or travelling inside a pulled version (issue 15, items 8-11).

The commands that could run away run as child processes under a memory limit and a timeout, so a
regression fails the test instead of taking the machine down: a "billion laughs" ``registry.yaml``
(every command that reads it), a ``.modelopsignore`` whose pattern backtracks catastrophically, a
working tree 1,900 folders deep, and names with bidirectional or zero-width characters.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

from modelops_bundle.testing import BundleProject
from tests.oci.registries import RunningRegistry
from tests.reliability.conftest import Trial
from tests.reliability.support import direct_backend, new_project, ok, publish, raw_files, write_env

BIN = Path(sys.executable).parent / "modelops-bundle"
#: Address space of a child: far more than any command here needs, far less than the machine has.
MEMORY_LIMIT = 2 * 1024**3


def billion_laughs() -> str:
    """About 600 bytes of YAML that expand to 10^10 strings: anchors nested 9 deep, 10 wide."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]" for level in range(1, 10)]
    # an unknown key: the registry keeps those (other ModelOps tools share the file), as they are
    lines.append("models: {}\nnotes: *a9")
    return "\n".join(lines) + "\n"


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _child(argv: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, preexec_fn=_limit, stdin=subprocess.DEVNULL
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def _cli(root: Path, env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str, str, float]:
    return _child([str(BIN), "-C", str(root), *args], env, timeout)


MATERIALIZE = r"""
import os, sys
from modelops_bundle import api
from modelops_bundle.core.errors import ConfigError
try:
    api.materialize(sys.argv[1], models=["m"], environ=dict(os.environ))
except ConfigError as exc:
    print(exc.message, file=sys.stderr)
    sys.exit(2)
"""


def test_a_billion_laughs_registry_is_refused_everywhere(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """The same ~600-byte registry.yaml as a local file (status, list, push) and inside a pulled version
    (pull --model, ensure --model, api.materialize(models=...), and status after a full pull): exit 2
    naming the file, within seconds, under a 2 GiB memory limit."""
    laughs = billion_laughs()
    write_env(mops_env, "laughs", reliability_registry.host)
    local = new_project(mops_env, tmp_path / "local", "laughs")
    local.write("x.py", "X = 1\n")
    ok(local.run("add", ".", "--json"))
    (local.meta / "registry.yaml").write_text(laughs)
    runs = []
    for command in (("status",), ("list",), ("push",)):
        code, _, stderr, seconds = _cli(local.root, mops_env, *command)
        assert code == 2 and "registry.yaml" in stderr and "Traceback" not in stderr, (command, code, stderr)
        assert seconds < 30, (command, seconds)
        runs.append(" ".join(command))

    repository = f"laughs-{uuid.uuid4().hex[:8]}"
    backend = direct_backend(reliability_registry.host)
    files, layers = raw_files((".modelops-bundle/registry.yaml", laughs.encode()), ("x.py", b"X = 1\n"))
    publish(backend, repository, "latest", files, layers)
    backend.close()
    clone = new_project(mops_env, tmp_path / "clone", "laughs", ref=repository)
    for command in (("pull", "--model", "m"), ("ensure", "--dest", str(tmp_path / "dest"), "--model", "m")):
        code, _, stderr, seconds = _cli(clone.root, mops_env, *command)
        assert code == 2 and "registry.yaml" in stderr and "Traceback" not in stderr, (command, code, stderr)
        assert seconds < 30, (command, seconds)
        runs.append(" ".join(command[:1] + command[-2:]))
    env = {**mops_env, "MOPS_ENV": "laughs", "MODELOPS_BUNDLE_CACHE": str(tmp_path / "cache")}
    code, _, stderr, _ = _child(
        [sys.executable, "-c", MATERIALIZE, f"{reliability_registry.host}/{repository}:latest"], env
    )
    assert code == 2 and "registry.yaml" in stderr, (code, stderr)
    runs.append("api.materialize(models=...)")
    code, _, stderr, _ = _cli(clone.root, mops_env, "pull")  # the file itself is just bytes to a full pull
    assert code == 0, stderr
    code, _, stderr, seconds = _cli(clone.root, mops_env, "status")
    assert code == 2 and "registry.yaml" in stderr and seconds < 30, (code, stderr)
    runs.append("status after a full pull")
    trial.record(
        "hostile input",
        "a ~600-byte registry.yaml 'billion laughs' (anchors nested 9 deep, 10 wide: 10^10 values expanded), "
        "local and inside a pulled version",
        f"{len(runs)} runs under a 2 GiB memory limit ({', '.join(runs)})",
        "exit 2 naming registry.yaml, in seconds; refused before expansion",
    )


def test_a_backtracking_ignore_pattern_does_not_hang_status(
    mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """``*a*a*a*a*a*a*a*a*a*a*b`` in ``.modelopsignore`` and names of 40 and 250 ``a``: ``status`` and
    ``add .`` stay fast (matching is linear in the name; a backtracking matcher takes 20 s for 40)."""
    project = BundleProject.create(tmp_path / "project", mops_env)
    (project.root / ".modelopsignore").write_text("*a*a*a*a*a*a*a*a*a*a*b\ndeep/**/*a*a*a*a*b/\n")
    project.write("a" * 40, "x\n")
    project.write("a" * 250, "x\n")
    project.write("deep/" + "/".join(["a" * 30] * 6) + "/f.txt", "x\n")
    timings = {}
    for command in (("status", "--offline"), ("add", "."), ("status", "--offline")):
        code, _, stderr, seconds = _cli(project.root, mops_env, *command, timeout=60)
        assert code == 0, stderr
        timings[" ".join(command)] = seconds
    assert max(timings.values()) < 5, timings
    assert "a" * 250 in project.tracked()
    trial.record(
        "hostile input",
        "`.modelopsignore` line `*a*a*a*a*a*a*a*a*a*a*b` with files named by 40 and 250 `a` (and a path pattern "
        "over a 6-folder-deep tree)",
        "status --offline, add ., status --offline",
        f"each under 5 s (slowest {max(timings.values()):.2f} s): matching is linear in the name",
    )


def test_a_working_tree_1900_folders_deep_is_refused_cleanly(
    mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """A file 1,900 folders down: ``add .`` and ``status`` answer without a RecursionError (the path is
    refused as unstorable; ``status`` lists it as such); a tracked list naming such a path is exit 2."""
    project = BundleProject.create(tmp_path / "project", mops_env)
    fd = os.open(project.root, os.O_RDONLY)
    try:
        for _ in range(1900):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("f.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    deep = "/".join(["d"] * 1900) + "/f.txt"
    for command in (("add", "."), ("status", "--offline")):
        code, _, stderr, _ = _cli(project.root, mops_env, *command)
        assert "Traceback" not in stderr and "unexpected error" not in stderr and "Recursion" not in stderr, stderr
        assert code in (0, 1, 2), (command, code, stderr)
    assert deep not in project.tracked()
    tracked = project.meta / "tracked.txt"
    tracked.write_text(tracked.read_text().rstrip("\n") + ("\n" if tracked.read_text().strip() else "") + deep + "\n")
    for command in (("status", "--offline"), ("push",)):
        code, _, stderr, _ = _cli(project.root, mops_env, *command)
        assert code == 2 and "tracked.txt" in stderr and "segments deep" in stderr, (command, code, stderr)
    _remove_deep(project.root, 1900)
    trial.record(
        "hostile input",
        "a working tree 1,900 folders deep (and a tracked list naming that path)",
        "add ., status; status and push with the path tracked",
        "no RecursionError: the path is refused as unstorable (more than 128 segments); tracked: exit 2 "
        "naming tracked.txt",
    )


def _remove_deep(root: Path, depth: int) -> None:
    """Remove the deep tree bottom up, without recursion (``shutil.rmtree`` -- and pytest's clean-up of old
    temporary folders -- recurse once per level)."""
    (root.joinpath(*(["d"] * depth)) / "f.txt").unlink()
    for level in range(depth, 0, -1):
        os.rmdir(root.joinpath(*(["d"] * level)))


def test_names_with_invisible_characters_print_escaped(
    reliability_registry: RunningRegistry, mops_env: dict[str, str], tmp_path: Path, trial: Trial
) -> None:
    """``data/\\u202ehs.txt`` displays as ``data/txt.sh``; ``data/a\\u200bb.txt`` as ``data/ab.txt``. pull,
    status, diff, manifest and a failing remove print them escaped; ``--json`` keeps the real name."""
    write_env(mops_env, "bidi", reliability_registry.host)
    repository = f"bidi-{uuid.uuid4().hex[:8]}"
    names = ["data/\u202ehs.txt", "data/a\u200bb.txt", "data/\u2066x\u2069.txt"]
    backend = direct_backend(reliability_registry.host)
    publish(backend, repository, "latest", *raw_files(*((name, b"x\n") for name in names)))
    backend.close()
    clone = new_project(mops_env, tmp_path / "clone", "bidi", ref=repository)
    outputs = []
    pulled = clone.run("pull")
    assert pulled.exit_code == 0, pulled
    outputs.append(pulled.stdout)
    (clone.root / names[0]).write_text("changed\n")
    for command in (("status", "--offline"), ("diff",), ("manifest",)):
        result = clone.run(*command)
        assert result.exit_code in (0, 1), (command, result)
        outputs.append(result.stdout + result.stderr)
    removed = clone.run("remove", "data/\u202emissing.txt")
    outputs.append(removed.stderr)
    for text in outputs:
        for character in ("\u202e", "\u200b", "\u2066", "\u2069"):
            assert character not in text, (character, text)
    assert "data/\\u202ehs.txt" in outputs[0] and "data/a\\u200bb.txt" in outputs[0]
    assert "\\u202e" in outputs[1]
    as_json = json.loads(clone.run("status", "--offline", "--json").stdout)
    assert names[0] in as_json["changes"]["modified"]
    trial.record(
        "hostile input",
        "names with bidirectional and zero-width characters (`data/\\u202ehs.txt` shows as `data/txt.sh`)",
        "pull, status, diff, manifest, remove (error)",
        "printed escaped (`\\u202e`) in every line, table and error; --json keeps the real name",
    )
