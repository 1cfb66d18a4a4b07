"""Savepoints the job keeps running through: manual (a new savepointTriggerNonce) and periodic
ones, their retention, and where a restarted job resumes from."""

from __future__ import annotations

from deploy.controller.decide.decision import Decision, Plan, new_id
from deploy.controller.model import Dispose, JobObservation, TriggerSavepoint
from deploy.spec import JobStatus, Operation, SavepointInfo, milliseconds

SAVEPOINT_TIMEOUT_MS = 10 * 60_000


def latest_state(status: JobStatus) -> str | None:
    """Where a restarted job resumes: the newer of the last checkpoint and the last savepoint."""
    best: tuple[int, str] | None = None
    if status.savepoints:
        sp = max(status.savepoints, key=lambda s: s.time)
        best = (sp.time, sp.path)
    cp_time = status.last_checkpoint_time
    if status.last_checkpoint_path and cp_time is not None and (best is None or cp_time > best[0]):
        best = (cp_time, status.last_checkpoint_path)
    if best is None and status.upgrade_savepoint_path:
        return status.upgrade_savepoint_path
    return best[1] if best else None


def savepoint(d: Decision, job: JobObservation, trigger: str) -> Plan:
    trigger_id = new_id(d.job.name, d.now, f"{trigger}-savepoint")
    d.st.operation = Operation(
        kind="savepoint",
        step="savepointing",
        started_at=d.now,
        job_id=job.job_id,
        trigger_id=trigger_id,
        trigger=trigger,
    )
    d.st.last_savepoint_attempt_at = d.now
    d.actions.append(TriggerSavepoint(job.job_id, trigger_id))
    return d.plan()


def continue_savepoint(d: Decision, op: Operation) -> Plan:
    st, trig, job = d.st, d.obs.trigger, d.obs.job
    if trig is not None and trig.state == "COMPLETED" and trig.location:
        d.record_savepoint(trig.location, op.trigger or "manual")
        st.operation = None
        st.failures = 0
        d.note("SavepointTaken", f"{op.trigger}: {trig.location}")
    elif trig is not None and trig.state == "FAILED":
        st.operation = None
        d.note("SavepointFailed", f"{op.trigger}: {trig.failure}", warning=True)
    elif job is None or job.terminal:
        st.operation = None  # the job is gone; what to do about that is the next decision
    elif d.now - op.started_at > SAVEPOINT_TIMEOUT_MS:
        st.operation = None
        d.note("SavepointTimeout", f"{op.trigger}: did not finish in time", warning=True)
    elif (trig is None or trig.state == "UNKNOWN") and not d.waiting():
        assert op.job_id
        assert op.trigger_id
        d.actions.append(TriggerSavepoint(op.job_id, op.trigger_id))
    return d.plan()


def periodic_due(d: Decision, job: JobObservation) -> bool:
    interval = d.spec.savepoints.interval
    if interval is None or not job.all_running:
        return False
    last = max(
        [s.time for s in d.st.savepoints]
        + [d.st.job_started_at or 0, d.st.last_savepoint_attempt_at or 0]
    )
    return d.now - last >= milliseconds(interval)


def retention(d: Decision) -> None:
    """Dispose of savepoints beyond maxCount or older than maxAge — never the newest one,
    nor the one the running job was started from."""
    policy = d.spec.savepoints
    ordered = sorted(d.st.savepoints, key=lambda s: s.time)
    if not ordered:
        return
    keep = {ordered[-1].path, d.st.upgrade_savepoint_path}
    max_age = milliseconds(policy.max_age) if policy.max_age else None
    excess = len(ordered) - policy.max_count
    drop: list[SavepointInfo] = []
    for sp in ordered:
        if sp.path in keep:
            continue
        if excess > 0 or (max_age is not None and d.now - sp.time > max_age):
            drop.append(sp)
            excess -= 1
    for sp in drop:
        d.st.savepoints.remove(sp)
        d.actions.append(Dispose(sp.path))
        d.note("SavepointDisposed", sp.path)
