"""Upgrades and suspends: the running job stops (with a savepoint, or cancelled for last-state
and stateless upgrades), and only once it has ended does the new one start from its state — so
the old and the new job never run side by side. A suspend stops the same way and starts nothing.
"""

from __future__ import annotations

from deploy.controller.decide.backoff import backoff_ms
from deploy.controller.decide.decision import Decision, Plan
from deploy.controller.decide.recovery import awaiting_recovery
from deploy.controller.decide.savepoints import SAVEPOINT_TIMEOUT_MS, latest_state
from deploy.controller.model import (
    Cancel,
    JobObservation,
    StopWithSavepoint,
    TriggerObservation,
)
from deploy.spec import Lifecycle, Operation, UpgradeMode


def upgrade(d: Decision, job: JobObservation, why: str) -> Plan:
    mode = d.spec.job.upgrade_mode
    d.st.lifecycle = Lifecycle.UPGRADING
    d.note("Upgrading", f"{why}: {mode.value} upgrade of job {job.job_id}")
    if mode == UpgradeMode.savepoint:
        d.stop_with_savepoint("upgrade", job.job_id)
        return d.plan()
    d.st.operation = Operation(
        kind="upgrade",
        step="cancelling",
        started_at=d.now,
        job_id=job.job_id,
        upgrade_mode=mode,
    )
    d.actions.append(Cancel(job.job_id))
    return d.plan()


def continue_cancel(d: Decision, op: Operation) -> Plan:
    """A last-state or stateless upgrade: cancel until the job is over, then submit."""
    job = d.obs.job
    if job is None and awaiting_recovery(d):
        return d.plan()  # not cancelled yet, only unknown: starting another would run two
    if job is not None and job.alive:
        if not d.waiting():
            d.actions.append(Cancel(job.job_id))
        return d.plan()
    restore = None
    if op.upgrade_mode == UpgradeMode.last_state:
        restore = (job.latest_checkpoint if job else None) or latest_state(d.st)
    d.submit(op.kind, restore)
    return d.plan()


def continue_stop(d: Decision, op: Operation) -> Plan:  # noqa: PLR0911 - one per outcome
    """A stop-with-savepoint in flight: the savepoint is where the job resumes (or stays
    suspended); without it, the newest state there is."""
    trig, job = d.obs.trigger, d.obs.job
    if op.savepoint_path and (trig is None or trig.state != "COMPLETED"):
        # Seen completed before, and the answer is gone since (a restarted JobManager).
        trig = TriggerObservation("COMPLETED", location=op.savepoint_path)
    if trig is not None and trig.state == "COMPLETED" and trig.location:
        if job is not None and job.alive:
            # The savepoint is done but the job is still winding down: note where it is and
            # wait, so the old and the new job never run side by side.
            op.savepoint_path = trig.location
            d.st.operation = op
            return d.plan()
        return _stopped(d, op, trig.location)
    if trig is not None and trig.state == "FAILED":
        return _savepoint_failed(d, op, trig)
    if job is not None and job.alive:
        return _still_stopping(d, op, trig)
    if (
        job is not None
        and job.latest_savepoint
        and (job.latest_savepoint_time or 0) >= op.started_at
    ):
        return _stopped(d, op, job.latest_savepoint)  # stopped, but the trigger's answer was lost
    if job is None and awaiting_recovery(d):
        return d.plan()  # unknown, not stopped: a recovered old job beside a new one
    # The job ended without our savepoint (failed meanwhile): its last checkpoint is the
    # newest consistent state there is.
    location = latest_state(d.st)
    d.note(
        "SavepointMissing",
        f"job ended before its savepoint; resuming from {location or 'nothing (fresh)'}",
        warning=True,
    )
    return _stopped(d, op, location)


def _savepoint_failed(d: Decision, op: Operation, trig: TriggerObservation) -> Plan:
    """The job runs on; the upgrade starts over (a new trigger) after a growing backoff."""
    st, job = d.st, d.obs.job
    st.operation = None
    st.failures += 1
    st.next_retry_at = d.now + backoff_ms(
        d.spec.restart_policy.backoff,
        d.spec.restart_policy.max_backoff,
        st.failures - 1,
    )
    st.error = f"{op.kind}: the savepoint failed: {trig.failure}"
    st.lifecycle = Lifecycle.RUNNING if job is not None and job.alive else st.lifecycle
    d.note("SavepointFailed", st.error, warning=True)
    return d.plan()


def _still_stopping(d: Decision, op: Operation, trig: TriggerObservation | None) -> Plan:
    st = d.st
    if d.now - op.started_at > SAVEPOINT_TIMEOUT_MS:
        st.operation = None
        st.error = f"{op.kind}: the savepoint did not finish in time"
        d.note("SavepointTimeout", st.error, warning=True)
    elif (trig is None or trig.state == "UNKNOWN") and not d.waiting():
        # Never sent, or Flink forgot it (a restarted JobManager): the same request again.
        assert op.job_id
        assert op.trigger_id
        d.actions.append(StopWithSavepoint(op.job_id, op.trigger_id))
    return d.plan()


def _stopped(d: Decision, op: Operation, location: str | None) -> Plan:
    """The job is over and `location` is its state: stay suspended, or start the new job."""
    st = d.st
    if location is not None and location != latest_state(st):
        d.record_savepoint(location, op.trigger or op.kind)
    if op.kind == "suspend":
        st.operation = None
        st.upgrade_savepoint_path = location
        st.job_id = None
        st.flink_state = "FINISHED"
        st.lifecycle = Lifecycle.SUSPENDED
        d.reconciled()
        d.note("Suspended", f"savepoint {location}")
        return d.plan()
    # upgrade (or restart request): the savepoint path is now in the status; then resubmit.
    st.upgrade_savepoint_path = location
    d.submit(op.kind, location)
    return d.plan()
