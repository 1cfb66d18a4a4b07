"""The machine's ceiling: one plain confluent-kafka consumer reading the same topics as the jobs,
from the beginning to the end offsets taken at its start, as fast as it can."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, TopicPartition

from deploy import kafka_io


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
