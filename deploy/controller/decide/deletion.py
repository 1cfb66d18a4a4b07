"""A FlinkJob being deleted: stop every job it may have started — with a final savepoint when
its delete annotation asks for one — then let the store forget it."""

from __future__ import annotations

from deploy.controller.decide.decision import Decision, Plan
from deploy.controller.decide.recovery import awaiting_recovery
from deploy.controller.model import Cancel, Forget, StopWithSavepoint
from deploy.controller.store import SAVEPOINT_ON_DELETE
from deploy.spec import Lifecycle, Operation


def delete(d: Decision) -> Plan:
    st, obs = d.st, d.obs
    st.lifecycle = Lifecycle.DELETING
    op = st.operation
    if op is not None and op.kind == "delete":
        return _continue_delete(d, op)
    # Whatever was being started or stopped: stop it (every job this spec may have made).
    live = [j for j in (obs.job, obs.new_job) if j is not None and j.alive]
    if obs.job is None and not live and awaiting_recovery(d):
        return d.plan()  # cancel (or stop) it once Flink has it back, not forget it
    if d.job.metadata.annotations.get(SAVEPOINT_ON_DELETE) == "true" and live:
        if d.waiting():
            return d.plan()
        st.job_id = live[0].job_id  # observe the job being stopped, not an ended one
        d.stop_with_savepoint("delete", live[0].job_id)
        d.actions.extend(Cancel(j.job_id) for j in live[1:])
        return d.plan()
    d.actions.extend(Cancel(j.job_id) for j in live)
    d.note("Deleted", "cancelled" if live else "no job was running")
    d.actions.append(Forget())
    return d.plan()


def _continue_delete(d: Decision, op: Operation) -> Plan:
    """The final savepoint is under way: forget the job once it is taken and the job ended."""
    st, trig, job = d.st, d.obs.trigger, d.obs.job
    if trig is not None and trig.state == "COMPLETED" and trig.location:
        d.record_savepoint(trig.location, "delete")
        if job is not None and job.alive:
            return d.plan()  # savepoint done, the job still winding down: wait
        d.note("Deleted", f"final savepoint {trig.location}")
        d.actions.append(Forget())
        return d.plan()
    if trig is not None and trig.state == "FAILED":
        st.operation = None
        st.error = f"final savepoint failed: {trig.failure}; trying again"
        d.note("SavepointFailed", st.error, warning=True)
        return d.plan()
    if job is None and awaiting_recovery(d):
        return d.plan()
    if job is None or job.terminal:
        if job is not None and job.latest_savepoint:
            d.record_savepoint(job.latest_savepoint, "delete")
        d.actions.append(Forget())
        return d.plan()
    if (trig is None or trig.state == "UNKNOWN") and not d.waiting():
        d.actions.append(StopWithSavepoint(op.job_id or job.job_id, op.trigger_id or ""))
    return d.plan()
