"""What bench.throughput reports, from what it measured: a variant's steady state from its samples,
and every figure and ratio the runs allow, against the consumer ceiling and the published Nexmark
results. Pure: no servers."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Jobs reading the orders topic; the others read views and clicks.
ORDER_JOBS = frozenset({"ledger"})
# The consumer ceilings, measured like a variant: figures consumer_ceiling_events_per_s and
# consumer_ceiling_orders_events_per_s.
CEILING_CLICKSTREAM = "consumer_ceiling"
CEILING_ORDERS = "consumer_ceiling_orders"
# The steady state: the records between these fractions of the input.
STEADY = (0.1, 0.9)


@dataclass(frozen=True)
class Published:
    """One query's line of the published Nexmark table."""

    events: int
    cores: float  # average CPU use of the TaskManager processes during the run
    seconds: float
    events_per_s_per_core: float  # as printed: events / (cores x seconds)


# Published Nexmark results for Flink, from the nexmark/nexmark README, section "Nexmark
# Benchmark Result" (commit 0c6d9cf08c9c86485b062d6565cdc06024368558):
# https://github.com/nexmark/nexmark/blob/0c6d9cf08c9c86485b062d6565cdc06024368558/README.md
# Flink 1.13 on 3 worker machines of 8 cores and 32 GB RAM each (SSD); 8 TaskManagers of one slot
# and 8 GB each, parallelism 8; RocksDB with incremental checkpoints every 3 min (exactly-once);
# mini-batch (2 s, 5,000 rows) and split distinct aggregation on; 100 million events from
# Nexmark's in-process generator source (bid 92 %, auction 6 %, person 2 %; no Kafka, no JSON);
# blackhole sinks. "Cores" is the CPU use of the TaskManager process trees, which is what
# `taskmanager_cpu` measures here. Their q8 reads persons and auctions (8 % of the events, the
# bids are filtered out) and q11 the bids; ours read every event of views and clicks.
NEXMARK_SOURCE = (
    "https://github.com/nexmark/nexmark/blob/0c6d9cf08c9c86485b062d6565cdc06024368558/README.md"
)
NEXMARK_PUBLISHED: dict[str, Published] = {
    "q8": Published(100_000_000, 9.42, 72.673, 146_140.0),
    "q11": Published(100_000_000, 10.6, 237.599, 39_700.0),
}

# Ratios between two measured steady-state rates (variants or ceilings), in the result when
# both were measured.
RATIOS: dict[str, tuple[str, str]] = {
    # The jobs as shipped against their pure-SQL twins (checks and rules in SQL only).
    "attribution_vs_sql_ratio": ("attribution_python", "attribution_builtin"),
    "sessions_vs_sql_ratio": ("sessions_python", "sessions_builtin"),
    "attribution_pandas_vs_row_ratio": ("attribution_pandas", "attribution_python"),
    "sessions_pandas_vs_row_ratio": ("sessions_pandas", "sessions_python"),
    "attribution_thread_vs_process_ratio": ("attribution_python-thread", "attribution_python"),
    "sessions_thread_vs_process_ratio": ("sessions_python-thread", "sessions_python"),
    "ledger_thread_vs_process_ratio": ("ledger_exactly-once-thread", "ledger_exactly-once"),
    "ledger_eos_vs_alo_ratio": ("ledger_exactly-once", "ledger_at-least-once"),
    # The jobs as shipped against a bare consumer of the same topics.
    "attribution_vs_ceiling_ratio": ("attribution_python", CEILING_CLICKSTREAM),
    "sessions_vs_ceiling_ratio": ("sessions_python", CEILING_CLICKSTREAM),
    "ledger_vs_ceiling_ratio": ("ledger_exactly-once", CEILING_ORDERS),
    "ledger_thread_vs_ceiling_ratio": ("ledger_exactly-once-thread", CEILING_ORDERS),
    "nexmark_q8_vs_ceiling_ratio": ("nexmark_q8", CEILING_CLICKSTREAM),
    "nexmark_q11_vs_ceiling_ratio": ("nexmark_q11", CEILING_CLICKSTREAM),
}
# Both clickstream jobs together (the harmonic mean of their rates: the rate of running one after
# the other): with Python functions against built-in SQL only.
UDF_VS_BUILTIN = (
    ("attribution_python", "sessions_python"),
    ("attribution_builtin", "sessions_builtin"),
)


@dataclass(frozen=True)
class Sample:
    """One look at a running variant: its consumer group's committed records, the TaskManagers'
    CPU seconds so far and their resident memory (process trees: the Python workers count)."""

    t: float
    committed: int
    cpu: float | None
    rss: int | None


@dataclass(frozen=True)
class Steady:
    events_per_s: float
    cpu_s_per_million: float | None


