"""Strict JSON object check (Flink's own IS JSON ignores trailing content)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from udfs.jsontext import is_json_object


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ('{"a": 1}', True),
        ('  {"a": [1, {"b": null}]}\n', True),
        ("{}", True),
        ('{"a": 1}}', False),  # trailing brace: what Flink's IS JSON OBJECT accepts
        ('{"a": 1}]', False),
        ('{"a": 1} x', False),
        ('{"a": 1},{"b": 2}', False),
        ('{"a": NaN}', False),
        ('{"a": Infinity}', False),
        ("[1]", False),
        ('"x"', False),
        ("", False),
        (None, False),
        ("[" * 5000 + "]" * 5000, False),
    ],
)
def test_examples(text: str | None, ok: bool) -> None:
    assert is_json_object(text) is ok


@given(st.dictionaries(st.text(), st.integers() | st.text() | st.booleans() | st.none()))
def test_any_serialised_object_is_accepted_and_trailing_text_is_not(obj: dict[str, object]) -> None:
    text = json.dumps(obj)
    assert is_json_object(text)
    assert not is_json_object(text + "}")
