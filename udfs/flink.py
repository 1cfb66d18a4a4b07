"""PyFlink Table API wrappers around the pure UDFs in :mod:`udfs.bots` and :mod:`udfs.pages`.

The wrappers only adapt nulls and pandas Series; all rules live in the pure modules so they
can be tested without a JVM.
"""

from __future__ import annotations

from typing import Any, Final

import pandas as pd  # type: ignore[import-untyped]
from pyflink.table import DataTypes, TableEnvironment
from pyflink.table.udf import FunctionContext, ScalarFunction, udf

from udfs.bots import is_bot
from udfs.jsontext import is_json_object
from udfs.pages import normalize_page

__all__ = [
    "SQL_NAMES",
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
}


def register_all(t_env: TableEnvironment) -> None:
    """Register every UDF as a temporary system function under its SQL name."""
    for name, fn in SQL_NAMES.items():
        t_env.create_temporary_system_function(name, fn)
