"""What the controller observes of a Flink job: its state, checkpoints and failure as Flink's REST
API reports them, a savepoint trigger's progress, and the newest checkpoint a lost job left in its
folder. Flink's Java stack traces are cut here to the one line that says what went wrong.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from deploy.controller.model import JobObservation, TriggerObservation
from deploy.errors import FlinkNotFoundError, FlinkRefusedError
from deploy.flink.rest import FlinkClient


def job_observation(client: FlinkClient, job_id: str) -> JobObservation | None:
    """The job as Flink reports it; None when Flink does not know it."""
    detail = client.job_if_known(job_id)
    if detail is None:
        return None
    state = str(detail.get("state"))
    vertices = detail.get("vertices", [])
    root = root_cause(client.failure(job_id)) if state == "FAILED" else None
    return JobObservation(
        job_id=job_id,
        state=state,
        all_running=bool(vertices) and all(v.get("status") == "RUNNING" for v in vertices),
        start_time=int(detail.get("start-time") or 0) or None,
        parallelism=max((int(v.get("parallelism", 0)) for v in vertices), default=0) or None,
        root_exception=str(root) if root else None,
        **_checkpoints(client.checkpoints(job_id).get("latest") or {}),
    )


def _checkpoints(latest: dict[str, Any]) -> dict[str, Any]:
    """The JobObservation fields of Flink's latest checkpoints: the completed checkpoint and
    savepoint (path and time), and a checkpoint that failed after the completed one."""
    fields: dict[str, Any] = {}
    completed = latest.get("completed") or {}
    if completed.get("external_path"):
        fields["latest_checkpoint"] = str(completed["external_path"])
        fields["latest_checkpoint_time"] = int(completed.get("latest_ack_timestamp") or 0)
    failed = latest.get("failed") or {}
    if failed.get("id") is not None and int(failed["id"]) > int(completed.get("id") or -1):
        fields["checkpoint_failure_id"] = int(failed["id"])
        reason = str(failed.get("failure_message") or "no reason given")
        fields["checkpoint_failure"] = cause_line(reason)
    savepoint = latest.get("savepoint") or {}
    if savepoint.get("external_path"):
        fields["latest_savepoint"] = str(savepoint["external_path"])
        fields["latest_savepoint_time"] = int(savepoint.get("latest_ack_timestamp") or 0)
    return fields


def trigger_observation(client: FlinkClient, job_id: str, trigger_id: str) -> TriggerObservation:
    """Where a savepoint trigger is; UNKNOWN when Flink does not know it (a JobManager that
    restarted forgets its triggers)."""
    try:
        answer = client.savepoint_status(job_id, trigger_id)
    except (FlinkNotFoundError, FlinkRefusedError):
        # Flink answers an unknown trigger with 404, and some versions with 400: either way it
        # does not know it, and asking again cannot change that.
        return TriggerObservation("UNKNOWN")
    if answer.get("status", {}).get("id") != "COMPLETED":
        return TriggerObservation("IN_PROGRESS")
    operation = answer.get("operation") or {}
    if operation.get("location"):
        return TriggerObservation("COMPLETED", location=str(operation["location"]))
    cause = operation.get("failure-cause") or {}
    trace = str(cause.get("stack-trace") or cause.get("class") or "unknown failure")
    return TriggerObservation("FAILED", failure=cause_line(trace))


def retained_checkpoint(job_id: str, known: str | None) -> tuple[str, int] | None:
    """The newest complete checkpoint `job_id` left in its checkpoint folder, (path, epoch ms),
    found next to `known` (a checkpoint the controller saw, `file:…/<job id>/chk-N`).

    A job lost with its JobManager keeps completing checkpoints until the end, and Flink deletes
    each one the next subsumes: the last checkpoint the controller saw may be gone, and resuming
    from an older one would repeat output already committed. Only local (`file:`) folders can be
    looked at; elsewhere this is None and the last checkpoint seen is used."""
    if not known or not known.startswith("file:"):
        return None
    base = Path("/" + known.removeprefix("file:").lstrip("/")).parent.parent
    newest: tuple[str, int] | None = None
    for metadata in (base / job_id).glob("chk-*/_metadata"):
        try:
            info = metadata.stat()
        except OSError:
            continue  # deleted meanwhile
        written = int(info.st_mtime * 1000)
        if info.st_size > 0 and (newest is None or written > newest[1]):
            newest = (f"file:{metadata.parent}", written)
    return newest


_PYTHON_ERROR = re.compile(r"^\s*([A-Za-z_][\w.]*(Error|Exception)|Exception): .+")


def root_cause(trace: str) -> str | None:
    """The line of a Flink root exception that says what went wrong: for a PyFlink job, the
    Python exception at the end of the embedded traceback; else the deepest `Caused by:`."""
    lines = [line.strip() for line in trace.splitlines() if line.strip()]
    if not lines:
        return None
    python = [
        line for line in lines if _PYTHON_ERROR.match(line) and not line.startswith("Caused by")
    ]
    python = [line for line in python if not line.startswith(("java.", "org.apache"))]
    if python:
        return python[-1][:1000]
    return cause_line(trace)


# A storage location in a cause (s3://bucket/…, file:/…): such a cause says where, not only what.
_LOCATION = re.compile(r"\b(s3a?|gs|hdfs|abfss?|wasbs?|oss|file):/")


def cause_line(trace: str) -> str:
    """The deepest `Caused by:` — unless a shallower one names the storage location it failed
    on (S3's "bucket does not exist" says nothing of which bucket; its wrapper does)."""
    lines = [line.strip() for line in trace.strip().splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith("Caused by:")]
    located = [line for line in causes if _LOCATION.search(line)]
    return (located[-1] if located else causes[-1] if causes else lines[0] if lines else trace)[
        :1000
    ]
