"""bench.latency's Kafka side: the generated clickstream sent at a steady rate with its produce
times (Kafka CreateTime, set at produce()) and event time on the wall clock, and a
read_committed reader of the job's output noting when each record became visible."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from bench.latency_clock import Restamper, pace
from bench.latency_job import OUTPUT, PARTITIONS, TOPICS
from bench.latency_match import VALID, Event
from deploy import kafka_io
from deploy.datagen import generator, loadgen


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
