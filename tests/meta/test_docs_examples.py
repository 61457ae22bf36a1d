"""Every console example of README.md and docs/ runs as written (issue 18 item 4).

Each document is one flow: its ``$`` commands run in order, each in ``bash`` (so ``cd``, ``export``,
pipes and ``$(...)`` work as in the reader's shell; the folder, the variables and ``$?`` carry over to
the next command), with the real ``mops`` of this environment, in a fresh scratch folder that stands in
for the ``/tmp/demo`` the documents name. What the test provides is what a reader's machine has: the
installed tool on ``PATH``, a fresh ``HOME`` (``MODELOPS_HOME`` inside it), ``NO_COLOR=1``, output not
on a terminal, no standard input; and, for a document whose commands name the registry ``127.0.0.1:5000``
(the address the documents tell the reader to start one at), a real CNCF distribution registry on a free
loopback port put in its place. Every other set-up step is in the documents themselves.

The real executable in a subprocess, not ``cli.main.run`` in-process: the documents show what a reader's
shell prints (exit codes, stderr and stdout interleaved, the console-script entry point), and the flows
use shell features; ~200 commands at ~0.15 s each fit the time budget.

The parsing and comparison rules: ``tests/meta/docs_examples.py`` and CONTRIBUTING.md.
``MOPS_DOCS_KEEP_GOING=1`` reports every failing command of a document instead of the first;
``MOPS_DOCS_TRANSCRIPT=DIR`` writes what each command printed to ``DIR/<document>.txt`` (to update a
document from a real run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.meta import docs_examples as dx
from tests.meta.hooks import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DOCS = dx.documents(ROOT)
STEPS = {doc: dx.parse(doc.read_text(encoding="utf-8"), str(doc.relative_to(ROOT))) for doc in DOCS}
RUN = [doc for doc in DOCS if any(isinstance(step, dx.Command) for step in STEPS[doc])]
NOT_RUN = [step for doc in DOCS for step in STEPS[doc] if isinstance(step, dx.NotRun)]
COMMAND_TIMEOUT = 180

# One bash per command: the flow's folder, variables and last exit code go in, and come out again.
# `set -a` exports plain assignments (`B=...`) so that later commands see them, as in one shell.
SHELL = r"""
__cmd=$__DOCS_CMD; __state=$__DOCS_STATE; __rc=$__DOCS_RC
cd "$__DOCS_CWD" || exit 97
unset __DOCS_CMD __DOCS_STATE __DOCS_RC __DOCS_CWD
set -a
(exit $__rc)
eval "$__cmd"
__rc=$?
{ pwd; printf '\0'; env -0; } > "$__state"
exit $__rc
"""


class Flow:
    """The shell state of one document's flow: folder, variables, last exit code."""

    def __init__(self, scratch: Path, registry: str | None) -> None:
        self.scratch = scratch
        self.registry = registry
        self.state = scratch.parent / "shell-state"
        venv_bin = str(Path(sys.executable).parent)
        tmp = scratch / ".tmp"
        tmp.mkdir()
        self.env = {
            "PATH": os.pathsep.join([venv_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(scratch),
            "MODELOPS_HOME": str(scratch / ".modelops"),
            "NO_COLOR": "1",
            "LANG": "C.UTF-8",
            "TMPDIR": str(tmp),
            "VIRTUAL_ENV": str(Path(sys.executable).parent.parent),
        }
        self.cwd = str(scratch)
        self.rc = 0

    def substitute(self, command: str) -> str:
        command = command.replace(dx.DEMO_DIR, str(self.scratch))
        if self.registry:
            command = command.replace(dx.DEMO_REGISTRY, self.registry)
        return command

    def run(self, command: str) -> tuple[int, str]:
        env = {
            **self.env,
            "__DOCS_CMD": self.substitute(command),
            "__DOCS_STATE": str(self.state),
            "__DOCS_RC": str(self.rc),
            "__DOCS_CWD": self.cwd,
        }
        try:
            done = subprocess.run(
                ["bash", "-c", SHELL],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            output = (exc.stdout or b"").decode(errors="replace")
            return -1, output + f"\n[docs test: killed after {COMMAND_TIMEOUT} s]"
        self.rc = done.returncode
        if self.state.exists():
            cwd, _, environ = self.state.read_bytes().partition(b"\0")
            self.cwd = cwd.decode().strip()
            pairs = (item.decode(errors="replace").partition("=") for item in environ.split(b"\0") if item)
            self.env = {k: v for k, _, v in pairs if k not in ("PWD", "OLDPWD", "SHLVL", "_")}
            self.state.unlink()
        return done.returncode, self.readable(done.stdout.decode(errors="replace"))

    def readable(self, output: str) -> str:
        """Actual output in the documents' terms: the scratch folder is /tmp/demo again."""
        output = output.replace(str(self.scratch), dx.DEMO_DIR)
        if self.registry:
            output = output.replace(self.registry, dx.DEMO_REGISTRY)
        return output

    def write_file(self, step: dx.FileStep) -> None:
        expanded = os.path.expanduser(step.path.replace("~", self.env["HOME"], 1))
        for name, value in sorted(self.env.items(), key=lambda item: -len(item[0])):
            expanded = expanded.replace(f"${name}", value).replace(f"${{{name}}}", value)
        target = Path(self.cwd, self.substitute(expanded))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.substitute(step.content), encoding="utf-8")


def failure_report(command: dx.Command, code: int, output: str) -> str:
    shown = "\n".join(command.expected) or "(nothing)"
    return (
        f"{command.doc}:{command.line}: the example does not run as written\n"
        f"  $ {command.text}\n"
        f"--- expected (exit {command.expected_exit}):\n{textwrap.indent(shown, '  ')}\n"
        f"--- actual (exit {code}):\n{textwrap.indent(output.rstrip() or '(nothing)', '  ')}\n"
        f"--- difference after normalising digests, times, versions and ports ('...' matches any lines):\n"
        f"{textwrap.indent(dx.first_difference(command.expected, output) or '(only the exit code)', '  ')}"
    )


@pytest.fixture
def scratch() -> Iterator[Path]:
    # A short path under the system temporary folder, like the /tmp/demo the documents show.
    base = Path(tempfile.mkdtemp(prefix="mops-docs-"))
    (base / "demo").mkdir()
    try:
        yield base / "demo"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def needs_registry(steps: list[dx.Step]) -> bool:
    return any(isinstance(step, dx.Command) and dx.DEMO_REGISTRY in step.text for step in steps)


@pytest.mark.parametrize("doc", RUN, ids=[str(doc.relative_to(ROOT)) for doc in RUN])
def test_console_examples_run_as_written(doc: Path, scratch: Path) -> None:
    name = str(doc.relative_to(ROOT))
    steps = STEPS[doc]
    registry = None
    if needs_registry(steps):
        from tests.oci.registries import start_distribution

        registry = start_distribution(scratch.parent / "registry")
    keep_going = os.environ.get("MOPS_DOCS_KEEP_GOING") == "1"
    transcript: list[str] = []
    failures: list[str] = []
    try:
        flow = Flow(scratch, registry.host if registry else None)
        for step in steps:
            if isinstance(step, dx.FileStep):
                flow.write_file(step)
            elif isinstance(step, dx.Command):
                code, output = flow.run(step.text)
                transcript.append(f"{step.line}: $ {step.text}\n{output}[exit {code}]\n")
                if not (step.exit_ok(code) and dx.matches(step.expected, output)):
                    failures.append(failure_report(step, code, output))
                    if not keep_going:
                        break
    finally:
        if registry is not None:
            registry.stop()
        if os.environ.get("MOPS_DOCS_TRANSCRIPT"):
            out = Path(os.environ["MOPS_DOCS_TRANSCRIPT"], name.replace("/", "_") + ".txt")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("\n".join(transcript), encoding="utf-8")
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


@pytest.mark.parametrize("block", NOT_RUN, ids=[f"{b.doc}:{b.line}" for b in NOT_RUN])
def test_examples_not_run(block: dx.NotRun) -> None:
    """Reported, never counted as passing: each block marked ``<!-- docs-test: not run: REASON -->``."""
    commands = "; ".join(f"$ {text.splitlines()[0]}" for text in block.commands)
    pytest.skip(f"{block.doc}:{block.line}: not run ({block.reason}): {commands}")


# ------------------------------------------------------------------------- the checker checks itself

SAMPLE = """\
Intro.

```console
$ echo sha256:96040c0d01de758da11589848b07399f70cb0fd8cd32114b602926d00e14258f
sha256:78a6a03db9cb315b69bb55746b68ac6a65539b3ebf69b6e45084de5352fb1f0e
$ printf 'a\\nb\\nc\\n'
a
...
c
$ false   # exit 1
$ ls nothing
error: no such thing
```

```python
# file: hello.py
print("hello")
```

<!-- docs-test: not run: needs real Azure -->
```console
$ az login
```
"""


def test_parse_reads_commands_files_and_blocks_not_run() -> None:
    steps = dx.parse(SAMPLE, "sample.md")
    kinds = [type(step).__name__ for step in steps]
    assert kinds == ["Command", "Command", "Command", "Command", "FileStep", "NotRun"]
    first, _, third, fourth, file_step, not_run = steps
    assert isinstance(first, dx.Command) and first.line == 4 and first.text.startswith("echo sha256:")
    assert isinstance(third, dx.Command) and third.exit_code == 1 and third.must_fail
    assert isinstance(fourth, dx.Command) and fourth.must_fail and not fourth.exit_ok(0) and fourth.exit_ok(2)
    assert isinstance(file_step, dx.FileStep) and file_step.path == "hello.py"
    assert file_step.content == 'print("hello")\n'
    assert isinstance(not_run, dx.NotRun) and not_run.reason == "needs real Azure"
    assert not_run.commands == ("az login",)


def test_matching_normalises_and_elides_but_catches_a_difference() -> None:
    full = "sha256:78a6a03db9cb315b69bb55746b68ac6a65539b3ebf69b6e45084de5352fb1f0e"
    assert dx.matches(
        ["sha256:78a6a03db9cb", "at 2026-11-27T02:10:17Z"], "sha256:96040c0d01de\nat 2025-01-02T03:04:05Z"
    )
    assert dx.matches(["a", "...", "c"], "a\nx\ny\nc\n")
    assert dx.matches(["a", "...", "c"], "a\nc\n")
    assert not dx.matches(["a", "...", "c"], "a\nb\n")
    assert not dx.matches(["Added 15 files"], "Added 16 files")
    assert not dx.matches(["sha256:78a6a03db9cb"], full)  # a short digest where a full one is printed
    assert "+Added 16 files" in dx.first_difference(["Added 15 files"], "Added 16 files")


def test_a_wrong_example_fails_with_document_line_command_and_both_outputs(scratch: Path) -> None:
    flow = Flow(scratch, None)
    steps = dx.parse("```console\n$ mkdir -p /tmp/demo/x && cd /tmp/demo/x && pwd\n/tmp/demo/y\n```\n", "doc.md")
    (command,) = steps
    assert isinstance(command, dx.Command)
    code, output = flow.run(command.text)
    assert code == 0 and output == "/tmp/demo/x\n"  # the scratch folder is shown as /tmp/demo
    assert not dx.matches(command.expected, output)
    report = failure_report(command, code, output)
    assert "doc.md:2:" in report and "$ mkdir -p /tmp/demo/x" in report
    assert "-/tmp/demo/y" in report and "+/tmp/demo/x" in report
    # The folder, variables and exit code carry over from one command to the next.
    assert flow.run("X=1; false") == (1, "")
    assert flow.run("echo $? $X; pwd") == (0, "1 1\n/tmp/demo/x\n")
