"""`eddyline top`: what Flink's REST API says about each job, as one row per FlinkJob.

Pure: the command (deploy/cli/monitor.py) fetches the answers, this module decides which metrics
to read and what they mean, so every rule is unit-tested without servers.

Which operators count, by the names Flink gives them in its REST metrics:
- a **source** is an operator named `Source__<name>[<id>]`; what it emits is what the job reads
  and its `pendingRecords` (the Kafka source's own measure) is the lag. A job may read one topic
  with two sources (when a DataStream conversion splits its plan, as the ledger's once did):
  sources with the same name are one input, counted once (the larger);
- a **sink** is a `<table>[<id>]__Writer` operator; records into it were written. Writers of the
  `dead_letter` and `late_events` tables count as dead-lettered and late, not as output.
Rates are Flink's own per-second meters (`numRecords{In,Out}PerSecond`, the average over the last
minute, as the Web UI shows them). Counter differences between two looks would be jumpy: the
JobManager refreshes the metrics it serves only every `metrics.fetcher.update-interval` (10 s).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from operator import add
from typing import Any

from deploy.spec import FlinkJob

SOURCE_PREFIX = "Source__"
WRITER_SUFFIX = "__Writer"
DEAD_LETTER_TABLE = "dead_letter"
LATE_EVENTS_TABLE = "late_events"

RECORDS_IN = "numRecordsInPerSecond"
RECORDS_OUT = "numRecordsOutPerSecond"
PENDING = "pendingRecords"

Aggregates = Mapping[str, Mapping[str, float]]  # metric id → {"sum": …} over a vertex's subtasks


class Route(StrEnum):
    source = "source"
    output = "output"
    dead_letter = "dead_letter"
    late = "late"


_ID_SUFFIX = re.compile(r"\[\d+\]$")


def route(operator: str) -> Route | None:
    """What an operator's records mean to `top`, from its REST metric name; None: not counted."""
    if operator.startswith(SOURCE_PREFIX):
        return Route.source
    if not operator.endswith(WRITER_SUFFIX):
        return None
    table = _ID_SUFFIX.sub("", operator.removesuffix(WRITER_SUFFIX))
    if table == DEAD_LETTER_TABLE:
        return Route.dead_letter
    if table == LATE_EVENTS_TABLE:
        return Route.late
    return Route.output


def input_name(operator: str) -> str:
    """`Source__orders_src[83]` → `orders_src`: two sources of one input share it."""
    return _ID_SUFFIX.sub("", operator.removeprefix(SOURCE_PREFIX))


def _split(metric: str) -> tuple[str, str]:
    """`dead_letter[89]__Writer.numRecordsIn` → (`dead_letter[89]__Writer`, `numRecordsIn`).
    Operator names contain no dot; Kafka's own metrics under an operator are not asked for."""
    operator, _, name = metric.partition(".")
    return operator, name


def wanted_metrics(available: Iterable[str]) -> list[str]:
    """Of the metric ids a vertex offers (aggregated over its subtasks), those `top` reads."""
    wanted = []
    for metric in available:
        operator, name = _split(metric)
        kind = route(operator)
        if kind is None:
            continue
        names = (RECORDS_OUT, PENDING) if kind == Route.source else (RECORDS_IN,)
        if name in names:
            wanted.append(metric)
    return sorted(wanted)


@dataclass(frozen=True)
class Checkpoint:
    id: int
    completed_at: int  # epoch ms
    duration_ms: int
    size_bytes: int


@dataclass(frozen=True)
class JobSample:
    """One look at a running Flink job."""

    job_id: str
    state: str
    parallelism: int | None
    records_in_per_s: float | None
    records_out_per_s: float | None
    dead_lettered_per_s: float | None
    late_per_s: float | None
    lag: int | None
    checkpoint: Checkpoint | None
    savepoint_at: int | None  # epoch ms of Flink's latest completed savepoint


def _value(aggregates: Aggregates, operator: str, name: str) -> float | None:
    return aggregates.get(f"{operator}.{name}", {}).get("sum")


