"""What every command receives: plugins, output, global options, the process environment."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from modelops_bundle.core.hashing import ProgressSink
    from modelops_bundle.core.plugins import PluginHost


class Reporter(Protocol):
    """The output side a command writes to; the CLI's console implements it."""

    json_mode: bool
    quiet: bool
    interactive: bool

    def line(self, text: str = "", *, style: str | None = None) -> None: ...
    def warn(self, text: str) -> None: ...
    def emit_json(self, payload: Any) -> None: ...
    def emit_text(self, text: str) -> None: ...
    def table(self, title: str | None, columns: list[str], rows: list[list[str]]) -> None: ...
    def progress(self, description: str, unit: str = "files") -> ProgressSink: ...


class CommandContext:
    """Shared state of one CLI invocation. A plain class (a record every command defines: decision 0017)."""

    def __init__(
        self,
        plugins: PluginHost,
        out: Reporter,
        cwd: Path,
        environ: Mapping[str, str],
        verbose: int = 0,
        extras: dict[str, Any] | None = None,
    ) -> None:
        self.plugins = plugins
        self.out = out
        self.cwd = cwd
        self.environ = environ
        self.verbose = verbose
        #: Room for plugins to pass things between their hooks during one command.
        self.extras: dict[str, Any] = {} if extras is None else extras

    def __repr__(self) -> str:
        return f"CommandContext(cwd={self.cwd!r}, verbose={self.verbose!r})"
