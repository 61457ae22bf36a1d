"""Every hookspec is documented in the plugin guide (datasette's meta-test, for docs/plugins.md).

A hook counts as documented when the guide has a section headed with its name (``### `mops_x` ``) and the
"Hooks at a glance" table links to it. The failure lists every hook missing, so the guide can be
completed in one go.
"""

from __future__ import annotations

import re

from tests.meta.hooks import ROOT, hookspec_names

GUIDE = ROOT / "docs" / "plugins.md"


def test_there_are_hooks() -> None:
    names = hookspec_names()
    assert "mops_add_commands" in names and len(names) >= 14


def test_every_hookspec_has_a_section_in_the_plugin_guide() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    headings = set(re.findall(r"^###\s+`(mops_[a-z_]+)`\s*$", text, re.M))
    missing = [name for name in hookspec_names() if name not in headings]
    assert not missing, f"hooks without a '### `name`' section in {GUIDE.relative_to(ROOT)}: {', '.join(missing)}"


def test_every_hookspec_is_in_the_overview_table() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    linked = set(re.findall(r"\[`(mops_[a-z_]+)`\]\(#\1\)", text))
    missing = [name for name in hookspec_names() if name not in linked]
    assert not missing, f"hooks missing from the 'Hooks at a glance' table: {', '.join(missing)}"


def test_the_guide_documents_no_hook_that_does_not_exist() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    headings = set(re.findall(r"^###\s+`(mops_[a-z_]+)`\s*$", text, re.M))
    stale = sorted(headings - set(hookspec_names()))
    assert not stale, f"the plugin guide documents hooks that hookspecs.py does not declare: {', '.join(stale)}"
