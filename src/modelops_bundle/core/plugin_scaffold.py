"""``plugin new``: render ``templates/plugin/`` into a ready-to-install plugin package.

The template is one shared skeleton (``common/``: pyproject with the entry point, README, package,
metadata tests) plus one folder per kind holding the hook module and its tests. Files ending in
``.tmpl`` have ``{{variable}}`` placeholders filled in; a path segment ``__package__`` becomes the
package name, and a leading ``dot-`` a dot (``dot-gitignore``). Everything is written into a hidden
temporary folder beside the destination, which is renamed into place last: a failure leaves nothing
behind, and an existing destination is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from modelops_bundle import PLUGIN_API, __version__
from modelops_bundle.core.errors import BundleError, UsageError
from modelops_bundle.core.fsutil import describe_os_error

if TYPE_CHECKING:
    from importlib.abc import Traversable

KINDS = ("discovery", "storage", "registry", "packaging")
TEMPLATE_SUFFIX = ".tmpl"
PACKAGE_SEGMENT = "__package__"
#: A leading ``dot-`` becomes ``.``: dotfiles inside a Python package are easily lost by packaging tools.
DOT_PREFIX = "dot-"
#: A kind's README section: rendered into the shared README at ``{{kind_readme}}``, not written itself.
KIND_README = "README.kind.md.tmpl"

#: Plugin names: lowercase words joined by single hyphens (``labstore``, ``mesa-models``).
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_NAME = 40
#: Names a plugin must not take: the built-in plugins, providers and backends (a plugin of the same name
#: would be refused, or would silently replace the built-in), and registry provider words that select the
#: HTTP backend whatever is installed.
RESERVED = frozenset(
    {
        "commands",
        "sha256",
        "storage",
        "packaging",
        "basemodel",
        "starsim",
        "calabaria",
        "code-fingerprint",
        "oci-layout",
        "oci-distribution",
        "local",
        "fsspec",
        "azure",
        "azurite",
        "s3",
        "minio",
        "gcs",
        "oci",
        "docker",
        "acr",
        "ecr",
        "gcr",
        "ghcr",
        "distribution",
    }
)

#: The hooks each kind's module implements (the generated metadata test checks the list).
KIND_HOOKS: Mapping[str, tuple[str, ...]] = {
    "discovery": ("mops_discover_models",),
    "storage": ("mops_storage_providers",),
    "registry": ("mops_registry_backends",),
    "packaging": ("mops_manifest_annotations", "mops_storage_tier"),
}

KIND_SUMMARY: Mapping[str, str] = {
    "discovery": "discovers models deriving from a framework's base class",
    "storage": "a blob-storage provider keeping objects in a folder",
    "registry": "an OCI-layout registry backend with immutable release tags",
    "packaging": "a lab's manifest annotations and storage-tier rule",
}


@dataclass
class ScaffoldResult:
    name: str
    kind: str
    distribution: str
    package: str
    destination: Path
    files: list[str] = field(default_factory=list)  # POSIX paths relative to the destination

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "distribution": self.distribution,
            "package": self.package,
            "entry_point": f"{self.name} = {self.package}.plugin",
            "hooks": list(KIND_HOOKS[self.kind]),
            "path": str(self.destination),
            "files": self.files,
        }


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not NAME_RE.match(name):
        raise UsageError(
            f"invalid plugin name {name!r}: use lowercase letters and digits, words joined by '-'"
            f" (at most {MAX_NAME} characters), starting with a letter",
            hint="for example: labstore, mesa-models",
        )
    if name in RESERVED:
        raise UsageError(
            f"plugin name {name!r} is taken by a built-in plugin or provider of modelops-bundle",
            hint=f"choose another name, e.g. lab-{name}",
        )
    return name


def variables(name: str, kind: str) -> dict[str, str]:
    """Every placeholder the templates use."""
    module = name.replace("-", "_")
    major, minor = [*__version__.split("."), "0"][:2]
    hooks = KIND_HOOKS[kind]
    return {
        "name": name,
        "kind": kind,
        "module": module,
        "package": f"mops_{module}",
        "distribution": f"mops-{name}",
        "class_prefix": "".join(part.capitalize() for part in name.split("-")),
        "title": f"mops-{name}",
        "summary": KIND_SUMMARY[kind],
        "mops_version": f"{major}.{minor}",
        "plugin_api": ".".join(map(str, PLUGIN_API)),
        "hooks": ", ".join(f"`{hook}`" for hook in hooks),
        "hooks_list": json.dumps(sorted(hooks)),
    }


def render_text(text: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _walk(node: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__" or child.name.endswith(".pyc"):
            continue
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            yield from _walk(child, rel + "/")
        else:
            yield rel, child


def template_files(kind: str) -> dict[str, Traversable]:
    """Template-relative path -> file: the shared skeleton, then the kind's files (which win)."""
    if kind not in KINDS:
        raise UsageError(f"unknown plugin kind {kind!r}", hint="choose one of " + ", ".join(KINDS))
    base = resources.files("modelops_bundle") / "templates" / "plugin"
    files = dict(_walk(base / "common"))
    files.update(_walk(base / kind))
    return files


def render_plugin(name: str, kind: str) -> dict[str, bytes]:
    """The generated package in memory: destination-relative path -> content."""
    values = variables(check_name(name), kind)
    files = template_files(kind)
    readme = files.pop(KIND_README, None)
    values["kind_readme"] = render_text(readme.read_text(encoding="utf-8"), values).strip() if readme else ""
    rendered: dict[str, bytes] = {}
    for rel, source in files.items():
        target = "/".join(_target_segment(part, values["package"]) for part in rel.split("/"))
        if target.endswith(TEMPLATE_SUFFIX):
            target = target[: -len(TEMPLATE_SUFFIX)]
            rendered[target] = render_text(source.read_text(encoding="utf-8"), values).encode("utf-8")
        else:
            rendered[target] = source.read_bytes()
    return rendered


def _target_segment(part: str, package: str) -> str:
    if part == PACKAGE_SEGMENT:
        return package
    return "." + part[len(DOT_PREFIX) :] if part.startswith(DOT_PREFIX) else part


def default_destination(cwd: Path, name: str) -> Path:
    return cwd / f"mops-{name}"


def create_plugin(name: str, kind: str, destination: Path) -> ScaffoldResult:
    """Write the package to ``destination`` (which must not exist) all at once or not at all."""
    values = variables(check_name(name), kind)
    destination = Path(os.path.abspath(destination))
    if destination.exists() or destination.is_symlink():
        raise UsageError(
            f"{destination} already exists; the plugin is only created in a new folder",
            hint="choose another folder with --dest, or remove that one",
        )
    files = render_plugin(name, kind)
    parent = destination.parent
    first_missing = next((p for p in (*reversed(parent.parents), parent) if not p.exists()), None)
    staging: Path | None = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".partial", dir=parent))
        for rel, content in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a package folder is an ordinary folder
        # rename() would replace an empty folder made meanwhile; refuse instead, as above.
        if destination.exists():
            raise UsageError(f"{destination} appeared while the plugin was being written; nothing was changed")
        os.rename(staging, destination)
        staging = None
    except OSError as exc:
        raise BundleError(describe_os_error("create the plugin in", destination, exc)) from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
            if first_missing is not None:
                with contextlib.suppress(OSError):
                    shutil.rmtree(first_missing)
    return ScaffoldResult(
        name=name,
        kind=kind,
        distribution=values["distribution"],
        package=values["package"],
        destination=destination,
        files=sorted(files),
    )
