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
import bisect
import datetime as dt
import itertools
import json
import math
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from bench import results_file
from bench.profile import python_workers
from bench.state_storage import wait_running as wait_vertices_running
from bench.taskmanagers import cpu_used, taskmanager_cpu
from bench.throughput import root_cause
from deploy import kafka_io
from deploy.datagen import generator, loadgen
from deploy.errors import EddylineError, FlinkError
from deploy.flink import pyjobs
from deploy.flink.rest import FlinkClient
from deploy.local.stack import control
from deploy.local.stack.ephemeral import free_settings

TOPICS = {"views": "lat-views", "clicks": "lat-clicks"}
OUTPUT = "lat-attributed"
LATE = "lat-late"
DEAD = "lat-dead"
PARTITIONS = 2
GROUP = "bench-latency"
PREFIX = "attribution_latency_"
# Kinds of generated messages the job attributes: valid, human, on time (see generator).
VALID = frozenset({"normal", "out_of_order", "duplicate"})
# A window counts only if the newest event time produced is this far past what closes it: the
# watermark is the minimum over the four input partitions, each a few ms behind the newest.
CLOSE_MARGIN_MS = 1_000
# The users and their skew (see --users, --key-skew).
USERS_PER_RATE = 25
KEY_SKEW = 1.2
# How often the main loop reads the job's checkpoints, watermarks and back-pressure.
POLL_S = 2.0

# -- pure parts (tests/unit/test_latency.py) --------------------------------------------------

_TS = re.compile(rb'"ts":(-?\d{1,18})(?=[,}])')


class Restamper:
    """Moves generated event time onto the wall clock, message by message, as they are sent.

    A message's new `ts` is the send time minus how far the generator put it behind the newest
    `ts` it had generated so far (times `scale`: the generator's event time per message over
    the pace's), so out-of-order and late events stay as far behind as generated, in wall time.
    A duplicate is sent as the same bytes as its original was. Messages without an integer
    `ts` (some malformed ones) go as they are."""

    def __init__(self, scale: float = 1.0, horizon: int = 4_096) -> None:
        self.scale = scale
        self.high: int | None = None
        self._horizon = horizon
        self._sent: OrderedDict[bytes, bytes] = OrderedDict()

    def stamp(self, message: generator.Message, now_ms: int) -> bytes:
        if message.kind == "duplicate":
            copy = self._sent.get(message.value)
            if copy is not None:
                return copy
        found = _TS.search(message.value)
        if found is None:
            return message.value
        ts = int(found.group(1))
        self.high = ts if self.high is None else max(self.high, ts)
        new = now_ms - round((self.high - ts) * self.scale)
        value = message.value[: found.start(1)] + str(new).encode() + message.value[found.end(1) :]
        if message.kind in ("normal", "out_of_order"):
            self._sent[message.value] = value
            if len(self._sent) > self._horizon:
                self._sent.popitem(last=False)
        return value


def pace(rate: float) -> tuple[int, float]:
    """The generator's mean event-time step (whole ms, ≥ 1) for `rate` messages/s, and the
    factor that turns its event time into wall time at that pace."""
    gap = max(1, round(1000 / rate))
    return gap, (1000 / rate) / gap


@dataclass(frozen=True)
class Event:
    """A valid, human, on-time view or click as sent: what the job attributes."""

    event_id: str
    user_id: str
    ad_id: str
    ts: int
    produced_ms: int


def window_end(ts: int, window_ms: int) -> int:
    """The end of the tumbling window holding `ts` (floor, as Flink's assigner)."""
    return ts - ts % window_ms + window_ms


def event_time_wait_ms(produced_ms: float, click_ts: int, window_ms: int, ooo_ms: int) -> float:
    """From a click's produce time to when its window may fire: its end plus the
    out-of-orderness, the event time the watermark (newest ts - out-of-orderness) must pass."""
    return window_end(click_ts, window_ms) + ooo_ms - produced_ms


def closes(click_ts: int, window_ms: int, ooo_ms: int, final_ts: int) -> bool:
    """Could the click's window fire, the newest event time produced being `final_ts`?"""
    return window_end(click_ts, window_ms) + ooo_ms + CLOSE_MARGIN_MS <= final_ts