def _join(a: float | None, b: float | None, how: Callable[[float, float], float]) -> float | None:
    """`how(a, b)`, or whichever of them is known."""
    if a is None:
        return b
    if b is None:
        return a
    return how(a, b)


def checkpoint(answer: Mapping[str, Any]) -> Checkpoint | None:
    """The latest completed checkpoint from Flink's `/jobs/:id/checkpoints` answer."""
    done = (answer.get("latest") or {}).get("completed") or {}
    if not done:
        return None
    return Checkpoint(
        id=int(done.get("id", 0)),
        completed_at=int(done.get("latest_ack_timestamp") or 0),
        duration_ms=int(done.get("end_to_end_duration") or 0),
        size_bytes=int(done.get("checkpointed_size") or done.get("state_size") or 0),
    )


def _savepoint_at(answer: Mapping[str, Any]) -> int | None:
    savepoint = (answer.get("latest") or {}).get("savepoint") or {}
    return int(savepoint.get("latest_ack_timestamp") or 0) or None


def job_sample(
    job_id: str,
    detail: Mapping[str, Any],
    metrics: Mapping[str, Aggregates],
    checkpoints: Mapping[str, Any],
) -> JobSample:
    """A JobSample from Flink's answers: the job (`/jobs/:id`), each vertex's aggregated
    metrics by vertex id (`/jobs/:id/vertices/:vid/subtasks/metrics`) and `/checkpoints`."""
    vertices = detail.get("vertices") or []
    inputs: dict[str, tuple[float | None, float | None]] = {}  # input → (records/s, lag)
    routed: dict[Route, float | None] = dict.fromkeys((Route.output, Route.dead_letter, Route.late))
    for vertex in vertices:
        aggregates = metrics.get(str(vertex.get("id")), {})
        for operator in sorted({_split(m)[0] for m in aggregates}):
            kind = route(operator)
            if kind == Route.source:
                # Two sources of one input: the busier one, and the larger lag.
                read, lag = inputs.get(input_name(operator), (None, None))
                inputs[input_name(operator)] = (
                    _join(read, _value(aggregates, operator, RECORDS_OUT), max),
                    _join(lag, _value(aggregates, operator, PENDING), max),
                )
            elif kind is not None:
                value = _value(aggregates, operator, RECORDS_IN)
                routed[kind] = _join(routed[kind], value, add)
    records_in = lag = None
    for read, pending in inputs.values():
        records_in = _join(records_in, read, add)
        lag = _join(lag, pending, add)
    parallelism = max((int(v.get("parallelism") or 0) for v in vertices), default=0)
    return JobSample(
        job_id=job_id,
        state=str(detail.get("state", "")),
        parallelism=parallelism or None,
        records_in_per_s=records_in,
        records_out_per_s=routed[Route.output],
        dead_lettered_per_s=routed[Route.dead_letter],
        late_per_s=routed[Route.late],
        lag=None if lag is None else int(lag),
        checkpoint=checkpoint(checkpoints),
        savepoint_at=_savepoint_at(checkpoints),
    )


