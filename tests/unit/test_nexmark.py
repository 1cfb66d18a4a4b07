"""Nexmark-style q8/q11 (jobs/nexmark.py) and the throughput benchmark's pure parts: the queries
plan in pure Flink SQL (no UDF is registered, so any Python function would fail the planning)
into the sink's columns; the consumer ceiling's counting, the figures and the plot."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from bench import ceiling, figures, taskmanagers, throughput
from jobs import nexmark
from tests.plans import planned


def plan(query: str, *extra: str) -> tuple[str, list[str]]:
    """The optimized plan of the query and its sink's column names (planning only)."""
    args = nexmark.parse_args(
        ["--bootstrap-servers", "127.0.0.1:9", "--query", query, "--bounded", *extra]
    )
    ddl, inserts = nexmark.statements(args)
    text, t_env = planned(args, f"nexmark-{query}", ddl, inserts)
    columns = list(t_env.from_path(f"nexmark_{query}").get_schema().get_field_names())
    return text, columns


# PyFlink's loopback worker leaves these behind; none of it is ours (as in test_udfs_flink).
planning = pytest.mark.filterwarnings(
    r"ignore:subprocess \d+ is still running:ResourceWarning",
    r"ignore:unclosed file <_io\.Buffered:ResourceWarning",
    "ignore::DeprecationWarning:httplib2.*",
)


@planning
def test_q8_joins_per_window_distinct_users_of_views_and_clicks() -> None:
    text, columns = plan("q8")
    # The Kafka key, then the value's columns.
    assert columns == ["k", "user_id", "window_start", "window_end"]
    assert re.search(r"WindowJoin\(.*TUMBLE\(.*size=\[10 s\]\).*InnerJoin", text), text
    # Each side grouped per user and window (the distinct of Nexmark's q8), both sources read.
    assert text.count("GlobalWindowAggregate(groupBy=[user_id]") == 2, text
    assert "views_src" in text
    assert "clicks_src" in text
    assert "IS NOT NULL" in text


@planning
def test_q11_counts_events_per_user_session() -> None:
    text, columns = plan("q11", "--gap", "30s")
    assert columns == ["k", "user_id", "session_start", "session_end", "events"]
    assert re.search(r"SESSION\(time_col=\[rt\], gap=\[30 s\], partition keys=\[user_id\]", text)
    assert "COUNT(*)" in text
    assert "Union(all=[true]" in text


def test_flags_follow_the_other_jobs() -> None:
    args = nexmark.parse_args(
        ["--query", "q11", "--late-topic", "x", "--dead-letter-topic", "y", "--functions", "python"]
    )
    assert args.output_topic == "nexmark-q11"
    assert (args.window, args.gap) == (10_000, 10_000)
    assert nexmark.parse_args(["--query", "q8", "--output-topic", "o"]).output_topic == "o"
    with pytest.raises(SystemExit):
        nexmark.parse_args([])


@dataclass
class FakeError:
    code_: int

    def code(self) -> int:
        return self.code_


@dataclass
class FakeMessage:
    topic_: str
    partition_: int
    offset_: int
    error_: FakeError | None = None

    def error(self) -> FakeError | None:
        return self.error_

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_


def test_ceiling_counts_each_partition_up_to_its_end_offset() -> None:
    ends = {("v", 0): (0, 3), ("v", 1): (5, 7), ("c", 0): (0, 0)}  # ("c", 0) is empty
    batches = [
        [FakeMessage("v", 0, 0), FakeMessage("v", 1, 5), FakeMessage("v", 0, 1)],
        # Written after the start (offset 3 ≥ end 3): not counted.
        [FakeMessage("v", 0, 2), FakeMessage("v", 0, 3), FakeMessage("v", 1, 6)],
        [FakeMessage("v", 0, 99)],  # never read: every partition is done
    ]
    assert ceiling.count_to_end(iter(batches), ends) == 5


def test_ceiling_ends_a_partition_at_its_eof_and_fails_when_reading_stops_short() -> None:
    eof = FakeError(KafkaError._PARTITION_EOF)
    ends = {("o", 0): (0, 3)}
    # Offset 2 is a transaction marker, never delivered: the EOF at offset 3 ends the partition.
    batches = [[FakeMessage("o", 0, 0), FakeMessage("o", 0, 1)], [FakeMessage("o", 0, 3, eof)]]
    assert ceiling.count_to_end(batches, ends) == 2
    with pytest.raises(RuntimeError, match=r"\('o', 0\)"):
        ceiling.count_to_end([[FakeMessage("o", 0, 0)]], ends)
    assert ceiling.count_to_end([], {("o", 0): (4, 4)}) == 0


def test_cpu_used_counts_processes_seen_before_and_after() -> None:
    assert taskmanagers.cpu_used({1: 10.0, 2: 5.0}, {1: 12.5, 3: 1.0}) == 2.5
    assert taskmanagers.cpu_used({}, {3: 1.0}) is None