def attributable(
    views: Iterable[Event], clicks: Iterable[Event], window_ms: int
) -> dict[str, Event]:
    """Every click (by event id, its first send) the contract attributes: a view of the same
    user and ad in the same window at or before it."""
    earliest: dict[tuple[str, str, int], int] = {}
    for v in views:
        k = (v.user_id, v.ad_id, window_end(v.ts, window_ms))
        earliest[k] = min(v.ts, earliest.get(k, v.ts))
    out: dict[str, Event] = {}
    for c in clicks:
        first = earliest.get((c.user_id, c.ad_id, window_end(c.ts, window_ms)))
        if first is None or first > c.ts:
            continue
        seen = out.get(c.event_id)
        if seen is None or c.produced_ms < seen.produced_ms:
            out[c.event_id] = c
    return out


def first_visible(records: Iterable[tuple[str, float]]) -> dict[str, float]:
    """click id → when its first attributed record became visible."""
    out: dict[str, float] = {}
    for click_id, visible in records:
        if click_id not in out or visible < out[click_id]:
            out[click_id] = visible
    return out


@dataclass(frozen=True)
class Sample:
    """One attributed click: when it was produced, when its record was visible, and the wait
    its window and the out-of-orderness impose (ms)."""

    click_id: str
    produced_ms: float
    visible_ms: float
    wait_ms: float
    window_end: int

    @property
    def latency_ms(self) -> float:
        return self.visible_ms - self.produced_ms

    @property
    def net_ms(self) -> float:
        return self.latency_ms - self.wait_ms


@dataclass
class Matched:
    samples: list[Sample] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # expected, never visible
    not_closed: int = 0  # attributable, but the load stopped before their window could close
    warmup: int = 0  # attributable, produced during the warm-up


def match(
    expected: Mapping[str, Event],
    visible: Mapping[str, float],
    since_ms: float,
    window_ms: int,
    ooo_ms: int,
    final_ts: int,
) -> Matched:
    """Pair each attributable click produced at or after `since_ms` whose window could close
    with the first visible record of it."""
    out = Matched()
    for click_id, click in expected.items():
        if click.produced_ms < since_ms:
            out.warmup += 1
        elif not closes(click.ts, window_ms, ooo_ms, final_ts):
            out.not_closed += 1
        elif click_id not in visible:
            out.unmatched.append(click_id)
        else:
            wait = event_time_wait_ms(click.produced_ms, click.ts, window_ms, ooo_ms)
            end = window_end(click.ts, window_ms)
            out.samples.append(Sample(click_id, click.produced_ms, visible[click_id], wait, end))
    out.samples.sort(key=lambda s: s.produced_ms)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 < q ≤ 1), nearest rank: the smallest value at least q of them are at
    or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered) - 1e-9) - 1)]


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 (nearest rank) and max."""
    return {
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


def eos_visible(emitted_ms: float, checkpoints: Sequence[tuple[float, float]]) -> float | None:
    """When a record the sink wrote at `emitted_ms` would be visible to read_committed readers
    were the sink exactly-once: at the completion of the first checkpoint triggered after it
    (its transaction commits then; `checkpoints` = (trigger, completion) sorted by trigger).
    Slightly late: a record written between a trigger and its barrier's arrival goes in that
    checkpoint. None when no such checkpoint completed."""
    at = bisect.bisect_left(checkpoints, (emitted_ms, float("-inf")))
    return checkpoints[at][1] if at < len(checkpoints) else None


def sink_guarantee(ddl: Sequence[str], table: str) -> str:
    """The delivery guarantee the DDL gives the Kafka table `table`."""
    for statement in ddl:
        if re.match(rf"CREATE TEMPORARY TABLE `{re.escape(table)}`", statement):
            found = re.search(r"'sink\.delivery-guarantee' = '([a-z-]+)'", statement)
            return found.group(1) if found else "at-least-once"  # the connector's default
    raise ValueError(f"no table {table} in the DDL")


def by_window(samples: Iterable[Sample]) -> dict[int, list[Sample]]:
    """The samples of each window (by its end), in window order."""
    out: dict[int, list[Sample]] = {}
    for sample in sorted(samples, key=lambda x: x.window_end):
        out.setdefault(sample.window_end, []).append(sample)
    return out


def trend(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of y over x; None with fewer than three points. Of each window's
    worst net latency over its end: near 0 when the job keeps up, the rate at which it falls
    behind when it does not."""
    if len(points) < 3:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else None


