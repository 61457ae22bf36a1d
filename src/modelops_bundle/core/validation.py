"""Load and validate the files the tool reads, with errors that name the file, key and line.

Parsing failures and schema violations both become :class:`ConfigError` (exit code 2); nothing is
rewritten when a file is broken. Pydantic is imported here, lazily, so that commands which never read
a changed configuration file do not pay for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from modelops_bundle.core.errors import ConfigError
from modelops_bundle.core.fsutil import describe_os_error

T = TypeVar("T")


def read_text(path: Path, *, what: str = "file", exact: bool = False) -> str:
    """The file as text (UTF-8). Line ends are translated to ``\\n`` unless ``exact`` (a format that
    must see a carriage return to refuse it)."""
    try:
        if exact:
            with open(path, encoding="utf-8", newline="") as handle:
                return handle.read()
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} missing: {path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(describe_os_error("read", path, exc)) from exc


def _strict_loader() -> Any:
    """A safe loader that refuses a key given twice in one mapping (PyYAML keeps the last silently, so
    a hand-edited file with a second ``storage:`` block would lose the first without a word)."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if isinstance(node, yaml.MappingNode):
                self.flatten_mapping(node)  # merge keys (<<) first, as the base class does
                first: dict[Any, int] = {}
                for key_node, _ in node.value:
                    key = self.construct_object(key_node, deep=deep)
                    try:
                        line = first.setdefault(key, key_node.start_mark.line + 1)
                    except TypeError:
                        continue  # an unhashable key: the base class explains that one
                    if line != key_node.start_mark.line + 1:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key!r} (first given on line {line})", key_node.start_mark
                        )
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


#: Bounds of every YAML document the tool parses -- config.yaml, environment files, registry.yaml (local,
#: or travelling inside a pulled version): its size, its nesting, and its node count *after* alias
#: expansion. A 1 KB "billion laughs" (anchors nested 9 deep, 10 wide) composes to a few dozen nodes but
#: expands to 10^9 once anything walks it as a tree (validation, JSON): it is refused before construction.
MAX_YAML_CHARS = 16 * 1024 * 1024
MAX_YAML_NODES = 2_000_000
MAX_YAML_DEPTH = 100


def parse_yaml(text: str, path: Path) -> Any:
    """Parse one YAML document safely (no tags, no duplicate keys) within the bounds above;
    :class:`ConfigError` naming ``path`` otherwise."""
    import yaml

    if len(text) > MAX_YAML_CHARS:
        raise ConfigError(f"{path}: {len(text)} characters, more than the {MAX_YAML_CHARS} a YAML file may have")
    loader = _strict_loader()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_yaml_bounds(node, path)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: invalid YAML ({problem})") from None
    finally:
        loader.dispose()


def check_yaml_bounds(root: Any, path: Path) -> None:
    """Refuse a composed YAML graph whose expanded tree has more than :data:`MAX_YAML_NODES` nodes or is
    deeper than :data:`MAX_YAML_DEPTH`. Aliases are shared nodes of the graph, so each node's expanded
    size is computed once (memoised, iteratively): linear in the document, whatever it expands to."""
    import yaml

    size: dict[int, int] = {}
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if not children_done and key in size:
            continue
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if not children_done:
            if key in on_path:
                raise ConfigError(f"{path}, line {node.start_mark.line + 1}: invalid YAML (an alias refers to itself)")
            on_path.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in size)
            continue
        on_path.discard(key)
        size[key] = total = 1 + sum(size[id(child)] for child in children)
        height[key] = depth = 1 + max((height[id(child)] for child in children), default=0)
        where = f"{path}, line {node.start_mark.line + 1}"
        if total > MAX_YAML_NODES:
            raise ConfigError(
                f"{where}: too large once its aliases are expanded (more than {MAX_YAML_NODES} values); "
                "refused (a YAML 'billion laughs'?)"
            )
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{where}: nested more than {MAX_YAML_DEPTH} levels deep; refused")


def parse_json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}, line {exc.lineno}: invalid JSON ({exc.msg})") from None


def yaml_line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (a pydantic error location), when it can be found."""
    import yaml

    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(key):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def validate(model: type[T] | Any, data: Any, path: Path, *, yaml_text: str | None = None) -> T:
    """Validate ``data`` against a pydantic model class (or TypeAdapter-compatible type)."""
    from pydantic import TypeAdapter, ValidationError

    try:
        adapter = TypeAdapter(model)
        result: T = adapter.validate_python(data)
        return result
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:5]:
            loc = tuple(error.get("loc", ()))
            key = ".".join(str(part) for part in loc) or "(top level)"
            line = yaml_line_of(yaml_text, loc) if yaml_text is not None else None
            where = f" (line {line})" if line else ""
            problems.append(f"{key}{where}: {error['msg']}")
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise ConfigError(f"{path}: invalid: " + "; ".join(problems) + more) from None


def dump_yaml(data: Any) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True))
