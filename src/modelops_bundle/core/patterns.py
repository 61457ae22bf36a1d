"""Regular expressions compiled when first used.

Every command imports the modules that define the tool's patterns (references, paths, secret names,
registry addresses), and most commands use few of them: compiling them all at import cost a warm
``status`` about 1.5 ms. A :class:`LazyPattern` compiles on its first call and is a plain compiled
pattern from then on (one attribute check per call).
"""

from __future__ import annotations

import re
from collections.abc import Callable


class LazyPattern:
    """``re.compile(pattern, flags)``, done on first use; offers the methods the tool calls."""

    __slots__ = ("_compiled", "flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, self.flags)
        return self._compiled

    def match(self, text: str) -> re.Match[str] | None:
        return self.compiled.match(text)

    def search(self, text: str) -> re.Match[str] | None:
        return self.compiled.search(text)

    def sub(self, replacement: str | Callable[[re.Match[str]], str], text: str) -> str:
        return self.compiled.sub(replacement, text)
