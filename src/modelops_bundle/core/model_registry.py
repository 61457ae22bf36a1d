"""``.modelops-bundle/registry.yaml``: the models and calibration targets a bundle holds, with digests.

The file travels inside every version (through the packaging plugin's ``mops_extra_files``) and keeps
the upstream ModelOps format, so workers written against ``modelops_contracts.BundleRegistry`` read it::

    version: '1.0'
    fingerprint: bytes            # how model_digest treats code: bytes (default) or ast
    models:
      seir_seirmodel:
        entrypoint: models.seir:SEIRModel
        path: models/seir.py
        class_name: SEIRModel
        framework: calabaria      # added by this tool; upstream readers ignore unknown keys
        scenarios: []
        parameters: [R0, ...]
        outputs: [incidence, ...]
        data: [data/demographics.csv]
        data_digests: {data/demographics.csv: sha256:...}
        code: [models/__init__.py, models/seir.py, ...]   # the model file and its import closure
        code_digests: {models/seir.py: sha256:..., ...}
        model_digest: sha256:...
    targets:
      incidence: {path, entrypoint, model_output, data, data_digests, code, code_digests, target_digest}
    target_sets:
      main: {targets: [incidence], weights: {incidence: 1.0}}

Keys this tool does not know are kept as they are (another ModelOps tool may have written them).

Digests
    ``code_digests`` and ``data_digests`` are always byte digests (``sha256:``), the very digests of the
    bundle index: a worker verifies them against the files it pulled, and ``diff`` computes model impact
    from two indexes without reading a file. ``model_digest`` (and ``target_digest``) identify what a
    calibration result depends on: ``sha256`` over the lines ``"<path>\\0<digest>\\n"`` of every code and
    data dependency, sorted by path. With ``fingerprint: bytes`` (the default) each line carries the byte
    digest; with ``fingerprint: ast`` a Python file's line carries its code fingerprint instead
    (``pyast1-sha256:``, see :mod:`modelops_bundle.plugins.code_fingerprint`), recorded per file in
    ``code_fingerprints``, so a comment-only edit keeps the model digest and the model ``Ready``.

    Bytes are the default because (1) ``status`` stays cheap -- byte digests come free from the scan's
    stat cache, while fingerprints need every changed file read and parsed; (2) they agree with the
    bundle index and with upstream workers, which compare ``code_digests`` to file hashes; (3) they are
    exact: a fingerprint is an argument about which edits cannot matter, which holds for comments and
    formatting but is a choice a modeller should make knowingly (set ``fingerprint: ast``).

Digests are refreshed from the push's own scan (:func:`refresh_digests`) before a push builds its index,
so the registry inside a version always describes the files of that version.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.fsutil import atomic_write_text
from modelops_bundle.core.memo import Memo, file_fingerprint
from modelops_bundle.core.validation import dump_yaml, parse_yaml, read_text, validate

if TYPE_CHECKING:
    from modelops_bundle.core.discovery import CodeDependencies, DiscoveredModel, ProjectSources, SourceFile
    from modelops_bundle.core.plugins import PluginHost
    from modelops_bundle.core.workspace import Scan, Workspace

REGISTRY_VERSION = "1.0"
#: The model registry's own memo (:mod:`.memo`): large, and only the commands that use models read it.
MEMO_FILE = "registry.json"
FingerprintMode = Literal["bytes", "ast"]
FINGERPRINT_MODES: tuple[FingerprintMode, ...] = ("bytes", "ast")

#: Reads a project file's bytes and answers its code fingerprint, or ``None`` (not Python, no plugin).
Fingerprinter = Callable[[str], "str | None"]


# ------------------------------------------------------------------------------------ runtime types


@dataclass(kw_only=True)
class DependentRecord:
    """What models and targets share: code and data dependencies with their recorded digests."""

    path: str
    entrypoint: str
    code: list[str] = field(default_factory=list)
    code_digests: dict[str, str] = field(default_factory=dict)
    code_fingerprints: dict[str, str] = field(default_factory=dict)
    data: list[str] = field(default_factory=list)
    data_digests: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def dependencies(self) -> list[tuple[str, str]]:
        """``(path, "code" | "data")`` for every dependency, the definition file included, no repeats."""
        seen: dict[str, str] = {self.path: "code"}
        seen.update(dict.fromkeys(self.code, "code"))
        for rel in self.data:
            seen.setdefault(rel, "data")
        return list(seen.items())

    def recorded_digest(self, rel: str, kind: str) -> str | None:
        return (self.data_digests if kind == "data" else self.code_digests).get(rel)


@dataclass(kw_only=True)
class ModelRecord(DependentRecord):
    class_name: str
    framework: str | None = None
    scenarios: list[str] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    model_digest: str | None = None
    #: Entrypoints of the framework components (Starsim networks, diseases, ...) the model's code uses.
    components: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class TargetRecord(DependentRecord):
    model_output: str
    target_digest: str | None = None


@dataclass
class TargetSetRecord:
    targets: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Registry:
    """The whole registry; plain data, cheap to build from the memoised JSON form."""

    version: str = REGISTRY_VERSION
    fingerprint: FingerprintMode = "bytes"
    models: dict[str, ModelRecord] = field(default_factory=dict)
    targets: dict[str, TargetRecord] = field(default_factory=dict)
    target_sets: dict[str, TargetSetRecord] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (self.models or self.targets or self.target_sets)

    def records(self) -> list[tuple[str, str, DependentRecord]]:
        """``("model" | "target", id, record)`` for everything with dependencies."""
        found: list[tuple[str, str, DependentRecord]] = [("model", key, m) for key, m in self.models.items()]
        found += [("target", key, t) for key, t in self.targets.items()]
        return found

    def outputs(self) -> set[str]:
        return {name for model in self.models.values() for name in model.outputs}

    # ------------------------------------------------------------------ (de)serialisation

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "fingerprint": self.fingerprint,
            "models": {key: _model_json(model) for key, model in self.models.items()},
            "targets": {key: _target_json(target) for key, target in self.targets.items()},
            "target_sets": {
                key: {"targets": list(s.targets), "weights": dict(s.weights), **s.extra}
                for key, s in self.target_sets.items()
            },
            **self.extra,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Registry:
        """From validated data (see :func:`parse_registry`); trusts its input."""
        rest = dict(data)
        registry = cls(
            version=str(rest.pop("version", REGISTRY_VERSION)),
            fingerprint=rest.pop("fingerprint", "bytes") or "bytes",
        )
        for key, entry in (rest.pop("models", None) or {}).items():
            registry.models[key] = ModelRecord(**_split_known(entry, _MODEL_KEYS))
        for key, entry in (rest.pop("targets", None) or {}).items():
            registry.targets[key] = TargetRecord(**_split_known(entry, _TARGET_KEYS))
        for key, entry in (rest.pop("target_sets", None) or {}).items():
            registry.target_sets[key] = TargetSetRecord(**_split_known(entry, {"targets", "weights"}))
        registry.extra = rest
        return registry


_SHARED_KEYS = {"path", "entrypoint", "code", "code_digests", "code_fingerprints", "data", "data_digests"}
_MODEL_KEYS = _SHARED_KEYS | {
    "class_name",
    "framework",
    "scenarios",
    "parameters",
    "outputs",
    "model_digest",
    "components",
}
_TARGET_KEYS = _SHARED_KEYS | {"model_output", "target_digest"}


def _split_known(entry: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    values = {key: value for key, value in entry.items() if key in known and value is not None}
    values["extra"] = {key: value for key, value in entry.items() if key not in known}
    return values


def _dependency_json(record: DependentRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "data": list(record.data),
        "data_digests": dict(sorted(record.data_digests.items())),
        "code": list(record.code),
        "code_digests": dict(sorted(record.code_digests.items())),
    }
    if record.code_fingerprints:
        out["code_fingerprints"] = dict(sorted(record.code_fingerprints.items()))
    return out


def _model_json(model: ModelRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"entrypoint": model.entrypoint, "path": model.path, "class_name": model.class_name}
    if model.framework:
        out["framework"] = model.framework
    out.update(scenarios=list(model.scenarios), parameters=list(model.parameters), outputs=list(model.outputs))
    if model.components:
        out["components"] = list(model.components)
    out.update(_dependency_json(model))
    out["model_digest"] = model.model_digest
    out.update(model.extra)
    return out


def _target_json(target: TargetRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"path": target.path, "entrypoint": target.entrypoint, "model_output": target.model_output}
    out.update(_dependency_json(target))
    out["target_digest"] = target.target_digest
    out.update(target.extra)
    return out


# --------------------------------------------------------------------------------------- schema


@functools.cache
def _schema() -> Any:
    """The pydantic schema, built on first use so that a warm ``status`` never imports pydantic."""
    import re

    from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

    from modelops_bundle.core.schemas import Digest, RelPath

    entrypoint_pattern = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")

    def check_entrypoint(value: str) -> str:
        if not entrypoint_pattern.match(value):
            raise ValueError(f"{value!r} is not 'package.module:Name'")
        return value

    class Entry(BaseModel):
        # Unknown keys are kept: the registry is shared with other ModelOps tools.
        model_config = ConfigDict(extra="allow")

        path: RelPath
        entrypoint: str
        data: list[RelPath] = Field(default_factory=list)
        data_digests: dict[RelPath, Digest] = Field(default_factory=dict)
        code: list[RelPath] = Field(default_factory=list)
        code_digests: dict[RelPath, Digest] = Field(default_factory=dict)
        code_fingerprints: dict[RelPath, Digest] = Field(default_factory=dict)

        @field_validator("entrypoint")
        @classmethod
        def _entrypoint(cls, value: str) -> str:
            return check_entrypoint(value)

        @field_validator("data", "code", "data_digests", "code_digests", "code_fingerprints", mode="before")
        @classmethod
        def _null_is_empty(cls, value: Any) -> Any:
            return value if value is not None else []

    class ModelSchema(Entry):
        class_name: str = Field(min_length=1)
        framework: str | None = None
        scenarios: list[str] = Field(default_factory=list)
        parameters: list[str] = Field(default_factory=list)
        outputs: list[str] = Field(default_factory=list)
        model_digest: Digest | None = None
        components: list[str] = Field(default_factory=list)

    class TargetSchema(Entry):
        model_output: str = Field(min_length=1)
        target_digest: Digest | None = None

    class TargetSetSchema(BaseModel):
        model_config = ConfigDict(extra="allow")

        targets: list[str] = Field(default_factory=list)
        weights: dict[str, float] = Field(default_factory=dict)

    class RegistrySchema(BaseModel):
        model_config = ConfigDict(extra="allow")

        version: str = REGISTRY_VERSION
        fingerprint: Literal["bytes", "ast"] = "bytes"
        models: dict[str, ModelSchema] = Field(default_factory=dict)
        targets: dict[str, TargetSchema] = Field(default_factory=dict)
        target_sets: dict[str, TargetSetSchema] = Field(default_factory=dict)

        @field_validator("version", mode="before")
        @classmethod
        def _version(cls, value: Any) -> Any:
            # ``version: 1.0`` unquoted is a YAML float; upstream writes the string.
            return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

        @field_validator("models", "targets", "target_sets", "fingerprint", mode="before")
        @classmethod
        def _null_is_default(cls, value: Any, info: ValidationInfo) -> Any:
            if value is None:
                return "bytes" if info.field_name == "fingerprint" else {}
            return value

    return RegistrySchema


def parse_registry(text: str, origin: Path | str) -> Registry:
    """Validate registry YAML (local file, or the bytes of a pulled version's copy, decoded).

    Errors name ``origin`` and, where possible, the line; they are :class:`ConfigError` (exit code 2).
    """
    path = Path(origin)
    data = parse_yaml(text, path)
    if data is None:
        data = {}
    validated = validate(_schema(), data, path, yaml_text=text)
    return Registry.from_json(validated.model_dump(mode="json"))


def parse_registry_bytes(data: bytes, origin: str) -> Registry:
    """A remote version's ``registry.yaml`` (for cloud state and ``diff``)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{origin}: not UTF-8 text (byte {exc.start})") from None
    return parse_registry(text, origin)


# ------------------------------------------------------------------------------- load and save


def load_registry(ws: Workspace) -> Registry:
    """The project's registry (empty when there is none), validated once per file state.

    The validated form is remembered as JSON in a memo of its own (``cache/registry.json``, see
    :mod:`.memo`), so a warm ``status`` neither parses YAML nor imports pydantic -- and a project without
    models does not carry the registry in the memo every command loads.
    """
    path = ws.project.registry_path
    if file_fingerprint(path) is None:
        if path.exists() or path.is_symlink():
            read_text(path, what="model registry")  # raises the precise error
        return Registry()
    memo = _registry_memo(ws)
    data = memo.cached("registry", path, lambda: parse_registry(read_text(path, what="model registry"), path).to_json())
    memo.save()
    return Registry.from_json(data)


def _registry_memo(ws: Workspace) -> Memo:
    return Memo.load(ws.project.cache_dir / MEMO_FILE)


def render_registry(registry: Registry) -> str:
    header = "# modelops-bundle model registry (travels with the bundle; see docs/formats.md)\n"
    return header + dump_yaml(registry.to_json())


def save_registry(ws: Workspace, registry: Registry) -> bool:
    """Write the registry atomically (call under the project lock); False when nothing changed."""
    path = ws.project.registry_path
    text = render_registry(registry)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    memo = _registry_memo(ws)
    memo.remember("registry", path, registry.to_json())
    memo.save()
    return True


# -------------------------------------------------------------------------------------- digests


def combined_digest(lines: Iterable[tuple[str, str]]) -> str:
    """``sha256`` over ``"<path>\\0<digest>\\n"`` of each dependency, sorted by path."""
    digest = hashlib.sha256()
    for rel, value in sorted(lines):
        digest.update(f"{rel}\0{value}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def record_digest(record: DependentRecord, mode: FingerprintMode) -> str | None:
    """The model or target digest from the record's own dependency digests (``None`` if one is missing)."""
    lines = []
    for rel, kind in record.dependencies():
        value = record.recorded_digest(rel, kind)
        if mode == "ast" and kind == "code":
            value = record.code_fingerprints.get(rel, value)
        if value is None:
            return None
        lines.append((rel, value))
    return combined_digest(lines)


def code_fingerprinter(host: PluginHost, root: Path) -> Fingerprinter:
    """A function answering the ``mops_code_fingerprint`` hook for a project file (``None`` if unreadable)."""

    def fingerprint(rel: str) -> str | None:
        path = root / rel
        try:
            source = path.read_bytes()
        except OSError:
            return None
        result = host.hook.mops_code_fingerprint(path=path, source=source)
        return result if isinstance(result, str) else None

    return fingerprint


def refresh_digests(registry: Registry, scan: Scan, *, fingerprinter: Fingerprinter | None = None) -> list[str]:
    """Recompute every dependency digest and model/target digest from ``scan`` (no re-hashing).

    Call before a push builds its index, with the push's own scan, then :func:`save_registry`: the
    registry inside the version then matches the version's files. With ``fingerprint: ast`` Python code
    files are also fingerprinted (``fingerprinter``, see :func:`code_fingerprinter`). Returns the
    dependencies ``scan`` has no digest for (missing or untracked); their old digests are kept.
    """
    absent: set[str] = set()
    for _kind, _key, record in registry.records():
        code_digests: dict[str, str] = {}
        data_digests: dict[str, str] = {}
        for rel, kind in record.dependencies():
            info = scan.files.get(rel)
            old = record.recorded_digest(rel, kind)
            if info is None:
                absent.add(rel)
                value = old
            else:
                value = info.digest
            if value is not None:
                (data_digests if kind == "data" else code_digests)[rel] = value
        if registry.fingerprint == "ast" and fingerprinter is not None:
            fingerprints = {}
            for rel, value in code_digests.items():
                # A fingerprint is reused only while the bytes it was made from are unchanged.
                old_fingerprint = record.code_fingerprints.get(rel)
                if old_fingerprint is None or record.code_digests.get(rel) != value or rel in absent:
                    old_fingerprint = fingerprinter(rel)
                if old_fingerprint is not None:
                    fingerprints[rel] = old_fingerprint
            record.code_fingerprints = fingerprints
        elif registry.fingerprint == "bytes":
            record.code_fingerprints = {}
        record.code_digests, record.data_digests = code_digests, data_digests
        _set_digest(record, record_digest(record, registry.fingerprint))
    return sorted(absent)


def stored_digest(record: DependentRecord) -> str | None:
    """The record's ``model_digest`` or ``target_digest``."""
    if isinstance(record, ModelRecord):
        return record.model_digest
    if isinstance(record, TargetRecord):
        return record.target_digest
    return None


def _set_digest(record: DependentRecord, value: str | None) -> None:
    if isinstance(record, ModelRecord):
        record.model_digest = value
    elif isinstance(record, TargetRecord):
        record.target_digest = value


def default_model_id(rel: str, class_name: str) -> str:
    """The upstream rule: ``<file stem>_<class>`` lower-cased (``models/seir.py``, ``SEIR`` -> ``seir_seir``)."""
    stem = rel.rsplit("/", 1)[-1]
    stem = stem[:-3] if stem.endswith(".py") else stem
    return f"{stem}_{class_name}".lower()


# --------------------------------------------------------------------------------- registration


@dataclass
class RegistrationResult:
    """What ``register-model`` / ``register-target`` did."""

    registered: list[tuple[str, DependentRecord, bool]] = field(default_factory=list)  # (id, record, updated)
    newly_tracked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Ids registered from the same file that it no longer defines, dropped: ``(id, why)``.
    dropped: list[tuple[str, str]] = field(default_factory=list)
    #: What dropping targets did to target sets (``"target set main: removed incidence"``).
    target_set_changes: list[str] = field(default_factory=list)


def expand_paths(ws: Workspace, rels: Iterable[str], what: str) -> list[str]:
    """Files named by project-relative paths: a file as is, a folder as its files (ignore rules honoured).

    A path that does not exist, a folder with no includable file, or a path inside ``.modelops-bundle/``
    is a :class:`UsageError`. A file named explicitly is taken even if ``.modelopsignore`` matches it:
    the user asked for it, and tracked files win over ignore rules.
    """
    from modelops_bundle.core.errors import UsageError

    rules = ws.ignore_rules()
    root = ws.project.root
    found: dict[str, None] = {}
    for rel in rels:
        shown = rel or "."
        if rel and rules.is_hard_excluded(rel.split("/")[0], is_dir=True):
            raise UsageError(f"{what} path '{shown}' is inside {rel.split('/')[0]}/, which is never part of a bundle")
        path = root / rel
        if path.is_dir():
            walked = ws.walk(rel)
            if not walked.files:
                raise UsageError(f"{what} folder '{shown}' holds no files (or only ignored ones)")
            found.update(dict.fromkeys(walked.files))
        elif path.is_file():
            found[rel] = None
        else:
            raise UsageError(f"{what} path not found: {shown}")
    return list(found)


def register_models(
    ws: Workspace,
    host: PluginHost,
    *,
    rel: str,
    classes: list[str],
    data: list[str],
    code: list[str],
    model_id: str | None,
) -> RegistrationResult:
    """Discover (or pick, ``classes``) the models of ``rel``, compute their dependencies and record them.

    Registering a model again (same id, same entrypoint) updates it: the import closure is recomputed,
    and ``data`` / ``code`` left empty keep the previous registration's files.
    Takes the project lock. Everything is checked before anything is written: on any error the
    registry and the tracked list are left exactly as they were.
    """
    from modelops_bundle.core.dependencies import code_closure, collect_code_dependencies
    from modelops_bundle.core.discovery import DiscoveredModel, ProjectSources, discover_models, module_classes
    from modelops_bundle.core.errors import UsageError

    result = RegistrationResult()
    sources = ProjectSources(ws.project.root)
    _require_python_file(ws, rel, "model")
    source = sources.get(rel)  # a syntax error stops here, naming file and line
    discovery = discover_models(host, source)
    result.warnings.extend(discovery.failures)
    found = {model.class_name: model for model in discovery.models}
    components = {model.class_name: model for model in discovery.components}
    all_classes = module_classes(source)
    chosen: list[DiscoveredModel] = []
    if classes:
        for name in dict.fromkeys(classes):
            if name in found:
                chosen.append(found[name])
            elif name in components:
                part = components[name]
                result.warnings.append(
                    f"{rel}: {name} is a {part.framework} {part.kind or 'component'}, a part of models rather "
                    "than a model; registering it anyway"
                )
                chosen.append(part)
            elif name in all_classes:
                result.warnings.append(
                    f"{rel}: class {name} is not recognised as a model by any discovery plugin; registering it anyway"
                )
                chosen.append(DiscoveredModel(name, rel, "unknown", all_classes[name].lineno, source=source))
            else:
                raise UsageError(f"class '{name}' not found in {rel}", hint=_classes_hint(found, all_classes))
    else:
        if not found:
            raise UsageError(
                f"no model classes found in {rel}", hint=_classes_hint(found, all_classes, discovery.components)
            )
        chosen = list(found.values())
    if model_id is not None and len(chosen) > 1:
        names = ", ".join(model.class_name for model in chosen)
        raise UsageError(
            f"--id names one model, but {len(chosen)} are selected ({names})",
            hint="pick one with --class NAME",
        )

    data_files = expand_paths(ws, data, "data")
    explicit_code = expand_paths(ws, code, "code")
    extra_code = code_closure(sources, [path for path in explicit_code if path.endswith(".py")])
    extra_code.files.update(explicit_code)

    with ws.lock():
        registry = load_registry(ws)
        ids = [model_id or default_model_id(rel, model.class_name) for model in chosen]
        gone = {
            key: f"{record.class_name} is no longer defined in {rel}"
            for key, record in registry.models.items()
            if record.path == rel and key not in ids and not _defines(source, record.entrypoint)
        }
        result.dropped = sorted(gone.items())
        for key in gone:
            del registry.models[key]
        _check_ids(ids, [model.entrypoint for model in chosen], {k: m.entrypoint for k, m in registry.models.items()})
        records: list[tuple[str, ModelRecord]] = []
        for key, model in zip(ids, chosen, strict=True):
            deps = collect_code_dependencies(host, model, ws.project)
            deps.update(extra_code)
            result.warnings.extend(_dependency_warnings(deps, rel))
            old = registry.models.get(key)
            model_data = list(data_files)
            if old is not None:
                # Re-registering refreshes the import closure; options left out keep what was given before.
                # A vanished data file is an error below, not silently dropped; a vanished Python file
                # left the closure when its import went, so only those are let go.
                if not data:
                    model_data = list(old.data)
                if not code:
                    deps.files.update(p for p in old.code if not p.endswith(".py") or (ws.project.root / p).is_file())
            records.append(
                (
                    key,
                    ModelRecord(
                        path=rel,
                        entrypoint=model.entrypoint,
                        class_name=model.class_name,
                        framework=model.framework,
                        scenarios=list(old.scenarios) if old else [],
                        parameters=list(model.parameters) or (list(old.parameters) if old else []),
                        outputs=list(model.outputs),
                        components=list(getattr(model, "components", ())),
                        code=sorted(deps.files),
                        data=model_data,
                        extra=dict(old.extra) if old else {},
                    ),
                )
            )
        _record_and_save(ws, host, registry, records, result, kind="model")
    return result


def register_targets(ws: Workspace, host: PluginHost, *, rel: str, names: list[str]) -> RegistrationResult:
    """Record the calibration targets of ``rel`` (all, or those named), with their code and data."""
    from modelops_bundle.core.dependencies import code_closure
    from modelops_bundle.core.discovery import ProjectSources, discover_targets
    from modelops_bundle.core.errors import UsageError

    result = RegistrationResult()
    sources = ProjectSources(ws.project.root)
    _require_python_file(ws, rel, "target")
    source = sources.get(rel)
    discovery = discover_targets(host, source)
    result.warnings.extend(discovery.failures)
    targets = discovery.targets
    listing = ", ".join(target.name for target in targets) or "none"
    if names:
        wanted = list(dict.fromkeys(names))
        unknown = [name for name in wanted if not any(name in (t.name, t.function) for t in targets)]
        if unknown:
            raise UsageError(
                f"target {', '.join(repr(n) for n in unknown)} not found in {rel}",
                hint=f"targets found there: {listing}",
            )
        targets = [t for t in targets if t.name in wanted or t.function in wanted]
    elif not targets:
        raise UsageError(
            f"no calibration targets found in {rel}",
            hint="targets are functions decorated with @calibration_target(name=..., model_output=..., data=...)",
        )
    planned: list[tuple[str, TargetRecord]] = []
    for target in targets:
        where = f"{rel}:{target.line}"
        blocking = [arg for arg in target.unreadable if arg in ("name", "model_output")]
        if blocking:
            raise UsageError(f"{where}: target {target.function}: {', '.join(blocking)} must be a string literal")
        if not target.model_output:
            raise UsageError(f"{where}: target '{target.name}' names no model_output")
        if "data" in target.unreadable:
            result.warnings.append(f"{where}: target '{target.name}': data is not a literal; its files are not tracked")
        missing = [path for path in target.data if not (ws.project.root / path).exists()]
        if missing:
            raise UsageError(f"{where}: target '{target.name}': data path not found: {', '.join(missing)}")
        data_files = expand_paths(ws, target.data, "data")
        deps = code_closure(sources, [rel])
        result.warnings.extend(_dependency_warnings(deps, rel))
        planned.append(
            (
                target.name,
                TargetRecord(
                    path=rel,
                    entrypoint=target.entrypoint,
                    model_output=target.model_output,
                    code=sorted(deps.files),
                    data=data_files,
                ),
            )
        )
    with ws.lock():
        registry = load_registry(ws)
        defined = {target.name for target in discovery.targets}
        gone = {
            key: f"{rel} no longer defines target {key!r}"
            for key, record in registry.targets.items()
            if record.path == rel and key not in defined
        }
        result.dropped = sorted(gone.items())
        result.target_set_changes = _remove_targets(registry, set(gone))
        for key in gone:
            del registry.targets[key]
        _check_ids(
            [key for key, _ in planned],
            [record.entrypoint for _, record in planned],
            {k: t.entrypoint for k, t in registry.targets.items()},
            what="target",
        )
        for key, record in planned:
            old = registry.targets.get(key)
            if old is not None:
                record.extra = dict(old.extra)
        _record_and_save(ws, host, registry, planned, result, kind="target")
    return result


def _defines(source: SourceFile, entrypoint: str) -> bool:
    """Whether ``source`` still defines (or re-exports) the class or function an entrypoint names."""
    from modelops_bundle.core.discovery import module_classes, module_functions

    name = entrypoint.partition(":")[2]
    return name in module_classes(source) or name in module_functions(source) or name in _imported_names(source)


def _imported_names(source: SourceFile) -> set[str]:
    from modelops_bundle.core.discovery import import_table

    return set(import_table(source).names)


def _remove_targets(registry: Registry, removed: set[str]) -> list[str]:
    """Take ``removed`` targets out of every target set (a set left empty is deleted); what changed."""
    changes: list[str] = []
    if not removed:
        return changes
    for name, target_set in list(registry.target_sets.items()):
        gone = [target for target in target_set.targets if target in removed]
        if not gone:
            continue
        target_set.targets = [target for target in target_set.targets if target not in removed]
        target_set.weights = {key: value for key, value in target_set.weights.items() if key not in removed}
        if target_set.targets:
            changes.append(f"target set {name}: removed {', '.join(gone)}")
        else:
            del registry.target_sets[name]
            changes.append(f"target set {name}: deleted (it held only {', '.join(gone)})")
    return changes


def _require_python_file(ws: Workspace, rel: str, what: str) -> None:
    from modelops_bundle.core.errors import UsageError

    path = ws.project.root / rel
    if not path.exists():
        raise UsageError(f"{what} file not found: {rel or '.'}")
    if not path.is_file():
        raise UsageError(f"{what} path is not a file: {rel or '.'}", hint="name the Python file that defines it")
    if not rel.endswith(".py"):
        raise UsageError(f"{what} file is not a Python file (.py): {rel}")


def _classes_hint(
    found: Mapping[str, Any], all_classes: Mapping[str, Any], components: Sequence[DiscoveredModel] = ()
) -> str:
    if found:
        return "model classes found there: " + ", ".join(found)
    if components:
        parts = ", ".join(f"{part.class_name} ({part.framework} {part.kind or 'component'})" for part in components)
        return (
            f"only components of models found there: {parts}; register the sim that uses them "
            "(or pass --class NAME to register one anyway)"
        )
    if all_classes:
        return (
            "classes found there: "
            + ", ".join(all_classes)
            + " (none derives from Calabaria's BaseModel or a Starsim class; pass --class NAME to register one)"
        )
    return "the file defines no classes"


def _check_ids(ids: list[str], entrypoints: list[str], existing: Mapping[str, str], *, what: str = "model") -> None:
    from modelops_bundle.core.errors import UsageError

    seen: dict[str, str] = {}
    for key, entrypoint in zip(ids, entrypoints, strict=True):
        if not key.strip():
            raise UsageError(f"{what} id must not be empty")
        if key in seen:
            raise UsageError(
                f"two {what}s would get the id '{key}': {seen[key]} and {entrypoint}",
                hint="register them one at a time with --class and --id" if what == "model" else None,
            )
        seen[key] = entrypoint
        other = existing.get(key)
        if other is not None and other != entrypoint:
            raise UsageError(
                f"{what} id '{key}' is already registered for {other}",
                hint="choose another id with --id" if what == "model" else "rename the target (name=...)",
            )


def _dependency_warnings(deps: CodeDependencies, rel: str) -> list[str]:
    warnings = [f"{path}: {why} (needed by {rel})" for path, why in sorted(deps.broken.items())]
    warnings += [f"unresolved import {line}" for line in sorted(deps.unresolved)]
    return warnings


def _record_and_save(
    ws: Workspace,
    host: PluginHost,
    registry: Registry,
    records: Sequence[tuple[str, DependentRecord]],
    result: RegistrationResult,
    *,
    kind: str,
) -> None:
    """Hash the records' dependencies, store digests, track the files and save the registry (under the lock)."""
    from modelops_bundle.core.errors import UsageError
    from modelops_bundle.core.hashing import resolve_hasher

    paths = sorted({rel for _, record in records for rel, _ in record.dependencies()})
    hasher = resolve_hasher(host.hook, ws.config().hash_algorithm)
    scan = ws.scan(hasher, paths=paths)
    problems = [f"{rel}: not found" for rel in scan.missing] + [f"{rel}: {why}" for rel, why in scan.skipped]
    if problems:
        raise UsageError(f"cannot read the dependencies of this {kind}:\n  " + "\n  ".join(problems))
    # Refresh only the new records: other models keep the digests they were recorded with.
    staged = Registry(fingerprint=registry.fingerprint)
    for key, record in records:
        if isinstance(record, ModelRecord):
            staged.models[key] = record
        elif isinstance(record, TargetRecord):
            staged.targets[key] = record
    fingerprinter = code_fingerprinter(host, ws.project.root) if registry.fingerprint == "ast" else None
    refresh_digests(staged, scan, fingerprinter=fingerprinter)
    for key, record in records:
        if isinstance(record, ModelRecord):
            result.registered.append((key, record, key in registry.models))
            registry.models[key] = record
        elif isinstance(record, TargetRecord):
            result.registered.append((key, record, key in registry.targets))
            registry.targets[key] = record
    tracked = set(ws.tracked())
    result.newly_tracked = [rel for rel in paths if rel not in tracked]
    if result.newly_tracked:
        ws.save_tracked(tracked | set(paths))
    save_registry(ws, registry)


# ----------------------------------------------------------------------------------- unregistering


@dataclass
class UnregisterResult:
    """What ``unregister-model`` / ``unregister-target`` removed, and what that did to the rest."""

    removed: list[tuple[str, str]] = field(default_factory=list)  # (id, why: "named" or what is missing)
    target_set_changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def missing_reason(sources: ProjectSources, record: DependentRecord) -> str | None:
    """Why a registered model's or target's definition no longer exists (file or class/function gone), or
    ``None`` while it does. A file that exists but does not parse is broken, not missing: ``None``."""
    from modelops_bundle.core.discovery import SourceFileError

    if not sources.is_file(record.path):
        return f"{record.path} no longer exists"
    module = record.entrypoint.partition(":")[0]
    rel = sources.module_file(module)
    if rel is None:
        return f"module {module} ({record.entrypoint}) is no longer a project file"
    try:
        source = sources.get(rel)
    except SourceFileError:
        return None
    if _defines(source, record.entrypoint):
        return None
    return f"{record.entrypoint.partition(':')[2]} is no longer defined in {rel}"


def unregister(
    ws: Workspace, kind: Literal["model", "target"], ids: Sequence[str], *, all_missing: bool
) -> UnregisterResult:
    """Remove registered models or targets: those named, and with ``all_missing`` every one whose file or
    class (function) no longer exists. Takes the project lock; an unknown id changes nothing.

    The files stay tracked. Removed targets leave the target sets naming them (an emptied set is
    deleted); removing a model whose outputs targets compare against is allowed, with a warning.
    """
    from modelops_bundle.core.discovery import ProjectSources
    from modelops_bundle.core.errors import UsageError

    result = UnregisterResult()
    with ws.lock():
        registry = load_registry(ws)
        records: dict[str, DependentRecord] = dict(registry.models if kind == "model" else registry.targets)
        unknown = [key for key in dict.fromkeys(ids) if key not in records]
        if unknown:
            known = ", ".join(sorted(records)) or "none"
            raise UsageError(
                f"no registered {kind} {', '.join(repr(key) for key in unknown)}", hint=f"registered {kind}s: {known}"
            )
        chosen = {key: "named" for key in dict.fromkeys(ids)}
        if all_missing:
            sources = ProjectSources(ws.project.root)
            for key, record in records.items():
                why = missing_reason(sources, record)
                if why is not None and key not in chosen:
                    chosen[key] = why
        result.removed = list(chosen.items())
        if not chosen:
            return result
        if kind == "model":
            for key in chosen:
                del registry.models[key]
            outputs = registry.outputs()
            for key, target in sorted(registry.targets.items()):
                if target.model_output not in outputs:
                    result.warnings.append(
                        f"target {key} compares against output '{target.model_output}', "
                        "which no registered model provides now"
                    )
        else:
            result.target_set_changes = _remove_targets(registry, set(chosen))
            for key in chosen:
                del registry.targets[key]
        save_registry(ws, registry)
    return result


# ---------------------------------------------------------------------------------- target sets


def set_target_set(ws: Workspace, name: str, targets: list[str], weights: Mapping[str, float]) -> TargetSetRecord:
    """Create or replace a target set (takes the lock). Every target must be registered."""
    import math

    from modelops_bundle.core.errors import UsageError

    if not name.strip():
        raise UsageError("a target set needs a name")
    if not targets:
        raise UsageError(f"target set '{name}' needs at least one --target")
    chosen = list(dict.fromkeys(targets))
    with ws.lock():
        registry = load_registry(ws)
        unknown = [target for target in chosen if target not in registry.targets]
        if unknown:
            from modelops_bundle.core.suggest import did_you_mean

            known = ", ".join(registry.targets) or "none (register-target first)"
            raise UsageError(
                f"unknown target {', '.join(map(repr, unknown))}{did_you_mean(unknown[0], registry.targets)}",
                hint=f"registered targets: {known}",
            )
        stray = [target for target in weights if target not in chosen]
        if stray:
            raise UsageError(f"--weight for {', '.join(map(repr, stray))}, which is not in the set (add --target)")
        for target, weight in weights.items():
            if not math.isfinite(weight) or weight < 0:
                raise UsageError(f"weight of '{target}' must be a finite number >= 0, not {weight}")
        old = registry.target_sets.get(name)
        record = TargetSetRecord(
            targets=chosen,
            weights={target: float(weights.get(target, 1.0)) for target in chosen},
            extra=dict(old.extra) if old else {},
        )
        registry.target_sets[name] = record
        save_registry(ws, registry)
    return record


def delete_target_set(ws: Workspace, name: str) -> None:
    from modelops_bundle.core.errors import UsageError

    with ws.lock():
        registry = load_registry(ws)
        if name not in registry.target_sets:
            from modelops_bundle.core.suggest import did_you_mean

            known = ", ".join(registry.target_sets) or "none"
            raise UsageError(
                f"no target set named '{name}'{did_you_mean(name, registry.target_sets)}", hint=f"target sets: {known}"
            )
        del registry.target_sets[name]
        save_registry(ws, registry)


# ------------------------------------------------------------------------------ before a push


def refresh_dependencies(ws: Workspace, host: PluginHost, registry: Registry) -> list[str]:
    """Re-read every model's and target's import closure; returns dependencies that are not tracked.

    Imports added since registration join ``code``; Python files that are gone and no longer imported
    leave it. Explicit non-Python ``--code`` files are kept. Call before the push's scan and track the
    returned files (or refuse): a model whose code is not in the bundle cannot run from it.
    """
    from modelops_bundle.core.dependencies import code_closure, collect_code_dependencies
    from modelops_bundle.core.discovery import DiscoveredModel, ProjectSources

    sources = ProjectSources(ws.project.root)
    needed: set[str] = set()
    for kind, _key, record in registry.records():
        if not sources.is_file(record.path):
            needed.update(rel for rel, _ in record.dependencies())
            continue  # broken: preflight reports it; keep the recorded dependencies as they are
        if isinstance(record, ModelRecord):
            model = DiscoveredModel(
                record.class_name, record.path, record.framework or "unknown", source=sources.try_get(record.path)
            )
            closure = collect_code_dependencies(host, model, ws.project)
        else:
            closure = code_closure(sources, [record.path])
        kept = [rel for rel in record.code if not rel.endswith(".py") or sources.is_file(rel) or rel in closure.files]
        extra_py = [rel for rel in kept if rel.endswith(".py") and rel not in closure.files]
        if kind == "model" and extra_py:
            closure.update(code_closure(sources, extra_py))
        record.code = sorted(set(kept) | closure.files)
        needed.update(rel for rel, _ in record.dependencies())
    tracked = set(ws.tracked())
    return sorted(rel for rel in needed if rel not in tracked and sources.is_file(rel))
