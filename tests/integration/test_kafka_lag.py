"""Consumer-group lag from the real broker: high watermarks against committed offsets."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from deploy import kafka_io
from tests.integration.jobrun import Topics
from tests.integration.stacks import RunningStack


def test_consumer_lag_counts_what_the_group_has_not_committed(stack: RunningStack) -> None:
    topics = Topics.fresh("lag")
    kafka_io.create_topics(stack.bootstrap_servers, {topics.orders: 2})
    sender = kafka_io.Sender(stack.bootstrap_servers)
    for i in range(100):
        sender.send(topics.orders, f"k{i}", "{}")
    sender.close()
    group = f"lag-{topics.run}"
    # Nothing committed yet: everything is lag.
    assert kafka_io.consumer_lag(stack.bootstrap_servers, group, [topics.orders]) == 100
    ends = [kafka_io.Consumer(kafka_io.client_config(stack.bootstrap_servers, **{"group.id": "w"}))]
    hwm = [ends[0].get_watermark_offsets(TopicPartition(topics.orders, p))[1] for p in (0, 1)]
    ends[0].close()
    committer = Consumer(
        kafka_io.client_config(
            stack.bootstrap_servers, **{"group.id": group, "enable.auto.commit": False}
        )
    )
    # The group commits partition 0 to its end and partition 1 to 10.
    committer.commit(
        offsets=[TopicPartition(topics.orders, 0, hwm[0]), TopicPartition(topics.orders, 1, 10)],
        asynchronous=False,
    )
    committer.close()
    expected = hwm[1] - 10
    assert kafka_io.consumer_lag(stack.bootstrap_servers, group, [topics.orders]) == expected
    missing = f"{topics.orders}-missing"
    assert kafka_io.consumer_lag(stack.bootstrap_servers, group, [missing], timeout=5) is None


def test_asking_about_a_missing_topic_does_not_create_it(stack: RunningStack) -> None:
    """The stack's broker creates topics on demand (auto.create.topics.enable): the controller's
    inputs check must not, or a job would start on a topic nobody made, with the broker's
    default partition count."""
    topics = Topics.fresh("missing")
    kafka_io.create_topics(stack.bootstrap_servers, {topics.views: 2})
    counts = kafka_io.partition_counts(stack.bootstrap_servers, [topics.views, topics.clicks])
    assert counts == {topics.views: 2, topics.clicks: None}
    again = kafka_io.partition_counts(stack.bootstrap_servers, [topics.clicks])
    assert again == {topics.clicks: None}
    listed = kafka_io.admin(stack.bootstrap_servers).list_topics(timeout=10).topics
    assert topics.clicks not in listed
