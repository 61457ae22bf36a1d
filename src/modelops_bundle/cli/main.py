"""Entry points: ``mops`` (commands under ``mops bundle``) and ``modelops-bundle`` (commands at top level)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from modelops_bundle import __version__
from modelops_bundle.core.errors import BundleError, ExitCode, exit_code_for
from modelops_bundle.core.flags import env_flag

if TYPE_CHECKING:
    import argparse

    from modelops_bundle.cli.app import CommandApp
    from modelops_bundle.core.plugins import PluginHost

DESCRIPTION = (
    "Package a simulation-model project as an immutable, content-addressed OCI artifact,\n"
    "and get exactly those bytes back anywhere by digest."
)


def mops_main(argv: Sequence[str] | None = None) -> int:
    """``mops bundle COMMAND ...`` (this tool); any other ``mops ...`` is the ModelOps suite's command
    line, run through the suite's own entry point when it is installed (:mod:`.suite`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["bundle"]:
        return bundle_main(args[1:], prog="mops bundle")
    from modelops_bundle.cli.suite import run_other_command

    return run_other_command(args, DESCRIPTION)


def bundle_main(argv: Sequence[str] | None = None, *, prog: str = "modelops-bundle") -> int:
    """``modelops-bundle COMMAND ...`` (the same commands as ``mops bundle``): the stable executable the
    suite's ``mops bundle`` runs, so its exit code and streams are the command's own."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        sys.stdout.write(f"modelops-bundle {__version__}\n")
        return ExitCode.OK
    return run(args, prog=prog)


def mops_console() -> None:
    """The ``mops`` executable: ``mops bundle ...`` in a process of its own (:func:`_run_as_process`);
    anything else belongs to the ModelOps suite, whose code then owns the process as its own script would."""
    args = sys.argv[1:]
    if args[:1] == ["bundle"]:
        _run_as_process(mops_main)
        return
    from modelops_bundle.cli.suite import answer_without_suite, find_suite_script, run_suite

    script = find_suite_script()
    if script is not None:
        sys.exit(run_suite(script, args))
    _run_as_process(lambda: answer_without_suite(args, DESCRIPTION))  # the version or usage: ours to answer


def bundle_console() -> None:
    """The ``modelops-bundle`` executable (:func:`bundle_main` in a process of its own)."""
    _run_as_process(bundle_main)


def module_console() -> None:
    """``python -m modelops_bundle COMMAND ...``: the same commands as ``modelops-bundle``."""
    _run_as_process(lambda: bundle_main(prog="python -m modelops_bundle"))


def _run_as_process(main: Callable[[], int]) -> None:
    """Run ``main`` as a whole short-lived process (never call this in-process: it ends the process).

    Two start-up costs of a command that lasts a tenth of a second are not worth paying: the cyclic
    garbage collector running every 700 allocations while a large stat cache is read (a run makes few
    cycles, and collections still happen, only less often), and the interpreter's teardown freeing
    every object one by one at exit (10-20 ms after a 10,000-file status). Exit handlers still run and
    the output is flushed before the process ends.
    """
    import atexit
    import gc

    gc.set_threshold(100_000, 50, 100)
    code = main()
    threading = sys.modules.get("threading")
    if threading is not None and any(
        thread.is_alive() and not thread.daemon and thread is not threading.main_thread()
        for thread in threading.enumerate()
    ):
        sys.exit(code)  # a thread still working (a plugin's, say): let the interpreter wait for it as usual
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader that went away, or a closed stream
            _silence_stdout()
    os._exit(code)


def _debug_enabled(environ: Mapping[str, str], verbose: int) -> bool:
    return verbose > 0 or env_flag(environ, "MOPS_DEBUG")


def run(
    argv: Sequence[str],
    *,
    prog: str,
    environ: Mapping[str, str] | None = None,
    extra_plugins: Sequence[tuple[str, object]] = (),
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Build plugins and parser, run one command, map its outcome to an exit code.

    ``environ``, ``extra_plugins``, ``stdout`` and ``stderr`` let tests (and ``modelops_bundle.testing``)
    run a command in-process with an isolated environment and captured output.
    """
    from modelops_bundle.cli.app import UsageProblem, build_app
    from modelops_bundle.cli.console import Console
    from modelops_bundle.core.context import CommandContext
    from modelops_bundle.core.plugins import build_plugin_host, describe_plugin

    env = dict(os.environ if environ is None else environ)
    host = build_plugin_host(env, extra_plugins=extra_plugins)
    app, add_failures = build_app(host, prog, DESCRIPTION)
    parser = app.build(argv)
    try:
        with (
            contextlib.redirect_stdout(stdout or sys.stdout),
            contextlib.redirect_stderr(stderr or sys.stderr),
        ):
            args = parse_command_line(app, parser, argv)
    except SystemExit as exc:  # --help (or --version) printed
        return int(exc.code) if isinstance(exc.code, int) else int(ExitCode.USAGE)
    except UsageProblem as problem:  # in the usage of the (sub-)command that refused it; --json too
        console = Console(json_mode=_json_asked(argv), environ=env, stdout=stdout, stderr=stderr)
        console.stderr.write(problem.parser.format_usage())
        return _report(console, problem.message, problem.hint, int(ExitCode.USAGE), False)
    command = getattr(args, "_command", None)
    console = Console(json_mode=bool(args.json), quiet=bool(args.quiet), environ=env, stdout=stdout, stderr=stderr)
    if command is None or command.name != "plugins":
        for info in host.errors:
            origin = f"{info.distribution} {info.version}".strip()
            console.warn(f"plugin {info.name!r} from {origin} failed to load: {info.error}")
        for name, failure in add_failures:
            console.warn(f"plugin {describe_plugin(host, name)} failed to add its commands: {failure}")
    if command is None:
        if console.json_mode:  # a usage error: the JSON document, not the help text
            return _report(console, "no command given", f"'{prog} --help' lists the commands", ExitCode.USAGE, False)
        parser.print_help(file=console.stdout)
        return ExitCode.USAGE
    cwd = Path(os.path.abspath(args.directory)) if args.directory else Path.cwd()
    ctx = CommandContext(plugins=host, out=console, cwd=cwd, environ=env, verbose=args.verbose or 0)
    debug = _debug_enabled(env, ctx.verbose)
    from modelops_bundle.cli.logs import command_logging

    try:
        with command_logging(console.stderr, verbose=ctx.verbose > 0, tracebacks=_debug_enabled(env, 0)):
            return int(command.run(ctx, args))
    except BundleError as exc:
        return _report(console, exc.message, exc.hint, int(exit_code_for(exc)), debug)
    except KeyboardInterrupt as interrupt:
        console.error("interrupted")
        return int(exit_code_for(interrupt))
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error
        _silence_stdout()
        return int(ExitCode.OK)
    except Exception as exc:  # a bug: say whose, plainly; show the traceback on request
        return _report_unexpected(console, host, exc, debug)


