"""Settings of the local stack: flags, then `EDDYLINE_*` environment variables, then defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Addresses that mean "every interface" to a server's bind call.
WILDCARDS = frozenset({"0.0.0.0", "::"})

# The bucket of the stack's own S3 server (`state_storage = "s3"`): checkpoints/, savepoints/.
STATE_BUCKET = "flink-state"


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "eddyline"


class StackSettings(BaseSettings):
    """How the local stack is laid out. Every field can be set as `EDDYLINE_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="EDDYLINE_", extra="ignore")

    state_dir: Path = Field(
        default_factory=default_state_dir, description="logs, data, checkpoints"
    )
    host: str = Field(
        "localhost", description="the address clients reach the stack at (and, by default, bind to)"
    )
    bind_host: str | None = Field(
        None,
        description=(
            "the address every server listens on; default: `host` (loopback only). "
            "`0.0.0.0` opens every port to the network, deliberately"
        ),
    )
    kafka_port: int = Field(9092, ge=1, le=65535, description="Kafka client listener")
    kafka_controller_port: int = Field(9093, ge=1, le=65535, description="KRaft controller")
    kafka_external_address: str | None = Field(
        None,
        description=(
            "a second Kafka listener on this address (e.g. the bridge of `make cluster-up`, so "
            "that pods reach the broker), advertised as address:kafka_external_port"
        ),
    )
    kafka_external_port: int = Field(
        9094, ge=1, le=65535, description="port of the listener on kafka_external_address"
    )
    kafka_security: Literal["none", "sasl-ssl"] = Field(
        "none",
        description=(
            "how clients reach Kafka: `none` (PLAINTEXT), or `sasl-ssl`: TLS with the stack's own "
            "CA and SCRAM-SHA-512 users, ACLs enforced (deploy/local/stack/kafka_auth.py)"
        ),
    )
    kafka_internal_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description=(
            "with kafka_security sasl-ssl: the broker's own listener on 127.0.0.1 (inter-broker "
            "traffic, the stack's ACL set-up); default: a free one"
        ),
    )
    flink_port: int = Field(8081, ge=1, le=65535, description="Flink REST API and Web UI")
    flink_rpc_port: int = Field(6123, ge=1, le=65535, description="JobManager RPC")
    metrics_port: int = Field(
        9249, ge=1, le=65535, description="Prometheus port of the JobManager; TaskManagers +1, +2…"
    )
    controller: bool = Field(True, description="run the job controller beside the stack")
    controller_port: int = Field(
        9247, ge=1, le=65535, description="the controller's Prometheus /metrics port"
    )
    taskmanagers: int = Field(1, ge=1, le=16)
    max_taskmanagers: int = Field(
        4, ge=1, le=16, description="TaskManagers the stack may grow to when jobs want more slots"
    )
    scheduler: Literal["adaptive", "default"] = Field(
        "adaptive",
        description="Flink's job scheduler; `adaptive` lets the autoscaler rescale jobs in place",
    )
    slots: int = Field(4, ge=1, le=64, description="task slots per TaskManager")
    jobmanager_memory: str = Field("1024m", pattern=r"^\d+[mg]$")
    taskmanager_memory: str = Field("2560m", pattern=r"^\d+[mg]$")
    kafka_heap: str = Field("768m", pattern=r"^\d+[mg]$")
    start_timeout: float = Field(180.0, gt=0, description="seconds to wait for health on `up`")
    state_storage: Literal["local", "s3"] = Field(
        "local",
        description=(
            "where Flink keeps checkpoints and savepoints: `local` folders under state_dir, or "
            "`s3`: a bucket of an S3 server (versitygw) the stack runs beside Flink, its data "
            "under state_dir"
        ),
    )
    objectstore_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="port of the stack's S3 server with state_storage s3; default: a free one",
    )

    @property
    def listen_host(self) -> str:
        """The address the servers bind to: `bind_host` when set, else `host`."""
        return self.bind_host or self.host

    @property
    def listens_everywhere(self) -> bool:
        """True when the servers are opened to every interface (`bind_host` a wildcard)."""
        return self.listen_host in WILDCARDS

    @property
    def kafka_secured(self) -> bool:
        """True when the broker's client listeners want TLS and SCRAM (`kafka_security`)."""
        return self.kafka_security != "none"

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def external_bootstrap_servers(self) -> str | None:
        """The broker as clients outside this machine's loopback reach it (pods), if opened."""
        if self.kafka_external_address is None:
            return None
        return f"{self.kafka_external_address}:{self.kafka_external_port}"

    @property
    def flink_url(self) -> str:
        return f"http://{self.host}:{self.flink_port}"

    @property
    def checkpoint_dir(self) -> str:
        """Flink's `execution.checkpointing.dir`: a folder of the state folder, or the bucket."""
        if self.state_storage == "s3":
            return f"s3://{STATE_BUCKET}/checkpoints"
        return f"file://{self.state_dir.resolve()}/checkpoints"

    @property
    def savepoint_dir(self) -> str:
        """Flink's `execution.checkpointing.savepoint-dir`, beside the checkpoints."""
        if self.state_storage == "s3":
            return f"s3://{STATE_BUCKET}/savepoints"
        return f"file://{self.state_dir.resolve()}/savepoints"

    def taskmanager_metrics_port(self, index: int) -> int:
        """Prometheus port of TaskManager `index` (1-based)."""
        return self.metrics_port + index

    def reserved_ports(self) -> dict[str, int]:
        """Every fixed port the stack will listen on, by what uses it."""
        ports = {
            "kafka": self.kafka_port,
            "kafka controller": self.kafka_controller_port,
            "Flink REST": self.flink_port,
            "JobManager RPC": self.flink_rpc_port,
            "JobManager metrics": self.metrics_port,
        }
        if self.kafka_external_address is not None:
            ports["kafka external"] = self.kafka_external_port
        if self.kafka_secured and self.kafka_internal_port is not None:
            ports["kafka internal"] = self.kafka_internal_port
        for i in range(1, self.taskmanagers + 1):
            ports[f"taskmanager-{i} metrics"] = self.taskmanager_metrics_port(i)
        if self.controller:
            ports["controller metrics"] = self.controller_port
        if self.state_storage == "s3" and self.objectstore_port is not None:
            ports["object store"] = self.objectstore_port
        return ports

    @property
    def controller_db(self) -> Path:
        """The controller's store of FlinkJobs (SQLite)."""
        return self.state_dir / "controller" / "jobs.db"