def steady_state(
    samples: Sequence[Sample], total: int, bounds: tuple[float, float] = STEADY
) -> Steady | None:
    """The rate between the first samples at which the committed records reached each bound's
    share of `total` (None when both are the same sample or one was never reached), and the
    TaskManager CPU seconds per million records in between."""
    low = next((x for x in samples if x.committed >= bounds[0] * total), None)
    high = next((x for x in samples if x.committed >= bounds[1] * total), None)
    if low is None or high is None or high.t <= low.t or high.committed <= low.committed:
        return None
    records = high.committed - low.committed
    cpu = None
    if low.cpu is not None and high.cpu is not None:
        cpu = (high.cpu - low.cpu) / records * 1e6
    return Steady(records / (high.t - low.t), cpu)


@dataclass(frozen=True)
class Run:
    seconds: float  # RUNNING → FINISHED as Flink reports it
    cpu_seconds: float | None  # TaskManager CPU from submission to FINISHED; None if unknown
    steady: Steady | None = None  # between 10 % and 90 % of the input (committed offsets)
    peak_rss: int | None = None  # the TaskManagers' largest resident memory seen, bytes


def _harmonic(rates: Sequence[float]) -> float:
    return len(rates) / sum(1 / r for r in rates)


def figures(
    events: int,
    runs: Mapping[str, Sequence[Run]],
    ceilings: Mapping[str, Sequence[float]],
    orders: int | None = None,
) -> dict[str, Any]:
    """Every figure the measured runs allow (medians over repeats): per variant its steady-state
    events/s, end-to-end events/s, TaskManager CPU-seconds per million events (steady state) and
    peak TaskManager memory; the ceilings; the ratios whose two rates were measured; the Nexmark
    queries per TaskManager core. `orders` is the ledger's input size (default `events`)."""
    orders = events if orders is None else orders
    rate: dict[str, float] = {}
    out: dict[str, Any] = {}
    for name, took in ceilings.items():
        if took:
            rate[name] = (orders if name == CEILING_ORDERS else events) / statistics.median(took)
            out[f"{name}_events_per_s"] = round(rate[name])
    for key, measured in runs.items():
        if not measured:
            continue
        n = orders if key.split("_")[0] in ORDER_JOBS else events
        out[f"{key}_end_to_end_events_per_s"] = round(
            n / statistics.median(r.seconds for r in measured)
        )
        steady = [r.steady for r in measured if r.steady is not None]
        if steady:
            rate[key] = statistics.median(x.events_per_s for x in steady)
            out[f"{key}_events_per_s"] = round(rate[key])
            cpu = [x.cpu_s_per_million for x in steady if x.cpu_s_per_million is not None]
            if cpu:
                out[f"{key}_cpu_s_per_million"] = round(statistics.median(cpu), 1)
        rss = [r.peak_rss for r in measured if r.peak_rss is not None]
        if rss:
            out[f"{key}_taskmanager_peak_rss_mb"] = round(max(rss) / 2**20)
    for key, (num, den) in RATIOS.items():
        if num in rate and den in rate:
            out[key] = rate[num] / rate[den]
    udf, builtin = UDF_VS_BUILTIN
    if all(k in rate for k in (*udf, *builtin)):
        out["udf_vs_builtin_ratio"] = _harmonic([rate[k] for k in udf]) / _harmonic(
            [rate[k] for k in builtin]
        )
    for query, published in NEXMARK_PUBLISHED.items():
        per_million = out.get(f"nexmark_{query}_cpu_s_per_million")
        if not per_million or f"nexmark_{query}" not in rate:
            continue
        per_core = 1e6 / per_million
        out[f"nexmark_{query}_taskmanager_cores"] = round(rate[f"nexmark_{query}"] / per_core, 2)
        out[f"nexmark_{query}_events_per_s_per_core"] = round(per_core)
        out[f"nexmark_{query}_published_events_per_s_per_core"] = published.events_per_s_per_core
        out[f"nexmark_{query}_per_core_vs_published_ratio"] = (
            per_core / published.events_per_s_per_core
        )
        out["nexmark_published_source"] = NEXMARK_SOURCE
    return out


def describe(run: Run, total: int) -> str:
    """One line for the log: steady and end-to-end rates, CPU and memory."""
    parts = []
    if run.steady is not None:
        parts.append(f"steady {run.steady.events_per_s:,.0f} events/s")
        if run.steady.cpu_s_per_million is not None:
            parts.append(f"{run.steady.cpu_s_per_million:.1f} TM CPU-s per million")
    parts.append(f"end to end {total / run.seconds:,.0f} events/s ({run.seconds:.1f} s)")
    if run.cpu_seconds is not None:
        parts.append(f"TaskManager CPU {run.cpu_seconds:.1f} s")
    if run.peak_rss is not None:
        parts.append(f"peak RSS {run.peak_rss / 2**20:,.0f} MiB")
    return ", ".join(parts)
