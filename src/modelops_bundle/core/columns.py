"""Columns of numbers and strings in JSON, for the caches a warm ``status`` reads on every run.

A JSON object of ten thousand small lists takes about three times as long to read as the same data kept
as columns: lists of strings, and the numbers of every row packed into one base64 string of
little-endian int64s. Still JSON -- a cache inside a project folder may come from anywhere, so no pickle
and no marshal.
"""

from __future__ import annotations

import array
import base64
import sys
from collections.abc import Iterable
from typing import Any, TypeGuard


def pack_rows(rows: Iterable[tuple[int, ...]], width: int) -> tuple[str, list[int]]:
    """The rows (each of ``width`` numbers) as one base64 string, and the indexes of the rows kept: a
    row with a number beyond int64 (an exotic inode, say) is left out, so the caller drops it too."""
    numbers = array.array("q")
    kept: list[int] = []
    for index, row in enumerate(rows):
        try:
            numbers.extend(row)
        except OverflowError:
            del numbers[len(numbers) - len(numbers) % width :]
            continue
        kept.append(index)
    if sys.byteorder != "little":
        numbers.byteswap()
    return base64.b64encode(numbers.tobytes()).decode("ascii"), kept


def unpack_numbers(text: Any, count: int) -> array.array[int] | None:
    """The ``count`` numbers packed in ``text``, or ``None`` when it holds anything else."""
    if not isinstance(text, str):
        return None
    numbers = array.array("q")
    try:
        numbers.frombytes(base64.b64decode(text, validate=True))
    except ValueError:
        return None
    if len(numbers) != count:
        return None
    if sys.byteorder != "little":
        numbers.byteswap()
    return numbers


def all_strings(values: Any) -> TypeGuard[list[str]]:
    """Whether a decoded JSON value is a list of strings only (``map`` and ``set`` run in C: a column
    holds tens of thousands of items)."""
    return isinstance(values, list) and (not values or set(map(type, values)) == {str})
