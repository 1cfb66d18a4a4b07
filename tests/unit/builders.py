"""Builders for the controller's unit tests: FlinkJobs in a given state, what Flink is observed
doing, autoscaler metrics, a Flink in memory for the loop — and readers of decide()'s plans.

A test reads as the situation it sets up: `stopping(change_job(deployed(flinkjob()),
parallelism=2))` is "job j1 runs the spec; the user asked for parallelism 2; the controller is
stopping j1 with a savepoint". Every time is explicit epoch milliseconds around T0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deploy.controller.autoscale import Sample, VertexSample
from deploy.controller.decide import Plan, decide
from deploy.controller.loop import now_ms
from deploy.controller.model import (
    Action,
    Cancel,
    JobObservation,
    Observation,
    StopWithSavepoint,
    Submit,
    TriggerObservation,
    TriggerSavepoint,
)
from deploy.controller.store import SAVEPOINT_ON_DELETE, JobStore
from deploy.spec import (
    FlinkJob,
    FlinkJobSpec,
    JobSpec,
    JobStatus,
    Lifecycle,
    Operation,
    SavepointInfo,
    UpgradeMode,
    parse,
)

T0 = 1_800_000_000_000  # epoch ms
NAME = "ledger"
SP = "file:/state/savepoints/savepoint-aa"
SP2 = "file:/state/savepoints/savepoint-bb"
CP = "file:/state/checkpoints/j1/chk-7"
DELETED_AT = "2026-11-26T12:00:00Z"


# -- FlinkJobs ------------------------------------------------------------------------------------


def flinkjob(generation: int = 1, name: str = NAME, **spec: Any) -> FlinkJob:
    """A FlinkJob as the store holds it (generation as given); `job` entries merge into
    spec.job, other keyword arguments are spec sections (camelCase, as in YAML)."""
    job: dict[str, Any] = {"entry": "jobs.ledger", "args": ["--orders-topic", "orders"]}
    job.update(spec.pop("job", {}))
    parsed = parse(
        {
            "apiVersion": "eddyline.dev/v1alpha1",
            "kind": "FlinkJob",
            "metadata": {"name": name},
            "spec": {"job": job, **spec},
        }
    )
    meta = parsed.metadata.model_copy(update={"generation": generation})
    return parsed.model_copy(update={"metadata": meta})


def with_status(job: FlinkJob, status: JobStatus) -> FlinkJob:
    return job.model_copy(update={"status": status})


def set_status(job: FlinkJob, **fields: Any) -> FlinkJob:
    """`job` with some status fields replaced."""
    return with_status(job, job.status.model_copy(update=fields))


def deployed(job: FlinkJob, **fields: Any) -> FlinkJob:
    """`job` as the controller leaves it once job j1 runs its current spec."""
    status: dict[str, Any] = {
        "job_id": "j1",
        "flink_state": "RUNNING",
        "lifecycle": Lifecycle.RUNNING,
        "last_reconciled_spec": job.spec,
        "observed_generation": job.metadata.generation,
        "running_since": T0 - 1000,
        "job_started_at": T0 - 2000,
        "last_restart_nonce": job.spec.restart_nonce,
        "last_savepoint_nonce": job.spec.savepoint_trigger_nonce,
    }
    status.update(fields)
    return with_status(job, JobStatus(**status))


def change_job(job: FlinkJob, **job_fields: Any) -> FlinkJob:
    """A user's change to spec.job: the spec changes and the generation goes up (the store)."""
    new_job = JobSpec.model_validate({**job.spec.job.model_dump(), **job_fields})
    return change_spec(job, job=new_job)


def change_spec(flink_job: FlinkJob, **spec_fields: Any) -> FlinkJob:
    """A user's change to the spec (validated, snake_case fields), with a new generation."""
    spec = FlinkJobSpec.model_validate({**dict(flink_job.spec), **spec_fields})
    meta = flink_job.metadata.model_copy(update={"generation": flink_job.metadata.generation + 1})
    return flink_job.model_copy(update={"spec": spec, "metadata": meta})


def deleting(job: FlinkJob, savepoint: bool | None) -> FlinkJob:
    """A deletion requested, with the savepoint annotation as given (None: no annotation)."""
    annotations = dict(job.metadata.annotations)
    if savepoint is not None:
        annotations[SAVEPOINT_ON_DELETE] = "true" if savepoint else "false"
    meta = job.metadata.model_copy(
        update={"deletion_timestamp": DELETED_AT, "annotations": annotations}
    )
    return job.model_copy(update={"metadata": meta})


def stopping(job: FlinkJob, kind: str = "upgrade", **op: Any) -> FlinkJob:
    """`job` with a stop-with-savepoint of j1 (trigger t1) in flight since T0."""
    fields: dict[str, Any] = {
        "kind": kind,
        "step": "stopping",
        "started_at": T0,
        "job_id": "j1",
        "trigger_id": "t1",
        "trigger": kind,
        "upgrade_mode": UpgradeMode.savepoint,
    }
    fields.update(op)
    return set_status(job, operation=Operation(**fields), lifecycle=Lifecycle.UPGRADING)


def savepointing(job: FlinkJob, trigger: str = "manual") -> FlinkJob:
    """`job` with a savepoint of j1 (trigger t2) in flight since T0."""
    op = Operation(
        kind="savepoint",
        step="savepointing",
        started_at=T0,
        job_id="j1",
        trigger_id="t2",
        trigger=trigger,
    )
    return set_status(job, operation=op)


