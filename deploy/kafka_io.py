"""Kafka helpers for the CLI, the demo and the tests: topics, producing and reading back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from deploy import kafka_security
from deploy.errors import DeliveryFailures as DeliveryFailures  # noqa: PLC0414 - still importable from here
from deploy.errors import KafkaAccessError, KafkaUnreachableError

_quiet = logging.getLogger("eddyline.kafka")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def client_config(bootstrap_servers: str, **extra: Any) -> dict[str, Any]:
    """librdkafka settings with its logging kept out of our output (errors surface as results),
    secured the way `kafka_security` says clients of `bootstrap_servers` connect."""
    return {
        "bootstrap.servers": bootstrap_servers,
        "logger": _quiet,
        **kafka_security.for_servers(bootstrap_servers).librdkafka(),
        **extra,
    }


# Errors that mean the broker answered and refused us: what a user must fix (credentials, trust,
# ACLs), as opposed to a broker that is down.
_ACCESS_CODES = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError._SSL,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)
# librdkafka reports a failed TLS handshake as a transport error; its text tells.
_ACCESS_WORDS = ("SSL handshake failed", "certificate verify failed", "Authentication failed")


class Trouble:
    """librdkafka's error callback: the connection errors a client met, which its calls only
    report as "timed out" or "all brokers down". Kept short: the first few tell."""

    def __init__(self) -> None:
        self.errors: list[KafkaError] = []

    def __call__(self, err: KafkaError) -> None:
        if len(self.errors) < 20:
            self.errors.append(err)

    def access(self) -> KafkaError | None:
        for err in self.errors:
            if err.code() in _ACCESS_CODES or any(w in err.str() for w in _ACCESS_WORDS):
                return err
        return None

    def named(
        self, servers: str, cause: object, client: AdminClient | Producer | None = None
    ) -> KafkaAccessError | KafkaUnreachableError:
        """The error to raise for a call that failed with `cause`: who refused us and why.
        `client`: served first, since librdkafka hands its errors to error_cb only in poll."""
        if client is not None:
            client.poll(0.5)
        how = kafka_security.for_servers(servers).summary()
        refused = self.access()
        if refused is not None:
            return KafkaAccessError(
                f"Kafka at {servers} refused the connection ({how}): {refused.str()}"
            )
        last = self.errors[-1].str() if self.errors else str(cause)
        return KafkaUnreachableError(f"Kafka at {servers} did not answer ({how}): {last}")


def admin(bootstrap_servers: str, trouble: Trouble | None = None) -> AdminClient:
    extra = {"error_cb": trouble} if trouble is not None else {}
    return AdminClient(client_config(bootstrap_servers, **extra))


def partition_counts(
    bootstrap_servers: str, topics: Sequence[str], timeout: float = 10.0
) -> dict[str, int | None]:
    """Each topic's partition count; None for a topic that does not exist. KafkaAccessError when
    the broker refuses us (credentials, TLS) or may not tell us about a topic (ACL),
    KafkaUnreachableError when it does not answer."""
    trouble = Trouble()
    client = admin(bootstrap_servers, trouble)
    try:
        metadata = client.list_topics(timeout=timeout)
    except KafkaException as e:
        raise trouble.named(bootstrap_servers, e, client) from e
    counts: dict[str, int | None] = {}
    for topic in topics:
        found = metadata.topics.get(topic)
        if found is None:
            # Listing all topics leaves out those we may not describe: ask for this one by
            # name, so that a missing ACL is not mistaken for a missing topic.
            refused = _topic_refusal(client, topic, timeout)
            if refused:
                how = kafka_security.for_servers(bootstrap_servers).summary()
                raise KafkaAccessError(
                    f"Kafka at {bootstrap_servers} refused to describe topic {topic!r} ({how}): "
                    f"{refused} — an ACL granting DESCRIBE and READ on it is missing"
                )
        counts[topic] = len(found.partitions) if found is not None and found.error is None else None
    return counts


def _topic_refusal(client: AdminClient, topic: str, timeout: float) -> str | None:
    """Kafka's authorization error for `topic`, if it gives one. DescribeTopics, not a metadata
    request naming the topic: a broker with auto.create.topics.enable would create it."""
    future = client.describe_topics(TopicCollection([topic]), request_timeout=timeout)[topic]
    try:
        future.result()
    except KafkaException as e:
        err = e.args[0]
        if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            return str(err.str())
    return None


def create_topics(
    bootstrap_servers: str, partitions: Mapping[str, int], recreate: bool = False
) -> None:
    """Create each topic with its partition count; with `recreate`, delete it first."""
    trouble = Trouble()
    client = admin(bootstrap_servers, trouble)
    try:
        client.list_topics(timeout=10)
    except KafkaException as e:
        raise trouble.named(bootstrap_servers, e, client) from e
    if recreate:
        existing = set(client.list_topics(timeout=10).topics)
        doomed = [t for t in partitions if t in existing]
        if doomed:
            for fut in client.delete_topics(doomed, operation_timeout=30).values():
                fut.result()
            _wait(lambda: not (set(doomed) & set(client.list_topics(timeout=10).topics)))
    existing = set(client.list_topics(timeout=10).topics)
    new = [
        NewTopic(t, num_partitions=n, replication_factor=1)
        for t, n in partitions.items()
        if t not in existing
    ]
    if new:
        for fut in client.create_topics(new, operation_timeout=30).values():
            fut.result()
    _wait(lambda: set(partitions) <= set(client.list_topics(timeout=10).topics))


def _wait(done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("Kafka did not finish the topic change in time")
        time.sleep(0.2)


class Sender:
    """An idempotent producer that partitions keys like Java clients (and Flink) do, and
    remembers failed deliveries until `close` reports them.

    murmur2 is the Java client's partitioner: a key lands in the same partition whichever
    client wrote it, which keeps views and clicks co-partitioned with Flink's own output.
    """

    def __init__(self, bootstrap_servers: str) -> None:
        self.failures: list[str] = []
        self._servers = bootstrap_servers
        # A broker that refuses us would otherwise show only as every message timing out,
        # minutes later: stop at the first refusal instead, saying why.
        self._trouble = Trouble()
        self._producer = Producer(
            client_config(
                bootstrap_servers,
                **{
                    "linger.ms": 5,
                    "enable.idempotence": True,
                    "partitioner": "murmur2_random",
                    "on_delivery": self._report,
                    "error_cb": self._trouble,
                },
            )
        )

    def _report(self, err: object, _msg: object) -> None:
        if err is not None:
            self.failures.append(str(err))

    def send(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None = None
    ) -> None:
        """Queue one message, waiting for room when the local queue is full."""
        while True:
            try:
                if partition is None:
                    self._producer.produce(topic, value=value, key=key)
                else:
                    self._producer.produce(topic, value=value, key=key, partition=partition)
                break
            except BufferError:
                self._producer.poll(0.1)
                self._refused()
        self._producer.poll(0)

    def poll(self) -> None:
        self._producer.poll(0)
        self._refused()

    def _refused(self) -> None:
        if self._trouble.access() is not None:
            raise self._trouble.named(self._servers, "refused")

    def close(self, timeout: float = 60.0) -> None:
        """Wait until every queued message is acknowledged; raise if any was not (at once, naming
        the broker, when it refused us)."""
        deadline = time.monotonic() + timeout
        left = self._producer.flush(0)
        while left and time.monotonic() < deadline:
            self._refused()
            left = self._producer.flush(min(1.0, max(deadline - time.monotonic(), 0)))
        self._refused()
        if left:
            raise DeliveryFailures(f"{left} messages were not delivered within {timeout:.0f} s")
        if self.failures:
            raise DeliveryFailures(
                f"{len(self.failures)} messages to Kafka at {self._servers} failed: "
                f"{self.failures[0]}"
            )


def produce(
    bootstrap_servers: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Send (key, value) pairs and wait until every one is acknowledged; returns the count."""
    sender = Sender(bootstrap_servers)
    count = 0
    for key, value in messages:
        sender.send(topic, key, value)
        count += 1
        if on_sent and count % 1000 == 0:
            on_sent(count)
    sender.close()
    if on_sent:
        on_sent(count)
    return count


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def consumer_lag(
    bootstrap_servers: str, group: str, topics: Sequence[str], timeout: float = 10.0
) -> int | None:
    """Records the consumer group has yet to commit: per partition the high watermark minus the
    group's committed offset (minus the low watermark where it committed nothing), summed.
    None when a topic does not exist. Reads offsets only: the group is never joined."""
    consumer = Consumer(
        client_config(bootstrap_servers, **{"group.id": group, "enable.auto.commit": False})
    )
    try:
        metadata = consumer.list_topics(timeout=timeout)
        parts: list[TopicPartition] = []
        for topic in topics:
            found = metadata.topics.get(topic)
            if found is None or found.error is not None:
                return None
            parts += [TopicPartition(topic, p) for p in found.partitions]
        lag = 0
        for tp in committed_offsets(consumer, parts, timeout):
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            lag += high - (tp.offset if tp.offset >= 0 else low)
        return max(lag, 0)
    finally:
        consumer.close()


