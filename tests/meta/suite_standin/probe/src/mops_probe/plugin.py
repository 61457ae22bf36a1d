"""``probe-echo`` copies stdin to stdout upper-cased, notes on stderr and exits with ``--exit``;
``probe-wait`` prints ``ready`` and sleeps until Ctrl-C (the CLI reports the interrupt and exits 130)."""

from __future__ import annotations

import argparse
import sys
import time

from modelops_bundle import hookimpl
from modelops_bundle.core.commands import Command, CommandRegistry
from modelops_bundle.core.context import CommandContext


def _configure_echo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exit", type=int, default=0, dest="exit_code")


def _echo(ctx: CommandContext, args: argparse.Namespace) -> int:
    data = sys.stdin.read()
    sys.stdout.write(data.upper())
    sys.stdout.flush()
    sys.stderr.write(f"probe: read {len(data)} characters\n")
    return int(args.exit_code)


def _wait(ctx: CommandContext, args: argparse.Namespace) -> int:
    print("ready", flush=True)
    time.sleep(60)
    return 0


@hookimpl
def mops_add_commands(registry: CommandRegistry) -> None:
    registry.add(
        Command(
            name="probe-echo",
            help="stdin to stdout",
            run=_echo,
            configure=_configure_echo,
            epilog="example:\n  mops bundle probe-echo",
        )
    )
    registry.add(
        Command(name="probe-wait", help="wait for Ctrl-C", run=_wait, epilog="example:\n  mops bundle probe-wait")
    )
