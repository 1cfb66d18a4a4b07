"""Reading job graphs from Flink's REST API: the graph a spec would submit (planned by Flink
without running it) and the running job's (with the state each vertex holds). The comparison
itself is pure, in deploy/flink/graphs.py.

Planning uses `POST /jars/<jar>/plan` with exactly what a submission sends (the Python driver,
the entry, `submission.job_args` and `job_configuration`): Flink runs the job's Python main in
plan mode, captures the graph at `execute()` and answers with its vertices — the ids the same
submission would give them, which is what state is matched by.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from deploy import paths
from deploy.errors import FlinkError, FlinkUnreachableError, MissingToolError, ProgramError
from deploy.flink import entries, pyjobs
from deploy.flink.graphs import Graph, Vertex
from deploy.flink.rest import FlinkClient
from deploy.flink.states import PYTHON_DRIVER
from deploy.flink.submission import job_args, program_configuration
from deploy.spec import FlinkJobSpec


def planned_graph(
    client: FlinkClient,
    spec: FlinkJobSpec,
    name: str | None,
    bootstrap_servers: str,
    entry: entries.Entry,
) -> Graph:
    """The job graph submitting `spec` would start; `entry`: its entry as the driver starts it
    (entries.resolve). ProgramError with the job's own error when its main fails."""
    jar_id = client.ensure_jar(_python_jar())
    try:
        answer = client.plan_jar(
            jar_id,
            PYTHON_DRIVER,
            [entry.flag, entry.target, *job_args(spec, bootstrap_servers)],
            parallelism=spec.job.parallelism,
            configuration=program_configuration(spec, name),
        )
    except FlinkUnreachableError:
        raise
    except FlinkError as e:
        # Flink says only that the program failed; the job's Python error is in the log.
        cause = _logged_failure(client)
        if cause is None:
            raise
        raise ProgramError(
            f"{entry.target} failed while being planned: {cause}", status=e.status
        ) from e
    return graph_from_plan(answer)


def _python_jar() -> Path:
    try:
        return paths.flink_python_jar()
    except FileNotFoundError as e:
        raise MissingToolError(f"{e}: reinstall apache-flink (`make setup`)") from None


def _logged_failure(client: FlinkClient) -> str | None:
    try:
        return pyjobs.python_failure(client.jobmanager_log())
    except FlinkError:
        return None


def graph_from_plan(answer: dict[str, Any]) -> Graph:
    """A Graph from a `/jars/<jar>/plan` (or `/jobs/<id>/plan`) answer."""
    nodes = (answer.get("plan") or {}).get("nodes") or []
    return Graph(
        tuple(
            Vertex(
                id=str(n["id"]),
                name=_plan_name(str(n.get("description") or n.get("operator") or "")),
                parallelism=int(n.get("parallelism") or 1),
            )
            for n in nodes
        )
    )


def running_graph(client: FlinkClient, job_id: str) -> Graph:
    """The job's vertices, each with the state it held in the latest completed checkpoint
    (state_size None for every vertex when there is none yet: unknown, not empty)."""
    return graph_from_job(client.job(job_id), *_latest_checkpoint(client, job_id))


def graph_from_job(
    job: dict[str, Any], checkpoint_id: int | None, tasks: dict[str, Any] | None
) -> Graph:
    """A Graph from `/jobs/<id>` and the per-vertex `tasks` of a checkpoint's details."""
    sizes = {vid: int(t.get("state_size") or 0) for vid, t in (tasks or {}).items()}
    vertices = tuple(
        Vertex(
            id=str(v["id"]),
            name=str(v.get("name") or ""),
            parallelism=int(v.get("parallelism") or 1),
            max_parallelism=_int(v.get("maxParallelism")),
            state_size=sizes.get(str(v["id"]), 0) if tasks is not None else None,
        )
        for v in job.get("vertices") or []
    )
    return Graph(vertices, checkpoint_id)


def _latest_checkpoint(
    client: FlinkClient, job_id: str
) -> tuple[int | None, dict[str, Any] | None]:
    completed = ((client.checkpoints(job_id).get("latest") or {}).get("completed")) or {}
    if completed.get("id") is None:
        return None, None
    checkpoint_id = int(completed["id"])
    details = client.checkpoint_details(job_id, checkpoint_id)
    return checkpoint_id, dict(details.get("tasks") or {})


def _plan_name(description: str) -> str:
    """The first line of a plan node's description (HTML, lines split by <br/>)."""
    first = description.split("<br/>", 1)[0]
    return html.unescape(first).strip()


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
