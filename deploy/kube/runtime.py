"""The controller's runtime in Kubernetes mode, and the TaskManagers it asks for.

`KubeRuntime` is the Flink runtime (observe and act through Flink's REST API) plus a Kubernetes
Event for each action it performs.

`DeploymentTaskManagers` is the Kubernetes mode's slot provider (the `SlotProvider` of
deploy/controller/capacity.py, as the local stack's supervisor is locally): each tick the
controller tells it the task slots its jobs want, and when the TaskManager Deployment has too few
replicas for them it asks for more through the Deployment's scale subresource, up to
`max_replicas`, with an Event on the Deployment. Flink's scheduler then places the waiting tasks
in the new TaskManagers as they register. Its `headroom` lets the autoscaler choose a
parallelism the Deployment can still make room for. It never scales the Deployment down: the
ReplicaSet chooses which Pod to delete, and that could be one running a job's tasks.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from deploy.controller.flink import FlinkRuntime
from deploy.controller.model import (
    Action,
    Cancel,
    Dispose,
    Observation,
    StopWithSavepoint,
    Submit,
    TriggerSavepoint,
)
from deploy.errors import EddylineError, FlinkError
from deploy.flink_rest import FlinkClient
from deploy.kube.api import KubeApi
from deploy.kube.events import EventRecorder
from deploy.spec import FlinkJob

log = logging.getLogger("eddyline.kube.runtime")
REPLICAS_CACHE_S = 10.0


@dataclass(frozen=True)
class ScalePlan:
    replicas: int  # what the Deployment asks for now
    wanted: int  # what it should ask for (== replicas: nothing to do)
    needed: int  # TaskManagers the slots take, before the cap
    capped: bool

    @property
    def act(self) -> bool:
        return self.wanted > self.replicas


def plan_replicas(slots: int, per: int, replicas: int, max_replicas: int) -> ScalePlan:
    """TaskManager replicas for `slots` task slots at `per` slots each: more when too few, capped
    at `max_replicas`, never fewer than now."""
    needed = math.ceil(max(0, slots) / max(1, per))
    wanted = max(replicas, min(needed, max_replicas))
    return ScalePlan(replicas, wanted, needed, needed > max(replicas, max_replicas))


class DeploymentTaskManagers:
    """`SlotProvider` over the TaskManager Deployment (deploy/controller/capacity.py)."""

    def __init__(
        self,
        api: KubeApi,
        deployment: str,
        max_replicas: int,
        flink: FlinkClient | None = None,
        slots_per_taskmanager: int | None = None,
        events: EventRecorder | None = None,
    ) -> None:
        self.api = api
        self.deployment = deployment
        self.max_replicas = max_replicas
        self.flink = flink
        self.events = events
        self._per = slots_per_taskmanager
        self._replicas: tuple[float, int] | None = None
        self._warned: int | None = None
        self._failing: str | None = None  # the last error, logged once
        self._lock = threading.Lock()

    def slots_per_taskmanager(self) -> int:
        """As configured, else Flink's slots per registered TaskManager."""
        if self._per:
            return self._per
        overview = self.flink.overview() if self.flink is not None else {}
        tms, total = int(overview.get("taskmanagers", 0)), int(overview.get("slots-total", 0))
        if not tms or not total:
            raise FlinkError(
                "no TaskManager is registered to tell the slots per TaskManager; "
                "give --taskmanager-slots"
            )
        self._per = max(1, total // tms)
        return self._per

    def replicas(self) -> int:
        now = time.monotonic()
        if self._replicas is None or now - self._replicas[0] >= REPLICAS_CACHE_S:
            self._replicas = (now, self.api.get_replicas(self.deployment))
        return self._replicas[1]

    def want(self, slots: int) -> None:
        """Ask for the TaskManagers `slots` take. A Deployment that is not there, or Flink not
        saying how many slots a TaskManager has, is logged (once) and asked again next tick."""
        with self._lock:
            try:
                self._want(slots)
            except EddylineError as e:
                if str(e) != self._failing:
                    log.warning("TaskManager Deployment %s not scaled: %s", self.deployment, e)
                self._failing = str(e)
            else:
                self._failing = None

    def _want(self, slots: int) -> None:
        per = self.slots_per_taskmanager()
        plan = plan_replicas(slots, per, self.replicas(), self.max_replicas)
        if plan.act:
            self.api.set_replicas(self.deployment, plan.wanted)
            self._replicas = (time.monotonic(), plan.wanted)
            message = (
                f"{plan.replicas} → {plan.wanted} replicas: the FlinkJobs want {slots} task "
                f"slots, {per} per TaskManager"
            )
            log.info("TaskManager Deployment %s: %s", self.deployment, message)
            self._record("ScaledUp", message)
        if plan.capped and self._warned != slots:
            self._warned = slots
            self._record(
                "AtMaximum",
                f"the FlinkJobs want {slots} task slots ({plan.needed} TaskManagers); "
                f"at most {self.max_replicas} are allowed (--max-taskmanagers)",
                warning=True,
            )

    def headroom(self) -> int:
        """Slots the Deployment could still add (0 when that cannot be told now)."""
        try:
            return max(0, self.max_replicas - self.replicas()) * self.slots_per_taskmanager()
        except EddylineError as e:
            log.warning("TaskManager headroom unknown: %s", e)
            return 0

    def _record(self, reason: str, message: str, warning: bool = False) -> None:
        if self.events is None:
            return
        ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.deployment}
        self.events.record(self.deployment, reason, message, warning, ref=ref)


_REASONS = {
    "submit": "Submit",
    "stop-with-savepoint": "StopWithSavepoint",
    "savepoint": "TriggerSavepoint",
    "cancel": "Cancel",
    "dispose-savepoint": "DisposeSavepoint",
    "rescale": "Rescale",
}


def describe(action: Action) -> str:
    if isinstance(action, Submit):
        start = f"from {action.savepoint_path}" if action.savepoint_path else "fresh"
        return f"job {action.job_id} ({start}, parallelism {action.spec.job.parallelism})"
    if isinstance(action, StopWithSavepoint | TriggerSavepoint):
        return f"job {action.job_id}, trigger {action.trigger_id}"
    if isinstance(action, Cancel):
        return f"job {action.job_id}"
    if isinstance(action, Dispose):
        return action.path
    parallelism = getattr(action, "parallelism", None)  # an in-place rescale
    job_id = getattr(action, "job_id", None)
    if job_id and parallelism:
        return f"job {job_id} to parallelism {parallelism}"
    return action.kind


class KubeRuntime:
    """`Runtime` for the Kubernetes mode: a FlinkRuntime whose actions are Events too."""

    def __init__(self, flink: FlinkRuntime, events: EventRecorder) -> None:
        self.flink = flink
        self.events = events

    def observe(self, job: FlinkJob, now: int) -> Observation:
        return self.flink.observe(job, now)

    def act(self, job: FlinkJob, action: Action) -> None:
        reason = _REASONS.get(action.kind, action.kind)
        try:
            self.flink.act(job, action)
        except EddylineError as e:
            self.events.record(job.name, f"{reason}Failed", f"{describe(action)}: {e}", True)
            raise
        self.events.record(job.name, reason, describe(action))
