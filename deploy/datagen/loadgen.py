"""Producing generated events to Kafka: topics, pacing and progress for `eddyline generate`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from deploy import kafka_io
from deploy.datagen.generator import Message


@dataclass(frozen=True)
class Pacer:
    """Spaces out sends to `rate` messages per second (0 = as fast as possible)."""

    rate: float
    started: float

    def delay(self, sent: int, now: float) -> float:
        """Seconds to wait before the next send (pure: unit-tested)."""
        if self.rate <= 0:
            return 0.0
        return max(0.0, self.started + sent / self.rate - now)


def produce(
    bootstrap_servers: str,
    messages: Sequence[Message],
    topics: Mapping[str, str],
    partitions: int,
    rate: float = 0.0,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Create the topics (all with `partitions`, so views and clicks are co-partitioned) and
    produce `messages`, each to `topics[message.topic]`; returns how many went to each topic."""
    kafka_io.create_topics(bootstrap_servers, dict.fromkeys(topics.values(), partitions))
    pacer = Pacer(rate, time.monotonic())
    sent: dict[str, int] = dict.fromkeys(topics.values(), 0)
    sender = kafka_io.Sender(bootstrap_servers)
    for n, msg in enumerate(messages):
        wait = pacer.delay(n, time.monotonic())
        if wait > 0:
            sender.poll()
            time.sleep(wait)
        topic = topics[msg.topic]
        sender.send(topic, msg.key, msg.value)
        sent[topic] += 1
        if on_progress is not None and n % 1000 == 0:
            on_progress(n)
    sender.close()
    if on_progress is not None:
        on_progress(len(messages))
    return sent
