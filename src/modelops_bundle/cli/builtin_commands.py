"""Built-in plugin that contributes the built-in commands -- through the same hook third parties use.

Each is registered lazily (:class:`~modelops_bundle.core.commands.LazyCommand`): its module is imported
only when that command runs or when every command is listed (tests/meta checks that each module's
``COMMAND`` carries the name and aliases given here).
"""

from __future__ import annotations

from modelops_bundle import hookimpl
from modelops_bundle.core.commands import CommandRegistry, lazy_command

#: ``(module under modelops_bundle.cli, command name, aliases...)`` in the order of ``--help``.
BUILTIN_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("init", "init"),
    ("add", "add"),
    ("remove", "remove", "rm"),
    ("status", "status"),
    ("diff", "diff"),
    ("push", "push"),
    ("pull", "pull"),
    ("register_model", "register-model"),
    ("register_target", "register-target"),
    ("unregister_model", "unregister-model"),
    ("unregister_target", "unregister-target"),
    ("target_set", "target-set"),
    ("list_models", "list"),
    ("manifest", "manifest"),
    ("tags", "tags"),
    ("ensure", "ensure"),
    ("env", "env"),
    ("config", "config"),
    ("migrate", "migrate"),
    ("plugins", "plugins"),
    ("plugin_new", "plugin"),
    ("completion", "completion"),
    ("provenance", "provenance"),
    ("verify", "verify"),
    ("sign", "sign"),
    ("key", "key"),
    ("gc", "gc"),
)


@hookimpl(trylast=True)
def mops_add_commands(registry: CommandRegistry) -> None:
    for module, name, *aliases in BUILTIN_COMMANDS:
        registry.add(lazy_command(f"modelops_bundle.cli.{module}", name, *aliases))
