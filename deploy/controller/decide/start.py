"""No job running: see why (ended, suspended, failed, refused) and start one when the spec
wants it running — from its newest state, or from its initial savepoint the first time."""

from __future__ import annotations

from deploy.controller.decide.backoff import retry_later
from deploy.controller.decide.conditions import set_condition
from deploy.controller.decide.decision import Decision, Plan
from deploy.controller.decide.recovery import ended
from deploy.controller.decide.savepoints import latest_state
from deploy.controller.model import JobObservation
from deploy.spec import JobState, Lifecycle, UpgradeMode


def no_live_job(d: Decision, job: JobObservation | None) -> Plan:
    st, spec = d.st, d.spec
    changed = d.job.metadata.generation != st.observed_generation
    restart_requested = spec.restart_nonce != st.last_restart_nonce
    st.running_since = None
    if st.job_id is not None and st.lifecycle != Lifecycle.FAILED:
        return ended(d, job)
    if spec.job.state == JobState.suspended:
        if st.lifecycle != Lifecycle.SUSPENDED:
            d.note("Suspended", "the spec asks for a suspended job")
        st.lifecycle = Lifecycle.SUSPENDED
        st.job_id = None
        d.reconciled()
        return d.plan()
    if st.lifecycle == Lifecycle.FAILED and not changed and not restart_requested:
        return d.plan()  # stays failed until the spec changes or a restart is asked for
    if d.waiting():
        return d.plan()
    return start(d)


def start(d: Decision) -> Plan:
    """Submit the job, unless the spec cannot run here (FAILED) or Kafka is not ready (later)."""
    st, spec = d.st, d.spec
    if d.obs.precheck_error:
        st.lifecycle = Lifecycle.FAILED
        st.error = d.obs.precheck_error
        st.observed_generation = d.job.metadata.generation  # refused; never deployed
        d.note("Refused", d.obs.precheck_error, warning=True)
        return d.plan()
    if d.obs.kafka_refused:
        # Credentials, trust or an ACL must change outside the spec: keep asking (slowly), and
        # say plainly which broker refused what.
        set_condition(st, d.now, "KafkaAccess", False, "Refused", d.obs.kafka_error or "")
        retry_later(d, d.obs.kafka_error or "Kafka refused the connection", "KafkaRefused")
        return d.plan()
    if d.obs.kafka_error:
        retry_later(d, d.obs.kafka_error)
        return d.plan()
    if any(c.type == "KafkaAccess" and c.status != "True" for c in st.conditions):
        set_condition(st, d.now, "KafkaAccess", True, "Granted", "")
    if spec.job.upgrade_mode == UpgradeMode.stateless and st.lifecycle != Lifecycle.SUSPENDED:
        # A stateless job starts from its initial savepoint once: when never deployed before.
        restore = None if st.last_reconciled_spec else spec.job.initial_savepoint_path
    else:
        restore = latest_state(st) or spec.job.initial_savepoint_path
    if st.lifecycle == Lifecycle.FAILED:
        st.restarts = 0
    d.submit("submit", restore)
    return d.plan()
