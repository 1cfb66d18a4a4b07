"""What the controller would do if a FlinkJob's spec became `spec`, without doing it: the answer
of `eddyline diff`. Pure, and built on the rules the controller itself follows (live.spec_change
for a live job; start.py's order for a job that is not running), so the preview and the
controller cannot disagree about when a change is a rescale and when an upgrade."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from deploy.controller.decide.live import spec_change
from deploy.controller.decide.savepoints import latest_state
from deploy.controller.decide.specs import effective_spec, parallelism_only
from deploy.spec import FlinkJob, FlinkJobSpec, JobState, Lifecycle, UpgradeMode


class Action(StrEnum):
    nothing = "nothing"
    start = "start"  # no job yet: a first submission
    resume = "resume"  # suspended (or ended): submitted again from its newest state
    suspend = "suspend"  # stopped with a savepoint
    rescale = "in-place-rescale"  # the adaptive scheduler changes the running job's parallelism
    savepoint_upgrade = "savepoint-upgrade"  # stop with a savepoint, submit from it
    last_state_upgrade = "last-state-upgrade"  # cancel, submit from the latest checkpoint
    stateless_restart = "stateless-restart"  # cancel, submit without state


# The actions after which a new job graph starts from the running job's state.
RESTORING = frozenset({Action.rescale, Action.savepoint_upgrade, Action.last_state_upgrade})

_UPGRADES = {
    UpgradeMode.savepoint: Action.savepoint_upgrade,
    UpgradeMode.last_state: Action.last_state_upgrade,
    UpgradeMode.stateless: Action.stateless_restart,
}


@dataclass(frozen=True)
class Preview:
    action: Action
    reason: str
    spec: FlinkJobSpec  # what would run (the autoscaler's parallelism, while it applies)
    restore_from: str | None = None  # where a started job's state would come from
    busy: str | None = None  # an operation in flight, which the controller finishes first

    @property
    def restores_running_state(self) -> bool:
        return self.action in RESTORING


def preview(stored: FlinkJob | None, spec: FlinkJobSpec, *, live: bool, adaptive: bool) -> Preview:
    """The controller's next step for `spec`. `stored`: the FlinkJob as it is now (None: not
    created yet); `live`: Flink runs its status.jobId; `adaptive`: the cluster's scheduler."""
    if stored is None:
        restore = spec.job.initial_savepoint_path
        return Preview(Action.start, "no such FlinkJob yet: it would be created", spec, restore)
    st = stored.status
    running = effective_spec(spec, st)
    busy = f"{st.operation.kind} ({st.operation.step})" if st.operation is not None else None
    if not live or st.job_id is None:
        return _not_live(stored, running, busy)
    if running.job.state == JobState.suspended:
        return Preview(Action.suspend, "the spec asks for a suspended job", running, busy=busy)
    change = spec_change(running, st, adaptive)
    if change is None:
        return Preview(Action.nothing, "no change that needs a restart", running, busy=busy)
    if change == "rescale":
        return Preview(
            Action.rescale,
            f"only the parallelism changes ({st.parallelism or '?'} → "
            f"{running.job.parallelism}) and the adaptive scheduler rescales in place",
            running,
            busy=busy,
        )
    mode = running.job.upgrade_mode
    why = "restartNonce changed" if change == "restart" else "the spec changed"
    if change == "upgrade" and parallelism_only(running, st.last_reconciled_spec):
        why = "only the parallelism changes, but the scheduler cannot rescale in place"
    return Preview(_UPGRADES[mode], f"{why}: {mode.value} upgrade", running, busy=busy)


def _not_live(stored: FlinkJob, spec: FlinkJobSpec, busy: str | None) -> Preview:
    st = stored.status
    if spec.job.state == JobState.suspended:
        return Preview(Action.nothing, "suspended, and the spec keeps it so", spec, busy=busy)
    # The same spec (restartNonce included) keeps the generation: a FAILED job stays FAILED.
    if st.lifecycle == Lifecycle.FAILED and spec == effective_spec(stored.spec, st):
        return Preview(Action.nothing, "FAILED: stays so until the spec changes", spec)
    if spec.job.upgrade_mode == UpgradeMode.stateless and st.lifecycle != Lifecycle.SUSPENDED:
        restore = None if st.last_reconciled_spec else spec.job.initial_savepoint_path
    else:
        restore = latest_state(st) or spec.job.initial_savepoint_path
    if st.last_reconciled_spec is None and st.job_id is None:
        return Preview(Action.start, "not deployed yet", spec, restore, busy)
    return Preview(Action.resume, "no job runs: it would be submitted again", spec, restore, busy)


def changes(old: FlinkJobSpec | None, new: FlinkJobSpec) -> list[tuple[str, Any, Any]]:
    """What differs between what a job runs and what it would run, as (dotted path, old, new),
    over deployment() (the fields a running job is built from); every field is new without an
    old spec."""
    before = _flat(old.deployment()) if old is not None else {}
    after = _flat(new.deployment())
    return [
        (path, before.get(path), after.get(path))
        for path in sorted(before.keys() | after.keys())
        if before.get(path) != after.get(path)
    ]


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):  # an empty one has no field to show
        out: dict[str, Any] = {}
        for key, item in value.items():
            out |= _flat(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: value}
