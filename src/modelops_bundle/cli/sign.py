"""``sign [REF] [--key KEY]``: sign a version and attach the signature to it in the registry."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from modelops_bundle.cli.common import add_ref_arguments, chosen_ref, open_version
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext

if TYPE_CHECKING:
    from modelops_bundle.core.keys import SigningKey
    from modelops_bundle.core.reference import Reference
    from modelops_bundle.core.registry import RegistryBackend
    from modelops_bundle.core.signing import SignResult


def configure(parser: argparse.ArgumentParser) -> None:
    add_ref_arguments(parser)
    add_key_option(parser)
    parser.add_argument("--env", metavar="NAME", help="environment outside a project (default: $MOPS_ENV or local)")


def add_key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key",
        metavar="KEY",
        help="key-store name, PEM file path or SCHEME:KEY of a signer plugin "
        "(default: $MOPS_SIGNING_KEY, else the store's 'default' or only key)",
    )


def unlock(ctx: CommandContext, spec: str | None) -> SigningKey:
    """The signing key ``--key`` names, unlocked now -- before anything is pushed or signed."""
    from modelops_bundle.cli.key import passphrase_reader
    from modelops_bundle.core.keys import signing_key

    return signing_key(ctx.plugins, ctx.environ, spec, cwd=ctx.cwd, passphrase=passphrase_reader(ctx))


def sign(ctx: CommandContext, backend: RegistryBackend, reference: Reference, key: SigningKey) -> SignResult:
    from modelops_bundle.core.push import created_timestamp
    from modelops_bundle.core.signing import sign_version

    return sign_version(backend, reference, key, signed_at=created_timestamp(ctx.environ))


def describe(result: SignResult) -> str:
    """``Signature: sha256:... (tag-schema), key 'ci' (ecdsa-p256 sha256:1a2b3c4d5e6f)``."""
    from modelops_bundle.core.keys import short_key_id

    state = " (already signed by this key)" if result.method == "existing" else f" ({result.method})"
    return f"Signature: {result.referrer}{state}, key {result.key!r} ({result.algorithm} {short_key_id(result.key_id)})"


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    key = unlock(ctx, args.key)
    backend, reference = open_version(ctx, chosen_ref(args), args.env)
    try:
        result = sign(ctx, backend, reference, key)
    finally:
        backend.close()
    if ctx.out.json_mode:
        ctx.out.emit_json(result.to_json())
        return 0
    ctx.out.line(f"Signed {result.reference}", style="bold")
    ctx.out.line(describe(result))
    return 0


COMMAND = Command(
    name="sign",
    help="sign a version (an in-toto statement in a DSSE envelope, attached as an OCI referrer)",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle sign\n  mops bundle sign v1.0.0 --key ci\n"
    "  mops bundle sign --key ./release.pem --json\n"
    "  mops bundle sign 127.0.0.1:5000/flu@sha256:... --env dev --key kms:lab/release",
)
