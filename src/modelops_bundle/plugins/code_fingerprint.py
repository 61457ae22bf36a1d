"""Built-in Python code plugin: the code fingerprint and the import-graph code dependencies.

Fingerprint (``mops_code_fingerprint``)
    ``pyast1-sha256:<hex>`` -- SHA-256 of a canonical dump of the file's syntax tree. Comments, blank
    lines, indentation style, line breaks inside brackets, quoting style (``'a'`` vs ``"a"``) and
    redundant parentheses do not reach the tree, so they do not change the fingerprint. Everything the
    compiler keeps does, **docstrings included**: a docstring is an ordinary string value at run time
    (``__doc__``), and model code does read it -- argparse descriptions, parameter documentation,
    ``help()``-driven registries. Dropping docstrings would claim two programs that can behave
    differently are the same; the fingerprint only ignores what Python itself throws away.

    The dump is written by :func:`canonical_dump` rather than ``ast.dump``: ``ast.dump`` changes its
    output between Python versions (3.13 omits empty fields), and a fingerprint must not change because
    a colleague runs another Python. Fields that are ``None`` or empty are skipped, so fields added by
    newer Pythons for syntax a file does not use (``type_params`` in 3.12) leave the digest alone. The
    ``1`` in the algorithm name versions this canonical form.

    A file that is not Python (by suffix) or does not parse gets ``None``: the caller then falls back to
    the byte digest, which is always safe.

Code dependencies (``mops_code_dependencies``)
    The transitive closure of a model's project-local imports (:mod:`modelops_bundle.core.dependencies`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops_bundle import hookimpl

if TYPE_CHECKING:  # ``ast``, ``hashlib`` and the import graph load on first use: ``--help`` stays fast
    import ast
    from pathlib import Path

    from modelops_bundle.plugin import CodeDependencies, DiscoveredModel, Project

MOPS_PLUGIN_API = "1.0"

FINGERPRINT_ALGORITHM = "pyast1-sha256"

#: Fields that never affect behaviour: type comments exist only with ``type_comments=True`` parsing.
_SKIPPED_FIELDS = frozenset({"type_comment"})


def canonical_dump(tree: ast.AST) -> str:
    """A stable text form of a syntax tree: node names, non-empty fields in order, literal ``repr``s."""
    import ast

    out: list[str] = []
    stack: list[object] = [tree]
    # Iterative, so deeply nested expressions (a long ``a + b + ...`` chain) cannot hit the recursion limit.
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out.append(item.text)
        elif isinstance(item, ast.AST):
            parts: list[object] = [_Raw(type(item).__name__ + "(")]
            for name in item._fields:
                value = getattr(item, name, None)
                if value is None or (isinstance(value, list) and not value) or name in _SKIPPED_FIELDS:
                    continue
                parts += [_Raw(name + "="), value, _Raw(",")]
            parts.append(_Raw(")"))
            stack.extend(reversed(parts))
        elif isinstance(item, list):
            parts = [_Raw("[")]
            for element in item:
                parts += [element, _Raw(",")]
            parts.append(_Raw("]"))
            stack.extend(reversed(parts))
        else:
            out.append(repr(item))  # a constant, an identifier or an operator-free leaf value
    return "".join(out)


class _Raw:
    """Structure text of the dump, kept apart from leaf values (which are written with ``repr``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def fingerprint_source(source: bytes) -> str | None:
    """``pyast1-sha256:<hex>`` of Python source, or ``None`` when it does not parse."""
    import ast
    import hashlib

    try:
        tree = ast.parse(source)
        text = canonical_dump(tree)
    except (SyntaxError, ValueError, RecursionError):
        return None
    return f"{FINGERPRINT_ALGORITHM}:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"


@hookimpl(trylast=True)
def mops_code_fingerprint(path: Path, source: bytes) -> str | None:
    if path.suffix not in (".py", ".pyw"):
        return None
    return fingerprint_source(source)


@hookimpl(trylast=True)
def mops_code_dependencies(model: DiscoveredModel, project: Project) -> CodeDependencies | None:
    from modelops_bundle.plugin import python_dependencies

    return python_dependencies(model, project)
