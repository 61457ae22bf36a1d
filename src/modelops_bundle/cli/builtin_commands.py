"""Built-in plugin that contributes the built-in commands -- through the same hook third parties use."""

from __future__ import annotations

from modelops_bundle import hookimpl
from modelops_bundle.core.commands import CommandRegistry


@hookimpl(trylast=True)
def mops_add_commands(registry: CommandRegistry) -> None:
    from modelops_bundle.cli import (
        add,
        completion,
        diff,
        ensure,
        env,
        gc,
        init,
        list_models,
        manifest,
        plugin_new,
        plugins,
        provenance,
        pull,
        push,
        register_model,
        register_target,
        remove,
        status,
        tags,
        target_set,
        verify,
    )

    for module in (
        init,
        add,
        remove,
        status,
        diff,
        push,
        pull,
        register_model,
        register_target,
        target_set,
        list_models,
        manifest,
        tags,
        ensure,
        env,
        plugins,
        plugin_new,
        completion,
        provenance,
        verify,
        gc,
    ):
        registry.add(module.COMMAND)
