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
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bench import results_file
from bench.ceiling import consumer_ceiling
from bench.figures import (
    CEILING_CLICKSTREAM,
    CEILING_ORDERS,
    ORDER_JOBS,
    Run,
    Sample,
    describe,
    figures,
    steady_state,
)
from bench.taskmanagers import cpu_used, taskmanager_cpu, taskmanager_rss
from deploy import kafka_io
from deploy.datagen import generator, loadgen
from deploy.errors import EddylineError
from deploy.flink import pyjobs
from deploy.flink.rest import FlinkClient
from deploy.flink.states import TERMINAL_STATES
from deploy.local.stack import control
from deploy.local.stack.ephemeral import free_settings
from deploy.settings import StackSettings

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
# Run once, untimed, before the variants (see measure): the cheapest job, pure SQL.
WARM_UP = ("nexmark", ["--query", "q11"])
# Offsets are committed on checkpoints: the steady state is read at this resolution.
CHECKPOINT_INTERVAL = "2s"


def committed_records(consumer: Consumer, partitions: Sequence[TopicPartition]) -> int:
    """Records the group has committed on `partitions` (offsets from 0: fresh topics)."""
    return sum(max(tp.offset, 0) for tp in consumer.committed(list(partitions), timeout=10))


def root_cause(flink: FlinkClient, job_id: str) -> str:
    """The innermost cause of the job's latest failure, one line (Flink 2 keeps it in the
    exception history, which `root-exception` no longer carries)."""
    trace = flink.failure(job_id)
    causes = [line for line in trace.splitlines() if line.startswith("Caused by:")]
    lines = trace.splitlines()
    return (causes[-1] if causes else lines[0] if lines else "no failure recorded")[:500]


def _submit(flink: FlinkClient, bootstrap: str, job: str, args: list[str], tag: str) -> str:
    """Submit one bounded variant reading its input from the earliest offsets; its job id."""
    inputs = (
        ["--orders-topic", ORDER_TOPICS["orders"]]
        if job in ORDER_JOBS
        else ["--views-topic", CLICK_TOPICS["views"], "--clicks-topic", CLICK_TOPICS["clicks"]]
    )
    return pyjobs.submit(flink, f"jobs.{job}", [
        "--bootstrap-servers", bootstrap, "--bounded", "--starting-offsets", "earliest",
        "--group-id", f"bench-{tag}", "--output-topic", f"bench-out-{tag}",
        "--late-topic", f"bench-late-{tag}", "--dead-letter-topic", f"bench-dead-{tag}",
        "--checkpoint-interval", CHECKPOINT_INTERVAL, *inputs, *args,
    ])  # fmt: skip


def _watch(
    flink: FlinkClient,
    job_id: str,
    sample: Callable[[], Sample] | None,
) -> tuple[dict[str, Any], list[Sample]]:
    """Poll the job every half second until it ends (or restarts: a bounded run that restarts
    has failed for the benchmark), sampling it each time when asked; its last detail."""
    samples: list[Sample] = []
    detail = flink.job(job_id)
    deadline = time.monotonic() + 3600
    while detail["state"] not in {*TERMINAL_STATES, "RESTARTING"} and time.monotonic() < deadline:
        time.sleep(0.5)
        if sample is not None:
            samples.append(sample())
        detail = flink.job(job_id)
    return detail, samples


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
    cpu_before = taskmanager_cpu(state_dir) if state_dir else {}
    job_id = _submit(flink, bootstrap, job, args, tag)
    watcher = Consumer(kafka_io.client_config(bootstrap, **{"group.id": f"bench-{tag}"}))
    try:
        metadata = watcher.list_topics(timeout=10)
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(metadata.topics[t].partitions)
        ]

        def sample() -> Sample:
            return Sample(
                time.monotonic(),
                committed_records(watcher, partitions),
                cpu_used(cpu_before, taskmanager_cpu(state_dir) if state_dir else {}),
                taskmanager_rss(state_dir) if state_dir else None,
            )

        detail, samples = _watch(flink, job_id, sample if total is not None else None)
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


def _produce_inputs(bootstrap: str, events: int, orders: int, skus: int) -> None:
    """The same generated input for every variant: the clickstream and the orders."""
    loadgen.produce(
        bootstrap,
        generator.clickstream(generator.GeneratorConfig(seed=1, events=events)),
        CLICK_TOPICS,
        partitions=2,
    )
    loadgen.produce(
        bootstrap,
        generator.orders(generator.GeneratorConfig(seed=1, events=orders, skus=skus)),
        ORDER_TOPICS,
        partitions=2,
    )


