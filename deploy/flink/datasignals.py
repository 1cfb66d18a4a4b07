"""A running job's data-level signals, read cheaply: offsets from Kafka (one consumer that never
joins the group: committed offsets and end offsets of the inputs and of the dead-letter topic)
and, from Flink's REST API, the watermarks of the vertices the sources feed and the checkpoint
counts. What cannot be read this time (Kafka or Flink not answering, a topic missing) is None in
the sample; the next one tries again.

`SignalWindows` keeps each job's recent samples in the controller's memory (like the
autoscaler's metrics window): a controller that restarts starts a new window, which only delays
a verdict by one window.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from deploy import kafka_io
from deploy.controller.signals import Signals
from deploy.errors import FlinkError
from deploy.flink.inputs import flag_value, group_id
from deploy.flink.rest import FlinkClient
from deploy.spec import FlinkJob, HealthSpec, milliseconds

SAMPLE_EVERY_MS = 5_000
# Kafka is asked with a short timeout and, once it did not answer, left alone for a while: a
# broker that is down must not slow every reconcile (the start and the autoscaler report it).
KAFKA_TIMEOUT_S = 2.0
KAFKA_BACKOFF_MS = 30_000
DEFAULT_DEAD_LETTER_TOPIC = "dead-letter"
# Flink's "no watermark yet" (Long.MIN_VALUE), and anything below year 1970 alike.
NO_WATERMARK = 0


def dead_letter_topic(job: FlinkJob) -> str | None:
    """The topic the job writes bad input to: its --dead-letter-topic flag, else the jobs'
    default (`dead-letter`) when the spec lists it among its output topics; None: no such
    topic is known and dead letters are not watched."""
    given = flag_value(job.spec.job.args, "--dead-letter-topic")
    if given is not None:
        return given
    return (
        DEFAULT_DEAD_LETTER_TOPIC
        if DEFAULT_DEAD_LETTER_TOPIC in job.spec.kafka.output_topics
        else None
    )


def kafka_offsets(
    servers: str, group: str, inputs: Sequence[str], dead_letters: str | None
) -> dict[str, int | None]:
    """lag, arrived and consumed over `inputs`, and the dead-letter topic's end offsets (None
    for what Kafka could not tell)."""
    out: dict[str, int | None] = dict.fromkeys(("lag", "arrived", "consumed", "dead_letters"))
    if not inputs and not dead_letters:
        return out  # nothing to ask Kafka
    consumer = Consumer(
        kafka_io.client_config(servers, **{"group.id": group, "enable.auto.commit": False})
    )
    try:
        metadata = consumer.list_topics(timeout=KAFKA_TIMEOUT_S)

        def partitions(topic: str) -> list[TopicPartition] | None:
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                return None
            return [TopicPartition(topic, p) for p in found.partitions]

        parts: list[TopicPartition] = []
        for topic in inputs:
            got = partitions(topic)
            if got is None:
                parts = []
                break
            parts += got
        if parts:
            lag = arrived = consumed = 0
            for tp in kafka_io.committed_offsets(consumer, parts, KAFKA_TIMEOUT_S):
                low, high = consumer.get_watermark_offsets(tp, timeout=KAFKA_TIMEOUT_S)
                done = tp.offset if tp.offset >= 0 else low
                lag += max(0, high - done)
                arrived += high
                consumed += max(0, done - low)
            out.update(lag=lag, arrived=arrived, consumed=consumed)
        dead = partitions(dead_letters) if dead_letters else None
        if dead is not None:
            out["dead_letters"] = sum(
                consumer.get_watermark_offsets(tp, timeout=KAFKA_TIMEOUT_S)[1] for tp in dead
            )
    finally:
        consumer.close()
    return out


def source_fed_watermark(client: FlinkClient, job_id: str, detail: dict[str, Any]) -> int | None:
    """The smallest current input watermark (epoch ms) over the subtasks of the vertices whose
    inputs include a source; a job whose sources are chained with everything (one vertex) is
    judged by that vertex. None while any of them has no watermark yet."""
    vertices = {str(v["id"]): str(v.get("name", "")) for v in detail.get("vertices", [])}
    sources = {vid for vid, name in vertices.items() if name.startswith("Source")}
    fed = []
    for node in (detail.get("plan") or {}).get("nodes", []):
        inputs = {str(i.get("id")) for i in node.get("inputs") or []}
        if inputs & sources:
            fed.append(str(node["id"]))
    lowest: int | None = None
    for vid in fed or sorted(sources):
        for entry in client.vertex_watermarks(job_id, vid):
            if not str(entry.get("id", "")).endswith("currentInputWatermark"):
                continue
            value = int(float(entry.get("value", 0)))
            if value <= NO_WATERMARK:
                return None
            lowest = value if lowest is None else min(lowest, value)
    return lowest


def checkpoint_counts(answer: dict[str, Any]) -> dict[str, int | None]:
    """Completed and failed counts of Flink's /checkpoints, and how many of the newest ones
    failed after the newest completed one (its recent history; in-progress ones skipped)."""
    counts = answer.get("counts") or {}
    in_a_row = 0
    for entry in sorted(answer.get("history") or [], key=lambda h: -int(h.get("id", 0))):
        status = str(entry.get("status", ""))
        if status == "FAILED":
            in_a_row += 1
        elif status == "COMPLETED":
            break
    return {
        "checkpoints_completed": int(counts.get("completed", 0)),
        "checkpoints_failed": int(counts.get("failed", 0)),
        "checkpoints_failed_in_a_row": in_a_row,
    }


def flink_signals(client: FlinkClient, job_id: str) -> dict[str, Any]:
    """The watermark and checkpoint counts; what Flink does not answer is left out."""
    fields: dict[str, Any] = {}
    with suppress(FlinkError, KeyError, ValueError, TypeError):
        fields["watermark"] = source_fed_watermark(client, job_id, client.job(job_id))
    with suppress(FlinkError, KeyError, ValueError, TypeError):
        fields.update(checkpoint_counts(client.checkpoints(job_id)))
    return fields


def keep_ms(health: HealthSpec) -> int:
    """How far back a window must reach for every verdict, plus two samples of slack."""
    longest = max(
        milliseconds(health.lag_window),
        milliseconds(health.watermark_stall),
        milliseconds(health.dead_letter_window),
    )
    return longest + 2 * SAMPLE_EVERY_MS


class SignalWindows:
    """Each FlinkJob's recent samples (for its current Flink job: another job's are dropped)."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[str, list[Signals]]] = {}
        self._kafka_retry_at: dict[str, int] = {}  # bootstrap servers → when to ask again

    def window(
        self, client: FlinkClient, job: FlinkJob, job_id: str, servers: str, now: int
    ) -> tuple[Signals, ...]:
        known, samples = self._windows.get(job.name, (job_id, []))
        if known != job_id:
            samples = []
        if not samples or now - samples[-1].time >= SAMPLE_EVERY_MS:
            fields = flink_signals(client, job_id)
            fields.update(self._kafka(job, servers, now))
            samples.append(Signals(time=now, **fields))
        keep = keep_ms(job.spec.health)
        samples = [s for s in samples if now - s.time <= keep]
        self._windows[job.name] = (job_id, samples)
        return tuple(samples)

    def _kafka(self, job: FlinkJob, servers: str, now: int) -> dict[str, int | None]:
        if now < self._kafka_retry_at.get(servers, 0):
            return {}
        topics, dead = job.spec.kafka.input_topics, dead_letter_topic(job)
        try:
            return kafka_offsets(servers, group_id(job), topics, dead)
        except Exception:  # unreachable or refusing: confluent-kafka raises several kinds
            self._kafka_retry_at[servers] = now + KAFKA_BACKOFF_MS
            return {}
