"""The benchmark's pure-SQL baseline computes what the Python UDFs compute, on generated data."""

from __future__ import annotations

import json

import pytest
from pyflink.table import EnvironmentSettings, TableEnvironment

from deploy.datagen.generator import GeneratorConfig, clickstream
from jobs import sql
from udfs.bots import is_bot
from udfs.pages import normalize_page

pytestmark = pytest.mark.filterwarnings(
    r"ignore:subprocess \d+ is still running:ResourceWarning",
    r"ignore:unclosed file <_io\.Buffered:ResourceWarning",
    "ignore::DeprecationWarning",  # pyparsing's, raised inside PyFlink's Beam imports
)


def test_builtin_bot_and_page_expressions_match_the_udfs() -> None:
    events = [json.loads(m.value) for m in clickstream(GeneratorConfig(seed=3, events=400))
              if m.kind in ("normal", "bot")]  # fmt: skip
    rows = ", ".join(f"({sql.literal(e['user_agent'])}, {sql.literal(e['page'])})" for e in events)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    bot, page = sql.bot_check("ua", "builtin"), sql.page_expression("page", "builtin")
    query = f"SELECT ua, page, {bot}, {page} FROM (VALUES {rows}) AS t(ua, page)"
    with t_env.execute_sql(query).collect() as results:
        got = [tuple(r) for r in results]
    assert len(got) == len(events)
    for ua, url, flagged, normalised in got:
        assert flagged == is_bot(ua), ua
        assert normalised == normalize_page(url), url
