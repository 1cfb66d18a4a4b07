"""A job that is over, or that Flink no longer knows: wait for Flink's own recovery (with
JobManager HA), restart it after a backoff from its newest state, or give up as FAILED."""

from __future__ import annotations

from deploy.controller.decide.backoff import backoff_ms
from deploy.controller.decide.decision import Decision, Plan
from deploy.controller.decide.savepoints import latest_state
from deploy.controller.model import JobObservation
from deploy.spec import Lifecycle, UpgradeMode

# With JobManager HA, how long a job the JobManager no longer knows may take to come back (the
# new leader's election, then the job's recovery from the HA store) before it counts as lost and
# the controller starts it again itself. Flink's own lease is ~15 s; recovery loads the job graph
# and its checkpoint from the state bucket.
HA_RECOVERY_MS = 180_000


def awaiting_recovery(d: Decision) -> bool:
    """With JobManager HA, the job Flink does not know right now may be coming back under
    its id: wait (up to HA_RECOVERY_MS) before anything that would start, forget or replace
    it — a second copy, or a deleted FlinkJob whose job Flink then recovers."""
    return d.obs.high_availability and d.st.job_id is not None and recovering(d)


def recovering(d: Decision) -> bool:
    """Flink (with HA) no longer knows the job: a new JobManager is taking over and will
    recover it under the same id. Starting it again meanwhile would run it twice, so wait,
    up to HA_RECOVERY_MS."""
    st = d.st
    if st.missing_since is None:
        st.missing_since = d.now
        st.flink_state = None
        d.note(
            "AwaitingRecovery",
            f"job {st.job_id} is unknown to the JobManager; with high availability Flink "
            f"recovers it under the same id (waiting up to {HA_RECOVERY_MS // 1000} s)",
        )
        return True
    return d.now - st.missing_since < HA_RECOVERY_MS


def ended(d: Decision, job: JobObservation | None) -> Plan:
    """The job the controller runs is over, or Flink no longer knows it."""
    st = d.st
    if job is None and awaiting_recovery(d):
        st.lifecycle = Lifecycle.DEPLOYING  # not RUNNING/STABLE while Flink has no such job
        return d.plan()
    if job is None and st.missing_since is not None:
        return failed(
            d,
            f"job {st.job_id} is gone from Flink and was not recovered by its high "
            f"availability within {HA_RECOVERY_MS // 1000} s",
        )
    if job is None:
        return failed(d, f"job {st.job_id} is gone from Flink (JobManager restarted?)")
    if job.state == "FAILED":
        return failed(d, job.root_exception or "the job failed")
    st.lifecycle = Lifecycle.FAILED
    st.error = f"job {job.job_id} ended {job.state} outside the controller"
    d.note("EndedOutside", st.error + "; change restartNonce to start it again", True)
    return d.plan()


def failed(d: Decision, cause: str) -> Plan:
    """Restart after a backoff that doubles with each restart; FAILED after maxRetries."""
    st, policy = d.st, d.spec.restart_policy
    first_line = cause.strip().splitlines()[0][:1000] if cause.strip() else cause
    if st.restarts >= policy.max_retries:
        st.lifecycle = Lifecycle.FAILED
        st.error = f"failed after {st.restarts} restarts: {first_line}"
        st.next_retry_at = None
        d.note("Failed", st.error, warning=True)
        return d.plan()
    if st.next_retry_at is None:
        delay = backoff_ms(policy.backoff, policy.max_backoff, st.restarts)
        st.next_retry_at = d.now + delay
        st.error = (
            f"job failed: {first_line}; restarting in {delay / 1000:.0f} s "
            f"(restart {st.restarts + 1} of {policy.max_retries})"
        )
        d.note("JobFailed", st.error, warning=True)
        return d.plan()
    if d.now < st.next_retry_at:
        return d.plan()
    st.restarts += 1
    st.next_retry_at = None
    restore = None if d.spec.job.upgrade_mode == UpgradeMode.stateless else latest_state(st)
    d.submit("restart", restore)
    return d.plan()
