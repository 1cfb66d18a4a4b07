"""The Kubernetes mode, wired: the FlinkJob custom resources of a namespace as the store, and the
controller built from them, the Kubernetes runtime and the TaskManager Deployment
(deploy/local/wiring.py is the local twin). The CLI imports it only with --kube, so the local
commands never load the Kubernetes client."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from deploy.controller.loop import stop_on_signals
from deploy.controller.metrics import ControllerMetrics
from deploy.flink.rest import FlinkClient
from deploy.flink.runtime import FlinkRuntime
from deploy.kube.api import RestApi
from deploy.kube.client import KubeTarget, connect
from deploy.kube.controller import KubeController
from deploy.kube.runtime import DeploymentTaskManagers, KubeRuntime
from deploy.kube.store import KubeStore

log = logging.getLogger("eddyline.controller")


def store(target: KubeTarget) -> KubeStore:
    return KubeStore(connect(target))


@dataclass(frozen=True)
class ControllerOptions:
    target: KubeTarget
    flink_url: str
    bootstrap_servers: str
    job_dirs: list[Path]
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    interval: float = 1.0
    lease_ttl: float = 10.0
    resync: float = 60.0
    taskmanager_deployment: str | None = None
    max_taskmanagers: int = 4
    taskmanager_slots: int | None = None
    min_taskmanagers: int = 1
    taskmanager_scale_down_delay: float | None = 300.0  # None: never scale down


def build(
    options: ControllerOptions, client: FlinkClient, api: RestApi | None = None
) -> KubeController:
    """The Kubernetes-mode controller (not started)."""
    api = api or connect(options.target)
    kube_store = KubeStore(api, resync_s=options.resync)
    slots = None
    if options.taskmanager_deployment:
        slots = DeploymentTaskManagers(
            api,
            options.taskmanager_deployment,
            options.max_taskmanagers,
            client,
            options.taskmanager_slots,
            kube_store.events,
            min_replicas=options.min_taskmanagers,
            scale_down_delay=options.taskmanager_scale_down_delay,
        )
    flink = FlinkRuntime(
        client,
        options.bootstrap_servers,
        options.job_dirs,
        headroom=slots.headroom if slots is not None else None,
    )
    return KubeController(
        kube_store,
        KubeRuntime(flink, kube_store.events),
        ControllerMetrics(),
        lease_ttl=options.lease_ttl,
        interval=options.interval,
        slots=slots,
    )


def run_controller(options: ControllerOptions, once: bool = False) -> None:
    """`eddyline controller --kube`: until SIGTERM/SIGINT (or one pass with --once)."""
    api = connect(options.target)
    with FlinkClient(options.flink_url) as client:
        ctl = build(options, client, api)
        if once:
            ctl.run_once()
            return
        if options.metrics_port:
            ctl.metrics.serve(options.metrics_port, options.metrics_host)
        log.info(
            "reconciling FlinkJobs in namespace %s at %s against Flink %s, Kafka %s "
            "(metrics on %s:%s; TaskManagers: %s)",
            api.namespace,
            api.api_client.configuration.host,
            options.flink_url,
            options.bootstrap_servers,
            options.metrics_host,
            options.metrics_port or "-",
            options.taskmanager_deployment or "not scaled",
        )
        with stop_on_signals() as stop:
            ctl.run(stop)
