"""Stack settings: defaults, EDDYLINE_* environment variables and validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deploy.settings import StackSettings


def test_defaults_are_the_documented_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("EDDYLINE_KAFKA_PORT", "EDDYLINE_FLINK_PORT"):
        monkeypatch.delenv(var, raising=False)
    s = StackSettings()
    assert s.bootstrap_servers == "localhost:9092"
    assert s.flink_url == "http://localhost:8081"


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("EDDYLINE_KAFKA_PORT", "29092")
    monkeypatch.setenv("EDDYLINE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("EDDYLINE_TASKMANAGERS", "2")
    s = StackSettings()
    assert s.kafka_port == 29092
    assert s.state_dir == tmp_path
    assert s.taskmanagers == 2


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDDYLINE_KAFKA_PORT", "29092")
    assert StackSettings(kafka_port=39092).kafka_port == 39092


def test_reserved_ports_name_every_listener() -> None:
    s = StackSettings(taskmanagers=2, metrics_port=9300)
    ports = s.reserved_ports()
    assert ports["kafka"] == 9092
    assert ports["Flink REST"] == 8081
    assert ports["taskmanager-1 metrics"] == 9301
    assert ports["taskmanager-2 metrics"] == 9302


@pytest.mark.parametrize(
    ("field", "value"),
    [("kafka_port", 0), ("kafka_port", 70000), ("taskmanagers", 0), ("taskmanager_memory", "2GB")],
)
def test_invalid_settings_are_rejected_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        StackSettings(**{field: value})


def test_servers_listen_on_the_client_address_unless_opened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EDDYLINE_BIND_HOST", raising=False)
    s = StackSettings()
    assert s.listen_host == "localhost"
    assert not s.listens_everywhere
    monkeypatch.setenv("EDDYLINE_BIND_HOST", "0.0.0.0")
    opened = StackSettings()
    assert opened.listen_host == "0.0.0.0"
    assert opened.listens_everywhere
    assert opened.bootstrap_servers == "localhost:9092"  # clients still use `host`


def test_state_is_on_local_disk_unless_s3_is_asked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.delenv("EDDYLINE_STATE_STORAGE", raising=False)
    local = StackSettings(state_dir=tmp_path)
    assert local.state_storage == "local"
    assert local.checkpoint_dir == f"file://{tmp_path.resolve()}/checkpoints"
    assert local.savepoint_dir == f"file://{tmp_path.resolve()}/savepoints"
    assert "object store" not in local.reserved_ports()

    monkeypatch.setenv("EDDYLINE_STATE_STORAGE", "s3")
    s3 = StackSettings(state_dir=tmp_path)
    assert s3.checkpoint_dir == "s3://flink-state/checkpoints"
    assert s3.savepoint_dir == "s3://flink-state/savepoints"
    assert "object store" not in s3.reserved_ports(), "a free port is picked at start"
    monkeypatch.setenv("EDDYLINE_OBJECTSTORE_PORT", "19000")
    assert StackSettings().reserved_ports()["object store"] == 19000
    with pytest.raises(ValidationError, match="state_storage"):
        StackSettings(state_storage="nfs")
