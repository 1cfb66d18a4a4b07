"""The PyFlink UDF wrappers, tested without a cluster.

The wrapped Python functions are called directly (PyFlink keeps them as ``_func``); only the
registration test needs a JVM, and it uses a local TableEnvironment, not a running cluster.
"""

from __future__ import annotations

import pandas as pd
import pytest
from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
from pyflink.table.udf import UserDefinedScalarFunctionWrapper

from udfs.flink import (
    is_bot_pandas,
    is_bot_udf,
    normalize_page_pandas,
    normalize_page_udf,
    register_all,
)

SQL_NAMES = ("is_bot", "normalize_page", "is_bot_vec", "normalize_page_vec")


@pytest.mark.parametrize(
    "wrapper", [is_bot_udf, normalize_page_udf, is_bot_pandas, normalize_page_pandas]
)
def test_wrappers_are_scalar_udfs(wrapper: object) -> None:
    assert isinstance(wrapper, UserDefinedScalarFunctionWrapper)


def test_func_types() -> None:
    assert is_bot_udf._func_type == "general"
    assert normalize_page_udf._func_type == "general"
    assert is_bot_pandas._func_type == "pandas"
    assert normalize_page_pandas._func_type == "pandas"


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [("Googlebot/2.1", True), ("HeadlessChrome/120", True), ("Safari", False), (None, False)],
)
def test_is_bot_udf(user_agent: str | None, expected: bool) -> None:
    assert is_bot_udf._func(user_agent) is expected


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("HTTPS://Shop.Example.COM/Cart/?id=1#top", "https://shop.example.com/Cart"),
        ("http://a.com", "http://a.com/"),
        (None, None),
    ],
)
def test_normalize_page_udf(page: str | None, expected: str | None) -> None:
    assert normalize_page_udf._func(page) == expected


def test_is_bot_pandas_handles_nulls() -> None:
    series = pd.Series(["Googlebot/2.1", "Safari", None, float("nan"), "AhrefsCrawler"])
    result = is_bot_pandas._func(series)
    assert result.dtype == bool
    assert result.tolist() == [True, False, False, False, True]


def test_is_bot_pandas_empty_series() -> None:
    result = is_bot_pandas._func(pd.Series([], dtype=object))
    assert result.dtype == bool
    assert len(result) == 0


def test_normalize_page_pandas_handles_nulls() -> None:
    series = pd.Series(["HTTP://A.com/x/?q=1", None, float("nan"), "http://a.com"])
    result = normalize_page_pandas._func(series)
    assert result.tolist() == ["http://a.com/x", None, None, "http://a.com/"]


# Creating a TableEnvironment launches the JVM gateway with a Popen that PyFlink drops while the
# process is still running (ResourceWarnings for the process and its pipes), and starts the Beam
# loopback worker, whose import of httplib2 calls a deprecated pyparsing API. None of it is ours.
@pytest.mark.filterwarnings(
    r"ignore:subprocess \d+ is still running:ResourceWarning",
    r"ignore:unclosed file <_io\.Buffered:ResourceWarning",
    "ignore::DeprecationWarning:httplib2.*",
)
def test_register_all_registers_sql_names() -> None:
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    register_all(t_env)
    assert set(SQL_NAMES) <= set(t_env.list_user_defined_functions())
    assert set(SQL_NAMES) <= set(t_env.list_functions())
    # Planning (no execution) checks the declared input and result types resolve in SQL.
    table = t_env.sql_query(
        "SELECT is_bot(ua, TRUE) AS a, normalize_page(p) AS b, is_bot_vec(ua, TRUE) AS c,"
        " normalize_page_vec(p) AS d FROM (VALUES ('Googlebot', 'HTTP://A.com/')) AS t(ua, p)"
    )
    types = table.get_resolved_schema().get_column_data_types()
    assert types == [DataTypes.BOOLEAN(), DataTypes.STRING()] * 2


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def inc(self, n: int = 1) -> None:
        self.count += n


def test_the_bot_counter_counts_only_rows_it_is_told_to() -> None:
    row, series = is_bot_udf._func, is_bot_pandas._func
    row._bots, series._bots = _Counter(), _Counter()
    try:
        assert row("Googlebot", False) is True  # a bot, but not on the filtered route
        assert row("Googlebot", True) is True
        assert row("Safari", True) is False
        assert row._bots.count == 1
        agents = pd.Series(["Googlebot", "Googlebot", "Safari", None])
        counted = pd.Series([True, False, True, None])
        assert series(agents, counted).tolist() == [True, True, False, False]
        assert series._bots.count == 1
    finally:
        row._bots = series._bots = None
