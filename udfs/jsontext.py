"""Strict JSON: is a message exactly one JSON object (RFC 8259)?

Flink's SQL JSON functions parse the first value and ignore whatever follows, so
`{"a": 1}}` passes `IS JSON OBJECT`; the jobs ask this instead. NaN and Infinity, which
Python's json accepts by default, are not JSON either.
"""

from __future__ import annotations

import json


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def is_json_object(text: str | None) -> bool:
    """True when `text` is a single JSON object and nothing else (whitespace aside)."""
    if text is None:
        return False
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict)
