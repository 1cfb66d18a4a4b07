"""Task slots for the controller's jobs: how many its jobs want (pure), and who provides them.

The controller sums what its jobs should run at and tells a `SlotProvider`; the local stack's
provider (deploy/local/slots.py) hands the number to the supervisor, which starts or stops
TaskManagers. Flink then places the tasks: with the adaptive scheduler a job rescaled beyond the
free slots grows into the new TaskManager by itself.
"""

from __future__ import annotations

from typing import Protocol

from deploy.controller.decide import effective_spec
from deploy.spec import FlinkJob, JobState, Lifecycle


class SlotProvider(Protocol):
    def want(self, slots: int) -> None: ...

    def headroom(self) -> int:
        """Slots that could still be added (0 when the cluster cannot grow)."""
        ...


def slots_wanted(jobs: list[FlinkJob]) -> int:
    """The slots the jobs should occupy: each running job at the parallelism it should run at
    (the autoscaler's choice included); suspended, failed and deleted jobs want none."""
    total = 0
    for job in jobs:
        if job.metadata.deletion_timestamp or job.spec.job.state != JobState.running:
            continue
        if job.status.lifecycle == Lifecycle.FAILED:
            continue
        total += effective_spec(job.spec, job.status).job.parallelism
    return total
