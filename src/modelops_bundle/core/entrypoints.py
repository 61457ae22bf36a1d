"""A light reader of entry points, so building the plugin host stays fast.

``importlib.metadata`` costs ~30 ms to import and scan on every command; this reads the same
``*.dist-info/entry_points.txt`` files from ``sys.path`` directly (first distribution of a name wins,
as importlib.metadata does). Anything unusual -- a zipped path entry, an egg -- falls back to
``importlib.metadata`` so no plugin is ever missed.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterable
from typing import Any, NamedTuple


class EntryPointRecord(NamedTuple):
    """One entry point of the plugin group, with the distribution that declares it."""

    name: str
    value: str  # "module:attr" or "module"
    distribution: str
    version: str

    def load(self) -> Any:
        return load_object(self.value)


def load_object(value: str) -> Any:
    """The object ``"package.module:attr.path"`` names (the module itself for ``"package.module"``)."""
    module_name, _, attr = value.partition(":")
    target: Any = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        target = getattr(target, part)
    return target


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _parse_sections(text: str) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), [])
            continue
        if current is not None and "=" in line:
            key, _, value = line.partition("=")
            current.append((key.strip(), value.split("[", 1)[0].strip()))
    return sections


def _metadata_field(dist_dir: str, field: str) -> str | None:
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(dist_dir, filename), encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if not line.strip():
                        break  # end of headers
                    if line.startswith(f"{field}:"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            continue
    return None


def entry_points(
    group: str, paths: Iterable[str] | None = None, *, distribution: str | None = None
) -> list[EntryPointRecord]:
    """Entry points of ``group`` from every distribution on ``paths`` (default ``sys.path``), or only
    from the one named ``distribution``."""
    only = _normalise(distribution) if distribution is not None else None
    records: list[EntryPointRecord] = []
    seen: set[str] = set()
    for entry in paths if paths is not None else sys.path:
        directory = entry or "."
        if not os.path.isdir(directory):
            if os.path.isfile(directory):  # a zip or egg on sys.path: let importlib.metadata handle it
                return _fallback(group, only)
            continue
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if name.endswith(".egg-info") or name.endswith(".egg"):
                if os.path.isdir(os.path.join(directory, name)) and os.path.exists(
                    os.path.join(directory, name, "entry_points.txt")
                ):
                    return _fallback(group, only)
                continue
            if not name.endswith(".dist-info"):
                continue
            dist_dir = os.path.join(directory, name)
            stem = name[: -len(".dist-info")]
            dist_name, _, version = stem.partition("-")
            key = _normalise(dist_name)
            if key in seen or (only is not None and key != only):
                continue
            seen.add(key)
            try:
                with open(os.path.join(dist_dir, "entry_points.txt"), encoding="utf-8") as handle:
                    sections = _parse_sections(handle.read())
            except OSError:
                continue
            items = sections.get(group)
            if not items:
                continue
            display = _metadata_field(dist_dir, "Name") or dist_name
            version = _metadata_field(dist_dir, "Version") or version
            records.extend(EntryPointRecord(ep_name, value, display, version) for ep_name, value in items)
    return records


def _fallback(group: str, only: str | None = None) -> list[EntryPointRecord]:
    from importlib.metadata import entry_points as metadata_entry_points

    records = []
    for ep in metadata_entry_points(group=group):
        dist = getattr(ep, "dist", None)
        name = dist.metadata["Name"] if dist is not None else "(unknown distribution)"
        if only is not None and _normalise(name) != only:
            continue
        version = dist.version if dist is not None else ""
        records.append(EntryPointRecord(ep.name, ep.value, name, version))
    return records
