"""Throughput of the reference jobs against their baselines, measured side by side in one run.

    .venv/bin/python -m bench.throughput [--events 200000] [--repeat 1] [--only VARIANTS]

Starts a throw-away stack on free ports, produces the same generated input once, runs one job
untimed (the first job on a fresh stack carries its warm-up), then runs each variant as a bounded
job from the earliest offsets (parallelism 1): its steady state (the records between 10 % and
90 % of the input, from its consumer group's committed offsets) and its time from RUNNING to
FINISHED as Flink reports it. Variants, in one run on the same data and machine:
  attribution and sessions as shipped (one row-at-a-time Python call per message), with the
  rules as vectorised pandas UDFs, in THREAD mode, and with built-in SQL functions only (the
  pure-SQL baseline); Nexmark-style q8 and q11 on the clickstream topics in plain Flink SQL
  (jobs/nexmark.py), also per core of TaskManager CPU against the published Nexmark figures; the
  ledger exactly-once and at-least-once as shipped (PROCESS mode), and exactly-once in THREAD
  mode. A variant that fails is reported with its cause and the others still run.
The ceiling: one confluent-kafka consumer in this process reading the same topics from the
beginning to the end offsets taken at its start, as fast as it can (the clickstream topics, and
the orders topic for the ledger).
Writes bench/results/<date>.json, latest.json, latest.md and throughput.png (full runs only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil
from confluent_kafka import Consumer, KafkaError, TopicPartition

from bench import results_file
from deploy import kafka_io
from deploy.datagen import generator, loadgen
from deploy.errors import EddylineError
from deploy.flink import pyjobs
from deploy.flink.rest import FlinkClient
from deploy.flink.states import TERMINAL_STATES
from deploy.local.stack import components, control
from deploy.local.stack import state as stack_state
from deploy.local.stack.ephemeral import free_settings

CLICK_TOPICS = {"views": "bench-views", "clicks": "bench-clicks"}
ORDER_TOPICS = {"orders": "bench-orders"}
THREAD = ["--python-execution-mode", "thread"]
VARIANTS: list[tuple[str, str, list[str]]] = [
    ("attribution", "python", ["--functions", "python"]),
    ("attribution", "builtin", ["--functions", "builtin"]),
    ("attribution", "pandas", ["--functions", "pandas"]),
    ("attribution", "python-thread", ["--functions", "python", *THREAD]),
    ("sessions", "python", ["--functions", "python"]),
    ("sessions", "pandas", ["--functions", "pandas"]),
    ("sessions", "builtin", ["--functions", "builtin"]),
    ("sessions", "python-thread", ["--functions", "python", *THREAD]),
    ("nexmark", "q8", ["--query", "q8"]),
    ("nexmark", "q11", ["--query", "q11"]),
    ("ledger", "exactly-once", ["--delivery", "exactly-once"]),
    ("ledger", "at-least-once", ["--delivery", "at-least-once"]),
    ("ledger", "exactly-once-thread", ["--delivery", "exactly-once", *THREAD]),
]
# The variant each job ships as (its default flags).
SHIPPED = {"attribution": "python", "sessions": "python", "ledger": "exactly-once"}
# The steady state: the records between these fractions of the input.
STEADY = (0.1, 0.9)
# Run once, untimed, before the variants (see measure): the cheapest job, pure SQL.
WARM_UP = ("nexmark", ["--query", "q11"])
# Jobs reading the orders topic; the others read views and clicks.
ORDER_JOBS = frozenset({"ledger"})
# The consumer ceilings, measured like a variant: figures consumer_ceiling_events_per_s and
# consumer_ceiling_orders_events_per_s.
CEILING_CLICKSTREAM = "consumer_ceiling"
CEILING_ORDERS = "consumer_ceiling_orders"
# Offsets are committed on checkpoints: the steady state is read at this resolution.
CHECKPOINT_INTERVAL = "2s"


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


def _tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process, its waited-for children and its live descendants."""
    t = proc.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.Error:
            continue
        total += c.user + c.system
    return total


def taskmanager_pids(state_dir: Path) -> list[int]:
    """Pids of the stack's TaskManager processes, from its state file."""
    current = stack_state.load(state_dir)
    found = current.components if current else []
    return [c.pid for c in found if c.kind == components.TASKMANAGER and c.pid]


def taskmanager_cpu(state_dir: Path) -> dict[int, float]:
    """CPU seconds each TaskManager's process tree has used so far, by pid — what Nexmark counts
    as a query's cores (the JobManager, Kafka and this process are not counted)."""
    out: dict[int, float] = {}
    for pid in taskmanager_pids(state_dir):
        try:
            out[pid] = _tree_cpu(psutil.Process(pid))
        except psutil.Error:
            continue
    return out


