"""One parse per message: the contract's validation of an input event, as a pure function.

`check(schema, text, utf8)` gives what the jobs' pure-SQL validation (jobs/sql.py, the `builtin`
path) gives — the first problem found, in the same words, and the field values of a valid event —
from one `json.loads` instead of a JSON parse per field and check (~15-20 per message in SQL). It
reproduces what Flink's JSON functions do where Python would differ, so the dead letters keep
their reasons (tests/unit/test_event_check.py runs both on the same messages):
- numbers: `JSON_QUERY ... WITH WRAPPER` writes a number through Java's BigDecimal.toString, so
  `1.5e1` reads as the integer 15 and `1e2` as `1E+2` (not an integer); Python's Decimal prints
  the same text;
- a number written with a fraction or an exponent anywhere in the text under the field's key
  (`"ts": 1.5e1`, even nested) makes the field "not an integer": the SQL's raw-text check;
- a lone UTF-16 surrogate (`"\\ud800"`) in a string is `?` in Flink's strings.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Final, Literal

__all__ = ["CLICKSTREAM", "MAX_STRING_CHARS", "ORDERS", "Check", "check"]

Kind = Literal["string", "int"]
Schema = tuple[tuple[str, Kind], ...]

CLICKSTREAM: Final[Schema] = (
    ("event_id", "string"),
    ("user_id", "string"),
    ("ad_id", "string"),
    ("campaign_id", "string"),
    ("page", "string"),
    ("user_agent", "string"),
    ("ts", "int"),
)
ORDERS: Final[Schema] = (
    ("movement_id", "string"),
    ("sku", "string"),
    ("delta", "int"),
    ("warehouse", "string"),
    ("ts", "int"),
)

# A string field longer than this is malformed (see jobs/sql.py).
MAX_STRING_CHARS: Final = 65_536

NOT_UTF8: Final = "payload is not valid UTF-8"
NOT_OBJECT: Final = "payload is not a JSON object"

# What the SQL's integer check accepts of JSON_QUERY's text: up to 18 digits fit a BIGINT.
_INTEGER: Final = re.compile(r"-?[0-9]{1,18}")
# Java's \s (without UNICODE_CHARACTER_CLASS); Python's \s would also match Unicode spaces.
_JAVA_SPACE: Final = "[ \t\n\x0b\f\r]"


def _float_written(name: str) -> re.Pattern[str]:
    return re.compile(f'"{re.escape(name)}"{_JAVA_SPACE}*:{_JAVA_SPACE}*-?[0-9]+[.eE]')


_FLOAT_WRITTEN: Final[dict[str, re.Pattern[str]]] = {
    name: _float_written(name) for schema in (CLICKSTREAM, ORDERS) for name, _ in schema
}

# (error, values in schema order): values are None when the message is malformed.
Check = tuple[str | None, tuple[str | int, ...] | None]


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _flink_string(value: str) -> str:
    """The string as Flink holds it: lone surrogates (valid JSON escapes, not Unicode) become '?'
    (and a Python worker could not send them back at all)."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _integer_text(value: object) -> str | None:
    """The text JSON_QUERY gives for a JSON number (None for other values)."""
    if type(value) is int:
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    return None


def check(schema: Schema, text: str | None, utf8: bool | None = True) -> Check:  # noqa: PLR0911
    """The first problem of the message as the jobs name it, or (None, its field values).

    `utf8` is whether the payload's bytes were valid UTF-8 (`text` is then their decoding); a
    null payload has neither and is not a JSON object."""
    if utf8 is False:
        return NOT_UTF8, None
    if text is None:
        return NOT_OBJECT, None
    try:
        doc = json.loads(text, parse_constant=_reject_constant, parse_float=Decimal)
    except (ValueError, RecursionError):
        return NOT_OBJECT, None
    if not isinstance(doc, dict):
        return NOT_OBJECT, None
    values: list[str | int] = []
    for name, kind in schema:
        value = doc.get(name)
        if kind == "int":
            written = _integer_text(value)
            if written is None or not _INTEGER.fullmatch(written):
                return f"field {name}: missing or not an integer", None
            if _FLOAT_WRITTEN[name].search(text):
                return f"field {name}: not an integer", None
            values.append(int(written))
        else:
            if type(value) is not str:
                return f"field {name}: missing or not a string", None
            if len(value) > MAX_STRING_CHARS:
                return f"field {name}: longer than {MAX_STRING_CHARS} characters", None
            values.append(_flink_string(value))
    return None, tuple(values)
