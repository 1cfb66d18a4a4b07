"""A live job: track its lifecycle, then the first rule that applies — suspend, upgrade or
rescale to a changed spec, the autoscaler, a manual or periodic savepoint — else retention."""

from __future__ import annotations

from typing import Literal

from deploy.controller.decide.decision import Decision, Plan
from deploy.controller.decide.savepoints import periodic_due, retention, savepoint
from deploy.controller.decide.scaling import autoscale_job, rescale
from deploy.controller.decide.specs import needs_upgrade, parallelism_only
from deploy.controller.decide.status import track_lifecycle
from deploy.controller.decide.upgrades import upgrade
from deploy.controller.model import JobObservation
from deploy.spec import FlinkJobSpec, JobState, JobStatus, Lifecycle


def live_job(d: Decision, job: JobObservation) -> Plan:
    st, spec = d.st, d.spec
    track_lifecycle(d, job)
    if d.waiting():
        return d.plan()
    if spec.job.state == JobState.suspended:
        st.lifecycle = Lifecycle.UPGRADING
        d.stop_with_savepoint("suspend", job.job_id)
        return d.plan()
    change = spec_change(spec, st, d.obs.adaptive)
    if change is not None:
        return _change(d, job, change)
    d.reconciled()  # a change that needs no restart (autoscaler settings, …)
    scaled = autoscale_job(d, job) if spec.autoscaler.enabled and d.obs.samples else None
    if scaled is not None:
        return scaled
    return _savepoints(d, job)


def _savepoints(d: Decision, job: JobObservation) -> Plan:
    """A manual savepoint when its nonce changed, a periodic one when due, else retention."""
    st, spec = d.st, d.spec
    if spec.savepoint_trigger_nonce != st.last_savepoint_nonce:
        st.last_savepoint_nonce = spec.savepoint_trigger_nonce
        return savepoint(d, job, "manual")
    if periodic_due(d, job):
        return savepoint(d, job, "periodic")
    retention(d)
    return d.plan()


Change = Literal["rescale", "upgrade", "restart"]


def spec_change(spec: FlinkJobSpec, st: JobStatus, adaptive: bool) -> Change | None:
    """What a live job needs for `spec`: nothing (None), a rescale in place when only the
    parallelism differs and the scheduler can, an upgrade when the spec changed otherwise, a
    restart (an upgrade too) when restartNonce asks for one. Also `eddyline diff`'s answer."""
    restart = spec.restart_nonce != st.last_restart_nonce
    if not (needs_upgrade(spec, st.last_reconciled_spec) or restart):
        return None
    if restart:
        return "restart"
    in_place = adaptive and parallelism_only(spec, st.last_reconciled_spec)
    return "rescale" if in_place else "upgrade"


def _change(d: Decision, job: JobObservation, change: Change) -> Plan:
    if change == "rescale":
        return rescale(d, job, "the spec's parallelism changed")
    return upgrade(d, job, "restartNonce changed" if change == "restart" else "the spec changed")
