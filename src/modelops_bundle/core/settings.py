"""Settings: one immutable record per configuration section, and the one validator that builds them.

=================  ===========================================================================
record             section
=================  ===========================================================================
ProjectConfig      ``.modelops-bundle/config.yaml``
StoragePolicy      its ``storage:`` section: which files go to blob storage, and where
Environment        ``$MODELOPS_HOME/bundle-env/<name>.yaml``, or the embedded ``local``
RegistrySection    an environment's ``registry:`` section
StorageSection     an environment's ``storage:`` section
=================  ===========================================================================

A record is a ``NamedTuple`` whose annotated fields *are* the schema: :func:`build` reads each field's
type, default and checks, so adding a key to a section is one line in its record (plus its line in
docs/formats.md). Types understood: ``str``, ``int``, ``bool``, ``Secret``, ``tuple[str, ...]``,
``Literal[...]``, another record (a nested section), ``X | None``, and ``Annotated[X, check]`` for a
check function that returns an error text or ``None``. A record with an ``options`` field keeps unknown
keys there (backend and provider options); any other record refuses unknown keys, naming the closest
known one. Records are built from plain data, never by pydantic, and are cheap enough to build
on every command (:mod:`.memo` spares the YAML parsing, not the validation).

This module deliberately has no ``from __future__ import annotations``: the annotations must be real
types at run time.
"""

import types
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, NamedTuple, TypeVar, Union, get_args, get_origin

from modelops_bundle.core.flags import parse_bool
from modelops_bundle.core.patterns import LazyPattern
from modelops_bundle.core.secrecy import Secret, reveal

#: The field of a record that collects the keys it does not name (backend and provider options).
OPTIONS = "options"
#: The default of an options field (shared, so never mutated: records are immutable).
NO_OPTIONS: Mapping[str, Any] = types.MappingProxyType({})
DEFAULT_THRESHOLD_BYTES = 50 * 1024 * 1024
REGISTRY_URL_ENV = "REGISTRY_URL"
#: Plain HTTP allowed to any registry host (not only loopback), as ``registry.insecure: true`` does.
INSECURE_ENV = "MODELOPS_BUNDLE_INSECURE"


class SettingsError(ValueError):
    """Problems found while building a record: ``[(dotted key path, message)]``. The file reader turns
    them into a ``ConfigError`` naming the file and the line."""

    def __init__(self, problems: list[tuple[tuple[str, ...], str]]) -> None:
        super().__init__("; ".join(f"{'.'.join(loc) or '(top level)'}: {message}" for loc, message in problems))
        self.problems = problems


# ------------------------------------------------------------------------------------------ checks
# A check receives a value of the field's type and returns what is wrong with it, or None.


def check_at_least_zero(value: int) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def check_tag(value: str) -> str | None:
    from modelops_bundle.core.reference import TAG_RE

    return None if TAG_RE.match(value) else f"{value!r} is not a valid tag (letters, digits, '.', '_', '-')"


def check_repository(value: str) -> str | None:
    from modelops_bundle.core.reference import REPOSITORY_RE

    if REPOSITORY_RE.match(value):
        return None
    return f"{value!r} is not a repository name (lower-case letters, digits, '.', '_', '-', '/')"


def check_registry_address(value: str) -> str | None:
    """``[http[s]://]host[:port][/namespace]``."""
    from modelops_bundle.core.reference import HOST_RE, REPOSITORY_RE

    text = value.strip().rstrip("/")
    scheme, sep, rest = text.partition("://")
    if not sep:
        rest = text
    elif scheme not in ("http", "https"):
        return f"{value!r}: only http:// or https:// may precede the host"
    host, _, namespace = rest.partition("/")
    if not host or not HOST_RE.match(host) or (namespace and not REPOSITORY_RE.match(namespace)):
        return f"{value!r} is not a registry address ([http[s]://]host[:port][/namespace])"
    return None


def check_hash_algorithm(value: str) -> str | None:
    from modelops_bundle.core.hashing import CONTENT_ALGORITHMS  # the algorithms a bundle index records

    return None if value in CONTENT_ALGORITHMS else f"{value!r} is not one of {', '.join(CONTENT_ALGORITHMS)}"


# ----------------------------------------------------------------------------------------- records


class StoragePolicy(NamedTuple):
    """``config.yaml`` ``storage:``: which files a push offloads to blob storage, and where to."""

    #: ``auto``: files of ``threshold_bytes`` or more go to the blob store when there is one;
    #: ``blob`` / ``oci``: every file (the force patterns still win).
    mode: Literal["auto", "blob", "oci"] = "auto"
    threshold_bytes: Annotated[int, check_at_least_zero] = DEFAULT_THRESHOLD_BYTES
    force_blob_patterns: tuple[str, ...] = ()
    force_oci_patterns: tuple[str, ...] = ()
    #: A provider (and container) of the project's own; else the environment's.
    provider: str | None = None
    container: str | None = None
    prefix: str = ""