def taskmanager_rss(state_dir: Path) -> int | None:
    """Resident memory of the TaskManagers' process trees (JVM and Python workers), bytes."""
    total = 0
    seen = False
    for pid in taskmanager_pids(state_dir):
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for p in procs:
            try:
                total += p.memory_info().rss
                seen = True
            except psutil.Error:
                continue
    return total if seen else None


def committed_records(consumer: Consumer, partitions: Sequence[TopicPartition]) -> int:
    """Records the group has committed on `partitions` (offsets from 0: fresh topics)."""
    return sum(max(tp.offset, 0) for tp in consumer.committed(list(partitions), timeout=10))


def cpu_used(before: Mapping[int, float], after: Mapping[int, float]) -> float | None:
    """CPU seconds used in between by the processes seen both times (None: none was)."""
    both = before.keys() & after.keys()
    return sum(after[pid] - before[pid] for pid in both) if both else None


def root_cause(flink: FlinkClient, job_id: str) -> str:
    """The innermost cause of the job's latest failure, one line (Flink 2 keeps it in the
    exception history, which `root-exception` no longer carries)."""
    trace = flink.failure(job_id)
    causes = [line for line in trace.splitlines() if line.startswith("Caused by:")]
    lines = trace.splitlines()
    return (causes[-1] if causes else lines[0] if lines else "no failure recorded")[:500]


def run_variant(
    flink: FlinkClient,
    bootstrap: str,
    job: str,
    args: list[str],
    tag: str,
    state_dir: Path | None = None,
    total: int | None = None,
) -> Run:
    """One bounded run: its seconds from RUNNING to FINISHED, and with `state_dir` (the stack's)
    the CPU its TaskManagers used from the submission to the end. With `total` (the records in
    its input topics) the steady state too, from its consumer group's committed offsets, read
    every half second with the TaskManagers' CPU and memory."""
    topics = list(ORDER_TOPICS.values()) if job in ORDER_JOBS else list(CLICK_TOPICS.values())
    inputs = (
        ["--orders-topic", ORDER_TOPICS["orders"]]
        if job in ORDER_JOBS
        else ["--views-topic", CLICK_TOPICS["views"], "--clicks-topic", CLICK_TOPICS["clicks"]]
    )
    group = f"bench-{tag}"
    cpu_before = taskmanager_cpu(state_dir) if state_dir else {}
    job_id = pyjobs.submit(flink, f"jobs.{job}", [
        "--bootstrap-servers", bootstrap, "--bounded", "--starting-offsets", "earliest",
        "--group-id", group, "--output-topic", f"bench-out-{tag}",
        "--late-topic", f"bench-late-{tag}", "--dead-letter-topic", f"bench-dead-{tag}",
        "--checkpoint-interval", CHECKPOINT_INTERVAL, *inputs, *args,
    ])  # fmt: skip
    watcher = Consumer(kafka_io.client_config(bootstrap, **{"group.id": group}))
    samples: list[Sample] = []
    try:
        metadata = watcher.list_topics(timeout=10)
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(metadata.topics[t].partitions)
        ]
        detail = flink.job(job_id)
        deadline = time.monotonic() + 3600
        # A bounded run that restarts has failed for the benchmark: say why instead of waiting.
        while (
            detail["state"] not in {*TERMINAL_STATES, "RESTARTING"} and time.monotonic() < deadline
        ):
            time.sleep(0.5)
            if total is not None:
                cpu_now = taskmanager_cpu(state_dir) if state_dir else {}
                samples.append(
                    Sample(
                        time.monotonic(),
                        committed_records(watcher, partitions),
                        cpu_used(cpu_before, cpu_now),
                        taskmanager_rss(state_dir) if state_dir else None,
                    )
                )
            detail = flink.job(job_id)
    finally:
        watcher.close()
    cpu_after = taskmanager_cpu(state_dir) if state_dir else {}
    if detail["state"] == "RESTARTING":
        flink.cancel(job_id)
    if detail["state"] != "FINISHED":
        raise RuntimeError(f"{job} {args} ended {detail['state']}: {root_cause(flink, job_id)}")
    stamps = detail["timestamps"]
    seconds = (int(stamps["FINISHED"]) - int(stamps["RUNNING"])) / 1000
    rss = [x.rss for x in samples if x.rss is not None]
    return Run(
        seconds,
        cpu_used(cpu_before, cpu_after),
        steady_state(samples, total) if total else None,
        max(rss) if rss else None,
    )


class Polled(Protocol):
    """What `count_to_end` reads of a confluent_kafka.Message."""

    def error(self) -> Any: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...


