"""What the controller sees (observations) and what it asks for (actions): plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from deploy.controller.autoscale import Sample
from deploy.controller.signals import Signals
from deploy.flink.states import TERMINAL_STATES
from deploy.spec import FlinkJobSpec


@dataclass(frozen=True)
class JobObservation:
    """One Flink job as the REST API reports it."""

    job_id: str
    state: str  # Flink's JobStatus: CREATED, RUNNING, RESTARTING, FAILED, FINISHED, …
    all_running: bool = False  # every task of every vertex is RUNNING
    start_time: int | None = None
    parallelism: int | None = None
    root_exception: str | None = None
    latest_checkpoint: str | None = None
    latest_checkpoint_time: int | None = None
    latest_savepoint: str | None = None
    latest_savepoint_time: int | None = None
    # The adaptive scheduler's upper bound per vertex (largest), read while a rescale is in flight.
    requested_parallelism: int | None = None
    # The newest checkpoint failed (no later one completed): Flink's reason, and where it writes.
    checkpoint_failure: str | None = None
    checkpoint_failure_id: int | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def alive(self) -> bool:
        return not self.terminal


@dataclass(frozen=True)
class TriggerObservation:
    """A savepoint or stop-with-savepoint request, looked up by its trigger id."""

    state: Literal["IN_PROGRESS", "COMPLETED", "FAILED", "UNKNOWN"]
    location: str | None = None
    failure: str | None = None


@dataclass(frozen=True)
class Observation:
    now: int  # epoch milliseconds
    flink_error: str | None = None  # Flink unreachable or answering 5xx
    job: JobObservation | None = None  # status.jobId's job, None when Flink has no such job
    new_job: JobObservation | None = None  # the job an operation is submitting
    trigger: TriggerObservation | None = None
    precheck_error: str | None = None  # the spec cannot run here (entry, partitions): FAILED
    kafka_error: str | None = None  # Kafka unreachable or a topic missing: retried
    kafka_refused: bool = False  # ...because the broker refused us (credentials, TLS, an ACL)
    samples: tuple[Sample, ...] = ()  # the autoscaler's recent metrics (when it is enabled)
    partitions: int | None = None  # the fewest partitions of the job's input topics
    slots_for_job: int | None = None  # slots the job could use: free ones plus its own
    adaptive: bool = False  # the cluster runs the adaptive scheduler: rescale in place
    # The JobManager runs with high availability: a job it lost with a JobManager restart comes
    # back by itself, under the same id, once the new leader has recovered it.
    high_availability: bool = False
    checkpoint_dir: str | None = None  # where the job's checkpoints go (named in failures)
    # status.jobId's job is gone from Flink (a JobManager restart): the newest checkpoint it
    # left on disk, (path, epoch ms), which may be newer than the last one the controller saw.
    retained_checkpoint: tuple[str, int] | None = None
    # The job's data-level signals, oldest first (when spec.health is enabled and it runs).
    signals: tuple[Signals, ...] = ()


@dataclass(frozen=True)
class Submit:
    job_id: str
    spec: FlinkJobSpec
    savepoint_path: str | None
    kind: str = "submit"


@dataclass(frozen=True)
class StopWithSavepoint:
    job_id: str
    trigger_id: str
    kind: str = "stop-with-savepoint"


@dataclass(frozen=True)
class TriggerSavepoint:
    job_id: str
    trigger_id: str
    kind: str = "savepoint"


@dataclass(frozen=True)
class Rescale:
    """Change a running job's parallelism in place (adaptive scheduler's resource requirements)."""

    job_id: str
    parallelism: int
    kind: str = "rescale"


@dataclass(frozen=True)
class Cancel:
    job_id: str
    kind: str = "cancel"


@dataclass(frozen=True)
class Dispose:
    path: str
    kind: str = "dispose-savepoint"


@dataclass(frozen=True)
class Forget:
    """The job is gone from Flink and may be removed from the store (deletion finished)."""

    kind: str = "forget"


Action = Submit | StopWithSavepoint | TriggerSavepoint | Rescale | Cancel | Dispose | Forget
