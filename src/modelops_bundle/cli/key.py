"""``key [list | generate [--name NAME] [--algorithm A] | export [KEY] --public]``: signing keys."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext
from modelops_bundle.core.errors import UsageError

if TYPE_CHECKING:
    from modelops_bundle.core.keys import Passphrase


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "generate", "export"), default="list")
    parser.add_argument(
        "key", nargs="?", metavar="KEY", help="export: a key-store name, a PEM file path or SCHEME:KEY (plugin)"
    )
    parser.add_argument("--name", default=None, help="generate: the key's name in the store (default: default)")
    parser.add_argument(
        "--algorithm", choices=("ecdsa-p256", "ed25519"), default="ecdsa-p256", help="generate: the key type"
    )
    parser.add_argument("--public", action="store_true", help="export: the public key (the only part exported)")


def passphrase_reader(ctx: CommandContext) -> Passphrase:
    """The :data:`~modelops_bundle.core.keys.Passphrase` of this invocation: ``$MOPS_SIGNING_PASSPHRASE``,
    else a prompt on the terminal, else a usage error (never an empty or echoed passphrase)."""
    from modelops_bundle.core.keys import PASSPHRASE_ENV

    def read(what: str) -> bytes:
        value = ctx.environ.get(PASSPHRASE_ENV)
        if value:
            return value.encode("utf-8")
        if not sys.stdin.isatty():
            raise UsageError(f"{what} is encrypted and no passphrase was given", hint=f"set {PASSPHRASE_ENV}")
        import getpass

        return getpass.getpass(f"Passphrase for {what}: ").encode("utf-8")

    return read


def _new_passphrase(ctx: CommandContext, name: str) -> bytes:
    from modelops_bundle.core.keys import PASSPHRASE_ENV

    value = ctx.environ.get(PASSPHRASE_ENV)
    if value:
        return value.encode("utf-8")
    if not sys.stdin.isatty():
        raise UsageError("a passphrase is needed to encrypt the private key", hint=f"set {PASSPHRASE_ENV}")
    import getpass

    first = getpass.getpass(f"Passphrase for the new key {name!r}: ")
    if getpass.getpass("Again: ") != first:
        raise UsageError("the two passphrases differ; nothing was written")
    return first.encode("utf-8")


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core import keys

    if args.action != "export" and args.public:
        raise UsageError("--public belongs to 'key export'")
    if args.action != "generate" and args.name:
        raise UsageError("--name belongs to 'key generate' (export takes the key as KEY)")
    if args.action == "generate":
        if args.key:
            raise UsageError(
                "key generate takes its name with --name", hint=f"mops bundle key generate --name {args.key}"
            )
        name = keys.check_key_name(args.name or keys.DEFAULT_KEY)
        info = keys.generate_key(ctx.environ, name, args.algorithm, _new_passphrase(ctx, name))
        assert info.public is not None
        if ctx.out.json_mode:
            ctx.out.emit_json(info.to_json())
            return 0
        ctx.out.line(f"Generated {info.public.algorithm} key {name!r} ({info.public.key_id})", style="bold")
        ctx.out.line(f"  private: {info.private_path} (encrypted, mode 0600)")
        ctx.out.line(f"  public:  {info.public_path}")
        ctx.out.line(f"Next: 'mops bundle sign --key {name}', and give workers the public key ('key export --public')")
        return 0
    if args.action == "export":
        if not args.public:
            raise UsageError("only the public key is exported: add --public", hint="mops bundle key export --public")
        public = keys.public_key(ctx.plugins, ctx.environ, args.key, cwd=ctx.cwd, passphrase=passphrase_reader(ctx))
        if ctx.out.json_mode:
            ctx.out.emit_json(
                {"key_id": public.key_id, "algorithm": public.algorithm, "public_key": public.pem.decode("ascii")}
            )
            return 0
        from modelops_bundle.cli.console import Console

        if isinstance(ctx.out, Console):
            ctx.out.emit_text(public.pem.decode("ascii"))  # the product: printed with -q too, like --json output
        else:
            ctx.out.line(public.pem.decode("ascii").rstrip("\n"))
        return 0
    if args.key:
        raise UsageError("key list takes no KEY")
    found = keys.list_keys(ctx.environ)
    if ctx.out.json_mode:
        ctx.out.emit_json({"directory": str(keys.keys_dir(ctx.environ)), "keys": [info.to_json() for info in found]})
        return 0
    if not found:
        ctx.out.line(f"No keys in {keys.keys_dir(ctx.environ)} ('mops bundle key generate' makes one).")
        return 0
    rows = [
        [
            info.name,
            info.public.algorithm if info.public else "?",
            info.public.key_id if info.public else f"({info.problem})",
        ]
        for info in found
    ]
    ctx.out.table(f"Keys ({keys.keys_dir(ctx.environ)})", ["Name", "Algorithm", "Key id"], rows)
    return 0


COMMAND = Command(
    name="key",
    help="signing keys: generate one (encrypted, in $MODELOPS_HOME/keys), list them, export a public key",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle key generate\n  mops bundle key generate --name ci --algorithm ed25519\n"
    "  mops bundle key list\n  mops bundle key export --public > default.pub\n  mops bundle key export ci --public",
)
