"""The stack's configuration files, rendered from the templates."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import yaml

from deploy import paths, versions
from deploy.local.stack import render, reporter
from deploy.settings import StackSettings


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


def test_every_flink_server_binds_to_loopback_by_default(tmp_path: Path) -> None:
    conf = yaml.safe_load(render.flink_config(_settings(tmp_path), Path("/p")))
    for key in (
        "jobmanager.bind-host",
        "taskmanager.bind-host",
        "rest.bind-address",
        "metrics.reporter.prom.host",
    ):
        assert conf[key] == "localhost", key
    # Flink's own reporter has no bind address: the stack's plugin folder adds one that has.
    assert conf["metrics.reporter.prom.factory.class"] == reporter.BOUND_FACTORY


def test_bind_host_opens_the_servers_and_keeps_the_advertised_addresses(tmp_path: Path) -> None:
    opened = _settings(tmp_path).model_copy(update={"bind_host": "0.0.0.0"})
    conf = yaml.safe_load(render.flink_config(opened, Path("/p")))
    for key in ("jobmanager.bind-host", "taskmanager.bind-host", "rest.bind-address"):
        assert conf[key] == "0.0.0.0", key
    assert conf["jobmanager.rpc.address"] == "localhost"
    assert conf["taskmanager.host"] == "localhost"
    assert conf["rest.address"] == "localhost"
    # Opened on purpose: Flink's own reporter, which listens on every interface.
    assert conf["metrics.reporter.prom.factory.class"] == reporter.FLINK_FACTORY


def test_the_bound_reporter_is_a_flink_plugin_beside_flinks_own(tmp_path: Path) -> None:
    jar = reporter.bound_reporter_jar()
    with zipfile.ZipFile(jar) as z:
        names = set(z.namelist())
        service = z.read(
            "META-INF/services/org.apache.flink.metrics.reporter.MetricReporterFactory"
        ).decode()
    assert service.strip() == reporter.BOUND_FACTORY
    assert "org/apache/flink/metrics/prometheus/BoundPrometheusReporterFactory.class" in names
    plugins = tmp_path / "plugins"
    reporter.link_plugins(_settings(tmp_path), plugins)
    flinks = reporter._flink_jars()[0].name
    prom = sorted(p.name for p in (plugins / "metrics-prometheus").iterdir())
    assert prom == sorted([jar.name, flinks])
    assert (plugins / "metrics-jmx").is_symlink()
    # Flink's S3 filesystem from `make jars`, as a plugin of its own (state in a bucket).
    s3 = plugins / "s3-fs-hadoop"
    assert s3.is_symlink()
    assert s3.resolve() == (paths.jvm_cache() / "s3").resolve()
    assert [j.name for j in s3.iterdir()] == [f"flink-s3-fs-hadoop-{versions.flink_s3()}.jar"]
    # Opened: Flink's reporter alone.
    opened = _settings(tmp_path).model_copy(update={"bind_host": "0.0.0.0"})
    reporter.link_plugins(opened, plugins)
    assert [p.name for p in (plugins / "metrics-prometheus").iterdir()] == [flinks]


def test_flink_state_goes_to_the_stacks_bucket_with_s3_storage(tmp_path: Path) -> None:
    s3 = _settings(tmp_path).model_copy(update={"state_storage": "s3"})
    plugin = {
        "s3.endpoint": "http://127.0.0.1:19000",
        "s3.path.style.access": "true",
        "s3.directory.marker.retention": "keep",
    }
    conf = yaml.safe_load(render.flink_config(s3, Path("/p"), s3=plugin))
    assert conf["execution.checkpointing.dir"] == "s3://flink-state/checkpoints"
    assert conf["execution.checkpointing.savepoint-dir"] == "s3://flink-state/savepoints"
    assert conf["s3.endpoint"] == "http://127.0.0.1:19000"
    assert conf["s3.path.style.access"] is True
    assert conf["s3.directory.marker.retention"] == "keep"
    assert not any(k.startswith("s3.") and "key" in k for k in conf), "keys go in the env"
    # Local state renders no S3 settings, even if given some.
    local = yaml.safe_load(render.flink_config(_settings(tmp_path), Path("/p"), s3=plugin))
    assert not any(k.startswith("s3.") for k in local)
    with pytest.raises(ValueError, match="s3"):
        render.flink_config(s3, Path("/p"))
