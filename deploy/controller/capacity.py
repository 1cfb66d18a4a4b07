"""Task slots for the controller's jobs: how many its jobs want (pure), and who provides them.

The controller sums what its jobs should run at and tells a `SlotProvider`; the local stack's
provider hands the number to the supervisor (deploy/stack/elastic.py), which starts or stops
TaskManagers. Flink then places the tasks: with the adaptive scheduler a job rescaled beyond the
free slots grows into the new TaskManager by itself.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from deploy.controller.decide import effective_spec
from deploy.spec import FlinkJob, JobState, Lifecycle
from deploy.stack import elastic
from deploy.stack import state as stack_state

log = logging.getLogger("eddyline.controller")


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


class LocalTaskManagers:
    """The local stack's supervisor as slot provider, through its request file."""

    def __init__(self, stack_dir: Path) -> None:
        self.stack_dir = stack_dir
        self._last: int | None = None

    def want(self, slots: int) -> None:
        if slots == self._last:
            return
        try:
            elastic.write_request(self.stack_dir, slots)
        except OSError as e:  # the stack's folder is gone (stack down): ask again next tick
            log.warning("could not ask the stack for %d slots: %s", slots, e)
            return
        log.info("jobs want %d task slots in all", slots)
        self._last = slots

    def headroom(self) -> int:
        st = stack_state.load(self.stack_dir)
        if st is None:
            return 0
        return elastic.headroom(st.taskmanagers, st.max_taskmanagers, st.slots_per_taskmanager)
