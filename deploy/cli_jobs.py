"""The `eddyline` commands for FlinkJobs: submit, list, describe, savepoint, suspend, resume,
scale, delete, and the controller itself.

The commands change the desired spec in the store and return (or, with `--wait`, follow the
controller until it has acted); the controller does the work.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from deploy import entries, kafka_io
from deploy.cli_common import StateDir, console, err, settings_from
from deploy.controller.flink import FlinkRuntime, copartition_problem
from deploy.controller.loop import Controller
from deploy.controller.metrics import ControllerMetrics
from deploy.errors import EddylineError, SpecError
from deploy.flink_rest import FlinkClient
from deploy.settings import StackSettings
from deploy.spec import FlinkJob, FlinkJobSpec, JobState, Lifecycle, load_yaml
from deploy.stack import state
from deploy.store import SqliteStore

JOB_DIRS_ENV = "EDDYLINE_JOB_DIRS"
EXIT_INVALID = 2  # the spec or the request is wrong: fix it, do not retry
EXIT_FAILED = 1  # the job or the controller failed, or --wait timed out


class ListOutput(StrEnum):
    table = "table"
    json = "json"


class DescribeOutput(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


ListOpt = Annotated[
    ListOutput, typer.Option("--output", "-o", help="table for people, json for scripts")
]
Name = Annotated[str, typer.Argument(help="the FlinkJob's metadata.name")]
Wait = Annotated[
    bool, typer.Option("--wait/--no-wait", help="follow the controller until it has acted")
]
Timeout = Annotated[float, typer.Option(help="seconds --wait waits at most")]


def allowed_dirs(given: list[Path] | None = None) -> list[Path]:
    """Folders .py job entries may come from: --job-dir, else EDDYLINE_JOB_DIRS, else jobs/."""
    if given:
        return given
    env = os.environ.get(JOB_DIRS_ENV)
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return entries.default_allowed()


def _store(state_dir: Path | None) -> tuple[StackSettings, SqliteStore]:
    settings = settings_from(state_dir=state_dir)
    return settings, SqliteStore(settings.controller_db)


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
    store: SqliteStore,
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
                raise _error(
                    f"{name} FAILED: {job.status.error} (controller log: "
                    f"{_controller_log(settings)})"
                )
            if time.monotonic() > deadline:
                now = job.status.lifecycle.value if job else "gone"
                raise _error(
                    f"{name} did not {what} within {timeout:.0f} s (it is {now}; "
                    f"is the controller running? `eddyline status`; log: "
                    f"{_controller_log(settings)})"
                )
            if not quiet and job is not None:
                spinner.update(f"waiting for {name} to {what}… ({job.status.lifecycle.value})")
            time.sleep(0.5)


def _running(generation: int) -> Callable[[FlinkJob | None], bool]:
    def done(job: FlinkJob | None) -> bool:
        return job is not None and job.running_at(generation)

    return done


# -- submit ------------------------------------------------------------------------------


def submit(
    spec_file: Annotated[Path, typer.Argument(help="a FlinkJob YAML file, or - for stdin")],
    state_dir: StateDir = None,
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
    settings, store = _store(state_dir)
    try:
        job = load_yaml(text, source)
        entries.resolve(job.spec.job.entry, allowed_dirs())
        _check_partitions(job, settings)
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


def _check_partitions(job: FlinkJob, settings: StackSettings) -> None:
    """Refuse joined input topics with different partition counts now, if Kafka can tell."""
    topics = job.spec.kafka.input_topics
    if not job.spec.kafka.copartitioned or len(topics) < 2:
        return
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


def list_jobs(state_dir: StateDir = None, output: ListOpt = ListOutput.table) -> None:
    """The FlinkJobs and their state."""
    _, store = _store(state_dir)
    jobs = store.list()
    if output == ListOutput.json:
        typer.echo(json.dumps({"items": [j.document() for j in jobs]}))
        return
    if not jobs:
        console.print("No FlinkJobs. Submit one with `eddyline submit jobs/specs/ledger.yaml`.")
        return
    table = Table(
        "name", "lifecycle", "parallelism", "job id", "flink", "savepoint", "age", "error"
    )
    for j in jobs:
        st = j.status
        newest = max((s.time for s in st.savepoints), default=None)
        table.add_row(
            j.name,
            _lifecycle(st.lifecycle),
            str(st.parallelism or j.spec.job.parallelism),
            st.job_id or "-",
            st.flink_state or "-",
            _age(newest),
            _age(_created(j)),
            (st.error or "")[:60],
        )
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


def describe(
    name: Name,
    state_dir: StateDir = None,
    output: Annotated[
        DescribeOutput, typer.Option("--output", "-o", help="table, or the whole FlinkJob")
    ] = DescribeOutput.table,
) -> None:
    """One FlinkJob in detail: its spec, status, savepoints, conditions and recent events."""
    settings, store = _store(state_dir)
    job = store.get(name)
    if job is None:
        raise _error(f"no job named {name!r} (see `eddyline list`)")
    if output == DescribeOutput.json:
        typer.echo(json.dumps(job.document(), indent=2))
        return
    if output == DescribeOutput.yaml:
        typer.echo(yaml.safe_dump(job.document(), sort_keys=False), nl=False)
        return
    _print_details(job, _flink_url(settings))


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
        ("Dashboard", f"{flink}/#/job/running/{st.job_id}/overview" if st.job_id else "-"),
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
    change: Callable[[FlinkJobSpec], FlinkJobSpec],
    message: str,
    wait_for: Callable[[int], Callable[[FlinkJob | None], bool]] | None,
    what: str,
    wait: bool,
    timeout: float,
    output: ListOutput,
) -> None:
    settings, store = _store(state_dir)
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


def suspend(
    name: Name,
    state_dir: StateDir = None,
    wait: Wait = False,
    timeout: Timeout = 300.0,
    output: ListOpt = ListOutput.table,
) -> None:
    """Stop the job with a savepoint; `resume` starts it again from there."""

    def change(spec: FlinkJobSpec) -> FlinkJobSpec:
        return spec.with_job(state=JobState.suspended)

    _change(name, state_dir, change, "flinkjob/{name} suspend requested (generation {generation})",
            _suspended, "suspend", wait, timeout, output)  # fmt: skip


def resume(
    name: Name,
    state_dir: StateDir = None,
    wait: Wait = False,
    timeout: Timeout = 300.0,
    output: ListOpt = ListOutput.table,
) -> None:
    """Start a suspended job again from its savepoint."""

    def change(spec: FlinkJobSpec) -> FlinkJobSpec:
        return spec.with_job(state=JobState.running)

    _change(name, state_dir, change, "flinkjob/{name} resume requested (generation {generation})",
            _running, "run", wait, timeout, output)  # fmt: skip


def scale(
    name: Name,
    parallelism: Annotated[int, typer.Option(min=1, max=1024, help="the new parallelism")],
    state_dir: StateDir = None,
    wait: Wait = False,
    timeout: Timeout = 300.0,
    output: ListOpt = ListOutput.table,
) -> None:
    """Change the job's parallelism (a spec change: the job is upgraded per its upgradeMode)."""

    def change(spec: FlinkJobSpec) -> FlinkJobSpec:
        return spec.with_job(parallelism=parallelism)

    _change(name, state_dir, change,
            f"flinkjob/{{name}} parallelism → {parallelism} (generation {{generation}})",
            _running, "run at the new parallelism", wait, timeout, output)  # fmt: skip


