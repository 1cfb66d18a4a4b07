"""Latency of attribution under a steady load: from a click's produce time to its attributed
record being visible to a read_committed consumer.

    .venv/bin/python -m bench.latency [--rate 1000] [--seconds 120] [--warmup 60] [--window 10s]

Starts a throw-away stack on free ports and submits jobs/attribution.py as a user would
(parallelism 1, from the latest offsets, `--window`, every other flag as shipped: 5 s of
out-of-orderness, 10 s checkpoints, its sink as its DDL declares it), waits until it runs and
its Python workers are up, then produces generated views and clicks (deploy/datagen, seed 1, two
partitions each: out-of-order, late, duplicate, malformed and bot events included) at `--rate`
messages/s for `--warmup` + `--seconds`. Event time runs with the wall clock: each message's `ts`
is set when it is sent, behind the send time by as much as the generator put it behind its
newest event (scaled to the pace), and its Kafka timestamp is the send time. A click's produce
time is that Kafka timestamp (CreateTime, set at the producer's produce() call: the producer's
own batching counts against the job). A reader in this process consumes the output topic with
isolation.level=read_committed; a record's visible time is when it reached the reader.

Per click produced after the warm-up that the contract attributes (a valid, human, on-time view
of the same user and ad in the same window at or before it) and whose window could close
before the load stopped: latency = first visible record with its click_id - produce time;
event-time wait = its window's end + the out-of-orderness - produce time (what the watermark
has to wait for before the window may fire); net = latency - event-time wait. With an
exactly-once sink a record would become visible only when the checkpoint after it completes:
the completed checkpoints are read from Flink during the run and that estimate is reported
too. Adds attribution_latency_* to bench/results/latest.json, writes
bench/results/latency-<date>.log and bench/results/latency.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench import results_file
from bench.latency_figures import PREFIX, Run, eos_visible, figures, percentile, report
from bench.latency_flink import Watch, drain, drive, start_job
from bench.latency_job import JobShape, job_flags, job_shape
from bench.latency_load import LoadProducer, Reader
from bench.latency_match import Event, Matched, attributable, first_visible, match
from bench.latency_plot import plot
from deploy.errors import EddylineError, FlinkError
from deploy.flink.rest import FlinkClient
from deploy.local.stack import control
from deploy.local.stack.ephemeral import free_settings
from deploy.settings import StackSettings

# The users and their skew (see --users, --key-skew).
USERS_PER_RATE = 25
KEY_SKEW = 1.2


class Log:
    """Prints lines and keeps them for the log file."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.lines: list[str] = []
        self._out = out

    def __call__(self, line: str = "") -> None:
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        self.lines.append(f"{stamp} {line}" if line else "")
        print(line, file=self._out, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass(frozen=True)
class Params:
    rate: float
    seconds: float
    warmup: float
    window: str
    grace: float
    seed: int
    extra: Sequence[str]
    users: int
    key_skew: float
    conf: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Started:
    """What a run started on the stack, for `measure` to stop on its way out."""

    job_id: str | None = None
    reader: Reader | None = None
    load: LoadProducer | None = None

    def stop(self, flink: FlinkClient) -> None:
        if self.load is not None:
            self.load.stop()
        if self.reader is not None:
            self.reader.stop()
        if self.job_id is not None:
            try:
                flink.cancel(self.job_id)
            except FlinkError as e:
                print(f"cancelling {self.job_id}: {e}", file=sys.stderr)


def measure(params: Params, log: Log) -> Run:
    """Start a throw-away stack, run the job under the load on it and take the figures; the
    stack is stopped however the run ends."""
    flags = job_flags(params.window, params.extra)
    shape = job_shape(flags)
    load_before = loadavg()
    log(f"load average before: {load_before}")
    with tempfile.TemporaryDirectory(prefix="eddyline-bench-latency-") as tmp:
        settings = free_settings(Path(tmp), controller=False)
        log("starting a stack…")
        control.up(settings)
        flink = FlinkClient(settings.flink_url)
        started = Started()
        try:
            return under_load(flink, settings, params, flags, shape, started, load_before, log)
        finally:
            started.stop(flink)
            flink.close()
            control.down(settings.state_dir)


def under_load(
    flink: FlinkClient,
    settings: StackSettings,
    params: Params,
    flags: Sequence[str],
    shape: JobShape,
    started: Started,
    load_before: list[float],
    log: Log,
) -> Run:
    """Submit the job, send the load, wait for the last windows and take the figures; what it
    starts goes into `started`."""
    bs = settings.bootstrap_servers
    job_id = started.job_id = start_job(flink, bs, settings.state_dir, flags, params.conf, log)
    reader = started.reader = Reader(bs)
    shape_of_data = {"users": params.users, "key_skew": params.key_skew}
    load = started.load = LoadProducer(
        bs, params.rate, params.warmup + params.seconds, params.seed, shape_of_data
    )
    watch = Watch(job_id)
    log(f"producing {params.rate:,.0f} messages/s for {params.warmup:.0f} + "
        f"{params.seconds:.0f} s")  # fmt: skip
    cores = drive(flink, settings.state_dir, load, reader, watch, params.warmup, log)
    load_end = loadavg()
    log(f"load done: {load.sent:,} messages; waiting for the last windows")
    expected = attributable(load.views, load.clicks, shape.window_ms)
    since_ms = load.started_ms + params.warmup * 1000

    def matched_now() -> Matched:
        seen = first_visible(reader.records)
        return match(expected, seen, since_ms, shape.window_ms, shape.ooo_ms, load.final_ts)

    drain(flink, reader, watch, lambda: bool(matched_now().unmatched),
          params.grace, shape.checkpoint_ms)  # fmt: skip
    reader.stop()
    matched = matched_now()
    checkpoints = watch.sorted_checkpoints()
    eos = [eos_visible(s.visible_ms, checkpoints) for s in matched.samples]
    out = figures(matched, eos, params.seconds)
    out |= context(params, shape, load, reader, watch, expected)
    out |= {
        f"{PREFIX}taskmanager_cores": cores,
        f"{PREFIX}load_average_before": load_before,
        f"{PREFIX}load_average": load_end,
    }
    return Run(out, matched, eos, dict(reader.windows), shape)


def _p50(values: Sequence[float], digits: int = 1) -> float | None:
    return round(percentile(list(values), 0.5), digits) if values else None


def context(
    params: Params,
    shape: JobShape,
    load: LoadProducer,
    reader: Reader,
    watch: Watch,
    expected: Mapping[str, Event],
) -> dict[str, Any]:
    """The run's settings and what else was seen beside the latencies."""
    checkpoints = watch.sorted_checkpoints()
    triggers = [t for t, _ in checkpoints]
    return {
        f"{PREFIX}rate_events_per_s": params.rate,
        f"{PREFIX}users": params.users,
        f"{PREFIX}flink_conf": dict(params.conf),
        f"{PREFIX}key_skew": params.key_skew,
        f"{PREFIX}sent_events_per_s": round(load.sent / (params.warmup + params.seconds)),
        f"{PREFIX}seconds": params.seconds,
        f"{PREFIX}warmup_s": params.warmup,
        f"{PREFIX}window_s": shape.window_ms / 1000,
        f"{PREFIX}out_of_orderness_s": shape.ooo_ms / 1000,
        f"{PREFIX}checkpoint_interval_s": shape.checkpoint_ms / 1000,
        f"{PREFIX}sink": shape.sink,
        f"{PREFIX}produce_time": "Kafka CreateTime, set at the producer's produce() call",
        f"{PREFIX}records": len(reader.records),
        f"{PREFIX}records_of_unattributable_clicks": sum(
            1 for c, _ in reader.records if c not in expected
        ),
        f"{PREFIX}produce_to_ack_p50_ms": _p50(load.ack_ms),
        f"{PREFIX}producer_behind_max_ms": round(load.behind_ms, 1),
        f"{PREFIX}checkpoints": len(checkpoints),
        f"{PREFIX}checkpoints_failed": len(watch.history.failed),
        f"{PREFIX}checkpoint_duration_p50_ms": _p50([d - t for t, d in checkpoints]),
        f"{PREFIX}checkpoint_trigger_step_p50_s": _p50(
            [(b - a) / 1000 for a, b in itertools.pairwise(triggers)], 2
        ),
        f"{PREFIX}backpressured_max": round(max(watch.backpressured), 2)
        if watch.backpressured
        else None,
    }


def parse(argv: list[str] | None) -> tuple[Params, bool]:
    """The run's parameters from the command line, and whether to leave bench/results alone."""
    p = argparse.ArgumentParser(
        prog="python -m bench.latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rate", type=float, default=1_000.0, help="messages per second (views, "
                   "clicks and the generator's bad ones together)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=120.0, help="measured load")
    p.add_argument("--warmup", type=float, default=60.0, help="load before, not measured")
    p.add_argument("--window", default="10s", help="the job's --window")
    p.add_argument("--grace", type=float, default=60.0,
                   help="seconds to wait after the load for the last windows")  # fmt: skip
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--users", type=int, default=None,
                   help="human users (default: USERS_PER_RATE x --rate)")  # fmt: skip
    p.add_argument("--key-skew", type=float, default=KEY_SKEW,
                   help="Zipf exponent of the users' activity")  # fmt: skip
    p.add_argument("--job-args", default="",
                   help="extra flags for the job, e.g. '--checkpoint-interval 2s'")  # fmt: skip
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="Flink configuration for the job's submission (as a FlinkJob's "
                   "flinkConfiguration), e.g. python.fn-execution.bundle.time=100; "
                   "repeatable")  # fmt: skip
    p.add_argument("--no-save", action="store_true", help="print, do not write bench/results")
    args = p.parse_args(argv)
    if args.users is None:
        args.users = max(1, round(USERS_PER_RATE * args.rate))
    if args.rate <= 0 or args.seconds <= 0 or args.warmup < 0:
        p.error("--rate and --seconds must be > 0, --warmup ≥ 0")
    if any("=" not in c for c in args.conf):
        p.error("--conf takes KEY=VALUE")
    conf = dict(c.split("=", 1) for c in args.conf)
    extra = args.job_args.split()
    params = Params(
        args.rate, args.seconds, args.warmup, args.window, args.grace, args.seed, extra,
        args.users, args.key_skew, conf,
    )  # fmt: skip
    return params, args.no_save


def save(run: Run, log: Log, argv: list[str] | None) -> None:
    """Add the figures to bench/results/latest.json; write the log and the plot beside it."""
    results_file.merge(run.figures)
    day = dt.datetime.now(dt.UTC).date().isoformat()
    log_path = results_file.RESULTS / f"latency-{day}.log"
    command = " ".join(["python -m bench.latency", *(argv if argv is not None else sys.argv[1:])])
    log_path.write_text("\n".join([f"$ {command}", *log.lines, ""]))
    png = results_file.RESULTS / "latency.png"
    plot(run, png)
    print(f"figures: {results_file.RESULTS / 'latest.json'}; log: {log_path}; plot: {png}")


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (and Ctrl-C) unwind through `finally`, so the benchmark's stack is always stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    params, no_save = parse(argv)
    log = Log()
    try:
        run = measure(params, log)
    except (EddylineError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    log()
    for line in report(run):
        log(line)
    if no_save:
        print(json.dumps(run.figures, indent=2))
        return 0
    save(run, log, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
