"""The local mode, wired: the SQLite store of FlinkJobs, and a Controller built from it, the Flink
runtime and the local stack's TaskManagers (deploy/kube/wiring.py is the Kubernetes twin). The CLI
(`eddyline controller`, the job commands without --kube) picks this one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from deploy.controller.loop import Controller, stop_on_signals
from deploy.controller.metrics import ControllerMetrics
from deploy.flink.rest import FlinkClient
from deploy.flink.runtime import FlinkRuntime
from deploy.local.slots import LocalTaskManagers
from deploy.local.stack import components
from deploy.local.store import SqliteStore
from deploy.settings import StackSettings

log = logging.getLogger("eddyline.controller")


def store(settings: StackSettings) -> SqliteStore:
    return SqliteStore(settings.controller_db)


def controller_log(settings: StackSettings) -> Path:
    """Where the controller that `eddyline up` starts writes: what to read when a job did not do
    what was asked."""
    return components.layout(settings)["logs"] / f"{components.CONTROLLER}.out"


@dataclass(frozen=True)
class ControllerOptions:
    db: Path
    flink_url: str
    bootstrap_servers: str
    job_dirs: list[Path]
    metrics_port: int = 0  # 0: no /metrics
    metrics_host: str = "127.0.0.1"
    interval: float = 1.0
    lease_ttl: float = 10.0
    stack_dir: Path | None = None  # the stack whose TaskManagers follow the slots the jobs want


def build(
    options: ControllerOptions, client: FlinkClient, metrics: ControllerMetrics
) -> Controller:
    """The local controller (not started)."""
    slots = LocalTaskManagers(options.stack_dir) if options.stack_dir else None
    runtime = FlinkRuntime(
        client,
        options.bootstrap_servers,
        options.job_dirs,
        headroom=slots.headroom if slots else None,
    )
    return Controller(
        SqliteStore(options.db),
        runtime,
        metrics,
        lease_ttl=options.lease_ttl,
        interval=options.interval,
        slots=slots,
    )


def run_controller(options: ControllerOptions, once: bool = False) -> None:
    """`eddyline controller`: until SIGTERM/SIGINT (or one pass with --once). An OSError is the
    metrics port that cannot be served: it is tried first, before any job is touched."""
    metrics = ControllerMetrics()
    if options.metrics_port and not once:
        metrics.serve(options.metrics_port, options.metrics_host)
    with FlinkClient(options.flink_url) as client:
        ctl = build(options, client, metrics)
        if once:
            ctl.run_once()
            return
        log.info(
            "reconciling %s against Flink %s, Kafka %s (metrics on :%s)",
            options.db, options.flink_url, options.bootstrap_servers, options.metrics_port or "-",
        )  # fmt: skip
        with stop_on_signals() as stop:
            ctl.run(stop)
