"""Throw-away stacks for tests and benchmarks: every port free, a state folder of their own."""

from __future__ import annotations

from pathlib import Path

from deploy.local.stack import ports
from deploy.settings import StackSettings


def free_settings(state_dir: Path, **overrides: object) -> StackSettings:
    """Settings whose every port is free right now (TaskManager metrics ports follow the JM's)."""
    taskmanagers = int(str(overrides.get("taskmanagers", 1)))
    while True:
        metrics = ports.free_port()
        if all(ports.is_free(metrics + i) for i in range(1, taskmanagers + 1)):
            break
    values: dict[str, object] = {
        "state_dir": state_dir,
        "kafka_port": ports.free_port(),
        "kafka_controller_port": ports.free_port(),
        # Only listened on with kafka_security sasl-ssl; free either way, so that it can be.
        "kafka_internal_port": ports.free_port("127.0.0.1"),
        "flink_port": ports.free_port(),
        "flink_rpc_port": ports.free_port(),
        "metrics_port": metrics,
        "controller_port": ports.free_port(),
        "taskmanagers": taskmanagers,
        # Small enough that two stacks fit beside each other on a 2-core, 24 GiB machine.
        "taskmanager_memory": "1728m",
        "jobmanager_memory": "1024m",
        "kafka_heap": "512m",
    }
    values.update(overrides)
    return StackSettings.model_validate(values)