def savepoint(
    name: Name,
    state_dir: StateDir = None,
    wait: Wait = False,
    timeout: Timeout = 300.0,
    output: ListOpt = ListOutput.table,
) -> None:
    """Take a savepoint of the running job now (the job keeps running)."""
    _, store = _store(state_dir)
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

    _change(name, state_dir, change, "flinkjob/{name} savepoint requested",
            taken, "take a savepoint", wait, timeout, output)  # fmt: skip
    if wait and output == ListOutput.table:
        job = store.get(name)
        if job is not None:
            newest = max(job.status.savepoints, key=lambda s: s.time)
            console.print(f"  savepoint: {newest.path}")


def delete(
    name: Name,
    savepoint: Annotated[
        bool, typer.Option("--savepoint", help="stop with a final savepoint first")
    ] = False,
    state_dir: StateDir = None,
    wait: Wait = False,
    timeout: Timeout = 300.0,
) -> None:
    """Stop the job (optionally with a final savepoint) and forget it."""
    settings, store = _store(state_dir)
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
    store = SqliteStore(settings.controller_db)
    metrics = ControllerMetrics()
    port = settings.controller_port if metrics_port is None else metrics_port
    if port and not once:
        try:
            metrics.serve(port)
        except OSError as e:
            raise _error(f"cannot serve metrics on port {port}: {e.strerror}") from None
    with FlinkClient(flink) as client:
        runtime = FlinkRuntime(client, kafka, allowed_dirs(job_dir))
        ctl = Controller(store, runtime, metrics, lease_ttl=lease_ttl, interval=interval)
        if once:
            ctl.run_once()
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        logging.getLogger("eddyline.controller").info(
            "reconciling %s against Flink %s, Kafka %s (metrics on :%s)",
            settings.controller_db, flink, kafka, port or "-",
        )  # fmt: skip
        ctl.run(stop)
