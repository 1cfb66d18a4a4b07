"""The ledger's job graph (built, not run): one Kafka source feeds both of its routes.

Its valid route goes through a DataStream conversion, which the planner plans apart from the
statement set; when each route read `orders_checked` on its own, the job had two Kafka sources in
one consumer group, read the topic twice and committed two sets of offsets that took turns, so
the group's lag jumped by tens of thousands of records between two reads (seen by
bench.autoscaler)."""

from __future__ import annotations

import json

import pytest

from jobs import ledger


@pytest.mark.filterwarnings(
    r"ignore:subprocess \d+ is still running:ResourceWarning",
    r"ignore:unclosed file <_io\.Buffered:ResourceWarning",
    "ignore::DeprecationWarning:httplib2.*",
)
def test_one_kafka_source_feeds_the_dead_letter_and_the_ledger_routes() -> None:
    env, statement_set = ledger.build(ledger.parse_args(["--bootstrap-servers", "127.0.0.1:9"]))
    statement_set.attach_as_datastream()
    nodes = json.loads(env.get_execution_plan())["nodes"]
    sources = [n for n in nodes if n.get("pact") == "Data Source"]
    # One source; its [id] counts the plans this JVM compiled before (other tests' too).
    assert len(sources) == 1, sources
    assert sources[0]["type"].startswith("Source: orders_src["), sources
    names = [n["type"] for n in nodes]
    assert "ledger" in names
    assert any(name.startswith("dead_letter") for name in names)
    assert any(name.startswith("stock_levels") for name in names)