def count_to_end(
    batches: Iterable[Sequence[Polled]], ends: Mapping[tuple[str, int], tuple[int, int]]
) -> int:
    """Count the records read before each partition's end offset, batch by batch, until every
    partition has reached it. `ends` maps (topic, partition) to its (low, high) watermarks taken
    at the start; RuntimeError when the batches run out first (the reader's deadline)."""
    pending = {tp for tp, (low, high) in ends.items() if high > low}
    count = 0
    if not pending:
        return count
    for batch in batches:
        for msg in batch:
            tp = (msg.topic() or "", msg.partition() or 0)
            if tp not in ends:
                continue
            high = ends[tp][1]
            offset = msg.offset()
            offset = -1 if offset is None else offset
            err = msg.error()
            if err is not None:
                # The end of the partition as it is now (enable.partition.eof).
                if err.code() == KafkaError._PARTITION_EOF and offset >= high:
                    pending.discard(tp)
                continue
            if offset < high:
                count += 1
            if offset >= high - 1:
                pending.discard(tp)
        if not pending:
            return count
    raise RuntimeError(
        f"the consumer stopped with {sorted(pending)} short of their end offsets ({count} read)"
    )


def _batches(consumer: Consumer, timeout: float) -> Iterator[Sequence[Polled]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # What is already fetched, without waiting: consume() with a timeout waits for a full
        # batch until the timeout, which the last, partial batch always would.
        batch = consumer.consume(num_messages=10_000, timeout=0)
        # Nothing fetched yet: wait for the first record that comes.
        yield batch or consumer.consume(num_messages=1, timeout=0.1)


def consumer_ceiling(
    bootstrap: str, topics: Sequence[str], timeout: float = 600.0
) -> tuple[int, float]:
    """One plain consumer reading every partition of `topics` from the beginning to the end
    offsets taken at its start, as fast as it can, counting records without decoding them:
    (records, seconds from the assignment to the last one)."""
    consumer = Consumer(
        kafka_io.client_config(
            bootstrap,
            **{
                "group.id": f"bench-ceiling-{time.time_ns()}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            },
        )
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        ends: dict[tuple[str, int], tuple[int, int]] = {}
        for topic in topics:
            for p in sorted(metadata.topics[topic].partitions):
                ends[(topic, p)] = consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=10
                )
        started = time.perf_counter()
        consumer.assign([TopicPartition(t, p, low) for (t, p), (low, _) in ends.items()])
        count = count_to_end(_batches(consumer, timeout), ends)
        return count, time.perf_counter() - started
    finally:
        consumer.close()


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


def measure(
    events: int,
    repeat: int,
    only: set[str] | None = None,
    job_args: list[str] | None = None,
    orders: int | None = None,
    skus: int = 2_000,
) -> dict[str, Any]:
    orders = events if orders is None else orders
    with tempfile.TemporaryDirectory(prefix="eddyline-bench-") as state:
        settings = free_settings(Path(state), taskmanager_memory="3g", slots=4)
        control.up(settings)
        try:
            bs = settings.bootstrap_servers
            loadgen.produce(
                bs,
                generator.clickstream(generator.GeneratorConfig(seed=1, events=events)),
                CLICK_TOPICS,
                partitions=2,
            )
            loadgen.produce(
                bs,
                generator.orders(generator.GeneratorConfig(seed=1, events=orders, skus=skus)),
                ORDER_TOPICS,
                partitions=2,
            )
            runs: dict[str, list[Run]] = {f"{j}_{v}": [] for j, v, _ in VARIANTS}
            failed: dict[str, str] = {}
            ceilings: dict[str, list[float]] = {CEILING_CLICKSTREAM: [], CEILING_ORDERS: []}
            topics_of = {
                CEILING_CLICKSTREAM: list(CLICK_TOPICS.values()),
                CEILING_ORDERS: list(ORDER_TOPICS.values()),
            }
            # One untimed read first: the broker's first read of fresh topics is several times
            # slower (seen: 0.3 s, then 0.05-0.06 s for 20,000 events), and the jobs read warm.
            for topics in topics_of.values():
                consumer_ceiling(bs, topics)
            with FlinkClient(settings.flink_url) as flink:
                # The first job on a fresh stack was seen to take 2-10x longer than the same job
                # later (20,000 events: 10-40 s against 3-5 s, with up to 28 s of TaskManager
                # CPU: class loading, JIT, code generation): an untimed run first keeps that out
                # of whichever variant comes first.
                warm = run_variant(flink, bs, *WARM_UP, "warm-up", settings.state_dir)
                print(f"warm-up (untimed): {warm.seconds:.1f} s", flush=True)
                for r in range(repeat):
                    for name, topics in topics_of.items():
                        expected = orders if name == CEILING_ORDERS else events
                        count, took = consumer_ceiling(bs, topics)
                        if count != expected:
                            raise RuntimeError(f"{name}: read {count} records, not {expected}")
                        ceilings[name].append(took)
                        rate = f"{count / took:,.0f} events/s ({took:.2f} s)"
                        print(f"{name}-{r}: {rate}", flush=True)
                    for job, variant, args in VARIANTS:
                        if only and f"{job}_{variant}" not in only:
                            continue
                        tag = f"{job}-{variant}-{r}"
                        total = orders if job in ORDER_JOBS else events
                        try:
                            run = run_variant(
                                flink, bs, job, [*args, *(job_args or [])], tag,
                                settings.state_dir, total,
                            )  # fmt: skip
                        except RuntimeError as e:
                            # One variant failing (its cause named) leaves the others to run.
                            failed[f"{job}_{variant}"] = str(e)
                            print(f"{tag}: failed: {e}", flush=True)
                            continue
                        runs[f"{job}_{variant}"].append(run)
                        print(f"{tag}: {describe(run, total)}", flush=True)
        finally:
            control.down(settings.state_dir)
    measured = figures(events, runs, ceilings, orders)
    if failed:
        measured["failed_variants"] = failed
    head: dict[str, Any] = {"events": events, "orders": orders, "skus": skus}
    if only:
        return {**head, **measured}
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **head,
        "repeat": repeat,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        **measured,
    }


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


def plot(result: Mapping[str, Any], path: Path) -> None:
    """Bars of events/s per variant, grouped by job, with each group's consumer ceiling as a
    dashed line over it (log scale: the ceiling is far above the jobs)."""
    import matplotlib  # noqa: PLC0415 - only the plot needs it, and it is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    groups: dict[str, list[tuple[str, float]]] = {}
    for job, variant, _ in VARIANTS:
        value = result.get(f"{job}_{variant}_events_per_s")
        if isinstance(value, int | float):
            groups.setdefault(job, []).append((variant, float(value)))
    colours = {"attribution": "tab:blue", "sessions": "tab:green", "nexmark": "tab:purple"}
    fig, ax = plt.subplots(figsize=(11, 5))
    x = 0.0
    ticks: list[float] = []
    labels: list[str] = []
    for job, bars in groups.items():
        first = x
        for variant, value in bars:
            ax.bar(x, value, width=0.8, color=colours.get(job, "tab:orange"))
            ax.annotate(f"{value:,.0f}", (x, value), ha="center", va="bottom", fontsize=8)
            ticks.append(x)
            labels.append(f"{job}\n{textwrap.fill(variant, 10)}")
            x += 1
        ceiling = CEILING_ORDERS if job in ORDER_JOBS else CEILING_CLICKSTREAM
        top = result.get(f"{ceiling}_events_per_s")
        if isinstance(top, int | float):
            ax.hlines(top, first - 0.45, x - 0.55, colors="tab:red", linestyles="--")
            what = "orders" if job in ORDER_JOBS else "clickstream"
            ax.annotate(
                f"consumer ceiling ({what})\n{top:,.0f}", (first - 0.45, top),
                va="bottom", fontsize=8, color="tab:red",
            )  # fmt: skip
        x += 0.7
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * 3)  # room for the ceilings' labels
    ax.set_ylabel("events/s (log scale)")
    ax.grid(axis="y", alpha=0.3)
    events = result.get("events")
    shown = f"{events:,} events per run, " if isinstance(events, int) else ""
    fig.suptitle(f"Throughput, bounded runs at parallelism 1 ({shown}2 vCPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (and Ctrl-C) unwind through `finally`, so the benchmark's stack is always stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser(
        prog="python -m bench.throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--events", type=int, default=1_000_000, help="clickstream events")
    p.add_argument(
        "--orders", type=int, default=None, help="orders for the ledger (default: --events)"
    )
    p.add_argument("--skus", type=int, default=2_000, help="distinct SKUs among the orders")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument(
        "--only",
        help="comma-separated variants (e.g. ledger_exactly-once, nexmark_q8) for a "
        "quick look; the consumer ceilings run too; results are printed, not saved",
    )
    p.add_argument(
        "--job-args", default="", help="extra flags for every job, e.g. '--parallelism 2'"
    )
    args = p.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    if only:
        unknown = only - {f"{j}_{v}" for j, v, _ in VARIANTS}
        if unknown:
            p.error(f"unknown variants: {', '.join(sorted(unknown))}")
    try:
        result = measure(
            args.events, args.repeat, only, args.job_args.split(), args.orders, args.skus
        )
        if only:
            print(json.dumps(result, indent=2))
            return 0
    except (EddylineError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    merged = results_file.merge(result)
    print(results_file.markdown(merged))
    path = results_file.RESULTS / "throughput.png"
    plot(result, path)
    print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