def savepoint_info(i: int, age_ms: int, trigger: str = "periodic") -> SavepointInfo:
    """Savepoint `sp<i>`, taken `age_ms` before T0."""
    return SavepointInfo(path=f"sp{i}", time=T0 - age_ms, trigger=trigger)


# -- what Flink is observed doing ------------------------------------------------------------------


def running(job_id: str = "j1", **fields: Any) -> JobObservation:
    return JobObservation(job_id=job_id, state="RUNNING", all_running=True, **fields)


def ended(job_id: str = "j1", state: str = "FINISHED", **fields: Any) -> JobObservation:
    return JobObservation(job_id=job_id, state=state, **fields)


def obs(now: int = T0, **fields: Any) -> Observation:
    return Observation(now=now, **fields)


def saturated(parallelism: int, n: int = 8) -> tuple[Sample, ...]:
    """`n` metrics samples 5 s apart from T0: the job works flat out at 1000 records/s while
    its lag grows by 5,000 records a sample — more parallelism is needed."""
    return tuple(
        Sample(
            time=T0 + i * 5000,
            parallelism=parallelism,
            vertices=(
                VertexSample("src", 0.1, 0.0, records_out_per_s=1000.0, is_source=True),
                VertexSample("ledger", 1.0, 1000.0),
            ),
            lag=10_000 + i * 5_000,
            input_rate=1000.0,
        )
        for i in range(n)
    )


# -- a Flink in memory, for the loop ---------------------------------------------------------------


def observed(
    job: FlinkJob,
    now: int,
    jobs: dict[str, JobObservation],
    triggers: dict[str, TriggerObservation],
    **extra: Any,
) -> Observation:
    """What a Flink holding `jobs` and `triggers` shows of `job`: the job its status names (or
    its operation's), the one an operation is starting, and the operation's trigger (UNKNOWN
    when Flink has never heard of it)."""
    st, op = job.status, job.status.operation
    return Observation(
        now=now,
        job=jobs.get(st.job_id or (op.job_id if op else None) or ""),
        new_job=jobs.get(op.new_job_id) if op and op.new_job_id else None,
        trigger=(
            triggers.get(op.trigger_id, TriggerObservation("UNKNOWN"))
            if op and op.trigger_id
            else None
        ),
        **extra,
    )


@dataclass
class Acted:
    action: Action
    status_then: JobStatus  # what the store held when the action was performed


@dataclass
class FakeRuntime:
    """A Flink in memory: jobs by id, savepoint triggers by id. Acting changes it the way Flink
    would (a submitted job runs, a stopped one finishes with a savepoint), and records what was
    done with the status the store held at that moment."""

    store: JobStore
    jobs: dict[str, JobObservation] = field(default_factory=dict)
    triggers: dict[str, TriggerObservation] = field(default_factory=dict)
    acted: list[Acted] = field(default_factory=list)
    observed: list[int] = field(default_factory=list)
    fail: dict[str, Exception] = field(default_factory=dict)  # action kind → raised
    observation: dict[str, Any] = field(default_factory=dict)  # extra Observation fields
    on_observe: Any = None

    def observe(self, job: FlinkJob, now: int) -> Observation:
        self.observed.append(now)
        if self.on_observe is not None:
            self.on_observe()
        return observed(job, now, self.jobs, self.triggers, **self.observation)

    def act(self, job: FlinkJob, action: Action) -> None:
        stored = self.store.get(job.name)
        assert stored is not None, "acting on a job the store no longer has"
        self.acted.append(Acted(action, stored.status))
        error = self.fail.get(action.kind)
        if error is not None:
            raise error
        if isinstance(action, Submit):
            self.jobs[action.job_id] = JobObservation(
                action.job_id, "RUNNING", all_running=True, start_time=now_ms()
            )
        elif isinstance(action, StopWithSavepoint):
            self.jobs[action.job_id] = JobObservation(action.job_id, "FINISHED")
            self.triggers[action.trigger_id] = TriggerObservation("COMPLETED", location=SP)
        elif isinstance(action, TriggerSavepoint):
            self.triggers[action.trigger_id] = TriggerObservation("COMPLETED", location=SP)
        elif isinstance(action, Cancel):
            self.jobs[action.job_id] = JobObservation(action.job_id, "CANCELED")

    def kinds(self) -> list[str]:
        return [a.action.kind for a in self.acted]


# -- reading plans --------------------------------------------------------------------------------


def step(job: FlinkJob, observation: Observation) -> tuple[FlinkJob, Plan]:
    """One reconcile: decide, then the job with the plan's status (what the loop writes)."""
    plan = decide(job, observation)
    return with_status(job, plan.status), plan


def the(plan: Plan, kind: type) -> Any:
    """The plan's only action, which must be of `kind`."""
    assert len(plan.actions) == 1, plan.actions
    action = plan.actions[0]
    assert isinstance(action, kind), plan.actions
    return action


def reasons(status: JobStatus) -> list[str]:
    return [e.reason for e in status.events]


def condition(status: JobStatus, type_: str) -> str | None:
    found = [c.status for c in status.conditions if c.type == type_]
    assert len(found) <= 1
    return found[0] if found else None
