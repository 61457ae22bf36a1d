"""Built-in plugin that contributes the built-in commands -- through the same hook third parties use."""

from __future__ import annotations

from modelops_bundle import hookimpl
from modelops_bundle.core.commands import CommandRegistry


@hookimpl(trylast=True)
def mops_add_commands(registry: CommandRegistry) -> None:
    from modelops_bundle.cli import add, env, init, plugins, remove, status

    for module in (init, add, remove, status, env, plugins):
        registry.add(module.COMMAND)