class ProjectConfig(NamedTuple):
    """``.modelops-bundle/config.yaml``. Where a version goes is decided from it, the environment and
    ``$REGISTRY_URL`` by :func:`.registry_select.resolve_target`."""

    #: The repository versions are pushed to; ``None``: named after the project folder.
    repository: Annotated[str | None, check_repository] = None
    #: A registry pinned by the user (``[http[s]://]host[:port][/namespace]``); ``None``: the environment's.
    registry: Annotated[str | None, check_registry_address] = None
    default_tag: Annotated[str, check_tag] = "latest"
    #: The shared cache of this project's workers (``api``); ``None``: ``$MODELOPS_HOME/cache``.
    cache_dir: str | None = None
    hash_algorithm: Annotated[str, check_hash_algorithm] = "sha256"
    storage: StoragePolicy = StoragePolicy()


class RegistrySection(NamedTuple):
    """An environment's ``registry:``. ``provider``: docker, acr, ecr, gcr, ghcr (HTTP registries),
    oci-layout, or the name of a third-party backend; other keys are backend options."""

    provider: str = "docker"
    login_server: str | None = None
    path: str | None = None  # oci-layout: the layout directory
    username: str | None = None
    password: Secret | None = None
    requires_auth: bool = False
    insecure: bool = False
    options: Mapping[str, Any] = NO_OPTIONS


class StorageSection(NamedTuple):
    """An environment's ``storage:``: azure, s3, gcs, azurite, minio, local (or a plugin's), its
    container and credentials; other keys are provider options (``region``, ``storage_options``...)."""

    provider: str | None = None
    container: str | None = None
    path: str | None = None  # local provider: the blob folder
    connection_string: Secret | None = None
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: Secret | None = None
    options: Mapping[str, Any] = NO_OPTIONS


class Environment(NamedTuple):
    """An environment file (written by the ModelOps infrastructure), or the embedded ``local``."""

    environment: str
    registry: RegistrySection
    storage: StorageSection | None = None
    options: Mapping[str, Any] = NO_OPTIONS


# --------------------------------------------------------------------------------------- validator

R = TypeVar("R", bound=tuple[Any, ...])


class _Field(NamedTuple):
    name: str
    kind: Any  # the type, without Optional and Annotated
    optional: bool
    checks: tuple[Callable[[Any], str | None], ...]
    required: bool
    default: Any


_SPECS: dict[type, tuple[tuple[_Field, ...], str | None]] = {}


