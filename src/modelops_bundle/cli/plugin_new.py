"""``plugin new NAME [--kind KIND] [--dest DIR]``: start a plugin package from the built-in template."""

from __future__ import annotations

import argparse

from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext

KINDS = ("discovery", "storage", "registry", "packaging")  # as core.plugin_scaffold.KINDS, kept import-free


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("new",), help="what to do: 'new' creates a plugin package")
    parser.add_argument("name", metavar="NAME", help="plugin name, e.g. labstore (the entry-point name)")
    parser.add_argument(
        "--kind", choices=KINDS, default="discovery", help="which hooks the plugin implements (default: discovery)"
    )
    parser.add_argument("--dest", metavar="DIR", help="folder to create (default: ./mops-NAME); must not exist")


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.plugin_scaffold import check_name, create_plugin, default_destination

    name = check_name(args.name)
    destination = ctx.cwd / args.dest if args.dest else default_destination(ctx.cwd, name)
    result = create_plugin(name, args.kind, destination)
    if ctx.out.json_mode:
        ctx.out.emit_json(result.to_json())
        return 0
    ctx.out.line(f"Created {result.kind} plugin {result.name!r} in {result.destination}", style="green")
    ctx.out.line(f"  distribution {result.distribution}, package {result.package}, {len(result.files)} files")
    ctx.out.line("Next:")
    ctx.out.line(f"  cd {result.destination}")
    ctx.out.line("  pip install -e '.[test]'   # registers the entry point")
    ctx.out.line("  pytest                     # the plugin's own tests")
    ctx.out.line("  mops bundle plugins        # lists it with its distribution and version")
    return 0


COMMAND = Command(
    name="plugin",
    help="create a plugin package (discovery, storage, registry or packaging) from a template",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle plugin new labsim\n  mops bundle plugin new labstore --kind storage\n"
    "  mops bundle plugin new lab-rules --kind packaging --dest ~/src/mops-lab-rules --json",
)
