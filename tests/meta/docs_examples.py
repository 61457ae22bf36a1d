"""The console examples of the documentation, read and checked: what ``test_docs_examples`` runs.

A document is a list of steps in reading order:

* a **command**: a ``$ `` line of a fenced ``console`` block, with the text shown after it (up to the next
  ``$ `` line or the end of the block) as its expected output. A line ending in ``\\`` continues on the
  next. ``# exit N`` at the end of a command says which exit code it has; otherwise a command whose shown
  output has an ``error:`` line must fail (any non-zero code) and every other command must succeed.
* a **file**: a fenced block of any other language whose first line is ``# file: PATH``: the reader
  saves the rest of the block as ``PATH`` (relative to the folder the document is in at that point;
  ``~`` and ``$VARIABLES`` are expanded), and so does the test.
* a **block not run**: a ``console`` block right after a ``<!-- docs-test: not run: REASON -->`` line.
  It is reported as not executed, with its reason.

Expected and actual output are compared line by line after :func:`normalise` (what no reader can
reproduce: digests, times, tool versions of the machine, loopback ports); an expected line ``...``
stands for any number of lines. The rules are documented in CONTRIBUTING.md ("Console examples").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: What the documents say about where they run; the test puts its scratch folder and its registry there.
DEMO_DIR = "/tmp/demo"
DEMO_REGISTRY = "127.0.0.1:5000"

NOT_RUN = re.compile(r"^<!--\s*docs-test:\s*not run:\s*(?P<reason>.+?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)")
EXIT_COMMENT = re.compile(r"#.*\bexit (?P<code>\d+)\s*$")


@dataclass(frozen=True)
class Command:
    doc: str
    line: int  # 1-based line of the `$ ` in the document
    text: str  # the command as a reader types it
    expected: tuple[str, ...]  # the lines shown after it
    exit_code: int | None  # an exact code from `# exit N`, else None

    @property
    def must_fail(self) -> bool:
        if self.exit_code is not None:
            return self.exit_code != 0
        return any(line.startswith("error:") for line in self.expected)

    def exit_ok(self, code: int) -> bool:
        if self.exit_code is not None:
            return code == self.exit_code
        return code != 0 if self.must_fail else code == 0

    @property
    def expected_exit(self) -> str:
        if self.exit_code is not None:
            return str(self.exit_code)
        return "non-zero (an 'error:' line is shown)" if self.must_fail else "0"


@dataclass(frozen=True)
class FileStep:
    doc: str
    line: int
    path: str
    content: str


@dataclass(frozen=True)
class NotRun:
    doc: str
    line: int
    reason: str
    commands: tuple[str, ...]


Step = Command | FileStep | NotRun


def parse(text: str, doc: str) -> list[Step]:
    """The steps of a document, in reading order."""
    lines = text.splitlines()
    steps: list[Step] = []
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, lang, start = match["indent"], match["lang"], index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].strip() != "```":
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            index += 1
        index += 1  # the closing fence
        if lang == "console":
            previous = lines[start - 1] if start > 0 else ""
            skip = NOT_RUN.match(previous.strip())
            commands = _console_commands(body, doc, start + 2)
            if skip:
                steps.append(NotRun(doc, start + 1, skip["reason"], tuple(c.text for c in commands)))
            else:
                steps.extend(commands)
        elif body and body[0].startswith("# file: "):
            path = body[0].removeprefix("# file: ").strip()
            steps.append(FileStep(doc, start + 2, path, "\n".join(body[1:]) + "\n"))
    return steps


def _console_commands(body: list[str], doc: str, first_line: int) -> list[Command]:
    commands: list[Command] = []
    index = 0
    while index < len(body):
        line = body[index]
        if not line.startswith("$ "):
            raise ValueError(
                f"{doc}:{first_line + index}: a console block must start with a '$ ' command, found {line!r}"
            )
        start = index
        text = line[2:]
        while text.endswith("\\") and index + 1 < len(body):
            index += 1
            text = text + "\n" + body[index]
        index += 1
        expected: list[str] = []
        while index < len(body) and not body[index].startswith("$ "):
            expected.append(body[index])
            index += 1
        exit_match = EXIT_COMMENT.search(text)
        code = int(exit_match["code"]) if exit_match else None
        commands.append(Command(doc, first_line + start, text, tuple(expected), code))
    return commands


# ------------------------------------------------------------------------------------------ comparing

_SUBSTITUTIONS: list[tuple[re.Pattern[str], str]] = [
    # Digests: content, keys, signatures all differ with the machine's Python, platform and time.
    (re.compile(r"\b(sha256|sha512):[0-9a-f]{64,128}\b"), r"\1:<digest>"),
    (re.compile(r"\b(sha256|sha512):[0-9a-f]{7,63}\b"), r"\1:<short>"),
    (re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{64,128}(?![0-9A-Za-z])"), "<hex>"),
    (re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{12}(?:[0-9a-f]{4})?(?![0-9A-Za-z])"), "<hex>"),
    # Times and durations.
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<time>"),
    (re.compile(r"\bin \d+(?:\.\d+)?s\b"), "in <seconds>s"),
    # The machine's Python and platform (recorded in every version's provenance).
    (re.compile(r"\b(CPython |python[:=]\s*|bundle\.python(?: =|:) )\d+\.\d+\.\d+\S*"), r"\1<version>"),
    (re.compile(r"\b(platform(?::|\s*=)\s*)\S+"), r"\1<platform>"),
    # Sizes of what was compressed or uploaded depend on the compressor and on what the registry had.
    (re.compile(r"\b(uploaded \d+ blobs? \(|Would free )\d+(?:\.\d+)? (?:B|KiB|MiB|GiB)\b"), r"\1<size>"),
    (re.compile(r"('(?:fetched|downloaded)_bytes': )\d+"), r"\1<bytes>"),
    # Loopback servers listen on a free port.
    (re.compile(r"\b(127\.0\.0\.1|localhost):\d+\b"), r"\1:<port>"),
]


def normalise(text: str) -> str:
    """``text`` with what no reader can reproduce replaced by placeholders (the same for both sides)."""
    for pattern, replacement in _SUBSTITUTIONS:
        text = pattern.sub(replacement, text)
    return text


def _clean(lines: list[str]) -> list[str]:
    cleaned = [normalise(line).rstrip() for line in lines]
    while cleaned and not cleaned[-1]:
        cleaned.pop()
    return cleaned


def matches(expected: list[str] | tuple[str, ...], actual: str) -> bool:
    """Whether ``actual`` output is what ``expected`` shows (``...`` lines match any lines)."""
    want = _clean(list(expected))
    got = _clean(actual.splitlines())
    return _match(want, got)


def _match(want: list[str], got: list[str]) -> bool:
    # Line-level glob: `...` matches zero or more lines. Memoised over (i, j) to stay linear-ish.
    memo: dict[tuple[int, int], bool] = {}

    def at(i: int, j: int) -> bool:
        key = (i, j)
        if key not in memo:
            if i == len(want):
                result = j == len(got)
            elif want[i].strip() == "...":
                result = any(at(i + 1, k) for k in range(j, len(got) + 1))
            else:
                result = j < len(got) and want[i] == got[j] and at(i + 1, j + 1)
            memo[key] = result
        return memo[key]

    return at(0, 0)


def first_difference(expected: list[str] | tuple[str, ...], actual: str) -> str:
    """A short unified diff of the normalised texts, for the failure message."""
    import difflib

    want = _clean(list(expected))
    got = _clean(actual.splitlines())
    diff = difflib.unified_diff(_fill(want, got), got, "expected (normalised)", "actual (normalised)", lineterm="", n=2)
    return "\n".join(diff)


def _fill(want: list[str], got: list[str]) -> list[str]:
    """``want`` with each ``...`` replaced by the actual lines it stands for (roughly), so that the diff
    shows only real differences."""
    filled: list[str] = []
    j = 0
    for i, line in enumerate(want):
        if line.strip() != "...":
            filled.append(line)
            j += 1  # the actual line it stands against, the same or not
            continue
        following = next((w for w in want[i + 1 :] if w.strip() != "..."), None)
        end = len(got) if following is None else next((k for k in range(j, len(got)) if got[k] == following), -1)
        if end < 0:
            filled.append(line)
        else:
            filled.extend(got[j:end])
            j = end
    return filled


def documents(root: Path) -> list[Path]:
    """Every document whose console examples must run: README.md, CONTRIBUTING.md, docs/*.md and
    docs/decisions/*.md."""
    found = [root / "README.md", root / "CONTRIBUTING.md", *sorted((root / "docs").glob("*.md"))]
    found += sorted((root / "docs" / "decisions").glob("*.md"))
    return [path for path in found if "```console" in path.read_text(encoding="utf-8")]
