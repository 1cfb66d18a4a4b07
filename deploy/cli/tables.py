"""What people see of FlinkJobs: the `list` table (and its `-o wide` columns) and the sections of
`describe`. Scripts read `-o json` instead; these may change to read better.

Text from outside (errors, events, entries) is escaped: rich would take a `[…]` in it for a
style and drop it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from deploy.cli.common import console, table
from deploy.flink.artifacts import human_size
from deploy.spec import FlinkJob, JobStatus, Lifecycle

NARROW_ERROR = 60  # characters of the error in the plain table; -o wide shows it whole
COLUMNS = ["name", "lifecycle", "parallelism", "job id", "flink", "savepoint", "age"]
WIDE_COLUMNS = ["entry", "wanted", "upgrade", "generation", "autoscaler", "checkpoint",
                "restarts", "last savepoint"]  # fmt: skip


def age(ms: int | None) -> str:
    if not ms:
        return "-"
    seconds = max(0, int(time.time() - ms / 1000))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def created(job: FlinkJob) -> int | None:
    ts = job.metadata.creation_timestamp
    if not ts:
        return None
    return int(datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() * 1000)


def lifecycle(value: Lifecycle) -> str:
    colour = {
        Lifecycle.STABLE: "green",
        Lifecycle.RUNNING: "green",
        Lifecycle.FAILED: "red",
        Lifecycle.SUSPENDED: "yellow",
    }.get(value, "cyan")
    return f"[{colour}]{value.value}[/{colour}]"


# -- list ----------------------------------------------------------------------------------------


def job_table(jobs: Iterable[FlinkJob], wide: bool) -> Table:
    """One row per job; `wide` adds what the spec asks for, the controller's progress on it and
    the whole error."""
    grid = table(*COLUMNS, *(WIDE_COLUMNS if wide else []), "error")
    for job in jobs:
        grid.add_row(*_row(job), *(_wide_row(job) if wide else []), _error(job.status, wide))
    return grid


def _row(job: FlinkJob) -> list[str]:
    st = job.status
    newest = max((s.time for s in st.savepoints), default=None)
    return [
        job.name,
        lifecycle(st.lifecycle),
        str(st.parallelism or job.spec.job.parallelism),
        st.job_id or "-",
        st.flink_state or "-",
        age(newest),
        age(created(job)),
    ]


def _wide_row(job: FlinkJob) -> list[str]:
    spec, st = job.spec.job, job.status
    newest = max(st.savepoints, key=lambda s: s.time, default=None)
    return [
        escape(spec.entry),
        spec.state.value,
        spec.upgrade_mode.value,
        f"{st.observed_generation}/{job.metadata.generation}",  # seen by the controller / wanted
        _autoscaler_target(job),
        age(st.last_checkpoint_time),
        str(st.restarts),
        newest.path if newest else "-",
    ]


def _autoscaler_target(job: FlinkJob) -> str:
    """The parallelism the autoscaler chose; `off` when the spec does not enable it."""
    if not job.spec.autoscaler.enabled:
        return "off"
    return str(job.status.autoscaler.get("parallelism") or "-")


def _error(st: JobStatus, wide: bool) -> str:
    error = st.error or ""
    return escape(error if wide else error[:NARROW_ERROR])


# -- describe ------------------------------------------------------------------------------------


def print_details(job: FlinkJob, flink: str) -> None:
    """`describe`: a summary, then the savepoints, conditions, autoscaler and recent events,
    their messages whole (as `kubectl describe` shows them)."""
    for key, value in _summary(job, flink):
        console.print(f"[bold]{key + ':':<19}[/bold] {value}", highlight=False, soft_wrap=True)
    st = job.status
    if st.savepoints:
        savepoints = table("savepoint", "trigger", "age", title="Savepoints", title_justify="left")
        for sp in sorted(st.savepoints, key=lambda s: s.time, reverse=True):
            savepoints.add_row(sp.path, sp.trigger, age(sp.time))
        console.print(savepoints)
    if st.conditions:
        conditions = table("condition", "status", "reason", "message", title="Conditions",
                           title_justify="left")  # fmt: skip
        for c in st.conditions:
            conditions.add_row(c.type, c.status, c.reason, escape(c.message))
        console.print(conditions)
    if job.spec.autoscaler.enabled or st.autoscaler.get("decisions"):
        _print_autoscaler(st.autoscaler)
    if st.events:
        events = table("age", "type", "reason", "message", title="Events", title_justify="left")
        for e in st.events[-12:]:
            style = "yellow" if e.type == "Warning" else ""
            events.add_row(age(e.time), e.type, e.reason, escape(e.message), style=style)
        console.print(events)


def _summary(job: FlinkJob, flink: str) -> list[tuple[str, str]]:
    st, spec = job.status, job.spec
    dashboard = f"{flink}/#/job/running/{st.job_id}/overview" if st.job_id and flink else "-"
    rows = [
        ("Name", job.name),
        ("Entry", escape(f"{spec.job.entry} {' '.join(spec.job.args)}".strip())),
        (
            "Desired",
            f"{spec.job.state.value}, parallelism {spec.job.parallelism}, "
            f"upgrade mode {spec.job.upgrade_mode.value}",
        ),
        ("Lifecycle", lifecycle(st.lifecycle)),
        ("Generation", f"{job.metadata.generation} (observed {st.observed_generation})"),
        ("Flink job", f"{st.job_id or '-'} ({st.flink_state or '-'})"),
        ("Dashboard", dashboard),
        ("Parallelism", str(st.parallelism or "-")),
        ("Restarts", f"{st.restarts} of {spec.restart_policy.max_retries}"),
        ("Last checkpoint", st.last_checkpoint_path or "-"),
        ("Upgrade savepoint", st.upgrade_savepoint_path or "-"),
    ]
    artifact = spec.job.artifact
    if artifact is not None:
        running = st.artifact_sha256
        note = "" if running in (None, artifact.sha256) else f", running sha256:{running[:12]}"
        rows.append(
            (
                "Artifact",
                escape(
                    f"{artifact.uri.rsplit('/', 1)[-1]} sha256:{artifact.sha256[:12]} "
                    f"{human_size(artifact.size)} ({artifact.store}{note})"
                ),
            )
        )
    if st.operation is not None:
        op = st.operation
        rows.append(("In progress", f"{op.kind} ({op.step}) since {age(op.started_at)} ago"))
    if st.error:
        rows.append(("Error", f"[red]{escape(st.error)}[/red]"))
    if job.metadata.deletion_timestamp:
        rows.append(("Deleting", f"since {job.metadata.deletion_timestamp}"))
    return rows


def _print_autoscaler(autoscaler: dict[str, Any]) -> None:
    last = autoscaler.get("last")
    if last:
        console.print(
            f"[bold]Autoscaler:[/bold] {escape(last['reason'])} ({age(last['time'])} ago; "
            + ", ".join(f"{k} {v}" for k, v in last.get("inputs", {}).items())
            + ")",
            highlight=False,
        )
    decisions = table("age", "from", "to", "reason", "applied", title="Autoscaler decisions",
                      title_justify="left")  # fmt: skip
    for d in autoscaler.get("decisions", [])[-10:]:
        decisions.add_row(age(d["time"]), str(d["current"]), str(d["parallelism"]),
                          escape(d["reason"]), d.get("applied", ""))  # fmt: skip
    if decisions.rows:
        console.print(decisions)
