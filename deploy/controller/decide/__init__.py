"""The controller's decisions: a pure function of (FlinkJob, Observation) → (new status, actions).

No I/O and no clock here: the observation carries the time, and ids for new jobs and savepoint
triggers are derived from the job's name and that time. The loop writes the returned status
*before* it performs the actions, so every action is recorded with the ids it will use; a
controller that dies at any point repeats the same requests after a restart, and Flink makes them
idempotent (a trigger id names one savepoint; a job id can only be submitted once).

One module per group of rules; `rules.decide` tries them in order:

    status      what the observation says (reachability, lifecycle, checkpoints)
    deletion    a FlinkJob being deleted
    operations  an operation in flight, by its step
    upgrades    upgrades and suspends: stop (or cancel), then start from the state
    scaling     the autoscaler and in-place rescales
    savepoints  manual and periodic savepoints, retention, the newest state
    recovery    a job that ended or vanished: wait for HA, restart, or FAILED
    start       no job running: start one, or say why not
    live        a live job: the first rule that applies
    backoff     waiting before trying again; the status after a failed action
"""

from deploy.controller.decide.backoff import MAX_RETRY_MS, action_failed, backoff_ms
from deploy.controller.decide.conditions import MAX_EVENTS, event, set_condition
from deploy.controller.decide.decision import Plan, new_id
from deploy.controller.decide.recovery import HA_RECOVERY_MS
from deploy.controller.decide.rules import decide
from deploy.controller.decide.savepoints import SAVEPOINT_TIMEOUT_MS, latest_state
from deploy.controller.decide.scaling import RESCALE_TIMEOUT_MS
from deploy.controller.decide.specs import effective_spec, needs_upgrade, parallelism_only
from deploy.controller.decide.status import STABLE_AFTER_MS

__all__ = [
    "HA_RECOVERY_MS",
    "MAX_EVENTS",
    "MAX_RETRY_MS",
    "RESCALE_TIMEOUT_MS",
    "SAVEPOINT_TIMEOUT_MS",
    "STABLE_AFTER_MS",
    "Plan",
    "action_failed",
    "backoff_ms",
    "decide",
    "effective_spec",
    "event",
    "latest_state",
    "needs_upgrade",
    "new_id",
    "parallelism_only",
    "set_condition",
]