def is_record(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields")


def _spec(cls: type) -> tuple[tuple[_Field, ...], str | None]:
    """The fields of a record class, read once per process from its annotations."""
    spec = _SPECS.get(cls)
    if spec is None:
        defaults = getattr(cls, "_field_defaults", {})
        fields = []
        for name, annotation in cls.__annotations__.items():
            kind, checks = annotation, ()
            if get_origin(kind) is Annotated:  # type: ignore[comparison-overlap]
                kind, *extra = get_args(kind)
                checks = tuple(extra)
            optional = False
            if get_origin(kind) in (Union, types.UnionType) and type(None) in get_args(kind):  # type: ignore[comparison-overlap]
                optional = True
                (kind,) = [arg for arg in get_args(kind) if arg is not type(None)]
            fields.append(_Field(name, kind, optional, checks, name not in defaults, defaults.get(name)))
        spec = _SPECS[cls] = (tuple(fields), OPTIONS if OPTIONS in cls.__annotations__ else None)
    return spec


def field_names(cls: type) -> list[str]:
    """The keys a record's section takes (its options field excluded)."""
    fields, extra = _spec(cls)
    return [field.name for field in fields if field.name != extra]


def field_of(cls: type, name: str) -> Any:
    """The :class:`_Field` of key ``name`` (``None`` when the section has no such key)."""
    return next((field for field in _spec(cls)[0] if field.name == name), None)


def build(cls: type[R], data: Any, loc: tuple[str, ...] = ()) -> R:
    """The record ``cls`` from plain data (a parsed YAML mapping), or :class:`SettingsError` listing
    every problem with its key path."""
    problems: list[tuple[tuple[str, ...], str]] = []
    record: R = _build(cls, data, loc, problems)
    if problems:
        raise SettingsError(problems)
    return record


def _build(cls: Any, data: Any, loc: tuple[str, ...], problems: list[tuple[tuple[str, ...], str]]) -> Any:
    if not isinstance(data, Mapping):
        problems.append((loc, f"must be a mapping of keys, not {_kind_name(data)}"))
        return None
    before = len(problems)
    fields, extra = _spec(cls)
    known = {field.name for field in fields if field.name != extra}
    values: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            problems.append((loc, f"key {key!r} is not a string"))
        elif key in known:
            values[key] = value
        elif extra is not None:
            options[key] = value
        else:
            from modelops_bundle.core.suggest import closest

            close = closest(key, sorted(known))
            hint = f" (did you mean {close!r}?)" if close else f" (known: {', '.join(sorted(known))})"
            problems.append(((*loc, key), f"unknown key{hint}"))
    kwargs: dict[str, Any] = {}
    for field in fields:
        if field.name == extra:
            if options:
                kwargs[field.name] = types.MappingProxyType(options)
            continue
        if field.name not in values:
            if field.required:
                problems.append(((*loc, field.name), "required"))
            continue
        kwargs[field.name] = _value(field, values[field.name], (*loc, field.name), problems)
    return None if len(problems) > before else cls(**kwargs)


def _value(field: _Field, value: Any, loc: tuple[str, ...], problems: list[tuple[tuple[str, ...], str]]) -> Any:
    if value == "" and field.default == "":
        return ""  # a text whose default is empty may be given empty (``prefix: ''``, as 0.2.0 wrote it)
    if value is None:
        if field.optional:
            return None
        if field.kind == tuple[str, ...]:
            return ()
        problems.append((loc, "must not be empty"))
        return None
    converted, error = _convert(field.kind, value, loc, problems)
    if error:
        problems.append((loc, error))
        return None
    for check in field.checks:
        message = check(converted)
        if message:
            problems.append((loc, message))
    return converted


def _convert(
    kind: Any, value: Any, loc: tuple[str, ...], problems: list[tuple[tuple[str, ...], str]]
) -> tuple[Any, str | None]:
    """``(converted value, None)`` or ``(None, what is wrong)``."""
    if kind is str or kind is Secret:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            return None, f"must be text, not {_kind_name(value)}" + (
                " (put it in quotes)" if isinstance(value, float) else ""
            )
        if kind is Secret:  # kept exactly as given: a password may well end in a space
            return (Secret(str(value)), None) if str(value) else (None, "must not be empty")
        text = str(value).strip()
        return (text, None) if text else (None, "must not be empty")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return None, f"must be a whole number, not {_kind_name(value)}"
        return value, None
    if kind is bool:
        flag = parse_bool(value)
        return (flag, None) if flag is not None else (None, f"must be true or false, not {value!r}")
    if kind == tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            return None, "must be a list of non-empty texts"
        return tuple(item.strip() for item in value), None
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        if value not in choices:
            return None, f"must be one of {', '.join(map(str, choices))}, not {value!r}"
        return value, None
    if is_record(kind):
        return _build(kind, value, loc, problems), None
    if kind == Mapping[str, Any]:
        if not isinstance(value, Mapping):
            return None, f"must be a mapping, not {_kind_name(value)}"
        return types.MappingProxyType(dict(value)), None
    raise TypeError(f"settings field of unsupported type {kind!r}")  # a bug in a record, caught by the tests


def _kind_name(value: Any) -> str:
    names = {
        bool: "true/false",
        int: "a number",
        float: "a decimal number",
        str: "text",
        list: "a list",
        dict: "a mapping",
    }
    return "nothing" if value is None else names.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------- plain data


def to_plain(record: Any, *, reveal_secrets: bool = False, defaults: bool = False) -> dict[str, Any]:
    """A record as the mapping a file would hold: unset (``None``) values left out, and defaults too
    unless ``defaults``; options merged in; secrets as :class:`Secret` objects unless ``reveal_secrets``
    (for writing a file the user owns)."""
    fields, extra = _spec(type(record))
    plain: dict[str, Any] = {}
    for field in fields:
        value = getattr(record, field.name)
        if field.name == extra:
            plain.update(value)
            continue
        if value is None or (not defaults and value == type(record)._field_defaults.get(field.name, _REQUIRED)):
            continue
        if is_record(type(value)):
            value = to_plain(value, reveal_secrets=reveal_secrets, defaults=defaults)
            if not value:
                continue
        elif isinstance(value, tuple):
            value = list(value)
        elif reveal_secrets:
            value = reveal(value)
        plain[field.name] = value
    return plain


_REQUIRED = object()


def is_http_provider(provider: str) -> bool:
    """Environment-file provider names that all mean "an HTTP registry" (distribution API)."""
    return provider.strip().lower() in HTTP_PROVIDERS


HTTP_PROVIDERS = frozenset({"docker", "acr", "ecr", "gcr", "ghcr", "oci", "distribution", "oci-distribution"})

_HOST_PART = LazyPattern(r"^(?:https?://)?([^/]+)(?:/(.*))?$")


def split_address(address: str) -> tuple[str, str]:
    """``[scheme://]host[:port][/namespace]`` -> ``(host[:port] lower-cased, namespace)``."""
    match = _HOST_PART.match(address.strip().rstrip("/"))
    if match is None:
        return address.strip().lower(), ""
    return match.group(1).lower(), match.group(2) or ""
