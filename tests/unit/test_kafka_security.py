"""deploy.kafka_security: one Kafka client configuration, read from a file and the environment,
rendered for librdkafka and for Java (Flink's connector), never showing a secret."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from deploy import kafka_io, kafka_security
from deploy.kafka_security import KafkaConfigError, KafkaSecurity
from jobs import sql

SECRET = 's3cr3t-Pa55"word\\'


def sasl_ssl(tmp_path: Path, **extra: object) -> KafkaSecurity:
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n")
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "scram-sha-512",
        "KAFKA_SASL_USERNAME": "alice",
        "KAFKA_SASL_PASSWORD": SECRET,
        "KAFKA_SSL_CA_LOCATION": str(ca),
        **{k: str(v) for k, v in extra.items()},
    }
    return KafkaSecurity.from_env(env)


def test_nothing_set_is_plaintext_and_adds_nothing() -> None:
    plain = KafkaSecurity.from_env({})
    assert plain.protocol == "PLAINTEXT"
    assert plain.librdkafka() == {}
    assert plain.java() == {}
    assert not plain.secured


def test_sasl_over_tls_for_librdkafka(tmp_path: Path) -> None:
    conf = sasl_ssl(tmp_path).librdkafka()
    assert conf == {
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": SECRET,
        "ssl.ca.location": str(tmp_path / "ca.crt"),
    }


def test_sasl_over_tls_for_flinks_shaded_kafka_client(tmp_path: Path) -> None:
    conf = sasl_ssl(tmp_path).java()
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    # The connector jar shades the Kafka client: the login module must be the shaded class.
    assert conf["sasl.jaas.config"] == (
        "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule"
        ' required username="alice" password="s3cr3t-Pa55\\"word\\\\";'
    )
    assert (conf["ssl.truststore.type"], conf["ssl.truststore.location"]) == (
        "PEM",
        str(tmp_path / "ca.crt"),
    )
    plain_module = sasl_ssl(tmp_path).java(shaded=False)["sasl.jaas.config"]
    assert plain_module.startswith("org.apache.kafka.common.security.scram.ScramLoginModule ")


def test_a_client_certificate_travels_inline_as_a_pem_key_store(tmp_path: Path) -> None:
    (tmp_path / "client.key").write_text("KEY\n")
    (tmp_path / "client.crt").write_text("CERT\n")
    security = KafkaSecurity.from_env(
        {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CERTIFICATE_LOCATION": str(tmp_path / "client.crt"),
            "KAFKA_SSL_KEY_LOCATION": str(tmp_path / "client.key"),
        }
    )
    java = security.java()
    assert java["ssl.keystore.type"] == "PEM"
    assert (java["ssl.keystore.key"], java["ssl.keystore.certificate.chain"]) == ("KEY\n", "CERT\n")
    assert security.librdkafka()["ssl.key.location"] == str(tmp_path / "client.key")


def test_the_file_and_then_the_environment(tmp_path: Path) -> None:
    props = tmp_path / "client.properties"
    props.write_text(
        "# a client properties file\n"
        "security.protocol=SASL_PLAINTEXT\n"
        "sasl.mechanism=PLAIN\n"
        "sasl.username=from-file\n"
        "sasl.password=file-secret\n"
    )
    security = KafkaSecurity.from_env(
        {kafka_security.CONFIG_ENV: str(props), "KAFKA_SASL_USERNAME": "from-env"}
    )
    assert (security.protocol, security.mechanism) == ("SASL_PLAINTEXT", "PLAIN")
    assert security.username == "from-env"
    assert security.source == f"{props} + KAFKA_* environment variables"


def test_rendered_properties_read_back_the_same(tmp_path: Path) -> None:
    security = sasl_ssl(tmp_path)
    path = tmp_path / "client.properties"
    path.write_text(kafka_security.render_properties(security))
    again = KafkaSecurity.from_file(path)
    assert again.librdkafka() == security.librdkafka()


def test_every_problem_is_listed_with_where_it_came_from(tmp_path: Path) -> None:
    with pytest.raises(KafkaConfigError) as e:
        KafkaSecurity.from_env(
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SSL_CA_LOCATION": str(tmp_path / "nope.crt"),
            }
        )
    message = str(e.value)
    assert message.startswith("KAFKA_* environment variables: ")
    for part in ("needs sasl.mechanism", "needs sasl.username", "needs sasl.password"):
        assert part in message
    assert f"ssl.ca.location: {tmp_path / 'nope.crt'} does not exist" in message
    with pytest.raises(KafkaConfigError, match="'TLS' is not one of"):
        KafkaSecurity.from_env({"KAFKA_SECURITY_PROTOCOL": "tls"})
    with pytest.raises(KafkaConfigError, match=re.escape("unknown key 'sasl.pasword'")):
        KafkaSecurity.from_properties({"sasl.pasword": "x"}, "client.properties")
    with pytest.raises(KafkaConfigError, match=re.escape("but security.protocol is PLAINTEXT")):
        KafkaSecurity.from_env({"KAFKA_SASL_USERNAME": "alice"})


def test_no_secret_in_repr_str_summary_or_a_dump(tmp_path: Path) -> None:
    security = sasl_ssl(tmp_path)
    shown = [repr(security), str(security), security.summary(), security.model_dump_json()]
    assert all(SECRET not in s for s in shown)
    assert security.summary() == f"SASL_SSL, SCRAM-SHA-512 as alice, CA {tmp_path / 'ca.crt'}"


def test_clients_of_a_registered_address_use_its_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in (*kafka_security.ENV_KEYS, kafka_security.CONFIG_ENV):
        monkeypatch.delenv(key, raising=False)
    security = sasl_ssl(tmp_path)
    kafka_security.register("secure:9093", security)
    try:
        conf = kafka_io.client_config("secure:9093", **{"group.id": "g"})
        assert conf["security.protocol"] == "sasl_ssl"
        assert conf["group.id"] == "g"
        assert "security.protocol" not in kafka_io.client_config("other:9092")
    finally:
        kafka_security.forget("secure:9093")
    assert "security.protocol" not in kafka_io.client_config("secure:9093")


def test_the_jobs_kafka_tables_carry_it_for_source_and_exactly_once_sink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Kafka table the jobs declare goes through jobs.sql.kafka_options: the sources and
    the ledger's transactional sink alike get `properties.*` from the driver's configuration."""
    for key in (*kafka_security.ENV_KEYS, kafka_security.CONFIG_ENV):
        monkeypatch.delenv(key, raising=False)
    args = argparse.Namespace(bootstrap_servers="secure:9093")
    plain = sql.kafka_options(args, "orders")
    assert "properties.security.protocol" not in plain
    monkeypatch.setenv(kafka_security.CONFIG_ENV, str(tmp_path / "client.properties"))
    (tmp_path / "ca.crt").write_text("CA\n")
    (tmp_path / "client.properties").write_text(
        kafka_security.render_properties(sasl_ssl(tmp_path))
    )
    secured = sql.kafka_options(args, "stock-levels", **{"sink.delivery-guarantee": "exactly-once"})
    assert "'properties.security.protocol' = 'SASL_SSL'" in secured
    assert "'properties.sasl.mechanism' = 'SCRAM-SHA-512'" in secured
    assert "ScramLoginModule required username=" in secured
    assert "'sink.delivery-guarantee' = 'exactly-once'" in secured
