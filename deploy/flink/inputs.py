"""A job's Kafka inputs as the controller sees them: whether they exist and can be joined
(co-partitioned), how many partitions they have (the autoscaler's cap), and how far the job's
consumer group is behind them.

Kafka being unreachable is never a reason to stop: it is reported as a transient problem (the
start waits) or leaves a value unknown for this tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from deploy import kafka_io
from deploy.controller.autoscale import Sample
from deploy.errors import KafkaAccessError, KafkaError
from deploy.spec import FlinkJob, FlinkJobSpec, milliseconds

KAFKA_TIMEOUT_S = 5.0


def flag_value(args: Sequence[str], flag: str) -> str | None:
    """The value a job's flags give `flag` (`--flag value` or `--flag=value`), if any."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
    return None


def group_id(job: FlinkJob) -> str:
    """The job's Kafka consumer group: its --group-id flag, else the jobs' default (the name of
    the job's module, see jobs/flags.py)."""
    given = flag_value(job.spec.job.args, "--group-id")
    if given is not None:
        return given
    entry = job.spec.job.entry
    if entry.endswith(".py"):
        return Path(entry).stem
    return entry.rsplit(".", 1)[-1]


def copartition_problem(partitions: dict[str, int | None], topics: Sequence[str]) -> str | None:
    """Why joined topics cannot be joined as they are (None when they can)."""
    counts = {t: partitions.get(t) for t in topics}
    if len(set(counts.values())) <= 1:
        return None
    listed = ", ".join(f"{t}: {n}" for t, n in counts.items())
    return (
        f"input topics are not co-partitioned ({listed} partitions): a join by key needs the "
        "same partition count on each; recreate them alike or set kafka.copartitioned: false"
    )


class Precheck(NamedTuple):
    problem: str | None = None  # the spec cannot run here: the job is refused
    transient: str | None = None  # Kafka is not ready for it yet: the start waits
    refused: bool = False  # ...because the broker refused us (credentials, TLS, ACL)


def input_problems(spec: FlinkJobSpec, servers: str) -> Precheck:
    """Whether the job's inputs let it start: a reason they cannot be joined as they are, or a
    Kafka problem that may pass (the broker down, a topic not created yet, an ACL missing)."""
    topics = spec.kafka.input_topics
    if not topics:
        return Precheck()
    try:
        partitions = kafka_io.partition_counts(servers, topics, KAFKA_TIMEOUT_S)
    except KafkaError as e:  # names the broker and Kafka's own error
        return Precheck(transient=str(e), refused=isinstance(e, KafkaAccessError))
    except Exception as e:  # confluent-kafka raises KafkaException, TimeoutError, …
        return Precheck(transient=f"Kafka at {servers} unreachable: {e}")
    missing = [t for t, n in partitions.items() if n is None]
    if missing:
        return Precheck(transient=f"waiting for input topics to exist: {', '.join(missing)}")
    if spec.kafka.copartitioned and len(topics) > 1:
        return Precheck(problem=copartition_problem(partitions, topics))
    return Precheck()


def fewest_partitions(spec: FlinkJobSpec, servers: str) -> int | None:
    """The fewest partitions of the job's input topics (None: no topics, or Kafka unreachable):
    more subtasks than that would read nothing."""
    topics = spec.kafka.input_topics
    if not topics:
        return None
    try:
        counts = kafka_io.partition_counts(servers, topics, KAFKA_TIMEOUT_S)
    except Exception:  # Kafka unreachable: no cap this time
        return None
    known = [n for n in counts.values() if n]
    return min(known) if known else None


def with_committed_lag(job: FlinkJob, sample: Sample, servers: str) -> Sample:
    """The sample with the job's consumer-group lag from Kafka beside Flink's own; the
    decision uses it when the sources report no pendingRecords, or when it shows more
    records waiting than they do."""
    topics = job.spec.kafka.input_topics
    if not topics:
        return sample
    try:
        committed = kafka_io.consumer_lag(servers, group_id(job), topics, KAFKA_TIMEOUT_S)
    except Exception:  # Kafka unreachable: Flink's measure alone this time
        return sample
    if committed is None:
        return sample
    if sample.lag_source == "pending":
        # The sources' pendingRecords can read small while the job falls behind (measured
        # with a busy chained Python map: 4,400 pending, 45,000 uncommitted and growing).
        # Committed offsets trail a job that keeps up by about one checkpoint interval of
        # input; beyond that, the committed lag is records waiting.
        interval_s = milliseconds(job.spec.checkpointing.interval) / 1000
        waiting = committed - int(sample.input_rate * interval_s)
        if waiting > sample.lag:
            return replace(sample, lag=waiting, lag_source="committed", committed_lag=committed)
        return replace(sample, committed_lag=committed)
    return replace(sample, lag=committed, lag_source="committed", committed_lag=committed)
