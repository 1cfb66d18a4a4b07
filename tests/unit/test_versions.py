"""The pinned versions fit together."""

from __future__ import annotations

from deploy import versions


def test_kafka_connector_is_built_for_the_pinned_flink() -> None:
    # Connector releases are named <connector>-<flink major.minor>, e.g. 5.0.0-2.2.
    flink_minor = ".".join(versions.flink().split(".")[:2])
    assert versions.flink_kafka_connector().endswith(f"-{flink_minor}")


def test_kafka_broker_is_a_4x_kraft_release() -> None:
    assert int(versions.kafka().split(".")[0]) >= 4
