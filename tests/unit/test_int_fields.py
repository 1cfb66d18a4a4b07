"""Integer fields written as floats are malformed (found by tests/integration/test_fuzz_events.py:
`"ts": 2.6821732942320384e+16` and `"delta": 1.5e1` reached the ledger as valid movements,
because Flink's JSON_QUERY re-writes them as `26821732942320384` and `15`).

The jobs' own error expression runs here in a local batch TableEnvironment (built-in functions
only: no Python worker, no cluster)."""

from __future__ import annotations

import pytest
from pyflink.table import EnvironmentSettings, TableEnvironment

from jobs import sql

# As in test_builtin_baseline: PyFlink leaves its gateway process and pipes to the interpreter's
# end, and its Beam imports warn about pyparsing.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:subprocess \d+ is still running:ResourceWarning",
    r"ignore:unclosed file <_io\.Buffered:ResourceWarning",
    "ignore::DeprecationWarning",
)


@pytest.fixture(scope="module")
def t_env() -> TableEnvironment:
    return TableEnvironment.create(EnvironmentSettings.in_batch_mode())


def errors(t_env: TableEnvironment, messages: list[str]) -> list[str | None]:
    rows = ", ".join(f"({i}, {sql.literal(m)})" for i, m in enumerate(messages))
    error = sql.error_expression(sql.ORDER_FIELDS, functions="builtin")
    query = (
        f"SELECT i, {error} FROM (SELECT i, `msg`, TRUE AS `utf8` "
        f"FROM (VALUES {rows}) AS v(i, `msg`))"
    )
    with t_env.execute_sql(query).collect() as results:
        found = {int(r[0]): r[1] for r in results}
    return [found[i] for i in range(len(messages))]


def order(ts: str = "1767225600000", delta: str = "5", extra: str = "") -> str:
    return (
        '{"movement_id": "m-1", "sku": "s-1", "delta": ' + delta + ', "warehouse": "w", '
        '"ts": ' + ts + extra + "}"
    )


def test_integers_written_with_a_fraction_or_an_exponent_are_refused(
    t_env: TableEnvironment,
) -> None:
    got = errors(
        t_env,
        [
            order(ts="2.6821732942320384e+16"),
            order(delta="1.5e1"),
            order(delta="-4.0057670713473864E+16"),
            order(ts="1767225600000.0"),
            order(delta="1e3"),
        ],
    )
    assert got == [
        "field ts: not an integer",
        "field delta: not an integer",
        "field delta: not an integer",
        "field ts: missing or not an integer",
        "field delta: missing or not an integer",
    ]


def test_plain_integers_stay_valid_whatever_floats_sit_elsewhere(t_env: TableEnvironment) -> None:
    got = errors(
        t_env,
        [
            order(),
            order(ts=" -12 ", delta="-0"),
            order(extra=', "ratio": 1.5e1, "x": {"delta_ts": 2.5}'),
            order(extra=', "note": "ts: 1.5e1"'),
        ],
    )
    assert got == [None, None, None, None]
