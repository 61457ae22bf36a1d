"""Small helpers shared by the command modules."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from modelops_bundle.core.context import CommandContext
from modelops_bundle.core.hashing import Hasher, ProgressSink, resolve_hasher
from modelops_bundle.core.project import find_project
from modelops_bundle.core.workspace import Workspace

N = TypeVar("N", int, float)

if TYPE_CHECKING:
    from modelops_bundle.core.reference import Reference
    from modelops_bundle.core.registry import RegistryBackend
    from modelops_bundle.core.session import LazyBlobFetcher, Session


def open_workspace(ctx: CommandContext) -> Workspace:
    """The project containing the current directory (walking up), or a usage error."""
    return Workspace(find_project(ctx.cwd))


def open_session(ctx: CommandContext) -> Session:
    """The project containing the current directory as a session (its registry, environment and
    settings), for commands that talk to a registry or a blob store."""
    from modelops_bundle.core.session import Session

    return Session(ctx.plugins, open_workspace(ctx), ctx.environ)


def report_notices(ctx: CommandContext, session: Session) -> None:
    """What the session found worth telling that is no error (on stderr, so ``--json`` stays clean)."""
    for notice in session.notices:
        ctx.out.warn(notice)
    session.notices.clear()


def hasher_for(ctx: CommandContext, ws: Workspace) -> Hasher:
    return resolve_hasher(ctx.plugins.hook, ws.config().hash_algorithm)


def hashing_progress(ctx: CommandContext) -> Callable[[], ProgressSink]:
    return lambda: ctx.out.progress("hashing")


def add_jobs_option(
    parser: argparse.ArgumentParser, *, what: str = "hashing threads", default: int | None = None
) -> None:
    shown = "auto" if default is None else str(default)
    parser.add_argument(
        "-j", "--jobs", type=positive_int, default=default, metavar="N", help=f"{what} (default: {shown})"
    )


#: What shell completion can complete an argument with (``completion --values KIND``).
COMPLETION_KINDS = ("tags", "environments", "models", "targets")


def complete_with(action: argparse.Action, kind: str) -> argparse.Action:
    """Mark ``action`` for shell completion with the current values of ``kind`` (:data:`COMPLETION_KINDS`):
    the generated script asks ``mops bundle completion --values KIND`` when it is typed."""
    assert kind in COMPLETION_KINDS, kind
    action.mops_complete = kind  # type: ignore[attr-defined]  # read by cli/completion.py
    return action


def add_ref_arguments(parser: argparse.ArgumentParser) -> None:
    """``[REF]`` or ``--ref REF`` (``--tag``): the version a command fetches, as ``diff``, ``verify`` and
    ``manifest`` take it too; :func:`chosen_ref` reads it."""
    ref_help = "tag, digest or unique digest prefix (7+ hex digits) (default: default_tag)"
    complete_with(parser.add_argument("ref_argument", nargs="?", metavar="REF", help=ref_help), "tags")
    complete_with(
        parser.add_argument("--ref", "--tag", dest="ref", metavar="REF", help="the same, as an option"), "tags"
    )


def chosen_ref(args: argparse.Namespace) -> str | None:
    """The version named by ``REF`` or ``--ref``; a usage error when both name different ones."""
    positional: str | None = args.ref_argument
    option: str | None = args.ref
    if positional and option and positional != option:
        from modelops_bundle.core.errors import UsageError

        raise UsageError(f"two versions named: {positional!r} and --ref {option!r}; name one")
    return positional or option


def add_model_option(parser: argparse.ArgumentParser) -> None:
    action = parser.add_argument(
        "--model",
        dest="models",
        action="append",
        default=None,
        metavar="ID",
        help="only what this model (or target) needs: its code, data, the registry, project metadata (repeatable)",
    )
    complete_with(action, "models")


@contextmanager
def fetch_session(ctx: CommandContext, session: Session, ref: str | None) -> Iterator[FetchSession]:
    """The project's registry backend and a lazy blob fetcher for ``ref``, closed afterwards."""
    reference = session.reference(ref)
    backend = session.open_registry(reference)
    report_notices(ctx, session)
    fetcher = session.blob_fetcher(ctx.out.progress("blob downloads"))
    try:
        yield FetchSession(reference, backend, fetcher)
    finally:
        fetcher.close()
        backend.close()


class FetchSession(NamedTuple):
    """What a command that fetches versions holds: the reference, its registry and a blob fetcher."""

    reference: Reference
    backend: RegistryBackend
    fetcher: LazyBlobFetcher


def open_version(ctx: CommandContext, ref: str | None, env: str | None) -> tuple[RegistryBackend, Reference]:
    """The registry and reference of ``ref`` for a command that reads or signs one version: the project's
    (a tag, digest, short digest or full reference), or outside a project a full reference in ``env``
    (``--env``, else ``$MOPS_ENV``, else ``local``), its tag ``latest`` when it names none."""
    from modelops_bundle.core.errors import NotInitializedError

    try:
        session = open_session(ctx)
    except NotInitializedError:
        if not ref:
            raise
        from modelops_bundle.core.envfiles import chosen_environment
        from modelops_bundle.core.reference import parse_reference
        from modelops_bundle.core.registry_select import open_reference
        from modelops_bundle.core.settings_files import load_environment

        reference = parse_reference(ref, short_digests=True)
        if reference.tag is None and reference.digest is None and reference.prefix is None:
            reference = reference.with_tag("latest")
        environment = load_environment(chosen_environment(env, ctx.environ), ctx.environ)
        return open_reference(ctx.plugins, environment, reference, ctx.environ), reference
    try:
        reference = session.reference(ref)
        return session.open_registry(reference), reference
    finally:
        session.save_caches()


def emit_names(ctx: CommandContext, names: list[str]) -> bool:
    """``-q`` on a listing command: the bare names or ids, one per line, for scripts. True when printed
    (then nothing else should be). Invisible and bidirectional characters are escaped as everywhere on the
    terminal (``--json`` has the exact names)."""
    from modelops_bundle.core.paths import display_safe

    if not ctx.out.quiet or ctx.out.json_mode:
        return False
    for name in names:
        ctx.out.emit_text(display_safe(name))
    return True


def emit_outcome(ctx: CommandContext, result: Any) -> bool:
    """Warnings to stderr; with ``--json`` the result's JSON. True when nothing more should be printed."""
    for warning in result.warnings:
        ctx.out.warn(warning)
    if ctx.out.json_mode:
        ctx.out.emit_json(result.to_json())
        return True
    return False


def number_at_least(convert: Callable[[str], N], minimum: N, what: str) -> Callable[[str], N]:
    """An argparse ``type`` for a number of at least ``minimum`` (``what`` names the kind in messages)."""

    def parse(text: str) -> N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum:g}")
        return value

    return parse


positive_int = number_at_least(int, 1, "a whole number")


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def report_newly_tracked(ctx: CommandContext, paths: list[str]) -> None:
    """What registering a model or target started tracking on its behalf."""
    if paths:
        ctx.out.line(f"Now tracking {plural(len(paths), 'file')} it depends on:")
        for rel in paths:
            ctx.out.line(f"  {rel}")


def report_dropped(ctx: CommandContext, kind: str, dropped: list[tuple[str, str]], target_sets: list[str]) -> None:
    """Registered ids that re-registering a file dropped because the file no longer defines them."""
    for key, why in dropped:
        ctx.out.line(f"Dropped {kind} {key}: {why}", style="yellow")
    for change in target_sets:
        ctx.out.line(f"  {change}")