def committed_offsets(
    consumer: Consumer, parts: list[TopicPartition], timeout: float
) -> list[TopicPartition]:
    """The group's committed offsets, asked again while its coordinator is still being found or
    loaded (a new group, a restarted broker) until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            committed: list[TopicPartition] = consumer.committed(parts, timeout=timeout)
            return committed
        except KafkaException as e:
            if not e.args[0].retriable() or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def read_all(
    bootstrap_servers: str,
    topic: str,
    *,
    expected: int | None = None,
    timeout: float = 60.0,
    idle: float = 3.0,
    read_committed: bool = False,
) -> list[Record]:
    """Every record of `topic` from the beginning.

    Stops when `expected` records have arrived (then waits `idle` more seconds to catch extras)
    or, without `expected`, when the end offsets are reached; gives up after `timeout`.
    """
    consumer = Consumer(
        client_config(
            bootstrap_servers,
            **{
                "group.id": f"eddyline-reader-{time.time_ns()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed" if read_committed else "read_uncommitted",
            },
        )
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, 0) for p in sorted(meta.partitions)]
        consumer.assign(parts)
        out: list[Record] = []
        deadline = time.monotonic() + timeout
        extra_until: float | None = None
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(
                    Record(
                        topic,
                        msg.partition() or 0,
                        msg.offset() or 0,
                        msg.key(),
                        msg.value() or b"",
                    )
                )
            if expected is not None:
                if len(out) >= expected and extra_until is None:
                    extra_until = time.monotonic() + idle
                if extra_until is not None and time.monotonic() >= extra_until:
                    break
            elif msg is None and _at_end(consumer, parts):
                break
        return out
    finally:
        consumer.close()


def _at_end(consumer: Consumer, parts: list[TopicPartition]) -> bool:
    positions = consumer.position(parts)
    for tp in positions:
        _low, high = consumer.get_watermark_offsets(
            TopicPartition(tp.topic, tp.partition), timeout=5
        )
        if tp.offset < high and not (tp.offset < 0 and high == 0):
            return False
    return True
