"""The order the rules are tried in: Flink unreachable (back off, change nothing), then what the
observation says, then deletion, an operation in flight, no live job, or a live job."""

from __future__ import annotations

from deploy.controller.decide.decision import Decision, Plan
from deploy.controller.decide.deletion import delete
from deploy.controller.decide.health import track_health
from deploy.controller.decide.live import live_job
from deploy.controller.decide.operations import continue_operation
from deploy.controller.decide.start import no_live_job
from deploy.controller.decide.status import flink_unreachable, observe
from deploy.controller.model import Observation
from deploy.spec import FlinkJob


def decide(job: FlinkJob, obs: Observation) -> Plan:
    """What to do next for `job`, given what was just observed."""
    d = Decision(job, obs)
    if obs.flink_error:
        flink_unreachable(d, obs.flink_error)
        return d.plan()
    observe(d)
    if job.metadata.deletion_timestamp:
        return delete(d)
    if d.st.operation is not None:
        return continue_operation(d, d.st.operation)
    seen = obs.job
    if d.st.job_id is None or seen is None or seen.terminal:
        return no_live_job(d, seen)
    track_health(d)  # data-level health: lag, watermark, dead letters, checkpoints
    return live_job(d, seen)
