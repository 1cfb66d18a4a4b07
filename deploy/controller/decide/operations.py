"""An operation in flight (written to the status before its request was sent): carry on with
it, by its step — a submission, a cancel, a stop with a savepoint, a rescale or a savepoint."""

from __future__ import annotations

from deploy.controller.decide.decision import Decision, Plan
from deploy.controller.decide.savepoints import continue_savepoint
from deploy.controller.decide.scaling import continue_rescale
from deploy.controller.decide.status import observe_job
from deploy.controller.decide.upgrades import continue_cancel, continue_stop
from deploy.controller.model import Submit
from deploy.spec import Lifecycle, Operation


def continue_operation(d: Decision, op: Operation) -> Plan:
    if op.step == "submitting":
        return continue_submit(d, op)
    if op.step == "cancelling":
        return continue_cancel(d, op)
    if op.step == "stopping":
        return continue_stop(d, op)
    if op.step == "rescaling":
        return continue_rescale(d, op)
    return continue_savepoint(d, op)


def continue_submit(d: Decision, op: Operation) -> Plan:
    """Adopt the submitted job once Flink shows it; until then, send the same submission."""
    st, new = d.st, d.obs.new_job
    submitted = op.spec or d.spec
    if new is not None:
        st.operation = None
        st.job_id = new.job_id
        st.flink_state = new.state
        st.job_started_at = new.start_time or d.now
        st.running_since = None  # a new job: it has to earn STABLE itself
        st.failures = 0
        st.next_retry_at = None
        st.error = None
        if op.savepoint_path:
            st.upgrade_savepoint_path = op.savepoint_path
        # What was sent, not what the spec says now: a change made meanwhile is still to do.
        st.last_reconciled_spec = submitted
        st.observed_generation = op.generation or d.job.metadata.generation
        st.last_restart_nonce = submitted.restart_nonce
        # What the running job was shipped with (None: the cluster's own code only).
        artifact = submitted.job.artifact
        st.artifact_sha256 = artifact.sha256 if artifact is not None else None
        st.lifecycle = Lifecycle.RUNNING if new.all_running else Lifecycle.DEPLOYING
        observe_job(d, new)
        d.note("Deployed", f"job {new.job_id} is {new.state}")
        return d.plan()
    if d.waiting():
        return d.plan()
    # Not there yet: send the same submission again (Flink refuses a second job with the id).
    assert op.new_job_id is not None
    d.actions.append(Submit(op.new_job_id, submitted, op.savepoint_path))
    return d.plan()
