"""The controller's runtime in Kubernetes mode, and the TaskManagers it asks for.

`KubeRuntime` is the Flink runtime (observe and act through Flink's REST API) plus a Kubernetes
Event for each action it performs.

`DeploymentTaskManagers` is the Kubernetes mode's slot provider (the `SlotProvider` of
deploy/controller/capacity.py, as the local stack's supervisor is locally): each tick the
controller tells it the task slots its jobs want. When the TaskManager Deployment has too few
replicas for them it asks for more through the Deployment's scale subresource, up to
`max_replicas`, with an Event on the Deployment; Flink's scheduler then places the waiting tasks
in the new TaskManagers as they register. Its `headroom` lets the autoscaler choose a parallelism
the Deployment can still make room for.

Scaling down needs more care: the ReplicaSet, not Eddyline, chooses which Pod to delete, and it
could choose one running a job's tasks. So only after the Deployment has had more replicas than
the jobs need (and than `min_replicas`) for `scale_down_delay` does it pick Pods that hold no
tasks — Pods whose TaskManager has every slot free in Flink, or Pods older than the delay with no
TaskManager registered at all (never started, or lost) — marks them with the
`controller.kubernetes.io/pod-deletion-cost` annotation so the ReplicaSet deletes those first,
and lowers the replica count by as many. The chart names each TaskManager after its Pod
(`taskmanager.resource-id`), which is how a Pod and its TaskManager are matched. A task Flink
places on a chosen TaskManager in the moment between the check and the deletion is restarted
from the job's last checkpoint, like any TaskManager loss.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from deploy.controller.model import (
    Action,
    Cancel,
    Dispose,
    Observation,
    StopWithSavepoint,
    Submit,
    TriggerSavepoint,
)
from deploy.errors import EddylineError, FlinkUnavailableError
from deploy.flink import health as flink_health
from deploy.flink.rest import FlinkClient
from deploy.flink.runtime import FlinkRuntime
from deploy.kube.api import KubeApi
from deploy.kube.events import EventRecorder
from deploy.spec import FlinkJob

log = logging.getLogger("eddyline.kube.runtime")
REPLICAS_CACHE_S = 10.0
SCALE_DOWN_DELAY_S = 300.0  # more replicas than needed this long before any goes
SCALE_DOWN_RECHECK_S = 30.0  # when no Pod could go: look again after this long, not each tick
# The ReplicaSet deletes the Pods with the lowest cost first (the default is 0).
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
GOING = "-1000"


@dataclass(frozen=True)
class ScalePlan:
    replicas: int  # what the Deployment asks for now
    wanted: int  # what it should ask for (== replicas: nothing to do)
    needed: int  # TaskManagers the slots take, before the cap
    capped: bool

    @property
    def act(self) -> bool:
        return self.wanted > self.replicas


def taskmanagers_needed(slots: int, per: int) -> int:
    """TaskManagers `slots` task slots take at `per` slots each."""
    return math.ceil(max(0, slots) / max(1, per))


def plan_replicas(slots: int, per: int, replicas: int, max_replicas: int) -> ScalePlan:
    """TaskManager replicas for `slots` task slots at `per` slots each: more when too few, capped
    at `max_replicas`, never fewer than now."""
    needed = taskmanagers_needed(slots, per)
    wanted = max(replicas, min(needed, max_replicas))
    return ScalePlan(replicas, wanted, needed, needed > max(replicas, max_replicas))


def surplus(slots: int, per: int, replicas: int, min_replicas: int) -> int:
    """Replicas beyond what `slots` task slots at `per` slots each take, and beyond
    `min_replicas`."""
    return max(0, replicas - max(taskmanagers_needed(slots, per), min_replicas))


@dataclass(frozen=True)
class TaskManagerPod:
    name: str
    created: float  # seconds since the epoch
    deleting: bool = False

    @classmethod
    def of(cls, doc: Mapping[str, object]) -> TaskManagerPod:
        meta = doc.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        stamp = str(meta.get("creationTimestamp") or "")
        try:
            created = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            created = time.time()  # unknown age: counted as new, so it is not taken
        return cls(str(meta.get("name") or ""), created, bool(meta.get("deletionTimestamp")))


def removable(
    pods: Iterable[TaskManagerPod],
    taskmanagers: Iterable[Mapping[str, object]],
    now: float,
    min_age: float,
) -> list[str]:
    """The Pods that hold no task, the ones to remove first at the front: Pods with no
    TaskManager registered under their name that are older than `min_age` (one still starting is
    left alone), then Pods whose TaskManager has every slot free; oldest first in each group (a
    TaskManager that has not registered for longest is likeliest to be broken). Pods already
    being deleted are not counted."""
    idle: set[str] = set()
    busy: set[str] = set()
    for tm in taskmanagers:
        (idle if flink_health.idle(tm) else busy).add(str(tm.get("id") or ""))
    registered = idle | busy
    live = sorted((p for p in pods if not p.deleting), key=lambda p: (p.created, p.name))
    orphans = [p.name for p in live if p.name not in registered and now - p.created >= min_age]
    return orphans + [p.name for p in live if p.name in idle]


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
        *,
        min_replicas: int = 1,
        scale_down_delay: float | None = SCALE_DOWN_DELAY_S,
    ) -> None:
        """`scale_down_delay` None: never scale the Deployment down."""
        self.api = api
        self.deployment = deployment
        self.max_replicas = max_replicas
        self.min_replicas = min_replicas
        self.scale_down_delay = scale_down_delay
        self.flink = flink
        self.events = events
        self._per = slots_per_taskmanager
        self._replicas: tuple[float, int] | None = None
        self._surplus_since: float | None = None  # monotonic; None: no surplus now
        self._next_look = 0.0  # monotonic: when to look for Pods to remove again
        self._stuck = False  # the last look found none that could go (said once)
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
            raise FlinkUnavailableError(  # one may register soon: asked again next tick
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
        self._maybe_scale_down(slots, per, plan)
        if plan.capped and self._warned != slots:
            self._warned = slots
            self._record(
                "AtMaximum",
                f"the FlinkJobs want {slots} task slots ({plan.needed} TaskManagers); "
                f"at most {self.max_replicas} are allowed (--max-taskmanagers)",
                warning=True,
            )

    def _maybe_scale_down(self, slots: int, per: int, plan: ScalePlan) -> None:
        extra = 0 if plan.act else surplus(slots, per, plan.replicas, self.min_replicas)
        now = time.monotonic()
        if extra == 0 or self.scale_down_delay is None:
            self._surplus_since = None
            return
        if self._surplus_since is None:
            self._surplus_since = now
        if now - self._surplus_since < self.scale_down_delay or now < self._next_look:
            return
        self._next_look = now + SCALE_DOWN_RECHECK_S
        self._scale_down(slots, per)

    def _scale_down(self, slots: int, per: int) -> None:
        if self.flink is None:
            return  # nothing can tell which TaskManagers are idle
        # Not the cached count, which may be old; the selector comes with it in one read.
        replicas, selector = self.api.get_scale(self.deployment)
        self._replicas = (time.monotonic(), replicas)
        extra = surplus(slots, per, replicas, self.min_replicas)
        if extra == 0:
            return
        pods = [TaskManagerPod.of(p) for p in self.api.list_pods(selector)]
        delay = self.scale_down_delay or 0.0
        going = removable(pods, self.flink.taskmanagers(), time.time(), delay)[:extra]
        if not going:
            if not self._stuck:
                log.info(
                    "TaskManager Deployment %s: %d replica(s) more than the jobs need, but "
                    "each runs tasks or is still starting; looking again every %.0f s",
                    self.deployment, extra, SCALE_DOWN_RECHECK_S,
                )  # fmt: skip
            self._stuck = True
            return
        self._stuck = False
        for name in going:  # marked first: the ReplicaSet deletes these before any other
            self.api.annotate_pod(name, {DELETION_COST: GOING})
        wanted = replicas - len(going)
        self.api.set_replicas(self.deployment, wanted)
        self._replicas = (time.monotonic(), wanted)
        self._surplus_since = None
        message = (
            f"{replicas} → {wanted} replicas: the FlinkJobs want {slots} task slots, {per} per "
            f"TaskManager; removing {', '.join(going)} (no tasks on them)"
        )
        log.info("TaskManager Deployment %s: %s", self.deployment, message)
        self._record("ScaledDown", message)

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