CEILING_TOPICS = {
    CEILING_CLICKSTREAM: list(CLICK_TOPICS.values()),
    CEILING_ORDERS: list(ORDER_TOPICS.values()),
}


def _read_ceilings(
    bootstrap: str, r: int, expected: Mapping[str, int], ceilings: dict[str, list[float]]
) -> None:
    """One timed read of each ceiling's topics, checked for the whole input."""
    for name, topics in CEILING_TOPICS.items():
        count, took = consumer_ceiling(bootstrap, topics)
        if count != expected[name]:
            raise RuntimeError(f"{name}: read {count} records, not {expected[name]}")
        ceilings[name].append(took)
        print(f"{name}-{r}: {count / took:,.0f} events/s ({took:.2f} s)", flush=True)


@dataclass
class Measured:
    """Every run so far: per variant its runs, the ceilings' seconds, and failed variants."""

    runs: dict[str, list[Run]] = field(
        default_factory=lambda: {f"{j}_{v}": [] for j, v, _ in VARIANTS}
    )
    ceilings: dict[str, list[float]] = field(
        default_factory=lambda: {CEILING_CLICKSTREAM: [], CEILING_ORDERS: []}
    )
    failed: dict[str, str] = field(default_factory=dict)


def _run_variants(
    flink: FlinkClient,
    settings: StackSettings,
    r: int,
    totals: Mapping[str, int],
    only: set[str] | None,
    job_args: list[str],
    into: Measured,
) -> None:
    """Repeat `r` of every chosen variant; a variant that fails (its cause named) leaves the
    others to run."""
    for job, variant, args in VARIANTS:
        if only and f"{job}_{variant}" not in only:
            continue
        tag = f"{job}-{variant}-{r}"
        total = totals[job]
        try:
            run = run_variant(
                flink, settings.bootstrap_servers, job, [*args, *job_args], tag,
                settings.state_dir, total,
            )  # fmt: skip
        except RuntimeError as e:
            into.failed[f"{job}_{variant}"] = str(e)
            print(f"{tag}: failed: {e}", flush=True)
            continue
        into.runs[f"{job}_{variant}"].append(run)
        print(f"{tag}: {describe(run, total)}", flush=True)


def measure(
    events: int,
    repeat: int,
    only: set[str] | None = None,
    job_args: list[str] | None = None,
    orders: int | None = None,
    skus: int = 2_000,
) -> dict[str, Any]:
    orders = events if orders is None else orders
    totals = {job: orders if job in ORDER_JOBS else events for job, _, _ in VARIANTS}
    expected = {CEILING_CLICKSTREAM: events, CEILING_ORDERS: orders}
    done = Measured()
    with tempfile.TemporaryDirectory(prefix="eddyline-bench-") as state:
        settings = free_settings(Path(state), taskmanager_memory="3g", slots=4)
        control.up(settings)
        try:
            bs = settings.bootstrap_servers
            _produce_inputs(bs, events, orders, skus)
            # One untimed read first: the broker's first read of fresh topics is several times
            # slower (seen: 0.3 s, then 0.05-0.06 s for 20,000 events), and the jobs read warm.
            for topics in CEILING_TOPICS.values():
                consumer_ceiling(bs, topics)
            with FlinkClient(settings.flink_url) as flink:
                # The first job on a fresh stack was seen to take 2-10x longer than the same job
                # later (20,000 events: 10-40 s against 3-5 s, with up to 28 s of TaskManager
                # CPU: class loading, JIT, code generation): an untimed run first keeps that out
                # of whichever variant comes first.
                warm = run_variant(flink, bs, *WARM_UP, "warm-up", settings.state_dir)
                print(f"warm-up (untimed): {warm.seconds:.1f} s", flush=True)
                for r in range(repeat):
                    _read_ceilings(bs, r, expected, done.ceilings)
                    _run_variants(flink, settings, r, totals, only, job_args or [], done)
        finally:
            control.down(settings.state_dir)
    measured = figures(events, done.runs, done.ceilings, orders)
    if done.failed:
        measured["failed_variants"] = done.failed
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
