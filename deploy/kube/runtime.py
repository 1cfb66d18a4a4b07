"""The controller's runtime in Kubernetes mode: the same Flink runtime (observe and act through
Flink's REST API), plus a Kubernetes Event for each action, and TaskManagers added through the
scale subresource of their Deployment when a job is about to need more task slots than the
session cluster has.

Scaling: before a submission, the slots it needs (its parallelism) are compared with Flink's free
slots plus those of TaskManagers already asked for and not registered yet; the Deployment gets
the missing TaskManagers, up to `max_replicas`. Flink holds the job's slot requests until they
register. TaskManagers are never removed here: a Deployment picks which pod to delete, and that
could be one running a job's tasks.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, replace

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
from deploy.kube.api import KubeApi, KubeError
from deploy.kube.events import EventRecorder
from deploy.spec import FlinkJob

log = logging.getLogger("eddyline.kube.runtime")
REPLICAS_CACHE_S = 10.0


@dataclass(frozen=True)
class ScaleDecision:
    replicas: int  # what the Deployment asks for now
    wanted: int  # what it should ask for (== replicas: nothing to do)
    needed: int
    free: int
    pending: int  # slots of TaskManagers asked for and not registered yet
    slots_per_taskmanager: int
    capped: bool = False

    @property
    def act(self) -> bool:
        return self.wanted > self.replicas


def plan_scale(
    needed: int,
    free: int,
    registered: int,
    replicas: int,
    slots_per_taskmanager: int,
    max_replicas: int,
) -> ScaleDecision:
    """How many TaskManagers the Deployment should ask for so `needed` slots are free."""
    per = max(1, slots_per_taskmanager)
    pending = max(0, replicas - registered) * per
    missing = needed - free - pending
    wanted = replicas
    capped = False
    if missing > 0:
        wanted = replicas + math.ceil(missing / per)
        if wanted > max_replicas:
            wanted, capped = max(replicas, max_replicas), True
    return ScaleDecision(replicas, wanted, needed, free, pending, per, capped)


class TaskManagerScaler:
    def __init__(
        self,
        api: KubeApi,
        deployment: str,
        max_replicas: int,
        slots_per_taskmanager: int | None = None,
    ) -> None:
        self.api = api
        self.deployment = deployment
        self.max_replicas = max_replicas
        self.slots_per_taskmanager = slots_per_taskmanager
        self._lock = threading.Lock()
        self._replicas: tuple[float, int] | None = None

    def _per(self, overview: dict[str, object]) -> int:
        if self.slots_per_taskmanager:
            return self.slots_per_taskmanager
        tms = int(str(overview.get("taskmanagers", 0)))
        total = int(str(overview.get("slots-total", 0)))
        if tms and total:
            return max(1, total // tms)
        raise FlinkError(
            "no TaskManager is registered to tell the slots per TaskManager; "
            "give --taskmanager-slots"
        )

    def replicas(self, fresh: bool = False) -> int:
        now = time.monotonic()
        if not fresh and self._replicas and now - self._replicas[0] < REPLICAS_CACHE_S:
            return self._replicas[1]
        count = self.api.get_replicas(self.deployment)
        self._replicas = (now, count)
        return count

    def headroom(self, overview: dict[str, object]) -> int:
        """Slots the Deployment could still add (for the autoscaler's cap)."""
        return max(0, self.max_replicas - self.replicas()) * self._per(overview)

    def ensure(self, needed: int, overview: dict[str, object]) -> ScaleDecision:
        """Ask for the TaskManagers `needed` slots take; one decision at a time."""
        with self._lock:
            decision = plan_scale(
                needed,
                free=int(str(overview.get("slots-available", 0))),
                registered=int(str(overview.get("taskmanagers", 0))),
                replicas=self.replicas(fresh=True),
                slots_per_taskmanager=self._per(overview),
                max_replicas=self.max_replicas,
            )
            if decision.act:
                self.api.set_replicas(self.deployment, decision.wanted)
                self._replicas = (time.monotonic(), decision.wanted)
            return decision


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
    return action.kind


class KubeRuntime:
    """`Runtime` for the Kubernetes mode: a FlinkRuntime, Events, and TaskManager scaling."""

    def __init__(
        self,
        flink: FlinkRuntime,
        events: EventRecorder,
        scaler: TaskManagerScaler | None = None,
    ) -> None:
        self.flink = flink
        self.events = events
        self.scaler = scaler

    def observe(self, job: FlinkJob, now: int) -> Observation:
        obs = self.flink.observe(job, now)
        if self.scaler is not None and obs.slots_for_job is not None:
            # The autoscaler may choose a parallelism the Deployment can still make room for.
            try:
                extra = self.scaler.headroom(self.flink.client.overview())
            except EddylineError as e:
                log.warning("%s: TaskManager headroom unknown: %s", job.name, e)
                extra = 0
            obs = replace(obs, slots_for_job=obs.slots_for_job + extra)
        return obs

    def act(self, job: FlinkJob, action: Action) -> None:
        reason = _REASONS.get(action.kind, action.kind)
        try:
            if self.scaler is not None:
                self._make_room(job, action)
            self.flink.act(job, action)
        except EddylineError as e:
            self.events.record(job.name, f"{reason}Failed", f"{describe(action)}: {e}", True)
            raise
        self.events.record(job.name, reason, describe(action))

    def _make_room(self, job: FlinkJob, action: Action) -> None:
        """Before a submission (or an in-place rescale up), the TaskManagers it needs."""
        assert self.scaler is not None
        if isinstance(action, Submit):
            needed = action.spec.job.parallelism
        elif action.kind == "rescale":  # its running tasks hold their slots already
            needed = int(getattr(action, "parallelism", 0)) - (job.status.parallelism or 0)
        else:
            return
        if needed <= 0:
            return
        try:
            d = self.scaler.ensure(needed, self.flink.client.overview())
        except KubeError as e:
            raise KubeError(
                f"cannot scale TaskManager Deployment {self.scaler.deployment!r}: {e}", e.status
            ) from None
        if d.act:
            message = (
                f"TaskManager Deployment {self.scaler.deployment}: {d.replicas} → {d.wanted} "
                f"replicas ({needed} slots needed, {d.free} free, {d.pending} pending, "
                f"{d.slots_per_taskmanager} per TaskManager)"
            )
            log.info("%s: %s", job.name, message)
            self.events.record(job.name, "ScaledTaskManagers", message)
        if d.capped:
            self.events.record(
                job.name,
                "TaskManagersAtMaximum",
                f"{needed} slots needed, {d.free} free: the Deployment is at its maximum of "
                f"{self.scaler.max_replicas} TaskManagers; Flink waits for slots",
                warning=True,
            )
