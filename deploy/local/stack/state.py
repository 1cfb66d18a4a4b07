"""The stack's state file (`<state>/stack.json`): what the supervisor runs, written atomically.

The supervisor is its only writer; `eddyline status`/`down` and the test fixtures read it.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field

from deploy import kafka_security
from deploy.kafka_security import KafkaSecurity


class Phase(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"


class ComponentState(BaseModel):
    name: str
    kind: str
    pid: int | None = None
    port: int
    metrics_port: int | None = None
    version: str
    log: Path
    restarts: int = 0
    started_at: float | None = None


class StackState(BaseModel):
    supervisor_pid: int
    phase: Phase = Phase.STARTING
    error: str | None = None
    error_log: Path | None = None
    flink_url: str
    bootstrap_servers: str
    # The second listener for pods of a local cluster (`eddyline up --kafka-external-address`).
    external_bootstrap_servers: str | None = None
    components: list[ComponentState] = Field(default_factory=list)
    # Elastic TaskManagers (deploy/local/stack/elastic.py): the controller sizes its requests by
    # these.
    slots_per_taskmanager: int = 1
    max_taskmanagers: int = 1
    # Where Flink keeps job state (`eddyline up --state-storage`): local folders, or the bucket
    # of the stack's own S3 server at objectstore_endpoint (its keys:
    # deploy/local/stack/s3state.py).
    state_storage: str = "local"
    checkpoint_dir: str | None = None
    savepoint_dir: str | None = None
    objectstore_endpoint: str | None = None
    # With a secured broker (`eddyline up --kafka-security sasl-ssl`): the stack's client
    # configuration (deploy/local/stack/kafka_auth.py), the file its processes get as
    # EDDYLINE_KAFKA_CONFIG. None: PLAINTEXT.
    kafka_client_config: Path | None = None

    def kafka_security(self) -> KafkaSecurity | None:
        """How clients connect to this stack's broker; None when it is PLAINTEXT.
        KafkaConfigError naming the file when it cannot be read."""
        if self.kafka_client_config is None:
            return None
        return KafkaSecurity.from_file(self.kafka_client_config)

    def kafka_summary(self) -> str:
        """What status output may say about the broker's security: never a secret."""
        security = self.kafka_security()
        return security.summary() if security is not None else "PLAINTEXT"

    @property
    def taskmanagers(self) -> int:
        return sum(1 for c in self.components if c.kind == "taskmanager")

    def component(self, name: str) -> ComponentState:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)


def register_stack(current: StackState) -> KafkaSecurity | None:
    """Make this process's Kafka clients (deploy.kafka_io) of the stack's bootstrap addresses
    use its client configuration; the configuration, or None (PLAINTEXT: nothing registered, so
    the environment's configuration still applies)."""
    security = current.kafka_security()
    if security is None:
        return None
    for servers in (current.bootstrap_servers, current.external_bootstrap_servers):
        if servers is not None:
            kafka_security.register(servers, security)
    return security


def state_file(state_dir: Path) -> Path:
    return state_dir / "stack.json"


def lock_file(state_dir: Path) -> Path:
    return state_dir / "stack.lock"


def load(state_dir: Path) -> StackState | None:
    path = state_file(state_dir)
    try:
        return StackState.model_validate_json(path.read_text())
    except FileNotFoundError:
        return None


def save(state_dir: Path, state: StackState) -> None:
    path = state_file(state_dir)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    os.replace(tmp, path)
