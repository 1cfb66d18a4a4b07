"""The stack's configuration files, rendered from the templates."""

from __future__ import annotations

from pathlib import Path

import yaml

from deploy.settings import StackSettings
from deploy.stack import render


def _settings(tmp_path: Path) -> StackSettings:
    return StackSettings(
        state_dir=tmp_path,
        kafka_port=19092,
        kafka_controller_port=19093,
        flink_port=18081,
        flink_rpc_port=16123,
        metrics_port=19249,
        slots=3,
        taskmanager_memory="3g",
    )


def _properties(text: str) -> dict[str, str]:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


def test_flink_config_is_yaml_with_the_settings(tmp_path: Path) -> None:
    conf = yaml.safe_load(render.flink_config(_settings(tmp_path), Path("/venv/bin/python")))
    assert conf["rest.port"] == 18081
    assert conf["jobmanager.rpc.port"] == 16123
    assert conf["taskmanager.numberOfTaskSlots"] == 3
    assert conf["taskmanager.memory.process.size"] == "3g"
    assert conf["python.executable"] == "/venv/bin/python"
    assert conf["python.client.executable"] == "/venv/bin/python"
    assert conf["execution.checkpointing.dir"] == f"file://{tmp_path.resolve()}/checkpoints"
    assert (
        conf["execution.checkpointing.savepoint-dir"] == f"file://{tmp_path.resolve()}/savepoints"
    )
    assert conf["metrics.reporter.prom.factory.class"].endswith("PrometheusReporterFactory")
    assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in conf["env.java.opts.all"]


def test_flink_config_takes_extra_keys(tmp_path: Path) -> None:
    text = render.flink_config(
        _settings(tmp_path), Path("/p"), extra={"pipeline.object-reuse": "true"}
    )
    assert yaml.safe_load(text)["pipeline.object-reuse"] is True


def test_the_scheduler_is_adaptive_by_default_with_a_short_flink_cooldown(tmp_path: Path) -> None:
    conf = yaml.safe_load(render.flink_config(_settings(tmp_path), Path("/p")))
    assert conf["jobmanager.scheduler"] == "adaptive"
    assert conf["jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling"] == "5 s"
    default = _settings(tmp_path).model_copy(update={"scheduler": "default"})
    conf = yaml.safe_load(render.flink_config(default, Path("/p")))
    assert conf["jobmanager.scheduler"] == "default"
    assert "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling" not in conf


def test_kafka_properties_single_node_kraft(tmp_path: Path) -> None:
    props = _properties(render.kafka_server_properties(_settings(tmp_path)))
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://localhost:19092,CONTROLLER://localhost:19093"
    assert props["controller.quorum.voters"] == "1@localhost:19093"
    assert props["log.dirs"] == str((tmp_path / "kafka" / "data").resolve())
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1", key


def test_kafka_allows_flinks_exactly_once_transaction_timeout(tmp_path: Path) -> None:
    props = _properties(render.kafka_server_properties(_settings(tmp_path)))
    # Flink's KafkaSink asks for a 1 h transaction timeout by default.
    assert int(props["transaction.max.timeout.ms"]) >= 3_600_000


def test_kafka_log4j_writes_to_the_given_file(tmp_path: Path) -> None:
    conf = yaml.safe_load(render.kafka_log4j(tmp_path / "server.log"))
    assert conf["Configuration"]["Appenders"]["File"]["fileName"] == str(tmp_path / "server.log")


def test_kafka_external_listener_only_when_asked(tmp_path: Path) -> None:
    plain = _properties(render.kafka_server_properties(_settings(tmp_path)))
    assert "EXTERNAL" not in plain["listeners"] + plain["listener.security.protocol.map"]
    opened = _settings(tmp_path).model_copy(
        update={"kafka_external_address": "10.234.0.1", "kafka_external_port": 19094}
    )
    props = _properties(render.kafka_server_properties(opened))
    assert props["listeners"] == (
        "PLAINTEXT://localhost:19092,CONTROLLER://localhost:19093,EXTERNAL://10.234.0.1:19094"
    )
    assert props["advertised.listeners"] == (
        "PLAINTEXT://localhost:19092,EXTERNAL://10.234.0.1:19094"
    )
    assert props["listener.security.protocol.map"].endswith(",EXTERNAL:PLAINTEXT")
    assert opened.external_bootstrap_servers == "10.234.0.1:19094"
    assert opened.reserved_ports()["kafka external"] == 19094
