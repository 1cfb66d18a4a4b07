"""`eddyline diff SPEC`: what the controller would do with a spec, and whether the running job's
state would survive it — before anything changes.

Three parts: the spec's changes (the fields a running job is built from, deployment(), as it runs
now against as it would), the controller's action (deploy/controller/decide/preview.py, on the
controller's own rules), and, when the action starts a job graph from the running job's state, a
state check: Flink plans the new graph without running it (deploy/flink/plans.py) and each
stateful vertex of the running job must find its home there (deploy/flink/graphs.py).

Exit codes, for scripts and CI: 0 the change is safe (or there is nothing to compare), 1 the
check could not be made (Flink unreachable, the job's main failed), 2 the spec is invalid,
3 state would be dropped or could not be restored (see `spec.job.allowNonRestoredState`).

`refuse_dropped_state` is the same check for `eddyline submit`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from deploy.cli import shipping
from deploy.cli.common import (
    EXIT_FAILED,
    EXIT_INVALID,
    Output,
    OutputOpt,
    console,
    err,
    fail,
    table,
)
from deploy.cli.options import JobTarget, allowed_dirs, command
from deploy.controller.decide.preview import Action, Preview, changes, preview
from deploy.errors import (
    EddylineError,
    FlinkError,
    KubeError,
    MissingToolError,
    SpecError,
)
from deploy.flink import entries, plans
from deploy.flink.entries import Entry
from deploy.flink.graphs import Graph, StateCheck, Verdict, Vertex, compare
from deploy.flink.rest import FlinkClient
from deploy.flink.submission import job_configuration
from deploy.local.stack import state
from deploy.spec import FlinkJob, load_yaml

EXIT_SAFE = 0
EXIT_STATE = 3  # state would be dropped, or could not be restored

JSON_VERSION = 1  # of the -o json document; a field is only ever added

SpecFile = Annotated[Path, typer.Argument(help="a FlinkJob YAML file, or - for stdin")]
FlinkUrl = Annotated[
    str | None,
    typer.Option(
        help="Flink REST endpoint \\[the local stack's; with --kube a port-forward to the "
        "chart's JobManager]",
        show_default=False,
    ),
]
BootstrapServers = Annotated[
    str | None,
    typer.Option(
        help="Kafka for specs that name none, passed to the job as a submission would "
        "\\[the local stack's]",
        show_default=False,
    ),
]

# Planning does not connect to Kafka; a job parses the flag only. On Kubernetes the controller's
# default broker is not known here.
KUBE_PLACEHOLDER_BOOTSTRAP = "kafka:9092"


class StateDropError(SpecError):
    """The change would leave running state without a home (or unrestorable), and the spec does
    not say to drop it. A SpecError: the spec must change (or say to drop the state)."""

    def __init__(self, problems: list[str]) -> None:
        self.source = "spec"
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super(SpecError, self).__init__(
            f"the change would lose the running job's state ({len(problems)} operators):\n{listed}"
        )


@dataclass(frozen=True)
class Diff:
    name: str
    preview: Preview
    changes: list[tuple[str, Any, Any]]
    job_id: str | None  # the running job's, when one runs
    check: StateCheck | None  # None: no state check was needed (see note)
    checkpoint_id: int | None = None
    note: str = ""

    @property
    def refused(self) -> bool:
        return self.check is not None and self.check.refused

    @property
    def exit_code(self) -> int:
        return EXIT_STATE if self.refused else EXIT_SAFE


# -- building a diff (I/O at the edges) ---------------------------------------------------------


def build(
    client: FlinkClient,
    stored: FlinkJob | None,
    new: FlinkJob,
    entry: Entry,
    bootstrap_servers: str,
) -> Diff:
    """The diff of `new` against `stored` (None: not created yet) on the cluster `client` talks
    to. FlinkError when Flink cannot answer; ProgramError when the job cannot be planned."""
    job_id = stored.status.job_id if stored is not None else None
    seen = client.job_if_known(job_id) if job_id else None
    live = seen is not None and str(seen.get("state")) not in _ENDED
    adaptive = client.cluster_config().get("jobmanager.scheduler", "").lower() == "adaptive"
    chosen = preview(stored, new.spec, live=live, adaptive=adaptive)
    old_spec = stored.status.last_reconciled_spec if stored is not None else None
    diff = Diff(new.name, chosen, changes(old_spec, chosen.spec), job_id if live else None, None)
    if not live or job_id is None:
        return _note(diff, "no running job: nothing to compare its state with")
    if not chosen.restores_running_state:
        return _note(diff, _why_no_check(chosen.action))
    running = plans.running_graph(client, job_id)
    if chosen.action == Action.rescale:
        # In place the job graph stays the running one; only its parallelism changes.
        planned = _rescaled(running, chosen.spec.job.parallelism)
    else:
        planned = plans.planned_graph(client, chosen.spec, new.name, bootstrap_servers, entry)
    configured = job_configuration(chosen.spec, new.name).get("pipeline.max-parallelism")
    check = compare(
        running,
        planned,
        allow_non_restored_state=chosen.spec.job.allow_non_restored_state,
        configured_max_parallelism=int(configured) if configured else None,
    )
    note = "" if running.checkpoint_id is not None else "no completed checkpoint yet"
    return Diff(diff.name, chosen, diff.changes, job_id, check, running.checkpoint_id, note)


_ENDED = frozenset({"FAILED", "CANCELED", "FINISHED", "SUSPENDED"})


def _note(diff: Diff, note: str) -> Diff:
    return Diff(diff.name, diff.preview, diff.changes, diff.job_id, None, None, note)


def _why_no_check(action: Action) -> str:
    if action == Action.stateless_restart:
        return "stateless upgrade: the new job starts without the running job's state"
    if action == Action.suspend:
        return (
            "suspend: the state is kept in a savepoint and the job graph stays as it is; "
            "a later change is checked against the resumed job"
        )
    return "the running job stays as it is"


def _rescaled(graph: Graph, parallelism: int) -> Graph:
    """The running graph at `parallelism`, as the adaptive scheduler runs it (capped at each
    vertex's max parallelism, which the check reports)."""
    vertices = tuple(
        Vertex(v.id, v.name, parallelism, v.max_parallelism, v.state_size) for v in graph.vertices
    )
    return Graph(vertices, graph.checkpoint_id)


# -- the document for scripts -------------------------------------------------------------------


def document(diff: Diff) -> dict[str, Any]:
    """The `-o json` document: stable keys, camelCase like the FlinkJob's."""
    p = diff.preview
    check: dict[str, Any] | None = None
    if diff.check is not None:
        check = {
            "checkpointId": diff.checkpoint_id,
            "allowNonRestoredState": diff.check.allow_non_restored_state,
            "refused": diff.check.refused,
            "operators": [
                {
                    "id": o.id,
                    "name": o.name,
                    "verdict": o.verdict.value,
                    "stateSize": o.state_size,
                    "parallelism": o.parallelism,
                    "newParallelism": o.new_parallelism,
                    "maxParallelism": o.max_parallelism,
                    "reason": o.reason,
                }
                for o in diff.check.operators
            ],
            "dropped": [o.id for o in diff.check.dropped],
            "unrestorable": [o.id for o in diff.check.unrestorable],
        }
    return {
        "version": JSON_VERSION,
        "name": diff.name,
        "action": p.action.value,
        "reason": p.reason,
        "busy": p.busy,
        "restoreFrom": p.restore_from,
        "jobId": diff.job_id,
        "changes": [{"path": path, "old": old, "new": new} for path, old, new in diff.changes],
        "stateCheck": check,
        "note": diff.note,
        "safe": diff.exit_code == EXIT_SAFE,
        "exitCode": diff.exit_code,
    }


# -- the command ---------------------------------------------------------------------------------


@command
def diff(
    spec_file: SpecFile,
    target: JobTarget,
    flink_url: FlinkUrl = None,
    bootstrap_servers: BootstrapServers = None,
    output: OutputOpt = Output.table,
) -> None:
    """What `eddyline submit SPEC` would make the controller do (nothing, an in-place rescale,
    a savepoint, last-state or stateless upgrade, a start, suspend or resume), and whether the
    running job's state fits the new job graph: Flink plans it without running it, and every
    operator whose state would be dropped or could not be restored is listed. Exit 0 when safe,
    3 when state would be dropped, 2 for an invalid spec, 1 when the check cannot be made."""
    new, source = _load(spec_file)
    if new.spec.job.code is None:
        _entry(new, target)  # refused before any cluster is asked
    stored = target.store.get(new.name)
    # Own code is packed and stored as `submit` would (content-addressed: submitting the same
    # spec afterwards stores nothing new), so that Flink plans the code that would run.
    new = shipping.shipped(new, spec_file, source, target, stored, quiet=output == Output.json)
    entry = _entry(new, target)
    try:
        with flink_for(target, flink_url) as client:
            result = build(client, stored, new, entry, _bootstrap(target, bootstrap_servers))
    except SpecError as e:
        raise fail(e, EXIT_INVALID) from None
    except EddylineError as e:
        raise fail(e, EXIT_FAILED) from None
    if output == Output.json:
        typer.echo(json.dumps(document(result), indent=2))
    else:
        render(result)
    raise typer.Exit(result.exit_code)


def _load(spec_file: Path) -> tuple[FlinkJob, str]:
    source = "stdin" if str(spec_file) == "-" else str(spec_file)
    try:
        text = typer.get_text_stream("stdin").read() if source == "stdin" else spec_file.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise fail(f"cannot read {source}: {e}", EXIT_INVALID) from None
    try:
        return load_yaml(text, source), source
    except SpecError as e:
        raise fail(e, EXIT_INVALID) from None


def _entry(job: FlinkJob, target: JobTarget) -> Entry:
    """How the driver starts the entry, checked as a submission checks it; exit 2 if refused."""
    try:
        entry = _entry_or_none(job, target)
    except SpecError as e:
        raise fail(e, EXIT_INVALID) from None
    if entry is None:
        raise fail(
            SpecError(
                "spec",
                [
                    f"spec.job.entry: {job.spec.job.entry!r}: `diff --kube` plans module "
                    "entries only (and shipped code): a .py path in the image is the "
                    "controller's to resolve"
                ],
            ),
            EXIT_INVALID,
        )
    return entry


def _bootstrap(target: JobTarget, given: str | None) -> str:
    if given:
        return given
    if target.cluster is not None:
        return KUBE_PLACEHOLDER_BOOTSTRAP
    current = state.load(target.settings.state_dir)
    return current.bootstrap_servers if current else target.settings.bootstrap_servers


@contextmanager
def flink_for(target: JobTarget, flink_url: str | None = None) -> Iterator[FlinkClient]:
    """A client of the target's Flink: `flink_url`, else the local stack's, else (--kube) the
    chart's JobManager through the Kubernetes API server's service proxy, as `submit` uploads."""
    if flink_url or target.cluster is None:
        url = flink_url or target.flink_url() or target.settings.flink_url
        with FlinkClient(url) as client:
            yield client
        return
    service = os.environ.get(shipping.JOBMANAGER_SERVICE_ENV, shipping.DEFAULT_JOBMANAGER_SERVICE)
    with shipping.jobmanager_client(target.cluster, service) as client:
        yield client


# -- for people ------------------------------------------------------------------------------------


_VERDICT_STYLE = {
    Verdict.kept: "green",
    Verdict.dropped: "red",
    Verdict.unrestorable: "red",
    Verdict.stateless: "dim",
    Verdict.new: "cyan",
}


def render(diff: Diff) -> None:
    p = diff.preview
    if diff.changes:
        grid = table("field", "running", "new", title=f"flinkjob/{diff.name}: spec changes")
        for path, old, new in diff.changes:
            grid.add_row(escape(path), escape(_show(old)), escape(_show(new)))
        console.print(grid)
    else:
        console.print(f"flinkjob/{diff.name}: no change to what the job is built from")
    console.print(f"action: [bold]{p.action.value}[/bold] ({escape(p.reason)})", highlight=False)
    if p.busy:
        console.print(f"  after the operation in flight: {escape(p.busy)}", highlight=False)
    if p.restore_from and p.action in (Action.start, Action.resume):
        console.print(f"  from {escape(p.restore_from)}", highlight=False)
    if diff.check is None:
        console.print(f"state check: {escape(diff.note)}", highlight=False)
        return
    _render_check(diff, diff.check)


def _render_check(diff: Diff, check: StateCheck) -> None:
    where = f"checkpoint {diff.checkpoint_id}" if diff.checkpoint_id is not None else diff.note
    grid = table(
        "operator",
        "id",
        "state",
        "parallelism",
        "max",
        "verdict",
        title=f"state check: job {diff.job_id} ({where}) → the new job graph",
    )
    for o in check.operators:
        style = _VERDICT_STYLE[o.verdict]
        verdict = f"[{style}]{o.verdict.value}[/{style}]"
        if o.reason:
            verdict += f": {escape(o.reason)}"
        grid.add_row(
            escape(o.name),
            o.id,
            _size(o.state_size, o.verdict),
            f"{o.parallelism or '-'} → {o.new_parallelism or '-'}",
            str(o.max_parallelism or "-"),
            verdict,
        )
    console.print(grid)
    if check.unrestorable:
        console.print("[red]Flink cannot restore this state[/red]: change the parallelism back.")
    if check.dropped and not check.allow_non_restored_state:
        console.print(
            f"[red]state would be dropped[/red] ({len(check.dropped)} operators): Flink refuses "
            "the restore; set spec.job.allowNonRestoredState: true to drop it on purpose."
        )
    elif check.dropped:
        console.print(
            "[yellow]state would be dropped[/yellow]: allowed by spec.job.allowNonRestoredState."
        )
    elif not check.unrestorable:
        console.print("[green]every operator's state has its home in the new job graph[/green]")


def _show(value: Any) -> str:
    return "-" if value is None else json.dumps(value) if not isinstance(value, str) else value


def _size(size: int | None, verdict: Verdict) -> str:
    if verdict == Verdict.new:
        return "-"
    return "unknown" if size is None else f"{size:,} B"


# -- for `eddyline submit` ------------------------------------------------------------------------


def refuse_dropped_state(
    target: JobTarget,
    job: FlinkJob,
    *,
    flink_url: str | None = None,
    bootstrap_servers: str | None = None,
) -> None:
    """StateDropError (a SpecError: exit 2 in `submit`) when applying `job` would make the
    controller start a job graph in which running state has no home or cannot be restored,
    unless spec.job.allowNonRestoredState allows the drop; every such operator is listed.

    A check that cannot be made does not block: Flink or the cluster out of reach, or the job's
    main failing while planned, is a warning on stderr. Blocking would make a Flink outage stop
    every spec change (a fix included); the loss it would have caught is still refused by Flink
    at restore time, and the controller's FAILED status names the operator."""
    stored = target.store.get(job.name)
    if stored is None or stored.status.job_id is None:
        return  # nothing runs: no state to lose
    entry = _entry_or_none(job, target)
    if entry is None:
        err.print(
            "[yellow]warning:[/yellow] no state check: a .py entry is planned by the controller "
            "on Kubernetes",
            highlight=False,
        )
        return
    try:
        with flink_for(target, flink_url) as client:
            result = build(client, stored, job, entry, _bootstrap(target, bootstrap_servers))
    except (FlinkError, KubeError, MissingToolError) as e:
        err.print(
            f"[yellow]warning:[/yellow] the state check could not be made: {escape(str(e))}",
            highlight=False,
            soft_wrap=True,
        )
        return
    if result.refused and result.check is not None:
        raise StateDropError(refusal_problems(result.check))


def _entry_or_none(job: FlinkJob, target: JobTarget) -> Entry | None:
    """The entry as a submission starts it; None on Kubernetes for a .py entry (its path is
    the controller's to resolve); SpecError when not allowed here."""
    if target.cluster is None or job.spec.job.code is not None:
        return entries.for_job(job.spec.job, allowed_dirs())
    return None if job.spec.job.entry.endswith(".py") else Entry("-pym", job.spec.job.entry)


def refusal_problems(check: StateCheck) -> list[str]:
    """One line per operator whose state would be lost, naming the way to accept it."""
    lines = [
        f"operator {o.name!r} ({o.id}): its state cannot be restored: {o.reason}"
        for o in check.unrestorable
    ]
    if not check.allow_non_restored_state:
        lines += [
            f"operator {o.name!r} ({o.id}, {_size(o.state_size, o.verdict)}) would lose its "
            f"state: {o.reason}; set spec.job.allowNonRestoredState: true to drop it"
            for o in check.dropped
        ]
    return lines
