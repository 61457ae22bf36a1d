"""Every hookspec is exercised by a test: some plugin implementing it runs in the test suite.

Decided as a static check, so that it holds for any subset of the suite and never depends on test order:
a hook counts as exercised when a plugin that implements it (``def mops_x(``) is run by a test --

* a test plugin in ``tests/`` (a class or module handed to the CLI as ``extra_plugins``, or an entry-point
  distribution made by the ``make_dist`` fixture),
* an example plugin in ``examples/plugins/`` (whose tests ``tests/examples`` runs), or
* a template of ``mops bundle plugin new`` (whose generated tests ``tests/meta/test_plugin_install.py`` runs).

Each hook also has a built-in implementation (``src/modelops_bundle/plugins``) that the ordinary tests run;
the third-party implementation is what proves the hook's contract -- arguments, ordering, results -- from
the outside, which is what a plugin author relies on.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.meta.hooks import ROOT, hookspec_names

SOURCES = (
    ROOT / "tests",
    ROOT / "examples" / "plugins",
    ROOT / "src" / "modelops_bundle" / "templates" / "plugin",
)


def implemented_hooks() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for base in SOURCES:
        for path in sorted([*base.rglob("*.py"), *base.rglob("*.py.tmpl")]):
            if path == Path(__file__):
                continue
            for name in re.findall(r"^\s*def (mops_[a-z_]+)\(", path.read_text(encoding="utf-8"), re.M):
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_hookspec_is_implemented_by_a_plugin_the_tests_run() -> None:
    implemented = implemented_hooks()
    missing = [name for name in hookspec_names() if name not in implemented]
    assert not missing, f"hooks no test plugin, example or template implements: {', '.join(missing)}"


def test_the_tests_implement_only_real_hooks() -> None:
    # A misspelt hook in a test plugin would be refused at load; this names it before that.
    unknown = {name: where for name, where in implemented_hooks().items() if name not in hookspec_names()}
    assert not unknown, f"implementations of hooks that do not exist: {unknown}"
