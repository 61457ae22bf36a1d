"""``init``: create a project's metadata (and, from a template, its files) all at once or not at all.

The metadata folder is assembled under a temporary name and renamed into place as the last step, so a
failed init leaves nothing behind and a second init is never refused because of a half-made project.
Files written outside the metadata folder (``.modelopsignore``, ``pyproject.toml``, template files)
are created only where missing and removed again if the init fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from modelops_bundle.core.errors import AlreadyInitializedError, BundleError, UsageError
from modelops_bundle.core.fsutil import describe_os_error
from modelops_bundle.core.ignore import default_ignore_file_text
from modelops_bundle.core.project import META_DIR, Project, repository_name
from modelops_bundle.core.settings import ProjectConfig
from modelops_bundle.core.settings_files import load_environment, render_config
from modelops_bundle.core.workspace import SyncState, Workspace

TEMPLATE_SUFFIX = ".tmpl"
DEFAULT_TEMPLATE = "minimal"


@dataclass
class InitResult:
    project: Project
    environment: str
    config: ProjectConfig
    created: list[str] = field(default_factory=list)  # project-relative paths written outside META_DIR
    kept: list[str] = field(default_factory=list)  # template files that already existed


def available_templates() -> list[str]:
    root = resources.files("modelops_bundle") / "templates"
    return sorted(
        entry.name
        for entry in root.iterdir()
        if entry.is_dir() and not entry.name.startswith(("_", ".")) and entry.name != "plugin"
    )


def pinned_registry(value: str) -> tuple[str, str | None]:
    """``init --registry HOST[/REPOSITORY]`` as ``(registry, repository or None)``: the part up to the
    first ``/`` is the registry host (with an ``http[s]://`` prefix if given), the rest the repository."""
    from modelops_bundle.core.settings import check_registry_address, check_repository

    text = value.strip().rstrip("/")
    scheme, sep, rest = text.partition("://")
    prefix, body = (f"{scheme}://", rest) if sep else ("", text)
    host, _, repository = body.partition("/")
    problem = check_registry_address(prefix + host) or (check_repository(repository) if repository else None)
    if problem:
        raise UsageError(f"--registry {value!r}: {problem}", hint="use HOST[:PORT][/REPOSITORY], e.g. ghcr.io/lab/seir")
    return prefix + host, repository or None


def _template_files(template: str) -> list[tuple[str, bytes]]:
    base = resources.files("modelops_bundle") / "templates" / template
    if not base.is_dir():
        raise UsageError(f"unknown template {template!r}", hint="available: " + ", ".join(available_templates()))
    files: list[tuple[str, bytes]] = []

    def collect(node: object, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):  # type: ignore[attr-defined]
            if child.name in ("__pycache__",) or child.name.endswith(".pyc"):
                continue
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                collect(child, rel + "/")
            else:
                files.append((rel, child.read_bytes()))

    collect(base, "")
    return files


def render(content: bytes, variables: Mapping[str, str]) -> bytes:
    text = content.decode("utf-8")
    for key, value in variables.items():
        text = text.replace("{{" + key + "}}", value)
    return text.encode("utf-8")


def init_project(
    root: Path,
    environ: Mapping[str, str],
    *,
    env_name: str,
    template: str = DEFAULT_TEMPLATE,
    registry: str | None = None,
) -> InitResult:
    root = Path(os.path.abspath(root))
    if (root / META_DIR).exists():
        raise AlreadyInitializedError(f"{root} is already a modelops-bundle project ({META_DIR}/ exists)")
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is not a folder")
    load_environment(env_name, environ)  # must exist and be valid: raises ConfigError naming the file
    name = repository_name(root.name)
    pinned, repository = pinned_registry(registry) if registry else (None, None)
    config = ProjectConfig(repository=repository or name, registry=pinned)
    files = _template_files(template)  # validates the template name before touching the disk

    # The highest folder this init creates: a failure removes it, and with it every folder below.
    first_missing = next((p for p in (*reversed(root.parents), root) if not p.exists()), None)
    created: list[Path] = []
    result = InitResult(Project(root), env_name, config)
    staging: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{META_DIR}.init-", dir=root))
        (staging / "config.yaml").write_text(render_config(config), encoding="utf-8")
        (staging / "env").write_text(env_name + "\n", encoding="utf-8")
        (staging / "tracked.txt").write_text("", encoding="utf-8")
        (staging / "state.json").write_text(json.dumps(SyncState().to_json(), indent=2) + "\n", encoding="utf-8")
        (staging / ".gitignore").write_text("# machine-local data\ncache/\nstaging/\nlock\n", encoding="utf-8")
        variables = {"project_name": name, "package_name": name.replace("-", "_").replace(".", "_")}
        extra = [(".modelopsignore", default_ignore_file_text().encode("utf-8"))]
        for rel, content in [*extra, *files]:
            target_rel = rel[: -len(TEMPLATE_SUFFIX)] if rel.endswith(TEMPLATE_SUFFIX) else rel
            target = root / target_rel
            if target.exists():
                result.kept.append(target_rel)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as handle:
                handle.write(render(content, variables) if rel.endswith(TEMPLATE_SUFFIX) else content)
            created.append(target)
            result.created.append(target_rel)
        os.chmod(staging, 0o755)
        os.rename(staging, root / META_DIR)
        staging = None
        Workspace(result.project).remember_fresh(config)
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.unlink()
        _remove_empty_parents(root, created)
        if first_missing is not None:
            shutil.rmtree(first_missing, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BundleError(describe_os_error("initialise a project in", root, exc)) from exc
        raise
    return result


def _remove_empty_parents(root: Path, files: list[Path]) -> None:
    folders = {parent for path in files for parent in path.parents if root in parent.parents}
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()
