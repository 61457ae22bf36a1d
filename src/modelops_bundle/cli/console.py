"""The one output helper every command uses.

* Plain text when stdout is not a terminal; rich tables, colours and progress bars only on a TTY
  (``rich`` is imported only then, keeping scripted runs fast). ``NO_COLOR`` is honoured.
* ``--json``: exactly one JSON document on stdout; human text is suppressed; errors go to stderr and
  also appear as ``{"error": ...}`` on stdout so scripts always get a JSON answer.
* ``-q``: only errors and warnings.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import IO, Any

from modelops_bundle.core.hashing import ProgressSink
from modelops_bundle.core.paths import display_safe

PROGRESS_DELAY_S = 1.0


class Console:
    def __init__(
        self,
        *,
        json_mode: bool = False,
        quiet: bool = False,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.json_mode = json_mode
        self.quiet = quiet
        env = environ if environ is not None else os.environ
        self.no_color = bool(env.get("NO_COLOR"))
        self.interactive = _isatty(self.stdout) and not json_mode and env.get("TERM") != "dumb"
        self._rich: Any = None

    # ---------------------------------------------------------------- plumbing
    def _rich_console(self) -> Any:
        if self._rich is None:
            from rich.console import Console as RichConsole

            # Whether this is a terminal was decided here (stdout, TERM, --json); rich must not second-guess
            # it from the process environment, which may differ from the command's (tests, -C runs).
            self._rich = RichConsole(
                file=self.stdout,
                no_color=self.no_color,
                highlight=False,
                force_terminal=self.interactive,
                color_system=None if self.no_color else "auto",
            )
        return self._rich

    # ---------------------------------------------------------------- text
    def line(self, text: str = "", *, style: str | None = None) -> None:
        if self.json_mode or self.quiet:
            return
        text = display_safe(text)  # names with bidi or zero-width characters print escaped (issue 15)
        if self.interactive and style and not self.no_color:
            self._rich_console().print(text, style=style, markup=False)
        else:
            self.stdout.write(text + "\n")

    def warn(self, text: str) -> None:
        self.stderr.write(f"warning: {display_safe(text)}\n")

    def error(self, text: str, *, hint: str | None = None) -> None:
        self.stderr.write(f"error: {display_safe(text)}\n")
        if hint:
            self.stderr.write(f"hint: {display_safe(hint)}\n")

    def emit_text(self, text: str) -> None:
        """A command's product as plain text (a script, a document): printed even with ``-q``, as
        ``--json`` output is, and never styled."""
        self.stdout.write(text if text.endswith("\n") else text + "\n")

    def emit_json(self, payload: Any) -> None:
        self.stdout.write(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")

    def table(self, title: str | None, columns: list[str], rows: list[list[str]]) -> None:
        if self.json_mode or self.quiet:
            return
        joined = "\n".join("\n".join(row) for row in rows)
        if display_safe(joined) is not joined:  # one scan of the whole table; cells escaped only when needed
            rows = [[display_safe(cell) for cell in row] for row in rows]
        if self.interactive:
            from rich.table import Table

            # NO_COLOR: no escape sequences at all, so the table reads the same piped into a pager.
            header = None if self.no_color else "bold"
            table = Table(title=title, title_justify="left", box=None, header_style=header, title_style=header)
            for column in columns:
                table.add_column(column)
            for row in rows:
                table.add_row(*row)
            self._rich_console().print(table)
            return
        if title:
            self.stdout.write(title + "\n")
        widths = [
            max(len(columns[i]), *(len(r[i]) for r in rows)) if rows else len(columns[i]) for i in range(len(columns))
        ]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        self.stdout.write(fmt.format(*columns).rstrip() + "\n")
        for row in rows:
            self.stdout.write(fmt.format(*row).rstrip() + "\n")

    def progress(self, description: str, unit: str = "files") -> ProgressSink:
        """A progress bar on a terminal (bytes in binary units, and counts of ``unit``: ``files``, or
        ``blobs`` for registry transfers); nothing elsewhere."""
        if self.interactive and not self.quiet:
            return DelayedProgress(self, description, unit)
        return NullProgress()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class NullProgress:
    def start(self, total_files: int, total_bytes: int) -> None:
        pass

    def advance(self, files: int = 0, nbytes: int = 0) -> None:
        pass

    def close(self) -> None:
        pass


class DelayedProgress:
    """A rich byte-and-count progress bar that appears only once work has taken over a second. Sizes and
    speeds are in binary units (KiB, MiB), as every summary prints them (:func:`human_bytes`).

    Transfer backends call :meth:`advance` from their worker threads; one lock keeps the counters exact
    and makes sure only one thread opens the bar (rich's own ``Progress`` is thread-safe once open).
    """

    def __init__(self, console: Console, description: str, unit: str = "files") -> None:
        self.console = console
        self.description = description
        self.unit = unit
        self.started = time.monotonic()
        self.total_files = 0
        self.total_bytes = 0
        self.done_files = 0
        self.done_bytes = 0
        self._bar: Any = None
        self._task: Any = None
        self._lock = threading.Lock()

    def start(self, total_files: int, total_bytes: int) -> None:
        with self._lock:
            self.started = time.monotonic()
            self.total_files, self.total_bytes = total_files, total_bytes

    def advance(self, files: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.done_files += files
            self.done_bytes += nbytes
            if self._bar is None:
                if time.monotonic() - self.started < PROGRESS_DELAY_S:
                    return
                self._open()
            self._bar.update(
                self._task,
                completed=self.done_bytes,
                files=f"{self.done_files}/{self.total_files} {self.unit}",
            )

    def _open(self) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            _binary_speed_column(),
            TextColumn("{task.fields[files]}"),
            TimeRemainingColumn(),
            console=self.console._rich_console(),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self.description, total=self.total_bytes or None, files="")

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None


def _binary_speed_column() -> Any:
    """rich's transfer speed in binary units (its own ``TransferSpeedColumn`` counts in kB, MB)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class BinarySpeedColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text("?" if speed is None else f"{human_bytes(int(speed))}/s", style="progress.data.speed")

    return BinarySpeedColumn()


def human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"