@dataclass(frozen=True)
class Row:
    """One FlinkJob in `top`: numbers for `-o json`; `cells()` renders them for people."""

    name: str
    lifecycle: str
    flink_state: str | None
    parallelism: int | None
    records_in_per_s: float | None
    records_out_per_s: float | None
    lag: int | None
    last_checkpoint: Checkpoint | None
    last_savepoint_at: int | None
    dead_lettered_per_s: float | None
    late_per_s: float | None

    def document(self, now_ms: int) -> dict[str, Any]:
        cp = self.last_checkpoint
        return {
            "name": self.name,
            "lifecycle": self.lifecycle,
            "flinkState": self.flink_state,
            "parallelism": self.parallelism,
            "recordsInPerSecond": self.records_in_per_s,
            "recordsOutPerSecond": self.records_out_per_s,
            "lag": self.lag,
            "lastCheckpoint": None
            if cp is None
            else {
                "id": cp.id,
                "ageSeconds": _age_s(cp.completed_at, now_ms),
                "durationMs": cp.duration_ms,
                "sizeBytes": cp.size_bytes,
            },
            "lastSavepointAgeSeconds": _age_s(self.last_savepoint_at, now_ms),
            "deadLetteredPerSecond": self.dead_lettered_per_s,
            "latePerSecond": self.late_per_s,
        }

    def cells(self, now_ms: int) -> list[str]:
        cp = self.last_checkpoint
        checkpoint_cell = (
            "-" if cp is None else f"{age(cp.completed_at, now_ms)} {size(cp.size_bytes)}"
        )
        savepoint_cell = (
            "-" if self.last_savepoint_at is None else age(self.last_savepoint_at, now_ms)
        )
        return [
            self.name,
            self.lifecycle,
            str(self.parallelism) if self.parallelism else "-",
            per_second(self.records_in_per_s),
            per_second(self.records_out_per_s),
            count(self.lag),
            checkpoint_cell,
            savepoint_cell,
            per_second(self.dead_lettered_per_s),
        ]


# Ages are how long ago; the checkpoint also shows its size (-o json adds its duration).
COLUMNS = (
    "job", "lifecycle", "par", "in/s", "out/s", "lag", "checkpoint", "savepoint", "dead/s",
)  # fmt: skip


def row(job: FlinkJob, current: JobSample | None) -> Row:
    """A FlinkJob's row: lifecycle and savepoints from its status, the rest from Flink (blank
    when its job is not running or Flink did not answer)."""
    st = job.status
    savepoints = [s.time for s in st.savepoints]
    if current is not None and current.savepoint_at:
        savepoints.append(current.savepoint_at)
    if current is None:
        return Row(
            name=job.name,
            lifecycle=st.lifecycle.value,
            flink_state=st.flink_state,
            parallelism=st.parallelism,
            records_in_per_s=None,
            records_out_per_s=None,
            lag=None,
            last_checkpoint=None,
            last_savepoint_at=max(savepoints, default=None),
            dead_lettered_per_s=None,
            late_per_s=None,
        )
    return Row(
        name=job.name,
        lifecycle=st.lifecycle.value,
        flink_state=current.state,
        parallelism=current.parallelism or st.parallelism,
        records_in_per_s=current.records_in_per_s,
        records_out_per_s=current.records_out_per_s,
        lag=current.lag,
        last_checkpoint=current.checkpoint,
        last_savepoint_at=max(savepoints, default=None),
        dead_lettered_per_s=current.dead_lettered_per_s,
        late_per_s=current.late_per_s,
    )


def header(flink_url: str, overview: Mapping[str, Any] | None, error: str | None) -> str:
    """The line above the table: the cluster, or why it could not be read."""
    if overview is None:
        return f"Flink {flink_url}: not answering ({error or 'no answer'}); retrying"
    return (
        f"Flink {flink_url} · {overview.get('taskmanagers', 0)} TaskManager(s) · "
        f"{overview.get('slots-available', 0)}/{overview.get('slots-total', 0)} slots free · "
        f"{overview.get('jobs-running', 0)} running"
    )


# -- formatting --------------------------------------------------------------------------


def per_second(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f}"
    return count(round(value))


def count(value: float | None) -> str:
    if value is None:
        return "-"
    for limit, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{unit}"
    return str(int(value))


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f}{unit}" if value >= 10 or unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}GB"


def _age_s(at_ms: int | None, now_ms: int) -> float | None:
    if not at_ms:
        return None
    return max(0.0, (now_ms - at_ms) / 1000)


def age(at_ms: int, now_ms: int) -> str:
    seconds = int(_age_s(at_ms, now_ms) or 0)
    for limit, unit in ((86_400, "d"), (3_600, "h"), (60, "m")):
        if seconds >= 2 * limit:
            return f"{seconds // limit}{unit}"
    return f"{seconds}s"
