"""PyFlink Table API wrappers around the pure UDFs in :mod:`udfs.bots` and :mod:`udfs.pages`.

The wrappers only adapt nulls and pandas Series; all rules live in the pure modules so they
can be tested without a JVM.
"""

from __future__ import annotations

from typing import Any, Final

import pandas as pd  # type: ignore[import-untyped]
from pyflink.common import Row
from pyflink.table import DataTypes, TableEnvironment
from pyflink.table.udf import FunctionContext, ScalarFunction, udf

from udfs import events
from udfs.bots import is_bot
from udfs.jsontext import is_json_object
from udfs.pages import normalize_page

__all__ = [
    "SQL_NAMES",
    "check_clickstream_udf",
    "check_orders_udf",
    "is_bot_pandas",
    "is_bot_udf",
    "is_json_object_udf",
    "normalize_page_pandas",
    "normalize_page_udf",
    "register_all",
]


BOTS_COUNTER = "eddyline_bots_filtered"


class _BotRule(ScalarFunction):  # type: ignore[misc]
    """The bot rule as a UDF that also counts, as the Flink metric `eddyline_bots_filtered`, the
    bots it finds on the rows whose second argument is TRUE.

    The jobs pass "this event is valid and on time" there: the planner evaluates a Python UDF
    in a filter on every row before the rest of the filter (PythonCalc runs ahead of the Calc
    that filters), so counting every bot seen would also count malformed and late events that
    happen to carry a bot's user agent. With the flag the counter is exactly the "filtered"
    route."""

    def __init__(self) -> None:
        self._bots: Any = None

    def open(self, function_context: FunctionContext) -> None:
        self._bots = function_context.get_metric_group().counter(BOTS_COUNTER)

    def _count(self, n: int) -> None:
        if self._bots is not None and n:
            self._bots.inc(n)

    def __call__(self, *args: Any) -> Any:
        return self.eval(*args)


class _IsBotRow(_BotRule):
    def eval(self, user_agent: str | None, counted: bool | None = True) -> bool:
        bot = is_bot(user_agent)
        self._count(int(bot and bool(counted)))
        return bot


class _IsBotSeries(_BotRule):
    def eval(self, user_agents: pd.Series, counted: pd.Series | None = None) -> pd.Series:
        bots = user_agents.map(lambda v: is_bot(_as_str(v))).astype(bool)
        on_route = bots if counted is None else bots & counted.eq(True)  # a null is not counted
        self._count(int(on_route.sum()))
        return bots


# What check_clickstream adds to the checks, by its last argument (a literal in the SQL).
RULES: Final = ("none", "bots", "bots+pages")


class _CheckClickstream(_BotRule):
    """Parse and check a clickstream message once, and apply the bot rule (and the page rule)
    to it in the same call: one Python function per message, so one Java ↔ Python crossing.

    Bots are counted on valid rows that are not `late` (the valid route)."""

    def eval(self, msg: str | None, utf8: bool | None, late: bool | None, rules: str) -> Row:
        error, values = events.check(events.CLICKSTREAM, msg, utf8)
        if values is None:
            return Row(error, *_NO_CLICK)
        bot = False
        page_norm = None
        if rules != "none":
            bot = is_bot(values[_USER_AGENT])  # type: ignore[arg-type]
            if bot and not late:
                self._count(1)
            if rules == "bots+pages":
                page_norm = normalize_page(values[_PAGE])  # type: ignore[arg-type]
        return Row(None, *values, bot, page_norm)


def _check_orders(msg: str | None, utf8: bool | None) -> Row:
    error, values = events.check(events.ORDERS, msg, utf8)
    return Row(error, *(values or _NO_ORDER))


_NAMES = {schema: [name for name, _ in schema] for schema in (events.CLICKSTREAM, events.ORDERS)}
_USER_AGENT = _NAMES[events.CLICKSTREAM].index("user_agent")
_PAGE = _NAMES[events.CLICKSTREAM].index("page")
_NO_CLICK = (None,) * (len(events.CLICKSTREAM) + 2)
_NO_ORDER = (None,) * len(events.ORDERS)


def _row_type(schema: events.Schema, extra: list[Any] | None = None) -> Any:
    sql_type = {"string": DataTypes.STRING(), "int": DataTypes.BIGINT()}
    return DataTypes.ROW(
        [
            DataTypes.FIELD("error", DataTypes.STRING()),
            *(DataTypes.FIELD(name, sql_type[kind]) for name, kind in schema),
            *(extra or []),
        ]
    )


CLICKSTREAM_ROW: Final[Any] = _row_type(
    events.CLICKSTREAM,
    [DataTypes.FIELD("bot", DataTypes.BOOLEAN()), DataTypes.FIELD("page_norm", DataTypes.STRING())],
)
ORDERS_ROW: Final[Any] = _row_type(events.ORDERS)


def _normalize_page_row(page: str | None) -> str | None:
    return None if page is None else normalize_page(page)


def _as_str(value: object) -> str | None:
    # A null STRING can reach a pandas UDF as None or as NaN depending on the batch.
    return value if isinstance(value, str) else None


def _normalize_page_series(pages: pd.Series) -> pd.Series:
    return pages.map(lambda v: _normalize_page_row(_as_str(v))).astype(object)


# Built with udf(f, ...) rather than as decorators so the plain functions above keep their
# types for mypy (strict mode rejects untyped decorators).
is_bot_udf: Final[Any] = udf(
    _IsBotRow(),
    input_types=[DataTypes.STRING(), DataTypes.BOOLEAN()],
    result_type=DataTypes.BOOLEAN(),
)
normalize_page_udf: Final[Any] = udf(
    _normalize_page_row, input_types=[DataTypes.STRING()], result_type=DataTypes.STRING()
)
is_json_object_udf: Final[Any] = udf(
    is_json_object, input_types=[DataTypes.STRING()], result_type=DataTypes.BOOLEAN()
)
check_clickstream_udf: Final[Any] = udf(
    _CheckClickstream(),
    input_types=[DataTypes.STRING(), DataTypes.BOOLEAN(), DataTypes.BOOLEAN(), DataTypes.STRING()],
    result_type=CLICKSTREAM_ROW,
)
check_orders_udf: Final[Any] = udf(
    _check_orders, input_types=[DataTypes.STRING(), DataTypes.BOOLEAN()], result_type=ORDERS_ROW
)
is_bot_pandas: Final[Any] = udf(
    _IsBotSeries(),
    input_types=[DataTypes.STRING(), DataTypes.BOOLEAN()],
    result_type=DataTypes.BOOLEAN(),
    func_type="pandas",
)
normalize_page_pandas: Final[Any] = udf(
    _normalize_page_series,
    input_types=[DataTypes.STRING()],
    result_type=DataTypes.STRING(),
    func_type="pandas",
)

SQL_NAMES: Final[dict[str, Any]] = {
    "is_bot": is_bot_udf,
    "normalize_page": normalize_page_udf,
    "is_bot_vec": is_bot_pandas,
    "normalize_page_vec": normalize_page_pandas,
    "is_json_object": is_json_object_udf,
    "check_clickstream": check_clickstream_udf,
    "check_orders": check_orders_udf,
}


def register_all(t_env: TableEnvironment) -> None:
    """Register every UDF as a temporary system function under its SQL name."""
    for name, fn in SQL_NAMES.items():
        t_env.create_temporary_system_function(name, fn)