def _s(ms: float) -> float:
    return round(ms / 1000, 3)


def figures(matched: Matched, eos: Sequence[float | None], seconds: float) -> dict[str, Any]:
    """The attribution_latency_* figures of a run (seconds): raw, net of the event-time wait,
    the wait itself and the exactly-once estimate, with the counts."""
    out: dict[str, Any] = {}
    samples = matched.samples
    out[f"{PREFIX}clicks_matched"] = len(samples)
    out[f"{PREFIX}clicks_unmatched"] = len(matched.unmatched)
    out[f"{PREFIX}clicks_window_not_closed"] = matched.not_closed
    out[f"{PREFIX}clicks_warmup"] = matched.warmup
    if not samples:
        return out
    out[f"{PREFIX}clicks_per_s"] = round(len(samples) / seconds, 1)
    for name, values in (
        ("", [s.latency_ms for s in samples]),
        ("net_", [s.net_ms for s in samples]),
        ("event_time_wait_", [s.wait_ms for s in samples]),
    ):
        for stat, value in summary(values).items():
            out[f"{PREFIX}{name}{stat}_s"] = _s(value)
    windows = by_window(samples)
    worst = [(end / 60_000, max(x.net_ms for x in w) / 1000) for end, w in windows.items()]
    slope = trend(worst)
    out[f"{PREFIX}windows"] = len(windows)
    out[f"{PREFIX}window_net_max_s"] = [round(y, 2) for _, y in worst]
    out[f"{PREFIX}net_trend_s_per_min"] = round(slope, 2) if slope is not None else None
    pairs = [(s, e) for s, e in zip(samples, eos, strict=True) if e is not None]
    if pairs:
        for name, values in (
            ("eos_estimate_", [e - s.produced_ms for s, e in pairs]),
            ("eos_estimate_net_", [e - s.produced_ms - s.wait_ms for s, e in pairs]),
            ("eos_checkpoint_adds_", [e - s.visible_ms for s, e in pairs]),
        ):
            for stat, value in summary(values).items():
                out[f"{PREFIX}{name}{stat}_s"] = _s(value)
    return out


# -- the run ---------------------------------------------------------------------------------


