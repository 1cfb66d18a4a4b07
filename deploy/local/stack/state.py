"""The stack's state file (`<state>/stack.json`): what the supervisor runs, written atomically.

The supervisor is its only writer; `eddyline status`/`down` and the test fixtures read it.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field


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

    @property
    def taskmanagers(self) -> int:
        return sum(1 for c in self.components if c.kind == "taskmanager")

    def component(self, name: str) -> ComponentState:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(name)


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
