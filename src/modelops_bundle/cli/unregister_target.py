"""``unregister-target ID... [--all-missing]``: remove registered calibration targets (and them from target sets)."""

from __future__ import annotations

from modelops_bundle.cli.unregister_model import configure_for, run_for
from modelops_bundle.core.commands import Command

COMMAND = Command(
    name="unregister-target",
    help="remove registered calibration targets (and from the target sets naming them)",
    run=run_for("target"),
    configure=configure_for("target"),
    epilog="examples:\n  mops bundle unregister-target incidence\n  mops bundle unregister-target --all-missing",
)
