"""One decision in the making: the status being written, the actions chosen so far, and the
steps several rules share (start a job, stop one with a savepoint, note an event).

Every rule module takes a `Decision` and returns its `Plan`; the status is a deep copy of the
job's, so a rule may change it freely without touching its input.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from deploy.controller.decide.conditions import event
from deploy.controller.decide.specs import effective_spec
from deploy.controller.model import Action, Observation, StopWithSavepoint, Submit
from deploy.spec import FlinkJob, JobStatus, Lifecycle, Operation, SavepointInfo, UpgradeMode


@dataclass
class Plan:
    status: JobStatus
    actions: list[Action] = field(default_factory=list)


def new_id(name: str, now: int, purpose: str) -> str:
    """A 32-hex-digit id (Flink's JobID/trigger format), the same for the same inputs."""
    return hashlib.md5(f"{name}/{purpose}/{now}".encode(), usedforsecurity=False).hexdigest()


class Decision:
    def __init__(self, job: FlinkJob, obs: Observation) -> None:
        self.job = job
        # What runs: the autoscaler's choice may replace the spec's parallelism.
        self.spec = effective_spec(job.spec, job.status)
        self.obs = obs
        self.now = obs.now
        self.st = job.status.model_copy(deep=True)
        self.actions: list[Action] = []

    def note(self, reason: str, message: str, warning: bool = False) -> None:
        event(self.st, self.now, reason, message, warning)

    def plan(self) -> Plan:
        return Plan(self.st, self.actions)

    def reconciled(self) -> None:
        self.st.last_reconciled_spec = self.spec
        self.st.observed_generation = self.job.metadata.generation

    def waiting(self) -> bool:
        """A failed action's backoff is not over yet."""
        return self.st.next_retry_at is not None and self.now < self.st.next_retry_at

    def record_savepoint(self, path: str, trigger: str) -> None:
        if not any(s.path == path for s in self.st.savepoints):
            self.st.savepoints.append(SavepointInfo(path=path, time=self.now, trigger=trigger))

    def submit(self, kind: str, restore: str | None) -> None:
        """Start a new job (an id fixed now, written before it is sent)."""
        job_id = new_id(self.job.name, self.now, kind)
        self.st.missing_since = None
        self.st.operation = Operation(
            kind=kind,
            step="submitting",
            started_at=self.now,
            new_job_id=job_id,
            savepoint_path=restore,
            spec=self.spec,
            generation=self.job.metadata.generation,
        )
        self.st.lifecycle = Lifecycle.UPGRADING if kind == "upgrade" else Lifecycle.DEPLOYING
        self.actions.append(Submit(job_id, self.spec, restore))
        self.note("Submitting", f"job {job_id}" + (f" from {restore}" if restore else " (fresh)"))

    def stop_with_savepoint(self, kind: str, job_id: str) -> None:
        trigger = new_id(self.job.name, self.now, f"{kind}-trigger")
        self.st.operation = Operation(
            kind=kind,
            step="stopping",
            started_at=self.now,
            job_id=job_id,
            trigger_id=trigger,
            trigger=kind,
            upgrade_mode=UpgradeMode.savepoint,
        )
        self.actions.append(StopWithSavepoint(job_id, trigger))
        self.note("StoppingWithSavepoint", f"{kind}: stopping job {job_id} with a savepoint")
