"""``status [--files] [--untracked-only] [--json]``: what changed since the last push or pull."""

from __future__ import annotations

import argparse
from typing import Any

from modelops_bundle.cli.common import (
    add_jobs_option,
    complete_with,
    hashing_progress,
    open_session,
    plural,
    report_notices,
)
from modelops_bundle.cli.console import human_bytes
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext

LIST_LIMIT = 50
SECTIONS = (
    ("added", "new file"),
    ("modified", "modified"),
    ("deleted", "deleted"),
    ("removed", "untracked since last sync"),
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", action="store_true", help="list every tracked file with its state and digest")
    parser.add_argument("--untracked-only", action="store_true", help="list only files that are not tracked")
    parser.add_argument("--offline", action="store_true", help="do not ask the registry (local changes only)")
    explain = parser.add_argument(
        "--explain", metavar="MODEL", help="name each changed dependency of a model or target, old and new digest"
    )
    complete_with(explain, "models")
    add_jobs_option(parser)


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.core.project_status import project_status, untracked

    session = open_session(ctx)
    if args.untracked_only:
        paths = untracked(session.ws)
        if ctx.out.json_mode:
            ctx.out.emit_json({"untracked": paths})
        else:
            for rel in paths:
                ctx.out.line(rel)
        return 0
    time_limit, waiting = None, None
    if not args.offline:
        from modelops_bundle.cli.waiting import spinner
        from modelops_bundle.core.deadline import DEFAULT_STATUS_TIMEOUT, STATUS_TIMEOUT_ENV, seconds_setting

        time_limit = seconds_setting(ctx.environ, STATUS_TIMEOUT_ENV, DEFAULT_STATUS_TIMEOUT)
        seconds = time_limit
        waiting = lambda where: spinner(ctx.out, f"Asking registry {where}, up to {seconds:g} s")  # noqa: E731
    report = project_status(
        session,
        offline=args.offline,
        tiers=args.files,
        threads=args.jobs,
        progress=hashing_progress(ctx),
        time_limit=time_limit,
        waiting=waiting,
    )
    report_notices(ctx, session)
    ws, scan, state, changes = session.ws, report.scan, report.state, report.changes
    remote, models, tiers, tracked = report.remote, report.models, report.tiers, report.tracked
    bundle, env_name = report.bundle, report.environment
    if args.explain:
        return _explain(ctx, models, args.explain)
    untracked_paths = scan.untracked or []
    total_bytes = sum(info.size for info in scan.files.values())
    grouped = {
        "added": changes.added,
        "modified": changes.modified,
        "deleted": changes.deleted,
        "removed": changes.untracked_since_sync,
    }

    if ctx.out.json_mode:
        payload: dict[str, Any] = {
            "project": str(ws.project.root),
            "bundle": bundle,
            "environment": env_name,
            "algorithm": scan.algorithm,
            "tracked_files": len(tracked),
            "tracked_bytes": total_bytes,
            "last_push_digest": state.last_push_digest,
            "last_pull_digest": state.last_pull_digest,
            "last_synced_digest": state.synced_digest,
            "changes": grouped,
            "untracked": untracked_paths,
            "skipped": [{"path": rel, "reason": why} for rel, why in scan.skipped],
            "unbundlable": [{"path": rel, "reason": why} for rel, why in scan.unbundlable],
            "remote": remote.to_json() if remote is not None else None,
            "models": models.to_json()["models"] if models is not None else [],
            "targets": models.to_json()["targets"] if models is not None else [],
        }
        if args.files:
            labels = changes.status_of()
            payload["files"] = [
                {
                    "path": rel,
                    "size": info.size,
                    "digest": info.digest,
                    "mode": f"{info.mode:o}",
                    "status": labels.get(rel, "unchanged"),
                    "tier": tiers.get(rel),
                }
                for rel, info in scan.files.items()
            ] + [
                {"path": rel, "size": None, "digest": None, "mode": None, "status": "deleted", "tier": None}
                for rel in scan.missing
            ]
        ctx.out.emit_json(payload)
        return 0

    out = ctx.out
    out.line(f"Bundle: {bundle}  (environment: {env_name})", style="bold")
    synced = state.synced_digest
    if synced:
        out.line(f"Last synced: {_short(synced)}" + (f" ({state.last_synced_ref})" if state.last_synced_ref else ""))
    elif state.last_synced_files:
        out.line(f"Last synced: part of a version (pull --model), {plural(len(state.last_synced_files), 'file')}")
    else:
        out.line("Last synced: never (not pushed yet)")
    out.line(f"Tracked: {plural(len(tracked), 'file')}, {human_bytes(total_bytes)}")
    if remote is not None:
        out.line(f"Remote: {describe_remote(remote)}", style=REMOTE_STYLE.get(remote.state))
    if changes.has_changes:
        changed = sum(len(paths) for paths in grouped.values())
        out.line("")
        out.line(f"Local changes: {plural(changed, 'file')}", style="bold")
        limit = None if (args.files or ctx.verbose) else LIST_LIMIT
        for key, label in SECTIONS:
            _list(out, grouped[key], f"  {label}: ", limit, style="green" if key == "added" else "yellow")
    else:
        out.line("")
        out.line("No local changes since the last sync." if tracked else "Nothing tracked yet.", style="green")
    for rel, why in scan.skipped:
        out.warn(f"skipped {rel}: {why}")
    if untracked_paths:
        out.line("")
        out.line(f"Untracked files ({len(untracked_paths)}; 'mops bundle add PATH' to track):", style="bold")
        _list(out, untracked_paths, "  ", None if (args.files or ctx.verbose) else LIST_LIMIT, style="red")
    if scan.unbundlable:
        from modelops_bundle.core.paths import shown_path

        out.line("")
        out.line(f"Not bundlable ({len(scan.unbundlable)}; 'mops bundle add' leaves these out):", style="bold")
        reasons = [f"{shown_path(rel)}: {why}" for rel, why in scan.unbundlable]
        _list(out, reasons, "  ", None if (args.files or ctx.verbose) else LIST_LIMIT, style="yellow")
    if args.files:
        labels = changes.status_of()
        rows = [
            [labels.get(rel, "unchanged"), human_bytes(info.size), tiers.get(rel, "-"), _short(info.digest), rel]
            for rel, info in scan.files.items()
        ] + [["deleted", "-", "-", "-", rel] for rel in scan.missing]
        out.line("")
        out.table("Tracked files", ["State", "Size", "Tier", "Digest", "Path"], rows)
    if models is not None:
        from modelops_bundle.core.model_status import model_table, target_table

        if models.models:
            columns, rows = model_table(models)
            out.line("")
            out.table(f"Registered Models ({len(rows)})", columns, _marked(out, columns, rows))
        if models.targets:
            columns, rows = target_table(models)
            out.line("")
            out.table(f"Calibration Targets ({len(rows)})", columns, _marked(out, columns, rows))
    if remote is not None and remote.state in ("behind", "diverged"):
        out.line("")
        conflicts = [item["path"] for item in remote.pull.get("conflicts") or ()]
        if conflicts:  # pull would refuse: say so now, with the ways out its error would give
            from modelops_bundle.core.paths import shown_path

            named = ", ".join(shown_path(rel) for rel in conflicts[:5])
            more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
            out.line(f"Changed here and in the registry: {named}{more}", style="yellow")
            out.line(
                "Move those edits aside (or push them elsewhere) and run 'mops bundle pull', or take the "
                "registry's version with 'mops bundle pull --overwrite'"
            )
        else:
            out.line("Run 'mops bundle pull' to bring in the remote changes")
    elif changes.has_changes:
        out.line("")
        out.line("Run 'mops bundle push' to sync with the registry")
    return 0


def _explain(ctx: CommandContext, report: Any, name: str) -> int:
    from modelops_bundle.core.errors import UsageError
    from modelops_bundle.core.model_status import explain_lines

    item = report.find(name) if report is not None else None
    if item is None:
        from modelops_bundle.core.suggest import did_you_mean

        names = report.names() if report is not None else []
        known = ", ".join(names) or "none registered"
        raise UsageError(
            f"no registered model or target named {name!r}{did_you_mean(name, names)}", hint=f"known: {known}"
        )
    if ctx.out.json_mode:
        ctx.out.emit_json(item.to_json())
    else:
        for line in explain_lines(item):
            ctx.out.line(line)
    return 0


#: Status-column markers on a terminal, as the seed README shows them (``✓ Ready``, ``⚠ Stale``).
STATUS_MARKERS = {"Ready": "✓", "Stale": "⚠", "Broken": "✗"}


def _marked(out: Any, columns: list[str], rows: list[list[str]]) -> list[list[str]]:
    """Rows with a marker before the status (the ``Status`` column) on a terminal; plain text stays as
    it is, so scripts that read the non-TTY table see the same words as before."""
    if not out.interactive:
        return rows
    at = columns.index("Status")
    marked = []
    for row in rows:
        marker = STATUS_MARKERS.get(row[at].split(" ", 1)[0])
        marked.append([*row[:at], f"{marker} {row[at]}" if marker else row[at], *row[at + 1 :]])
    return marked


REMOTE_STYLE = {"synced": "green", "ahead": "yellow", "behind": "yellow", "diverged": "red", "unknown": "red"}


def describe_remote(remote: Any) -> str:
    """One line on where the project's tag stands, and what push and pull would do."""
    where = f"{remote.reference} in {remote.registry}" if remote.registry else remote.reference
    digest = _short(remote.remote_digest) if remote.remote_digest else ""
    if remote.state == "not-pushed":
        return f"not pushed yet ({where})"
    if remote.state == "synced":
        return f"synced with {digest} ({where})"
    if remote.state == "ahead":
        return f"ahead of {digest}: push would update {_counts(remote.push)}"
    if remote.state == "behind":
        return f"behind: {where} moved to {digest}; pull would bring {_counts(remote.pull)}"
    if remote.state == "diverged":
        return f"diverged: {where} moved to {digest} and there are local changes"
    return f"unknown ({remote.error})"


def _counts(plan: dict[str, Any]) -> str:
    parts = []
    labels = {
        "added": "added",
        "modified": "modified",
        "deleted": "deleted",
        "add": "to add",
        "update": "to update",
        "restore": "to restore",
        "delete": "to delete",
    }
    for key, label in labels.items():
        value = plan.get(key)
        count = len(value) if isinstance(value, list) else value
        if isinstance(count, int) and count:
            parts.append(f"{count} {label}")
    return ", ".join(parts) or "nothing"


def _short(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}:{hexdigest[:12]}"


def _list(out: Any, paths: list[str], prefix: str, limit: int | None, *, style: str) -> None:
    shown = paths if limit is None else paths[:limit]
    for rel in shown:
        out.line(f"{prefix}{rel}", style=style)
    if len(shown) < len(paths):
        out.line(f"{prefix}... and {len(paths) - len(shown)} more (--files to list all)")


COMMAND = Command(
    name="status",
    help="show tracked, changed and untracked files",
    run=run,
    configure=configure,
    epilog="examples:\n  mops bundle status\n  mops bundle status --files\n  mops bundle status --untracked-only\n"
    "  mops bundle status --json",
)
