"""The `eddyline` commands for the local stack (Kafka, Flink, the controller and, with
--state-storage s3, an S3 server): up, down and status. The stack itself is deploy/local/stack."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deploy.cli.common import Output, OutputOpt, StateDir, console, settings_from, table
from deploy.cli.options import command
from deploy.local.stack import control, s3state, state
from deploy.settings import STATE_BUCKET, StackSettings


class Scheduler(StrEnum):
    adaptive = "adaptive"
    default = "default"


class StateStorage(StrEnum):
    local = "local"
    s3 = "s3"


class KafkaSecurityMode(StrEnum):
    none = "none"
    sasl_ssl = "sasl-ssl"


@command
def up(
    state_dir: StateDir = None,
    kafka_port: Annotated[
        int | None, typer.Option(help="Kafka listener [9092; EDDYLINE_KAFKA_PORT]")
    ] = None,
    kafka_controller_port: Annotated[
        int | None, typer.Option(help="KRaft controller [9093]")
    ] = None,
    kafka_external_address: Annotated[
        str | None,
        typer.Option(
            help="also accept Kafka clients at this address, e.g. the bridge of `make "
            "cluster-up` so that pods reach the broker \\[none: loopback only]"
        ),
    ] = None,
    kafka_external_port: Annotated[
        int | None, typer.Option(help="port of that second listener [9094]")
    ] = None,
    kafka_security: Annotated[
        KafkaSecurityMode | None,
        typer.Option(
            help="sasl-ssl: Kafka's listeners want TLS (the stack's own CA) and SCRAM-SHA-512 "
            "users, with ACLs; the stack's processes get its client configuration "
            "(EDDYLINE_KAFKA_CONFIG) \\[none; EDDYLINE_KAFKA_SECURITY]"
        ),
    ] = None,
    bind_host: Annotated[
        str | None,
        typer.Option(
            help="address every server listens on; 0.0.0.0 opens the stack to the network "
            "\\[loopback; EDDYLINE_BIND_HOST]"
        ),
    ] = None,
    flink_port: Annotated[
        int | None, typer.Option(help="Flink REST + Web UI [8081; EDDYLINE_FLINK_PORT]")
    ] = None,
    flink_rpc_port: Annotated[int | None, typer.Option(help="JobManager RPC [6123]")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="JobManager Prometheus port; TaskManagers +1… [9249]")
    ] = None,
    taskmanagers: Annotated[int | None, typer.Option(help="TaskManager processes [1]")] = None,
    max_taskmanagers: Annotated[
        int | None, typer.Option(help="TaskManagers the stack may grow to for jobs' slots [4]")
    ] = None,
    slots: Annotated[int | None, typer.Option(help="slots per TaskManager [4]")] = None,
    scheduler: Annotated[
        Scheduler | None,
        typer.Option(help="Flink's scheduler; adaptive rescales jobs in place \\[adaptive]"),
    ] = None,
    jobmanager_memory: Annotated[
        str | None, typer.Option(help="JobManager process size [1024m]")
    ] = None,
    taskmanager_memory: Annotated[
        str | None, typer.Option(help="TaskManager process size [2560m]")
    ] = None,
    kafka_heap: Annotated[str | None, typer.Option(help="Kafka JVM heap [768m]")] = None,
    state_storage: Annotated[
        StateStorage | None,
        typer.Option(
            help="where Flink keeps checkpoints and savepoints: local folders, or s3: a bucket "
            "of an S3 server the stack runs (versitygw; `make kube-tools` builds it), as on "
            "Kubernetes \\[local; EDDYLINE_STATE_STORAGE]"
        ),
    ] = None,
    objectstore_port: Annotated[
        int | None,
        typer.Option(help="port of that S3 server \\[a free one; EDDYLINE_OBJECTSTORE_PORT]"),
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Start the local stack (Kafka + Flink; with --state-storage s3 also an S3 server for job
    state) and wait until it is healthy."""
    settings = settings_from(
        state_dir=state_dir,
        kafka_port=kafka_port,
        kafka_controller_port=kafka_controller_port,
        kafka_external_address=kafka_external_address,
        kafka_external_port=kafka_external_port,
        kafka_security=kafka_security.value if kafka_security else None,
        bind_host=bind_host,
        flink_port=flink_port,
        flink_rpc_port=flink_rpc_port,
        metrics_port=metrics_port,
        taskmanagers=taskmanagers,
        max_taskmanagers=max_taskmanagers,
        slots=slots,
        scheduler=scheduler.value if scheduler else None,
        jobmanager_memory=jobmanager_memory,
        taskmanager_memory=taskmanager_memory,
        kafka_heap=kafka_heap,
        state_storage=state_storage.value if state_storage else None,
        objectstore_port=objectstore_port,
    )
    if output == Output.json:
        typer.echo(json.dumps(_up_document(control.up(settings), settings.state_dir)))
        return
    with console.status("starting the local stack…") as spinner:
        result = control.up(settings, lambda msg: spinner.update(f"{msg}…"))
    _print_up(result, settings)


