"""Throughput of the reference jobs against their baselines, measured side by side in one run.

    .venv/bin/python -m bench.throughput [--events 200000] [--repeat 1]

Starts a throw-away stack on free ports, produces the same generated input once, then runs each
variant as a bounded job from the earliest offsets (parallelism 1) and times it from RUNNING to
FINISHED as Flink reports it. Variants, in one run on the same data and machine:
  attribution and sessions with vectorised pandas UDFs (the jobs as shipped), with row-at-a-time
  Python UDFs, and with built-in SQL functions only (the pure-SQL baseline); the ledger
  exactly-once and at-least-once. Writes bench/results/<date>.json, latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import results_file
from deploy import generator, loadgen, pyjobs
from deploy.errors import EddylineError
from deploy.flink_rest import TERMINAL_STATES, FlinkClient
from deploy.stack import control
from deploy.stack.ephemeral import free_settings

CLICK_TOPICS = {"views": "bench-views", "clicks": "bench-clicks"}
ORDER_TOPICS = {"orders": "bench-orders"}
VARIANTS: list[tuple[str, str, list[str]]] = [
    ("attribution", "python", ["--functions", "python"]),
    ("attribution", "builtin", ["--functions", "builtin"]),
    ("attribution", "pandas", ["--functions", "pandas"]),
    ("sessions", "python", ["--functions", "python"]),
    ("sessions", "pandas", ["--functions", "pandas"]),
    ("sessions", "builtin", ["--functions", "builtin"]),
    ("ledger", "exactly-once", ["--delivery", "exactly-once"]),
    ("ledger", "at-least-once", ["--delivery", "at-least-once"]),
]


def run_variant(flink: FlinkClient, bootstrap: str, job: str, args: list[str], tag: str) -> float:
    """Seconds from RUNNING to FINISHED of one bounded run."""
    inputs = (
        ["--orders-topic", ORDER_TOPICS["orders"]]
        if job == "ledger"
        else ["--views-topic", CLICK_TOPICS["views"], "--clicks-topic", CLICK_TOPICS["clicks"]]
    )
    job_id = pyjobs.submit(flink, f"jobs.{job}", [
        "--bootstrap-servers", bootstrap, "--bounded", "--starting-offsets", "earliest",
        "--group-id", f"bench-{tag}", "--output-topic", f"bench-out-{tag}",
        "--late-topic", f"bench-late-{tag}", "--dead-letter-topic", f"bench-dead-{tag}",
        "--checkpoint-interval", "5s", *inputs, *args,
    ])  # fmt: skip
    detail = flink.job(job_id)
    deadline = time.monotonic() + 1800
    # A bounded run that restarts has failed for the benchmark: say why instead of waiting.
    while detail["state"] not in {*TERMINAL_STATES, "RESTARTING"} and time.monotonic() < deadline:
        time.sleep(1)
        detail = flink.job(job_id)
    if detail["state"] == "RESTARTING":
        flink.cancel(job_id)
    if detail["state"] != "FINISHED":
        root = flink.job_exceptions(job_id).get("root-exception") or ""
        raise RuntimeError(f"{job} {args} ended {detail['state']}: {str(root)[:500]}")
    stamps = detail["timestamps"]
    return (int(stamps["FINISHED"]) - int(stamps["RUNNING"])) / 1000


def measure(
    events: int, repeat: int, only: set[str] | None = None, job_args: list[str] | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="eddyline-bench-") as state:
        settings = free_settings(Path(state), taskmanager_memory="3g", slots=4)
        control.up(settings)
        try:
            config = generator.GeneratorConfig(seed=1, events=events)
            bs = settings.bootstrap_servers
            loadgen.produce(bs, generator.clickstream(config), CLICK_TOPICS, partitions=2)
            loadgen.produce(bs, generator.orders(config), ORDER_TOPICS, partitions=2)
            seconds: dict[str, list[float]] = {f"{j}_{v}": [] for j, v, _ in VARIANTS}
            with FlinkClient(settings.flink_url) as flink:
                for r in range(repeat):
                    for job, variant, args in VARIANTS:
                        if only and f"{job}_{variant}" not in only:
                            continue
                        tag = f"{job}-{variant}-{r}"
                        took = run_variant(flink, bs, job, [*args, *(job_args or [])], tag)
                        seconds[f"{job}_{variant}"].append(took)
                        print(f"{tag}: {events / took:,.0f} events/s ({took:.1f} s)", flush=True)
        finally:
            control.down(settings.state_dir)
    rate = {k: events / statistics.median(v) for k, v in seconds.items() if v}
    if only:
        return {"events": events, **{f"{k}_events_per_s": round(v) for k, v in rate.items()}}
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "events": events,
        "repeat": repeat,
        **{f"{k}_events_per_s": round(v) for k, v in rate.items()},
        # The jobs ship with pandas UDFs (measured faster than row UDFs, below).
        "attribution_vs_sql_ratio": rate["attribution_pandas"] / rate["attribution_builtin"],
        "sessions_vs_sql_ratio": rate["sessions_pandas"] / rate["sessions_builtin"],
        # Sessions apply every UDF (JSON check, bot rule, page normaliser) to every event.
        "udf_vs_builtin_ratio": rate["sessions_pandas"] / rate["sessions_builtin"],
        "attribution_pandas_vs_row_ratio": rate["attribution_pandas"] / rate["attribution_python"],
        "sessions_pandas_vs_row_ratio": rate["sessions_pandas"] / rate["sessions_python"],
        "ledger_eos_vs_alo_ratio": rate["ledger_exactly-once"] / rate["ledger_at-least-once"],
    }


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (and Ctrl-C) unwind through `finally`, so the benchmark's stack is always stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser(
        prog="python -m bench.throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument(
        "--only",
        help="comma-separated variants (e.g. ledger_exactly-once) for a "
        "quick look; results are printed, not saved",
    )
    p.add_argument(
        "--job-args", default="", help="extra flags for every job, e.g. '--parallelism 2'"
    )
    args = p.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    try:
        result = measure(args.events, args.repeat, only, args.job_args.split())
        if only:
            print(json.dumps(result, indent=2))
            return 0
    except (EddylineError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    merged = results_file.merge(result)
    print(results_file.markdown(merged))
    return 0


if __name__ == "__main__":
    sys.exit(main())