def _run(seconds: float, steady: float | None = None, cpu: float | None = None) -> figures.Run:
    state = None if steady is None else figures.Steady(steady, cpu)
    return figures.Run(seconds, None, state, 2**30)


def test_figures_rates_ratios_and_nexmark_per_core() -> None:
    runs = {
        # steady medians 5,000 events/s; end to end 100,000 events over the median 20 s
        "attribution_python": [_run(10.0, 4_000), _run(20.0, 5_000), _run(30.0, 6_000)],
        "attribution_builtin": [_run(10.0, 10_000)],
        "ledger_exactly-once": [_run(50.0, 2_000)],
        "nexmark_q8": [_run(4.0, 25_000, cpu=50.0)],
        "nexmark_q11": [],  # not run
        "sessions_python": [],
    }
    ceilings = {"consumer_ceiling": [0.5], "consumer_ceiling_orders": [0.25]}
    out = figures.figures(100_000, runs, ceilings)
    assert out["attribution_python_events_per_s"] == 5_000
    assert out["attribution_python_end_to_end_events_per_s"] == 5_000
    assert out["attribution_python_taskmanager_peak_rss_mb"] == 1024
    assert out["consumer_ceiling_events_per_s"] == 200_000
    assert out["consumer_ceiling_orders_events_per_s"] == 400_000
    assert out["attribution_vs_sql_ratio"] == pytest.approx(0.5)
    assert out["attribution_vs_ceiling_ratio"] == pytest.approx(0.025)
    assert out["ledger_vs_ceiling_ratio"] == pytest.approx(2_000 / 400_000)
    assert "sessions_vs_ceiling_ratio" not in out
    assert "sessions_python_events_per_s" not in out
    assert "udf_vs_builtin_ratio" not in out  # needs both jobs
    # 50 TaskManager CPU-seconds per million events: 20,000 per core; at 25,000/s, 1.25 cores.
    assert out["nexmark_q8_cpu_s_per_million"] == 50.0
    assert out["nexmark_q8_events_per_s_per_core"] == 20_000
    assert out["nexmark_q8_taskmanager_cores"] == 1.25
    published = figures.NEXMARK_PUBLISHED["q8"].events_per_s_per_core
    assert out["nexmark_q8_per_core_vs_published_ratio"] == pytest.approx(20_000 / published)
    assert out["nexmark_published_source"] == figures.NEXMARK_SOURCE
    assert not any(k.startswith("nexmark_q11") for k in out)
    assert "nexmark_published_source" not in figures.figures(1, {"nexmark_q8": [_run(1.0)]}, {})


def test_udf_vs_builtin_takes_both_jobs_together() -> None:
    runs = {
        "attribution_python": [_run(1.0, 10_000)],
        "sessions_python": [_run(1.0, 40_000)],
        "attribution_builtin": [_run(1.0, 20_000)],
        "sessions_builtin": [_run(1.0, 20_000)],
    }
    out = figures.figures(1_000, runs, {})
    # Both jobs one after the other: 16,000 events/s against 20,000.
    assert out["udf_vs_builtin_ratio"] == pytest.approx(0.8)
    assert out["udf_vs_builtin_ratio"] != out["sessions_vs_sql_ratio"]


def test_steady_state_is_read_between_10_and_90_percent() -> None:
    samples = [
        figures.Sample(0.0, 0, 0.0, None),
        figures.Sample(10.0, 50, 5.0, None),  # start-up: slow
        figures.Sample(11.0, 150, 6.0, None),  # first at >= 10 %
        figures.Sample(12.0, 500, 7.0, None),
        figures.Sample(13.0, 950, 8.0, None),  # first at >= 90 %
        figures.Sample(30.0, 1_000, 9.0, None),  # the end: slow
    ]
    steady = figures.steady_state(samples, 1_000)
    assert steady is not None
    assert steady.events_per_s == pytest.approx(400.0)
    assert steady.cpu_s_per_million == pytest.approx(2.0 / 800 * 1e6)
    assert figures.steady_state(samples[:3], 1_000) is None


def test_published_nexmark_figures_are_consistent() -> None:
    # The table's Throughput/Cores is events / (cores x seconds).
    for published in figures.NEXMARK_PUBLISHED.values():
        derived = published.events / (published.cores * published.seconds)
        assert derived == pytest.approx(published.events_per_s_per_core, rel=0.005)


def test_plot_writes_a_png(tmp_path: Path) -> None:
    result = {
        "events": 20_000,
        "attribution_pandas_events_per_s": 3_500,
        "attribution_builtin_events_per_s": 5_200,
        "nexmark_q8_events_per_s": 9_000,
        "ledger_exactly-once_events_per_s": 1_000,
        "consumer_ceiling_events_per_s": 250_000,
        "consumer_ceiling_orders_events_per_s": 300_000,
    }
    path = tmp_path / "throughput.png"
    throughput.plot(result, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    throughput.plot({"events": 1}, tmp_path / "empty.png")  # nothing measured: still a plot
    assert (tmp_path / "empty.png").stat().st_size > 0