def _up_document(result: control.UpResult, state_dir: Path) -> dict[str, object]:
    return {
        "already_running": result.already_running,
        "flink_url": result.state.flink_url,
        "bootstrap_servers": result.state.bootstrap_servers,
        "external_bootstrap_servers": result.state.external_bootstrap_servers,
        **_kafka_access(result.state),
        "state": _state_location(result.state, state_dir),
    }


def _kafka_access(current: state.StackState) -> dict[str, object]:
    """How clients connect to the broker, for `-o json`: the summary and the client file, never
    the password."""
    config = current.kafka_client_config
    return {
        "kafka_security": current.kafka_summary(),
        "kafka_client_config": str(config) if config is not None else None,
    }


def _print_kafka_access(current: state.StackState, label: str) -> None:
    if current.kafka_client_config is None:
        return
    pad = " " * len(label)
    console.print(f"{label}{current.kafka_summary()}", highlight=False)
    console.print(f"{pad}client configuration: {current.kafka_client_config}", highlight=False)


def _print_up(result: control.UpResult, settings: StackSettings) -> None:
    if result.already_running:
        console.print(
            f"The stack is already running (state folder {settings.state_dir}); nothing to do."
        )
    else:
        console.print("[green]The local stack is up.[/green]")
    console.print(f"  Flink dashboard: [bold]{result.state.flink_url}[/bold]")
    console.print(f"  Kafka:           {result.state.bootstrap_servers}")
    if result.state.external_bootstrap_servers:
        console.print(f"  Kafka for pods:  {result.state.external_bootstrap_servers}")
    _print_kafka_access(result.state, "  Kafka security:  ")
    _print_state_location(result.state, settings.state_dir, "  Job state:       ")
    console.print("  Stop it with:    eddyline down")


def _state_location(current: state.StackState, state_dir: Path) -> dict[str, object]:
    """Where the stack keeps job state, for `-o json`: never the keys, only their file."""
    where: dict[str, object] = {
        "storage": current.state_storage,
        "checkpoints": current.checkpoint_dir,
        "savepoints": current.savepoint_dir,
    }
    if current.state_storage == "s3":
        where |= {
            "endpoint": current.objectstore_endpoint,
            "bucket": STATE_BUCKET,
            "data": str(s3state.data_dir(state_dir)),
            "credentials": str(s3state.credentials_file(state_dir)),
        }
    return where


def _print_state_location(current: state.StackState, state_dir: Path, label: str) -> None:
    if current.checkpoint_dir is None:
        return  # a stack started before the state location was recorded
    console.print(f"{label}{current.checkpoint_dir}, {current.savepoint_dir}", highlight=False)
    if current.state_storage == "s3":
        pad = " " * len(label)
        console.print(
            f"{pad}S3 server {current.objectstore_endpoint} (bucket {STATE_BUCKET}, data in "
            f"{s3state.data_dir(state_dir)}; keys in {s3state.credentials_file(state_dir)})",
            highlight=False,
        )


@command
def down(state_dir: StateDir = None) -> None:
    """Stop everything the local stack started (no process or port is left behind)."""
    settings = settings_from(state_dir=state_dir)
    with console.status("stopping the local stack…"):
        result = control.down(settings.state_dir)
    if result.was_running:
        console.print(f"Stopped: {', '.join(result.stopped) or 'the supervisor'}.")
    else:
        console.print("The stack was not running; nothing to do.")


@command
def status(state_dir: StateDir = None, output: OutputOpt = Output.table) -> None:
    """Report each server of the local stack. Exit code 0 only when all are healthy."""
    settings = settings_from(state_dir=state_dir)
    comps = control.status(settings.state_dir)
    current = state.load(settings.state_dir) if comps else None
    if output == Output.json:
        where = _state_location(current, settings.state_dir) if current else None
        kafka = _kafka_access(current) if current else {}
        doc = {**kafka, "state": where, "components": [_component(c) for c in comps]}
        typer.echo(json.dumps(doc))
    elif not comps:
        console.print(
            f"The local stack is not running (state folder {settings.state_dir}). "
            "Start it with `eddyline up`."
        )
    else:
        console.print(_component_table(comps))
        if current is not None:
            _print_state_location(current, settings.state_dir, "job state: ")
            _print_kafka_access(current, "kafka security: ")
    if not comps or not all(c.healthy for c in comps):
        raise typer.Exit(1)


def _component(c: control.ComponentStatus) -> dict[str, object]:
    return {
        "name": c.name,
        "pid": c.pid,
        "port": c.port,
        "metrics_port": c.metrics_port,
        "version": c.version,
        "healthy": c.healthy,
    }


def _component_table(comps: list[control.ComponentStatus]) -> Table:
    grid = table("component", "pid", "port", "metrics", "version", "healthy", "restarts", "log")
    for c in comps:
        grid.add_row(
            c.name,
            str(c.pid or "-"),
            str(c.port),
            str(c.metrics_port or "-"),
            c.version,
            "[green]yes[/green]" if c.healthy else "[red]no[/red]",
            str(c.restarts),
            str(c.log),
        )
    return grid
