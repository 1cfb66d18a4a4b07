"""`eddyline controller`: run the controller in this process, locally (deploy/local/wiring.py) or
with --kube against a cluster (deploy/kube/wiring.py). `eddyline up` starts one in the background;
in a pod the chart runs `eddyline controller --kube --in-cluster`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from deploy import kafka_security
from deploy.cli.common import StateDir, fail, settings_from
from deploy.cli.options import (
    JOB_DIRS_ENV,
    Kubeconfig,
    KubeContext,
    KubeNamespace,
    allowed_dirs,
    command,
    kube_target,
)
from deploy.kafka_security import KafkaConfigError
from deploy.local import wiring as local_wiring
from deploy.local.stack import state


@command
def controller(
    once: Annotated[
        bool, typer.Option("--once", help="reconcile every job once, then exit")
    ] = False,
    state_dir: StateDir = None,
    kube: Annotated[
        bool,
        typer.Option(
            "--kube",
            help="reconcile the FlinkJob custom resources of a namespace (Kubernetes mode)",
        ),
    ] = False,
    namespace: KubeNamespace = None,
    kubeconfig: Kubeconfig = None,
    context: KubeContext = None,
    in_cluster: Annotated[
        bool,
        typer.Option(
            "--in-cluster",
            help="with --kube: the pod's service account \\[when in a pod and no --kubeconfig]",
        ),
    ] = False,
    taskmanager_deployment: Annotated[
        str | None,
        typer.Option(
            help="with --kube: the TaskManager Deployment to scale with the slots the jobs need",
            show_default=False,
        ),
    ] = None,
    max_taskmanagers: Annotated[
        int, typer.Option(min=1, help="with --kube: at most this many TaskManager replicas")
    ] = 4,
    taskmanager_slots: Annotated[
        int | None,
        typer.Option(min=1, help="with --kube: slots per TaskManager \\[Flink's count]"),
    ] = None,
    min_taskmanagers: Annotated[
        int,
        typer.Option(min=1, help="with --kube: scale the TaskManager Deployment down no further"),
    ] = 1,
    taskmanager_scale_down: Annotated[
        bool,
        typer.Option(
            help="with --kube: scale the TaskManager Deployment back down when the jobs need "
            "fewer TaskManagers (only Pods running no task go)"
        ),
    ] = True,
    taskmanager_scale_down_delay: Annotated[
        float,
        typer.Option(
            min=0.0, help="with --kube: seconds the jobs must need fewer before any Pod goes"
        ),
    ] = 300.0,
    resync: Annotated[
        float, typer.Option(min=1.0, help="with --kube: seconds between full re-lists")
    ] = 60.0,
    metrics_host: Annotated[
        str, typer.Option(help="address /metrics listens on (0.0.0.0 in a pod)")
    ] = "127.0.0.1",
    flink_url: Annotated[
        str | None, typer.Option(help="Flink REST endpoint \\[the local stack's]")
    ] = None,
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="Kafka for specs that name none \\[the local stack's]")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus /metrics port; 0 = none [9247]")
    ] = None,
    job_dir: Annotated[
        list[Path] | None,
        typer.Option(help=f"folder .py job entries may come from (repeat) [{JOB_DIRS_ENV}; jobs/]"),
    ] = None,
    interval: Annotated[float, typer.Option(min=0.1, help="seconds between reconciles")] = 1.0,
    lease_ttl: Annotated[
        float, typer.Option(min=1.0, help="seconds another controller waits after this one dies")
    ] = 10.0,
    stack_dir: Annotated[
        Path | None,
        typer.Option(
            help="the local stack whose TaskManagers to grow and shrink with the jobs' slots "
            "\\[the state folder, when a stack runs there]"
        ),
    ] = None,
) -> None:
    """Run the controller: keep every FlinkJob in the store the way its spec says, until
    stopped (`eddyline up` runs one in the background)."""
    settings = settings_from(state_dir=state_dir)
    current = state.load(settings.state_dir)
    if current is not None:
        state.register_stack(current)  # its broker may want TLS and SASL
    flink = flink_url or (current.flink_url if current else settings.flink_url)
    kafka = bootstrap_servers or (
        current.bootstrap_servers if current else settings.bootstrap_servers
    )
    port = settings.controller_port if metrics_port is None else metrics_port
    target = kube_target(kube, namespace, kubeconfig, context, in_cluster)
    _log_to_stderr()
    try:  # a Kafka configuration that cannot work stops the controller now, saying why
        security = kafka_security.for_servers(kafka)
    except KafkaConfigError as e:
        raise fail(e) from None
    logging.getLogger("eddyline.controller").info("Kafka at %s: %s", kafka, security.summary())
    try:
        if target is None:
            local = local_wiring.ControllerOptions(
                db=settings.controller_db,
                flink_url=flink,
                bootstrap_servers=kafka,
                job_dirs=allowed_dirs(job_dir),
                metrics_port=port,
                metrics_host=metrics_host,
                interval=interval,
                lease_ttl=lease_ttl,
                stack_dir=stack_dir or (settings.state_dir if current else None),
            )
            local_wiring.run_controller(local, once)
            return
        from deploy.kube import wiring as kube_wiring  # noqa: PLC0415 - only with --kube

        on_kube = kube_wiring.ControllerOptions(
            target=target,
            flink_url=flink,
            bootstrap_servers=kafka,
            job_dirs=allowed_dirs(job_dir),
            metrics_port=port,
            metrics_host=metrics_host,
            interval=interval,
            lease_ttl=lease_ttl,
            resync=resync,
            taskmanager_deployment=taskmanager_deployment,
            max_taskmanagers=max_taskmanagers,
            taskmanager_slots=taskmanager_slots,
            min_taskmanagers=min_taskmanagers,
            taskmanager_scale_down_delay=(
                taskmanager_scale_down_delay if taskmanager_scale_down else None
            ),
        )
        kube_wiring.run_controller(on_kube, once)
    except OSError as e:  # what the wiring leaves uncaught is serving /metrics on a taken port
        raise fail(f"cannot serve metrics on port {port}: {e.strerror or e}") from None


def _log_to_stderr() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per REST call is noise