class Log:
    """Prints lines and keeps them for the log file."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.lines: list[str] = []
        self._out = out

    def __call__(self, line: str = "") -> None:
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        self.lines.append(f"{stamp} {line}" if line else "")
        print(line, file=self._out, flush=True)


class LoadProducer:
    """Sends the generated clickstream at a fixed rate for a fixed time in a thread of its own,
    stamping event time with the wall clock; keeps the valid views and clicks it sent."""

    def __init__(
        self, bootstrap: str, rate: float, seconds: float, seed: int, shape: dict[str, Any]
    ) -> None:
        gap, scale = pace(rate)
        config = generator.GeneratorConfig(
            seed=seed, events=int(rate * seconds * 1.05) + 1_000, mean_gap_ms=gap, **shape
        )
        self.messages = generator.clickstream(config)
        self.restamper = Restamper(scale)
        self.rate = rate
        self.seconds = seconds
        self.views: list[Event] = []
        self.clicks: list[Event] = []
        self.sent = 0
        self.behind_ms = 0.0  # the furthest the sends fell behind the pace
        self.final_ts = 0  # the newest event time sent
        self.ack_ms: list[float] = []  # clicks: produce() → acknowledged
        self.failures: list[str] = []
        self.started_ms = 0.0
        self._started = 0.0
        self.error: BaseException | None = None
        self._producer = Producer(
            kafka_io.client_config(
                bootstrap,
                **{
                    # As kafka_io.Sender: keys partitioned as Java clients (and Flink) do.
                    "linger.ms": 5,
                    "enable.idempotence": True,
                    "partitioner": "murmur2_random",
                    "on_delivery": self._delivered,
                },
            )
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, daemon=True)

    def start(self) -> None:
        self._started = time.monotonic()
        self.started_ms = time.time() * 1000
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failures.append(str(err))
        elif msg.topic() == TOPICS["clicks"]:
            self.ack_ms.append(time.time() * 1000 - msg.timestamp()[1])

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the main thread
            self.error = e

    def _run(self) -> None:
        pacer = loadgen.Pacer(self.rate, self._started)
        end = pacer.started + self.seconds
        produce = self._producer.produce
        for n, msg in enumerate(self.messages):
            now = time.monotonic()
            if now >= end or self._stop.is_set():
                break
            wait = pacer.delay(n, now)
            if wait > 0:
                self._producer.poll(0)
                time.sleep(wait)
            else:
                self.behind_ms = max(self.behind_ms, -1000 * (pacer.started + n / self.rate - now))
            now_ms = int(time.time() * 1000)
            value = self.restamper.stamp(msg, now_ms)
            topic = TOPICS[msg.topic]
            while True:
                try:
                    produce(topic, value=value, key=msg.key, timestamp=now_ms)
                    break
                except BufferError:
                    self._producer.poll(0.1)
            self.sent += 1
            self.final_ts = now_ms  # what the newest event time sent is (normal events)
            if msg.kind in VALID:
                body = json.loads(value)
                event = Event(body["event_id"], body["user_id"], body["ad_id"], body["ts"], now_ms)
                (self.clicks if msg.topic == "clicks" else self.views).append(event)
        left = self._producer.flush(60)
        if left:
            self.failures.append(f"{left} messages not delivered within 60 s")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=90)


class Reader:
    """Reads the output topic with read_committed in a thread, noting when each record arrived
    (its visible time: when a read_committed reader can see it)."""

    def __init__(self, bootstrap: str) -> None:
        self.records: list[tuple[str, float]] = []  # (click id, visible ms)
        self.windows: dict[int, float] = {}  # window end → first visible ms
        self.error: BaseException | None = None
        self._consumer = Consumer(
            kafka_io.client_config(
                bootstrap,
                **{
                    "group.id": f"bench-latency-reader-{time.time_ns()}",
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",
                    # The broker answers a fetch as soon as one byte is there; this bounds the
                    # wait of an empty one, so a new record is never held back by it.
                    "fetch.wait.max.ms": 50,
                },
            )
        )
        self._consumer.assign(
            [TopicPartition(OUTPUT, p, OFFSET_BEGINNING) for p in range(PARTITIONS)]
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, daemon=True)
        self._thread.start()

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the main thread
            self.error = e
        finally:
            self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._consumer.consume(num_messages=10_000, timeout=0.05)
            now = time.time() * 1000
            for msg in batch:
                if msg.error() is not None:
                    continue
                body = json.loads(msg.value() or b"{}")
                self.records.append((body["click_id"], now))
                self.windows.setdefault(int(body["window_end"]), now)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def watermark_behind_s(marks: Iterable[Mapping[str, Any]], now_ms: float) -> float | None:
    """How far a vertex's input watermark (the least over its subtasks, from Flink's
    /watermarks) is behind the wall clock, in seconds; None before its first watermark."""
    values = [int(m["value"]) for m in marks if str(m.get("value", "")).lstrip("-").isdigit()]
    values = [v for v in values if v > 0]  # Long.MIN_VALUE: no watermark yet
    return (now_ms - min(values)) / 1000 if values else None


@dataclass
class Watch:
    """What the main loop reads from Flink while the load runs."""

    checkpoints: dict[int, tuple[float, float]] = field(default_factory=dict)
    failed_checkpoints: set[int] = field(default_factory=set)
    backpressured: list[float] = field(default_factory=list)  # the most of any vertex, per poll
    vertices: dict[str, str] = field(default_factory=dict)  # name → how it was at the last poll

    def poll(self, flink: FlinkClient, job_id: str) -> None:
        detail = flink.job(job_id)
        if detail["state"] != "RUNNING":
            raise RuntimeError(f"the job is {detail['state']}: {root_cause(flink, job_id)}")
        for entry in flink.checkpoints(job_id).get("history") or []:
            if entry.get("is_savepoint"):
                continue
            if entry.get("status") == "COMPLETED":
                trigger = float(entry["trigger_timestamp"])
                done = trigger + float(entry["end_to_end_duration"])
                self.checkpoints[int(entry["id"])] = (trigger, done)
            elif entry.get("status") == "FAILED":
                self.failed_checkpoints.add(int(entry["id"]))
        pressured = 0.0
        # Logged, not reported: Flink's REST metrics are up to 10 s old (its metric fetcher's
        # interval), and the sources with their Python operators were seen 80-90 % busy even
        # at 20 messages/s, so busy time says little about headroom.
        names = ["busyTimeMsPerSecond", "backPressuredTimeMsPerSecond"]
        for vertex in detail.get("vertices") or []:
            try:
                found = flink.subtask_metrics(job_id, vertex["id"], names, agg="max")
                marks = flink.vertex_watermarks(job_id, vertex["id"])
            except FlinkError:
                continue
            now = time.time() * 1000
            busy = found.get(names[0], {}).get("max", 0.0) / 1000
            behind = found.get(names[1], {}).get("max", 0.0) / 1000
            pressured = max(pressured, behind)
            late = watermark_behind_s(marks, now)
            name = str(vertex.get("name", ""))
            shown = "no watermark" if late is None else f"watermark {late:.1f} s behind"
            self.vertices[name] = f"busy {busy:.0%}, back-pressured {behind:.0%}, {shown}"
        self.backpressured.append(pressured)

    def sorted_checkpoints(self) -> list[tuple[float, float]]:
        return sorted(self.checkpoints.values())


def job_flags(window: str, extra: Sequence[str]) -> list[str]:
    return [
        "--views-topic", TOPICS["views"], "--clicks-topic", TOPICS["clicks"],
        "--output-topic", OUTPUT, "--late-topic", LATE, "--dead-letter-topic", DEAD,
        "--group-id", GROUP, "--starting-offsets", "latest", "--parallelism", "1",
        "--window", window, *extra,
    ]  # fmt: skip


@dataclass(frozen=True)
class JobShape:
    """What the submitted job's flags make of it (read with the job's own parser)."""

    window_ms: int
    ooo_ms: int
    checkpoint_ms: int
    sink: str


def job_shape(flags: Sequence[str]) -> JobShape:
    from jobs import attribution, runtime  # noqa: PLC0415 - imports pyflink: slow

    args = attribution.parse_args(["--bootstrap-servers", "unused", *flags])
    ddl, _ = attribution.statements(args)
    interval = args.checkpoint_interval or runtime.DEFAULT_CHECKPOINT_INTERVAL_MS
    return JobShape(
        args.window, args.max_out_of_orderness, interval, sink_guarantee(ddl, "attributed")
    )


def wait_for_workers(state_dir: Path, timeout: float = 120) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = python_workers(state_dir)
        if workers:
            return workers
        time.sleep(1)
    raise RuntimeError(f"no Python worker under the TaskManagers after {timeout:.0f} s")


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class Run:
    figures: dict[str, Any]
    matched: Matched
    eos: list[float | None]
    windows: dict[int, float]  # window end → its first record's visible time
    shape: JobShape


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


def start_job(
    flink: FlinkClient,
    bootstrap: str,
    state_dir: Path,
    flags: Sequence[str],
    conf: Mapping[str, str],
    log: Log,
) -> str:
    """Create the topics, submit the job and wait until it runs with its Python workers up."""
    partitions = {**dict.fromkeys(TOPICS.values(), PARTITIONS), OUTPUT: PARTITIONS}
    kafka_io.create_topics(bootstrap, {**partitions, LATE: 1, DEAD: 1})
    job_id = pyjobs.submit(
        flink,
        "jobs.attribution",
        ["--bootstrap-servers", bootstrap, *flags],
        configuration=dict(conf) or None,
    )
    shown = "".join(f" -D{k}={v}" for k, v in conf.items())
    log(f"submitted attribution {' '.join(flags)}{shown}: {job_id}")
    wait_vertices_running(flink, job_id)
    if "thread" not in flags:  # THREAD mode runs Python inside the TaskManager: no workers
        log(f"running; Python workers {wait_for_workers(state_dir)}")
    return job_id


def drive(
    flink: FlinkClient,
    job_id: str,
    state_dir: Path,
    load: LoadProducer,
    reader: Reader,
    watch: Watch,
    warmup: float,
    log: Log,
) -> float | None:
    """Run the load to its end, watching the job; returns the TaskManager cores (CPU seconds
    per second) used after the warm-up."""
    cpu_before: dict[int, float] = {}
    cpu_from = 0.0
    measured_from = time.monotonic() + warmup
    next_log = time.monotonic() + 10
    load.start()
    while not load.done():
        time.sleep(POLL_S)
        watch.poll(flink, job_id)
        if not cpu_before and time.monotonic() >= measured_from:
            cpu_before = taskmanager_cpu(state_dir)
            cpu_from = time.monotonic()
        if reader.error is not None:
            raise RuntimeError(f"the reader failed: {reader.error}")
        if time.monotonic() >= next_log:
            next_log += 10
            log(f"  sent {load.sent:,}, {len(reader.records):,} attributed records seen")
            for name, state in watch.vertices.items():
                log(f"    {name[:70]}: {state}")
    cpu = cpu_used(cpu_before, taskmanager_cpu(state_dir))
    if load.error is not None:
        raise RuntimeError(f"the producer failed: {load.error}")
    if load.failures:
        raise RuntimeError(f"{len(load.failures)} sends failed: {load.failures[0]}")
    elapsed = time.monotonic() - cpu_from
    return round(cpu / elapsed, 2) if cpu is not None and cpu_before and elapsed > 0 else None


def drain(
    flink: FlinkClient,
    job_id: str,
    reader: Reader,
    watch: Watch,
    pending: Callable[[], bool],
    grace: float,
    checkpoint_ms: int,
) -> None:
    """After the load: until no expected click is `pending` (or `grace` passed), then until a
    checkpoint triggered after the last record completed (the exactly-once estimate)."""
    deadline = time.monotonic() + grace
    while pending() and time.monotonic() < deadline:
        time.sleep(POLL_S)
        watch.poll(flink, job_id)
    last = max((v for _, v in reader.records), default=0.0)
    deadline = time.monotonic() + checkpoint_ms / 1000 + 30
    while time.monotonic() < deadline and not any(t >= last for t, _ in watch.checkpoints.values()):
        time.sleep(POLL_S)
        watch.poll(flink, job_id)


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
        f"{PREFIX}checkpoints_failed": len(watch.failed_checkpoints),
        f"{PREFIX}checkpoint_duration_p50_ms": _p50([d - t for t, d in checkpoints]),
        f"{PREFIX}checkpoint_trigger_step_p50_s": _p50(
            [(b - a) / 1000 for a, b in itertools.pairwise(triggers)], 2
        ),
        f"{PREFIX}backpressured_max": round(max(watch.backpressured), 2)
        if watch.backpressured
        else None,
    }


def measure(params: Params, log: Log) -> Run:
    flags = job_flags(params.window, params.extra)
    shape = job_shape(flags)
    load_before = loadavg()
    log(f"load average before: {load_before}")
    with tempfile.TemporaryDirectory(prefix="eddyline-bench-latency-") as tmp:
        settings = free_settings(Path(tmp), controller=False)
        log("starting a stack…")
        control.up(settings)
        flink = FlinkClient(settings.flink_url)
        job_id: str | None = None
        reader: Reader | None = None
        load: LoadProducer | None = None
        try:
            bs = settings.bootstrap_servers
            job_id = start_job(flink, bs, settings.state_dir, flags, params.conf, log)
            # Non-optional names for the closure below; the optional ones for `finally`.
            rd = reader = Reader(bs)
            shape_of_data = {"users": params.users, "key_skew": params.key_skew}
            ld = load = LoadProducer(
                bs, params.rate, params.warmup + params.seconds, params.seed, shape_of_data
            )
            watch = Watch()
            log(f"producing {params.rate:,.0f} messages/s for {params.warmup:.0f} + "
                f"{params.seconds:.0f} s")  # fmt: skip
            cores = drive(flink, job_id, settings.state_dir, load, reader, watch,
                          params.warmup, log)  # fmt: skip
            load_end = loadavg()
            log(f"load done: {load.sent:,} messages; waiting for the last windows")
            expected = attributable(load.views, load.clicks, shape.window_ms)
            since_ms = load.started_ms + params.warmup * 1000

            def matched_now() -> Matched:
                seen = first_visible(rd.records)
                return match(expected, seen, since_ms, shape.window_ms, shape.ooo_ms,
                             ld.final_ts)  # fmt: skip

            drain(flink, job_id, reader, watch, lambda: bool(matched_now().unmatched),
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
        finally:
            if load is not None:
                load.stop()
            if reader is not None:
                reader.stop()
            if job_id is not None:
                try:
                    flink.cancel(job_id)
                except FlinkError as e:
                    print(f"cancelling {job_id}: {e}", file=sys.stderr)
            flink.close()
            control.down(settings.state_dir)


def report(run: Run) -> list[str]:
    """The readable summary: the figures and one line per window."""
    f = run.figures
    p = PREFIX
    lines = [
        f"attribution latency: {f[f'{p}rate_events_per_s']:,.0f} messages/s "
        f"(sent {f[f'{p}sent_events_per_s']:,}/s), {f[f'{p}seconds']:.0f} s measured after "
        f"{f[f'{p}warmup_s']:.0f} s of warm-up; window {f[f'{p}window_s']:g} s, "
        f"out-of-orderness {f[f'{p}out_of_orderness_s']:g} s, checkpoints every "
        f"{f[f'{p}checkpoint_interval_s']:g} s, sink {f[f'{p}sink']}",
        f"clicks: {f[f'{p}clicks_matched']:,} matched, {f[f'{p}clicks_unmatched']:,} "
        f"unmatched, {f[f'{p}clicks_window_not_closed']:,} in windows still open at the end, "
        f"{f[f'{p}clicks_warmup']:,} in the warm-up; {f[f'{p}records']:,} records, "
        f"{f[f'{p}records_of_unattributable_clicks']:,} of clicks the contract does not "
        "attribute",
    ]
    if f.get(f"{p}p50_s") is not None:
        lines.append("seconds                     p50      p95      p99      max")
        rows = [
            ("produce → visible", ""),
            ("event-time wait", "event_time_wait_"),
            ("net of the wait", "net_"),
            ("exactly-once estimate", "eos_estimate_"),
            ("  net of the wait", "eos_estimate_net_"),
            ("  checkpoint adds", "eos_checkpoint_adds_"),
        ]
        for label, key in rows:
            if f.get(f"{p}{key}p50_s") is None:
                continue
            values = [f[f"{p}{key}{s}_s"] for s in ("p50", "p95", "p99", "max")]
            lines.append(f"{label:<24}" + "".join(f"{v:9.3f}" for v in values))
        net = f[f"{p}net_p99_s"]
        lines.append(f"goal (net p99 ≤ 2 s): {'met' if net <= 2 else 'NOT met'} ({net:.3f} s)")
        lines.append(
            f"worst net per window: {f[f'{p}window_net_max_s']} s; trend "
            f"{f[f'{p}net_trend_s_per_min']} s per minute (about 0: the job keeps up)"
        )
    lines.append(
        f"produce → ack p50 {f[f'{p}produce_to_ack_p50_ms']} ms, producer behind its pace at "
        f"most {f[f'{p}producer_behind_max_ms']} ms; {f[f'{p}checkpoints']} checkpoints "
        f"({f[f'{p}checkpoints_failed']} failed), p50 {f[f'{p}checkpoint_duration_p50_ms']} ms; "
        f"back-pressured max {f[f'{p}backpressured_max']}; "
        f"TaskManager cores {f[f'{p}taskmanager_cores']}"
    )
    lines.append(
        f"load average (1/5/15 min): {f[f'{p}load_average_before']} before, "
        f"{f[f'{p}load_average']} when the load stopped (2 cores, shared)"
    )
    lines.append("per window (end, UTC): clicks, net of the wait p50/max s, first record at")
    ooo_ms = run.shape.ooo_ms
    for end, samples in by_window(run.matched.samples).items():
        nets = sorted(x.net_ms / 1000 for x in samples)
        first = run.windows.get(end)
        shown = f"+{(first - end - ooo_ms) / 1000:.3f} s" if first is not None else "-"
        clock = dt.datetime.fromtimestamp(end / 1000, dt.UTC).strftime("%H:%M:%S")
        lines.append(
            f"  {clock}: {len(samples):5,}  {nets[len(nets) // 2]:7.3f} {nets[-1]:7.3f}  {shown}"
        )
    return lines


def plot(run: Run, path: Path) -> None:
    """Latency over time (each click by its produce time) and the CDFs."""
    import matplotlib  # noqa: PLC0415 - only the plot needs it, and it is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    samples = run.matched.samples
    if not samples:
        return
    t0 = samples[0].produced_ms
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    xs = [(s.produced_ms - t0) / 1000 for s in samples]
    left.scatter(xs, [s.latency_ms / 1000 for s in samples], s=2, label="produce → visible")
    left.scatter(xs, [s.net_ms / 1000 for s in samples], s=2, label="net of the event-time wait")
    left.axhline(2.0, color="tab:red", linestyle="--", linewidth=1, label="goal: net ≤ 2 s")
    left.set_xlabel("click produced at (s into the measured load)")
    left.set_ylabel("seconds")
    left.legend(loc="upper left", markerscale=4, fontsize=8)
    left.grid(alpha=0.3)
    curves = [("produce → visible", [s.latency_ms for s in samples]),
              ("net of the wait", [s.net_ms for s in samples])]  # fmt: skip
    eos = [(s, e) for s, e in zip(samples, run.eos, strict=True) if e is not None]
    if eos:
        curves.append(("exactly-once estimate", [e - s.produced_ms for s, e in eos]))
    for label, values in curves:
        ordered = sorted(v / 1000 for v in values)
        right.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=label)
    right.axvline(2.0, color="tab:red", linestyle="--", linewidth=1)
    right.set_xlabel("seconds")
    right.set_ylabel("share of clicks")
    right.legend(loc="lower right", fontsize=8)
    right.grid(alpha=0.3)
    f = run.figures
    fig.suptitle(
        f"Attribution latency at {f[f'{PREFIX}rate_events_per_s']:,.0f} messages/s, "
        f"{f[f'{PREFIX}window_s']:g} s windows, {f[f'{PREFIX}out_of_orderness_s']:g} s "
        f"out-of-orderness, sink {f[f'{PREFIX}sink']} (2 vCPU)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (and Ctrl-C) unwind through `finally`, so the benchmark's stack is always stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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
    log = Log()
    extra = args.job_args.split()
    try:
        params = Params(
            args.rate, args.seconds, args.warmup, args.window, args.grace, args.seed, extra,
            args.users, args.key_skew, conf,
        )  # fmt: skip
        run = measure(params, log)
    except (EddylineError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    log()
    for line in report(run):
        log(line)
    if args.no_save:
        print(json.dumps(run.figures, indent=2))
        return 0
    results_file.merge(run.figures)
    day = dt.datetime.now(dt.UTC).date().isoformat()
    log_path = results_file.RESULTS / f"latency-{day}.log"
    command = " ".join(["python -m bench.latency", *(argv if argv is not None else sys.argv[1:])])
    log_path.write_text("\n".join([f"$ {command}", *log.lines, ""]))
    png = results_file.RESULTS / "latency.png"
    plot(run, png)
    print(f"figures: {results_file.RESULTS / 'latest.json'}; log: {log_path}; plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