def parse_command_line(app: CommandApp, parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; arguments nothing took are reported in the usage of the command they were given
    to (``push --tga v2``: "unknown option '--tga'; did you mean '--tag'?")."""
    from modelops_bundle.cli.app import Parser, UsageProblem

    args, extras = parser.parse_known_args(list(argv))
    if extras:
        command = getattr(args, "_command", None)
        owner = app.parsers.get(command.name) if command is not None else None
        target = owner if owner is not None else parser
        if isinstance(target, Parser):
            raise target.unknown_arguments(extras)
        raise UsageProblem(target, f"unrecognized arguments: {' '.join(extras)}")
    return args


def _json_asked(argv: Sequence[str]) -> bool:
    """Whether ``--json`` is among the options of a command line the parser refused."""
    words = list(argv)
    return "--json" in (words[: words.index("--")] if "--" in words else words)


def _report_unexpected(console: object, host: PluginHost, exc: Exception, debug: bool) -> int:
    """A third-party plugin's failure names the plugin, its distribution and the hook; anything else is
    reported as a bug of modelops-bundle."""
    from modelops_bundle.core.plugins import describe_plugin, failing_plugin

    traceback_hint = None if debug else "run again with -v (or MOPS_DEBUG=1) for the traceback"
    failure = failing_plugin(host, exc)
    unexpected = f"unexpected error: {exc.__class__.__name__}: {exc}"
    if failure is None:
        return _report(console, unexpected, traceback_hint, int(exit_code_for(exc)), debug)
    hints = [f"MOPS_DISABLE_PLUGINS={failure.plugin} runs without it"] + ([traceback_hint] if traceback_hint else [])
    if failure.hook is None:  # plugin code outside a hook (a command's run, a provider's method)
        hints.insert(0, f"it came from plugin {describe_plugin(host, failure.plugin)}")
        return _report(console, unexpected, "; ".join(hints), int(exit_code_for(exc)), debug)
    return _report(console, failure.describe(host, exc), "; ".join(hints), int(exit_code_for(exc)), debug)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _report(console: object, message: str, hint: str | None, code: int, debug: bool) -> int:
    from modelops_bundle.cli.console import Console

    assert isinstance(console, Console)
    if debug:
        import traceback

        traceback.print_exc(file=console.stderr)
    console.error(message, hint=hint)
    if console.json_mode:
        console.emit_json({"ok": False, "error": message, "hint": hint, "exit_code": code})
    return code
