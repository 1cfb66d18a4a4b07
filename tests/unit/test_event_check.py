"""udfs.events.check — one parse per message — against the SQL it replaces (jobs/sql.py's
field-by-field validation with Flink's JSON functions), on the same messages in a local Flink:
the same reason for every malformed message and the same field values for every valid one."""

from __future__ import annotations

import json
import sys

import pytest
from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment

from deploy.datagen.generator import GeneratorConfig, clickstream, orders
from jobs import sql
from udfs import events
from udfs.flink import register_all

pytestmark = pytest.mark.filterwarnings(
    r"ignore:subprocess \d+ is still running:ResourceWarning",
    r"ignore:unclosed file <_io\.Buffered:ResourceWarning",
    "ignore::DeprecationWarning",
)

CLICK = {
    "event_id": "e1", "user_id": "u1", "ad_id": "a1", "campaign_id": "c1",
    "page": "https://x.example/p", "user_agent": "Mozilla/5.0", "ts": 1_767_225_600_000,
}  # fmt: skip
ORDER = {"movement_id": "m1", "sku": "s1", "delta": -3, "warehouse": "w1", "ts": 1_767_225_600_000}


def _with(base: dict[str, object], field: str, raw: str) -> str:
    """`base` as JSON with `field`'s value written as the raw JSON text `raw`."""
    return json.dumps({**base, field: "@@"}).replace('"@@"', raw)


NUMBERS = [
    "1.5e1", "1.50e1", "100.0", "1e2", "1E2", "2.6821732942320384e16", "-0", "0.0", "-0.0",
    "-0e0", "12345678901234567890", "1e-2", "10e-1", "5E+0", "true", "null", '"7"', "[1]",
    '{"a":1}', "123456789012345678", "-123456789012345678", "1234567890123456789", "1e18",
    "9.99e17", "1" * 30, "1e400",
]  # fmt: skip
STRINGS = ['"\\ud800z"', '"\\ud83d\\ude00"', '"é😀"', "null", '""', "1", "true", '["x"]']


def _corpus(base: dict[str, object], schema: events.Schema) -> list[str]:
    out = [json.dumps(base)]
    for name, kind in schema:
        for raw in NUMBERS if kind == "int" else STRINGS:
            out.append(_with(base, name, raw))
        missing = {k: v for k, v in base.items() if k != name}
        out.append(json.dumps(missing))
    out += [
        json.dumps({**base, "ts": 5, "extra": {"ts": 1.5}}),  # a nested float under the key
        json.dumps({**base, "note": 'say "ts": 2.5 here'}),  # ... or inside a string
        json.dumps({**base, "ts": "x"}).replace('"ts": "x"', '"ts" : 3, "ts": 4'),
        json.dumps(base) + "}",
        json.dumps(base)[:-1],
        "[1, 2]",
        "",
        "NaN",
        '{"a": NaN}',
        "[" * 3000 + "]" * 3000,
        json.dumps(base, indent="\t"),
    ]
    # Around the length limit, on the first field only (huge literals are slow to plan).
    first = schema[0][0]
    out += [_with(base, first, '"' + c * n + '"') for c, n in (("y", 65_536), ("é", 65_537))]
    return out


def _sql_results(texts: list[str], fields: tuple[sql.Field, ...]) -> list[tuple[object, ...]]:
    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t_env.get_config().set("parallelism.default", "1")
    t_env.get_config().set("python.executable", sys.executable)
    register_all(t_env)
    t_env.create_temporary_view(
        "texts",
        t_env.from_elements(
            [(t,) for t in texts], DataTypes.ROW([DataTypes.FIELD("msg", DataTypes.STRING())])
        ),
    )
    values = [
        sql.int_value(f.name, "`msg`") if f.kind == "int" else sql.string_value(f.name, "`msg`")
        for f in fields
    ]
    # The texts are valid UTF-8 (undecodable payloads are refused before any JSON check).
    query = f"""SELECT {sql.error_expression(fields)}, {", ".join(values)} FROM (
  SELECT `msg`, TRUE AS `utf8` FROM `texts`)"""
    with t_env.execute_sql(query).collect() as results:
        return [tuple(r) for r in results]


@pytest.mark.parametrize(
    ("base", "schema", "fields"),
    [(CLICK, events.CLICKSTREAM, sql.CLICKSTREAM_FIELDS), (ORDER, events.ORDERS, sql.ORDER_FIELDS)],
)
def test_check_gives_what_the_sql_gives(
    base: dict[str, object], schema: events.Schema, fields: tuple[sql.Field, ...]
) -> None:
    generated = clickstream if schema is events.CLICKSTREAM else orders
    texts = _corpus(base, schema) + [
        m.value.decode() for m in generated(GeneratorConfig(seed=9, events=600, malformed=0.2))
        if _decodes(m.value)
    ]  # fmt: skip
    for text, (error, *values) in zip(texts, _sql_results(texts, fields), strict=True):
        got_error, got_values = events.check(schema, text)
        assert got_error == error, text[:200]
        if error is None:
            assert got_values == tuple(values), text[:200]


def _decodes(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_invalid_utf8_and_null_payloads() -> None:
    assert events.check(events.ORDERS, "x", utf8=False) == (events.NOT_UTF8, None)
    assert events.check(events.ORDERS, None, utf8=None) == (events.NOT_OBJECT, None)


def test_sql_fields_follow_the_check_schemas() -> None:
    assert [(f.name, f.kind) for f in sql.CLICKSTREAM_FIELDS] == list(events.CLICKSTREAM)
    assert [(f.name, f.kind) for f in sql.ORDER_FIELDS] == list(events.ORDERS)
