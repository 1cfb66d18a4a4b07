"""What an observation says about the job, written into its status before any rule acts on it:
whether Flink answers, the job's state, checkpoints and parallelism, and its lifecycle
(DEPLOYING → RUNNING → STABLE)."""

from __future__ import annotations

from deploy.controller.decide.backoff import retry_later
from deploy.controller.decide.conditions import set_condition
from deploy.controller.decide.decision import Decision
from deploy.controller.model import JobObservation
from deploy.spec import Lifecycle

STABLE_AFTER_MS = 30_000  # RUNNING this long without a restart → STABLE


def flink_unreachable(d: Decision, error: str) -> None:
    set_condition(d.st, d.now, "FlinkReachable", False, "Unreachable", error)
    retry_later(d, f"Flink unreachable: {error}")


def observe(d: Decision) -> None:
    """Flink answered: end an outage, then take in the job and its newest checkpoint."""
    st, obs = d.st, d.obs
    set_condition(st, d.now, "FlinkReachable", True, "Answering", "")
    if st.outages and not obs.kafka_error:
        st.outages = 0
        st.outage_retry_at = None
        st.error = None
        d.note("Recovered", "Flink and Kafka answer again")
    observe_job(d, obs.job)
    retained = obs.retained_checkpoint
    if retained is not None and retained[1] > (st.last_checkpoint_time or 0):
        st.last_checkpoint_path, st.last_checkpoint_time = retained


def observe_job(d: Decision, job: JobObservation | None) -> None:
    st = d.st
    if job is None:
        return
    if st.missing_since is not None and job.job_id == st.job_id:
        st.missing_since = None
        d.note("Recovered", f"job {job.job_id} is back ({job.state}), recovered by Flink")
    st.flink_state = job.state
    if job.parallelism is not None:
        st.parallelism = job.parallelism
    if job.latest_checkpoint:
        st.last_checkpoint_path = job.latest_checkpoint
        st.last_checkpoint_time = job.latest_checkpoint_time
    if job.start_time:
        st.job_started_at = job.start_time


def track_lifecycle(d: Decision, job: JobObservation) -> None:
    """DEPLOYING until every task runs, RUNNING, then STABLE after STABLE_AFTER_MS."""
    st = d.st
    if job.all_running and job.state == "RUNNING":
        if st.running_since is None:
            st.running_since = d.now
        if d.now - st.running_since >= STABLE_AFTER_MS:
            if st.lifecycle != Lifecycle.STABLE:
                st.last_stable_spec = st.last_reconciled_spec
                st.restarts = 0
                d.note("Stable", f"running for {STABLE_AFTER_MS // 1000} s")
            st.lifecycle = Lifecycle.STABLE
        else:
            st.lifecycle = Lifecycle.RUNNING
    else:
        st.running_since = None
        st.lifecycle = Lifecycle.DEPLOYING  # starting, or Flink restarting it
    if st.error and not st.outages and not d.waiting():
        st.error = None
    track_checkpoints(d, job)


def track_checkpoints(d: Decision, job: JobObservation) -> None:
    """A condition (and one Event per change) when the newest checkpoint failed: where Flink
    writes and why it could not (a wrong endpoint, a missing bucket, refused credentials),
    while the job still runs from its last good checkpoint."""
    st = d.st
    was = next((c for c in st.conditions if c.type == "CheckpointsSucceeding"), None)
    if job.checkpoint_failure:
        where = d.obs.checkpoint_dir or "the checkpoint folder"
        failure = job.checkpoint_failure
        message = f"checkpoint {job.checkpoint_failure_id} to {where} failed: {failure}"
        # One Event per new reason, not one per failed attempt (one every interval).
        if was is None or was.status != "False" or not was.message.endswith(failure):
            d.note("CheckpointFailed", message, warning=True)
        set_condition(st, d.now, "CheckpointsSucceeding", False, "CheckpointFailed", message)
    elif was is not None and was.status == "False" and job.latest_checkpoint:
        message = f"checkpoint to {job.latest_checkpoint} completed"
        d.note("CheckpointsRecovered", message)
        set_condition(st, d.now, "CheckpointsSucceeding", True, "Completed", message)
