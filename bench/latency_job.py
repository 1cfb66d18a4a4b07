"""The attribution job as bench.latency runs it: its topics and flags, what they make of it (read
with the job's own parser and DDL), and how far its watermark is behind the clock. Pure: no
servers (tests/unit/test_latency.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TOPICS = {"views": "lat-views", "clicks": "lat-clicks"}
OUTPUT = "lat-attributed"
LATE = "lat-late"
DEAD = "lat-dead"
PARTITIONS = 2
GROUP = "bench-latency"


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


def sink_guarantee(ddl: Sequence[str], table: str) -> str:
    """The delivery guarantee the DDL gives the Kafka table `table`."""
    for statement in ddl:
        if re.match(rf"CREATE TEMPORARY TABLE `{re.escape(table)}`", statement):
            found = re.search(r"'sink\.delivery-guarantee' = '([a-z-]+)'", statement)
            return found.group(1) if found else "at-least-once"  # the connector's default
    raise ValueError(f"no table {table} in the DDL")


def watermark_behind_s(marks: Iterable[Mapping[str, Any]], now_ms: float) -> float | None:
    """How far a vertex's input watermark (the least over its subtasks, from Flink's
    /watermarks) is behind the wall clock, in seconds; None before its first watermark."""
    values = [int(m["value"]) for m in marks if str(m.get("value", "")).lstrip("-").isdigit()]
    values = [v for v in values if v > 0]  # Long.MIN_VALUE: no watermark yet
    return (now_ms - min(values)) / 1000 if values else None
