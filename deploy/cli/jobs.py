"""The `eddyline` commands for FlinkJobs: submit, list, describe, savepoint, suspend, resume,
scale, delete, and the controller itself.

The commands change the desired spec in the store and return (or, with `--wait`, follow the
controller until it has acted); the controller does the work.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
import yaml
from rich.table import Table

from deploy import kafka_io
from deploy.cli.common import StateDir, console, err, settings_from
from deploy.controller.loop import Controller, stop_on_signals
from deploy.controller.metrics import ControllerMetrics
from deploy.controller.store import JobStore
from deploy.errors import EddylineError, SpecError
from deploy.flink import entries
from deploy.flink.rest import FlinkClient
from deploy.flink.runtime import FlinkRuntime, copartition_problem
from deploy.local.slots import LocalTaskManagers
from deploy.local.stack import state
from deploy.local.store import SqliteStore
from deploy.settings import StackSettings
from deploy.spec import FlinkJob, FlinkJobSpec, JobState, Lifecycle, load_yaml

if TYPE_CHECKING:
    from deploy.kube.client import KubeTarget

JOB_DIRS_ENV = "EDDYLINE_JOB_DIRS"
EXIT_INVALID = 2  # the spec or the request is wrong: fix it, do not retry
EXIT_FAILED = 1  # the job or the controller failed, or --wait timed out


class ListOutput(StrEnum):
    table = "table"
    json = "json"


class ListingOutput(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"


class DescribeOutput(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


ListOpt = Annotated[
    ListOutput, typer.Option("--output", "-o", help="table for people, json for scripts")
]
ListingOpt = Annotated[
    ListingOutput,
    typer.Option(
        "--output", "-o", help="table for people, wide for more columns, json for scripts"
    ),
]
Name = Annotated[str, typer.Argument(help="the FlinkJob's metadata.name")]
Wait = Annotated[
    bool, typer.Option("--wait/--no-wait", help="follow the controller until it has acted")
]
Timeout = Annotated[float, typer.Option(help="seconds --wait waits at most")]
Kube = Annotated[
    bool,
    typer.Option(
        "--kube",
        help="FlinkJob custom resources in a Kubernetes cluster, not the local store",
    ),
]
KubeNamespace = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="with --kube: the namespace [the context's; in a pod, its own; default]",
        show_default=False,
    ),
]
Kubeconfig = Annotated[
    Path | None,
    typer.Option(
        help="with --kube: the kubeconfig file [$KUBECONFIG, else ~/.kube/config]",
        show_default=False,
    ),
]
KubeContext = Annotated[
    str | None,
    typer.Option(
        "--context",
        help="with --kube: the kubeconfig context [its current one]",
        show_default=False,
    ),
]
_P = ParamSpec("_P")
_R = TypeVar("_R")


def allowed_dirs(given: list[Path] | None = None) -> list[Path]:
    """Folders .py job entries may come from: --job-dir, else EDDYLINE_JOB_DIRS, else jobs/."""
    if given:
        return given
    env = os.environ.get(JOB_DIRS_ENV)
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return entries.default_allowed()


def _store(
    state_dir: Path | None, target: KubeTarget | None = None
) -> tuple[StackSettings, JobStore]:
    """The local SQLite store, or with a Kubernetes target the cluster's FlinkJobs."""
    settings = settings_from(state_dir=state_dir)
    if target is not None:
        from deploy.kube import wiring as kube_wiring  # noqa: PLC0415 - the Kubernetes client loads only with --kube

        return settings, kube_wiring.store(target)
    return settings, SqliteStore(settings.controller_db)


def _kube_target(
    kube: bool,
    namespace: str | None = None,
    kubeconfig: Path | None = None,
    context: str | None = None,
    in_cluster: bool = False,
) -> KubeTarget | None:
    if not kube:
        given = [
            flag
            for flag, value in (
                ("--namespace", namespace),
                ("--kubeconfig", kubeconfig),
                ("--context", context),
                ("--in-cluster", in_cluster),
            )
            if value
        ]
        if given:
            raise _error(f"{', '.join(given)} only go with --kube", EXIT_INVALID)
        return None
    from deploy.kube.client import KubeTarget  # noqa: PLC0415

    return KubeTarget(
        namespace=namespace,
        kubeconfig=kubeconfig,
        context=context,
        in_cluster=True if in_cluster else None,
    )


