"""Reading a version's index bytes, whichever release pushed it.

This release's index (:mod:`.index`) and the one modelops-bundle v0.1.1 wrote (:mod:`.upstream`) are
told apart here, after the JSON is decoded strictly (duplicate keys refused, bounded size), so that each
format's module knows only its own.
"""

from __future__ import annotations

import json

from modelops_bundle.core import upstream
from modelops_bundle.core.errors import IntegrityError
from modelops_bundle.core.index import MAX_INDEX_BYTES, BundleIndex, index_from_json, no_duplicate_keys


def parse_index(data: bytes, *, source: str) -> BundleIndex:
    """Validate index bytes fetched from a registry; :class:`IntegrityError` names the problem."""
    if len(data) > MAX_INDEX_BYTES:
        raise IntegrityError(f"{source}: index is {len(data)} bytes, more than the limit of {MAX_INDEX_BYTES}")
    try:
        raw = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{source}: index is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise IntegrityError(f"{source}: index is not a JSON object")
    if upstream.is_upstream_index(raw):
        return upstream.index_from_json(raw, source=source)
    return index_from_json(raw, source=source)
