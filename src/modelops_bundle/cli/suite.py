"""``mops`` beside the ModelOps suite: every ``mops`` command other than ``mops bundle`` is the suite's.

Both distributions, ``modelops`` (the suite) and ``modelops-bundle`` (this tool), declare a ``mops``
console script, and pip keeps one file: whichever distribution was installed last owns it. Both ways
round, every command keeps working (docs/decisions/0021):

* the suite's ``mops`` runs ``mops bundle ARGS`` as the ``modelops-bundle ARGS`` executable;
* this ``mops`` runs ``mops bundle ARGS`` itself and hands every other command line to the suite's own
  ``mops`` entry point, found through the suite distribution's metadata -- in this process, exactly as
  the suite's own script would run it (same ``sys.argv``, streams, exit code and Ctrl-C);
* without the suite, this ``mops`` says which package provides the command it was asked for.

Nothing here runs for ``mops bundle ...``; elsewhere the lookup reads one distribution's entry points
(``core/entrypoints.py``, not ``importlib.metadata``: ``mops --version`` stays as fast as ``mops bundle``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from modelops_bundle import __version__
from modelops_bundle.core.errors import ExitCode

#: The suite's distribution and the console script both declare.
SUITE_DISTRIBUTION = "modelops"
SCRIPT = "mops"

USAGE = """usage: mops [--version] bundle COMMAND [options]

{description}

groups:
  bundle    package, push and pull model bundles (mops bundle --help)

The other mops commands (mops infra, mops jobs, mops workspace, ...) come with the ModelOps suite,
Python distribution '{suite}', which is not installed in this environment.
"""


class SuiteScript(NamedTuple):
    """The suite's ``mops`` console-script entry point, as its distribution declares it."""

    value: str  # "module:function"
    distribution: str
    version: str

    def load(self) -> Callable[[], Any]:
        from modelops_bundle.core.entrypoints import load_object

        loaded: Callable[[], Any] = load_object(self.value)
        return loaded


def find_suite_script() -> SuiteScript | None:
    """The ``mops`` entry point of the installed suite distribution, or ``None`` without one.

    Only the ``modelops`` distribution's own metadata counts (never whatever file ``mops`` is now), and
    an entry point that leads back into this package is ignored, so the hand-over cannot loop.
    """
    from modelops_bundle.core.entrypoints import entry_points

    for entry in entry_points("console_scripts", distribution=SUITE_DISTRIBUTION):
        if entry.name == SCRIPT:
            module = entry.value.partition(":")[0].strip()
            if module == "modelops_bundle" or module.startswith("modelops_bundle."):
                return None
            return SuiteScript(entry.value, entry.distribution, entry.version)
    return None


def run_other_command(args: Sequence[str], description: str) -> int:
    """``mops ARGS`` for anything but ``bundle``: the suite's CLI when installed, else this tool's
    ``mops`` usage, version or a message naming the package that provides the command."""
    script = find_suite_script()
    if script is not None:
        return run_suite(script, args)
    return answer_without_suite(args, description)


def answer_without_suite(args: Sequence[str], description: str) -> int:
    """``mops ARGS`` (not ``bundle``) where the suite is not installed: this tool's version or usage, or
    which package provides the command."""
    if args[:1] in (["--version"], ["-V"]):
        sys.stdout.write(f"mops (modelops-bundle) {__version__}\n")
        return 0
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE.format(description=description, suite=SUITE_DISTRIBUTION))
        return 0 if args else 2
    return _not_installed(args[0])


def run_suite(script: SuiteScript, args: Sequence[str]) -> int:
    """Run the suite's ``mops`` entry point in this process as its own console script does
    (``sys.exit(main())``): it sees ``sys.argv`` as ``mops ARGS`` and the same streams and signals; its
    ``SystemExit`` passes through untouched."""
    try:
        main = script.load()
    except Exception as exc:  # the suite is installed but broken (a missing dependency, say)
        sys.stderr.write(
            f"error: the ModelOps suite's mops ({script.distribution} {script.version}, {script.value}) "
            f"could not be loaded: {exc.__class__.__name__}: {exc}\n"
            "hint: 'mops bundle ...' and 'modelops-bundle ...' still work; reinstall the suite to repair the rest\n"
        )
        return int(ExitCode.FAILED)
    saved = sys.argv
    sys.argv = [saved[0] if saved else SCRIPT, *args]  # unchanged for the executable; set for in-process calls
    try:
        result = main()
    finally:
        sys.argv = saved
    if result is None or isinstance(result, int):
        return int(result or 0)
    sys.exit(result)  # a message: the interpreter prints it and exits with 1, as for the suite's script


def _not_installed(command: str) -> int:
    from modelops_bundle.cli.builtin_commands import BUILTIN_COMMANDS

    ours = {name for _module, *names in BUILTIN_COMMANDS for name in names}
    if command.startswith("-"):
        sys.stderr.write(f"error: unknown option {command!r}\nusage: mops [--version] bundle COMMAND [options]\n")
        return int(ExitCode.USAGE)
    from modelops_bundle.core.suggest import did_you_mean

    typo = did_you_mean(command, ["bundle"])
    if typo:  # ``mops bundel status``: most likely a slip, not a suite command
        sys.stderr.write(f"error: unknown command group {command!r}{typo}\n")
        sys.stdout.write("usage: mops [--version] bundle COMMAND [options]\n")
        return int(ExitCode.USAGE)
    sys.stderr.write(
        f"error: 'mops {command}' is a command of the ModelOps suite (Python distribution "
        f"'{SUITE_DISTRIBUTION}'), which is not installed in this environment\n"
    )
    if command in ours:
        sys.stderr.write(f"hint: did you mean 'mops bundle {command}'? This mops runs only 'mops bundle ...'\n")
    else:
        sys.stderr.write(
            "hint: this mops comes from modelops-bundle and runs only 'mops bundle ...'; install the "
            f"ModelOps suite into this environment for 'mops {command}'\n"
        )
    return int(ExitCode.USAGE)