def _reports_errors(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """A store that cannot be reached (a Kubernetes API server, say) is one line and exit 1."""

    @functools.wraps(command)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return command(*args, **kwargs)
        except EddylineError as e:
            raise _error(str(e)) from None

    return run


def _hint(settings: StackSettings, store: JobStore, name: str) -> str:
    if isinstance(store, SqliteStore):
        return f"controller log: {_controller_log(settings)}"
    return f"`kubectl describe flinkjob {name}` shows its events; the controller logs the rest"


def _flink_url(settings: StackSettings) -> str:
    current = state.load(settings.state_dir)
    return current.flink_url if current is not None else settings.flink_url


def _controller_log(settings: StackSettings) -> Path:
    return settings.state_dir / "logs" / "controller.out"


def _error(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _emit(job: FlinkJob, json_out: bool, message: str) -> None:
    if json_out:
        typer.echo(json.dumps(job.document()))
    else:
        console.print(message)


def _wait(
    settings: StackSettings,
    store: JobStore,
    name: str,
    done: Callable[[FlinkJob | None], bool],
    what: str,
    timeout: float,
    quiet: bool,
    generation: int | None = None,
) -> FlinkJob | None:
    """Poll the store until `done`; the timeout, or FAILED once the controller has seen
    `generation`, is an error naming the log (no generation: FAILED is not an error)."""
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for {name} to {what}…") as spinner:
        while True:
            job = store.get(name)
            if done(job):
                return job
            if (
                generation is not None
                and job is not None
                and job.status.lifecycle == Lifecycle.FAILED
                and job.status.observed_generation >= generation
            ):
                raise _error(f"{name} FAILED: {job.status.error} ({_hint(settings, store, name)})")
            if time.monotonic() > deadline:
                now = job.status.lifecycle.value if job else "gone"
                raise _error(
                    f"{name} did not {what} within {timeout:.0f} s (it is {now}; "
                    f"is the controller running? {_hint(settings, store, name)})"
                )
            if not quiet and job is not None:
                spinner.update(f"waiting for {name} to {what}… ({job.status.lifecycle.value})")
            time.sleep(0.5)


def _running(generation: int) -> Callable[[FlinkJob | None], bool]:
    def done(job: FlinkJob | None) -> bool:
        return job is not None and job.running_at(generation)

    return done


# -- submit ------------------------------------------------------------------------------


@_reports_errors
def submit(
    spec_file: Annotated[Path, typer.Argument(help="a FlinkJob YAML file, or - for stdin")],
    state_dir: StateDir = None,
    kube: Kube = False,
    namespace: KubeNamespace = None,
    kubeconfig: Kubeconfig = None,
    context: KubeContext = None,
    wait: Wait = False,
    timeout: Timeout = 300.0,
    output: ListOpt = ListOutput.table,
) -> None:
    """Create or change a FlinkJob. The whole spec is checked first: an invalid one is refused
    with every problem listed (exit code 2) and nothing is applied."""
    source = "stdin" if str(spec_file) == "-" else str(spec_file)
    try:
        text = sys.stdin.read() if source == "stdin" else spec_file.read_text()
    except OSError as e:
        raise _error(f"cannot read {source}: {e.strerror}", EXIT_INVALID) from None
    except UnicodeDecodeError as e:
        raise _error(f"cannot read {source}: not UTF-8 text ({e.reason})", EXIT_INVALID) from None
    target = _kube_target(kube, namespace, kubeconfig, context)
    settings, store = _store(state_dir, target)
    try:
        job = load_yaml(text, source)
        if target is None:  # on Kubernetes the controller checks it where the jobs run
            entries.resolve(job.spec.job.entry, allowed_dirs())
        _check_partitions(job, settings, kube=target is not None)
    except SpecError as e:
        raise _error(str(e).replace("spec is not", f"{source} is not"), EXIT_INVALID) from None
    before = store.get(job.name)
    try:
        applied = store.apply(job)
    except EddylineError as e:
        raise _error(str(e), EXIT_INVALID) from None
    verb = (
        "created"
        if before is None
        else "unchanged"
        if applied.metadata.generation == before.metadata.generation
        else "configured"
    )
    json_out = output == ListOutput.json
    if wait:
        done = (
            _suspended(applied.metadata.generation)
            if applied.spec.job.state == JobState.suspended
            else _running(applied.metadata.generation)
        )
        applied = (
            _wait(
                settings,
                store,
                job.name,
                done,
                "run",
                timeout,
                json_out,
                applied.metadata.generation,
            )
            or applied
        )
    _emit(
        applied,
        json_out,
        f"flinkjob/{applied.name} {verb} (generation {applied.metadata.generation})",
    )


def _check_partitions(job: FlinkJob, settings: StackSettings, kube: bool = False) -> None:
    """Refuse joined input topics with different partition counts now, if Kafka can tell."""
    topics = job.spec.kafka.input_topics
    if not job.spec.kafka.copartitioned or len(topics) < 2:
        return
    if kube and not job.spec.kafka.bootstrap_servers:
        return  # the cluster's default Kafka: the controller checks before deploying
    current = state.load(settings.state_dir)
    servers = job.spec.kafka.bootstrap_servers or (
        current.bootstrap_servers if current else settings.bootstrap_servers
    )
    try:
        counts = kafka_io.partition_counts(servers, topics, timeout=3.0)
    except Exception:  # Kafka not reachable from here: the controller checks before deploying
        return
    if any(n is None for n in counts.values()):
        return  # not all created yet: the controller waits for them
    problem = copartition_problem(counts, topics)
    if problem:
        raise SpecError("spec", [f"spec.kafka.inputTopics: {problem}"])


# -- list / describe ---------------------------------------------------------------------


def _age(ms: int | None) -> str:
    if not ms:
        return "-"
    seconds = max(0, int(time.time() - ms / 1000))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


@_reports_errors
def list_jobs(
    state_dir: StateDir = None,
    output: ListingOpt = ListingOutput.table,
    kube: Kube = False,
    namespace: KubeNamespace = None,
    kubeconfig: Kubeconfig = None,
    context: KubeContext = None,
) -> None:
    """The FlinkJobs and their state."""
    _, store = _store(state_dir, _kube_target(kube, namespace, kubeconfig, context))
    jobs = store.list()
    if output == ListingOutput.json:
        typer.echo(json.dumps({"items": [j.document() for j in jobs]}))
        return
    if not jobs:
        console.print("No FlinkJobs. Submit one with `eddyline submit jobs/specs/ledger.yaml`.")
        return
    wide = output == ListingOutput.wide
    columns = ["name", "lifecycle", "parallelism", "job id", "flink", "savepoint", "age"]
    if wide:
        columns += ["entry", "wanted", "upgrade", "checkpoint", "restarts"]
    table = Table(*columns, "error")
    for j in jobs:
        st = j.status
        newest = max((s.time for s in st.savepoints), default=None)
        row = [
            j.name,
            _lifecycle(st.lifecycle),
            str(st.parallelism or j.spec.job.parallelism),
            st.job_id or "-",
            st.flink_state or "-",
            _age(newest),
            _age(_created(j)),
        ]
        if wide:
            job = j.spec.job
            row += [job.entry, job.state.value, job.upgrade_mode.value,
                    _age(st.last_checkpoint_time), str(st.restarts)]  # fmt: skip
        error = st.error or ""
        row.append(error if wide else error[:60])  # whole when asked for width
        table.add_row(*row)
    console.print(table)


def _created(job: FlinkJob) -> int | None:
    ts = job.metadata.creation_timestamp
    if not ts:
        return None
    return int(datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() * 1000)


def _lifecycle(value: Lifecycle) -> str:
    colour = {
        Lifecycle.STABLE: "green",
        Lifecycle.RUNNING: "green",
        Lifecycle.FAILED: "red",
        Lifecycle.SUSPENDED: "yellow",
    }.get(value, "cyan")
    return f"[{colour}]{value.value}[/{colour}]"


@_reports_errors
def describe(
    name: Name,
    state_dir: StateDir = None,
    kube: Kube = False,
    namespace: KubeNamespace = None,
    kubeconfig: Kubeconfig = None,
    context: KubeContext = None,
    output: Annotated[
        DescribeOutput, typer.Option("--output", "-o", help="table, or the whole FlinkJob")
    ] = DescribeOutput.table,
) -> None:
    """One FlinkJob in detail: its spec, status, savepoints, conditions and recent events."""
    target = _kube_target(kube, namespace, kubeconfig, context)
    settings, store = _store(state_dir, target)
    job = store.get(name)
    if job is None:
        raise _error(f"no job named {name!r} (see `eddyline list`)")
    if output == DescribeOutput.json:
        typer.echo(json.dumps(job.document(), indent=2))
        return
    if output == DescribeOutput.yaml:
        typer.echo(yaml.safe_dump(job.document(), sort_keys=False), nl=False)
        return
    _print_details(job, _flink_url(settings) if target is None else "")


def _print_details(job: FlinkJob, flink: str) -> None:
    st, spec = job.status, job.spec
    rows = [
        ("Name", job.name),
        ("Entry", f"{spec.job.entry} {' '.join(spec.job.args)}".strip()),
        (
            "Desired",
            f"{spec.job.state.value}, parallelism {spec.job.parallelism}, "
            f"upgrade mode {spec.job.upgrade_mode.value}",
        ),
        ("Lifecycle", _lifecycle(st.lifecycle)),
        ("Generation", f"{job.metadata.generation} (observed {st.observed_generation})"),
        ("Flink job", f"{st.job_id or '-'} ({st.flink_state or '-'})"),
        (
            "Dashboard",
            f"{flink}/#/job/running/{st.job_id}/overview" if st.job_id and flink else "-",
        ),
        ("Parallelism", str(st.parallelism or "-")),
        ("Restarts", f"{st.restarts} of {spec.restart_policy.max_retries}"),
        ("Last checkpoint", st.last_checkpoint_path or "-"),
        ("Upgrade savepoint", st.upgrade_savepoint_path or "-"),
    ]
    if st.operation is not None:
        op = st.operation
        rows.append(("In progress", f"{op.kind} ({op.step}) since {_age(op.started_at)} ago"))
    if st.error:
        rows.append(("Error", f"[red]{st.error}[/red]"))
    if job.metadata.deletion_timestamp:
        rows.append(("Deleting", f"since {job.metadata.deletion_timestamp}"))
    for key, value in rows:
        console.print(f"[bold]{key + ':':<19}[/bold] {value}", highlight=False, soft_wrap=True)
    if st.savepoints:
        table = Table("savepoint", "trigger", "age", title="Savepoints", title_justify="left")
        for sp in sorted(st.savepoints, key=lambda s: s.time, reverse=True):
            table.add_row(sp.path, sp.trigger, _age(sp.time))
        console.print(table)
    if st.conditions:
        table = Table("condition", "status", "reason", "message", title="Conditions",
                      title_justify="left")  # fmt: skip
        for c in st.conditions:
            table.add_row(c.type, c.status, c.reason, c.message[:80])
        console.print(table)
    if spec.autoscaler.enabled or st.autoscaler.get("decisions"):
        _print_autoscaler(st.autoscaler)
    if st.events:
        table = Table("age", "type", "reason", "message", title="Events", title_justify="left")
        for e in st.events[-12:]:
            style = "yellow" if e.type == "Warning" else ""
            table.add_row(_age(e.time), e.type, e.reason, e.message[:120], style=style)
        console.print(table)


def _print_autoscaler(autoscaler: dict[str, Any]) -> None:
    last = autoscaler.get("last")
    if last:
        console.print(
            f"[bold]Autoscaler:[/bold] {last['reason']} ({_age(last['time'])} ago; "
            + ", ".join(f"{k} {v}" for k, v in last.get("inputs", {}).items())
            + ")",
            highlight=False,
        )
    table = Table("age", "from", "to", "reason", "applied", title="Autoscaler decisions",
                  title_justify="left")  # fmt: skip
    for d in autoscaler.get("decisions", [])[-10:]:
        table.add_row(_age(d["time"]), str(d["current"]), str(d["parallelism"]), d["reason"],
                      d.get("applied", ""))  # fmt: skip
    if table.rows:
        console.print(table)


# -- spec changes ------------------------------------------------------------------------


def _change(
    name: str,
    state_dir: Path | None,
    target: KubeTarget | None,
    change: Callable[[FlinkJobSpec], FlinkJobSpec],
    message: str,
    wait_for: Callable[[int], Callable[[FlinkJob | None], bool]] | None,
    what: str,
    wait: bool,
    timeout: float,
    output: ListOutput,
) -> None:
    settings, store = _store(state_dir, target)
    try:
        job = store.update_spec(name, change)
    except EddylineError as e:
        raise _error(str(e)) from None
    json_out = output == ListOutput.json
    if wait and wait_for is not None:
        job = _wait(settings, store, name, wait_for(job.metadata.generation), what, timeout,
                    json_out, job.metadata.generation) or job  # fmt: skip
    _emit(job, json_out, message.format(name=name, generation=job.metadata.generation))


def _suspended(generation: int) -> Callable[[FlinkJob | None], bool]:
    def done(job: FlinkJob | None) -> bool:
        return (
            job is not None
            and job.status.observed_generation >= generation
            and job.status.lifecycle == Lifecycle.SUSPENDED
        )

    return done


@_reports_errors
def suspend(
    name: Name,
    state_dir: StateDir = None,
    kube: Kube = False,
    namespace: KubeNamespace = None,
    kubeconfig: Kubeconfig = None,
    context: KubeContext = None,
    wait: Wait = False,
    timeout: Timeout = 300.0,
    output: ListOpt = ListOutput.table,
) -> None:
    """Stop the job with a savepoint; `resume` starts it again from there."""

    def change(spec: FlinkJobSpec) -> FlinkJobSpec:
        return spec.with_job(state=JobState.suspended)

    target = _kube_target(kube, namespace, kubeconfig, context)
    _change(name, state_dir, target, change,
            "flinkjob/{name} suspend requested (generation {generation})",
            _suspended, "suspend", wait, timeout, output)  # fmt: skip


@_reports_errors
def resume(
    name: Name,
    state_dir: StateDir = None,
    kube: Kube = False,
    namespace: KubeNamespace = None,
    kubeconfig: Kubeconfig = None,
    context: KubeContext = None,
    wait: Wait = False,
    timeout: Timeout = 300.0,
    output: ListOpt = ListOutput.table,
) -> None:
    """Start a suspended job again from its savepoint."""

    def change(spec: FlinkJobSpec) -> FlinkJobSpec:
        return spec.with_job(state=JobState.running)

    target = _kube_target(kube, namespace, kubeconfig, context)
    _change(name, state_dir, target, change,
            "flinkjob/{name} resume requested (generation {generation})",
            _running, "run", wait, timeout, output)  # fmt: skip


@_reports_errors
def scale(
    name: Name,
    parallelism: Annotated[int, typer.Option(min=1, max=1024, help="the new parallelism")],
    state_dir: StateDir = None,
    kube: Kube = False,
    namespace: KubeNamespace = None,
    kubeconfig: Kubeconfig = None,
    context: KubeContext = None,
    wait: Wait = False,
    timeout: Timeout = 300.0,
    output: ListOpt = ListOutput.table,
) -> None:
    """Change the job's parallelism: in place on the adaptive scheduler (same job, from its
    latest checkpoint), else an upgrade per its upgradeMode."""

    def change(spec: FlinkJobSpec) -> FlinkJobSpec:
        return spec.with_job(parallelism=parallelism)

    target = _kube_target(kube, namespace, kubeconfig, context)
    _change(name, state_dir, target, change,
            f"flinkjob/{{name}} parallelism → {parallelism} (generation {{generation}})",
            _running, "run at the new parallelism", wait, timeout, output)  # fmt: skip


@_reports_errors
def savepoint(
    name: Name,
    state_dir: StateDir = None,
    kube: Kube = False,
    namespace: KubeNamespace = None,
    kubeconfig: Kubeconfig = None,
    context: KubeContext = None,
    wait: Wait = False,
    timeout: Timeout = 300.0,
    output: ListOpt = ListOutput.table,
) -> None:
    """Take a savepoint of the running job now (the job keeps running)."""
    target = _kube_target(kube, namespace, kubeconfig, context)
    _, store = _store(state_dir, target)
    current = store.get(name)
    if current is None:
        raise _error(f"no job named {name!r} (see `eddyline list`)")
    known = {s.path for s in current.status.savepoints}

    def change(spec: FlinkJobSpec) -> FlinkJobSpec:
        return spec.model_copy(
            update={"savepoint_trigger_nonce": (spec.savepoint_trigger_nonce or 0) + 1}
        )

    def taken(_: int) -> Callable[[FlinkJob | None], bool]:
        def done(job: FlinkJob | None) -> bool:
            return job is not None and any(
                s.path not in known and s.trigger == "manual" for s in job.status.savepoints
            )

        return done

    _change(name, state_dir, target, change, "flinkjob/{name} savepoint requested",
            taken, "take a savepoint", wait, timeout, output)  # fmt: skip
    if wait and output == ListOutput.table:
        job = store.get(name)
        if job is not None:
            newest = max(job.status.savepoints, key=lambda s: s.time)
            console.print(f"  savepoint: {newest.path}")


@_reports_errors
def delete(
    name: Name,
    savepoint: Annotated[
        bool, typer.Option("--savepoint", help="stop with a final savepoint first")
    ] = False,
    state_dir: StateDir = None,
    kube: Kube = False,
    namespace: KubeNamespace = None,
    kubeconfig: Kubeconfig = None,
    context: KubeContext = None,
    wait: Wait = False,
    timeout: Timeout = 300.0,
) -> None:
    """Stop the job (optionally with a final savepoint) and forget it."""
    settings, store = _store(state_dir, _kube_target(kube, namespace, kubeconfig, context))
    try:
        store.request_delete(name, savepoint)
    except EddylineError as e:
        raise _error(str(e)) from None
    if wait:
        _wait(settings, store, name, lambda j: j is None, "be deleted", timeout, False)
        console.print(f"flinkjob/{name} deleted")
    else:
        console.print(f"flinkjob/{name} deletion requested")


# -- the controller ----------------------------------------------------------------------


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
            help="with --kube: the pod's service account [when in a pod and no --kubeconfig]",
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
        typer.Option(min=1, help="with --kube: slots per TaskManager [Flink's count]"),
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
        str | None, typer.Option(help="Flink REST endpoint [the local stack's]")
    ] = None,
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="Kafka for specs that name none [the local stack's]")
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
            "[the state folder, when a stack runs there]"
        ),
    ] = None,
) -> None:
    """Run the controller: keep every FlinkJob in the store the way its spec says, until
    stopped (`eddyline up` runs one in the background)."""
    settings = settings_from(state_dir=state_dir)
    current = state.load(settings.state_dir)
    flink = flink_url or (current.flink_url if current else settings.flink_url)
    kafka = bootstrap_servers or (
        current.bootstrap_servers if current else settings.bootstrap_servers
    )
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per REST call is noise
    target = _kube_target(kube, namespace, kubeconfig, context, in_cluster)
    if target is not None:
        from deploy.kube import wiring as kube_wiring  # noqa: PLC0415

        options = kube_wiring.ControllerOptions(
            target=target,
            flink_url=flink,
            bootstrap_servers=kafka,
            job_dirs=allowed_dirs(job_dir),
            metrics_port=settings.controller_port if metrics_port is None else metrics_port,
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
        try:
            kube_wiring.run_controller(options, once)
        except EddylineError as e:
            raise _error(str(e)) from None
        except OSError as e:
            raise _error(f"cannot serve metrics on port {options.metrics_port}: {e}") from None
        return
    store = SqliteStore(settings.controller_db)
    metrics = ControllerMetrics()
    port = settings.controller_port if metrics_port is None else metrics_port
    if port and not once:
        try:
            metrics.serve(port, metrics_host)
        except OSError as e:
            raise _error(f"cannot serve metrics on port {port}: {e.strerror}") from None
    elastic_dir = stack_dir or (settings.state_dir if current else None)
    slots = LocalTaskManagers(elastic_dir) if elastic_dir else None
    with FlinkClient(flink) as client:
        headroom = slots.headroom if slots else None
        runtime = FlinkRuntime(client, kafka, allowed_dirs(job_dir), headroom=headroom)
        ctl = Controller(
            store, runtime, metrics, lease_ttl=lease_ttl, interval=interval, slots=slots
        )
        if once:
            ctl.run_once()
            return
        logging.getLogger("eddyline.controller").info(
            "reconciling %s against Flink %s, Kafka %s (metrics on :%s)",
            settings.controller_db, flink, kafka, port or "-",
        )  # fmt: skip
        with stop_on_signals() as stop:
            ctl.run(stop)
