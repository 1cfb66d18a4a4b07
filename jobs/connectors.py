"""Kafka sources and sinks shared by the jobs, and the connector jar when running embedded."""

from __future__ import annotations

from pyflink.common import SimpleStringSchema
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.connectors.base import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import (
    KafkaOffsetResetStrategy,
    KafkaOffsetsInitializer,
    KafkaRecordSerializationSchema,
    KafkaSink,
    KafkaSource,
)
from pyflink.java_gateway import get_gateway

from deploy import kafka_security, paths

KAFKA_SOURCE_CLASS = "org.apache.flink.connector.kafka.source.KafkaSource"
STARTING_OFFSETS = ("committed", "earliest", "latest")


def _jvm_has(class_name: str) -> bool:
    gateway = get_gateway()
    loader = gateway.jvm.Thread.currentThread().getContextClassLoader()
    try:
        gateway.jvm.java.lang.Class.forName(class_name, False, loader)
    except Exception:  # Py4JJavaError wrapping ClassNotFoundException
        return False
    return True


def ensure_kafka_connector(env: StreamExecutionEnvironment) -> None:
    """Add the connector jar when the JVM lacks it (the embedded mini cluster of `python -m`).

    On the session cluster the connector is in lib/ already; adding it again as a user jar would
    load its classes twice, so we only add it where it is missing.
    """
    if _jvm_has(KAFKA_SOURCE_CLASS):
        return
    jars = paths.connector_jars()
    if not jars:
        raise RuntimeError(
            "the Flink Kafka connector jar is missing: run `make setup` (or set EDDYLINE_JVM_DIR)"
        )
    env.add_jars(*(p.resolve().as_uri() for p in jars))


def offsets(starting: str) -> KafkaOffsetsInitializer:
    if starting == "earliest":
        return KafkaOffsetsInitializer.earliest()
    if starting == "latest":
        return KafkaOffsetsInitializer.latest()
    if starting == "committed":
        return KafkaOffsetsInitializer.committed_offsets(KafkaOffsetResetStrategy.EARLIEST)
    raise ValueError(
        f"--starting-offsets must be one of {', '.join(STARTING_OFFSETS)}, not {starting!r}"
    )


def string_source(
    bootstrap_servers: str,
    topics: list[str],
    group_id: str,
    starting_offsets: str = "committed",
    bounded: bool = False,
) -> KafkaSource:
    builder = (
        KafkaSource.builder()
        .set_bootstrap_servers(bootstrap_servers)
        .set_topics(*topics)
        .set_group_id(group_id)
        .set_starting_offsets(offsets(starting_offsets))
        .set_value_only_deserializer(SimpleStringSchema())
        # Commit offsets on checkpoints so `committed` resumes where the last run stopped.
        .set_property("commit.offsets.on.checkpoint", "true")
    )
    for key, value in kafka_security.for_servers(bootstrap_servers).java().items():
        builder = builder.set_property(key, value)
    if bounded:
        builder = builder.set_bounded(KafkaOffsetsInitializer.latest())
    return builder.build()


def string_sink(
    bootstrap_servers: str,
    topic: str,
    guarantee: DeliveryGuarantee = DeliveryGuarantee.AT_LEAST_ONCE,
) -> KafkaSink:
    builder = KafkaSink.builder().set_bootstrap_servers(bootstrap_servers)
    for key, value in kafka_security.for_servers(bootstrap_servers).java().items():
        builder = builder.set_property(key, value)
    return (
        builder.set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic(topic)
            .set_value_serialization_schema(SimpleStringSchema())
            .build()
        )
        .set_delivery_guarantee(guarantee)
        .build()
    )
