"""The Kubernetes-mode controller (deploy/kube/controller.py) end to end over an in-memory API
server and an in-memory Flink: a FlinkJob made by kubectl gets the finalizer and runs; a spec
change wakes the loop through the watch and is a savepoint upgrade; suspend; a status write
that meets a user's change is retried; delete with a final savepoint keeps the resource until
the savepoint is taken; and every step is a Kubernetes Event."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

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
from deploy.controller.store import SAVEPOINT_ON_DELETE
from deploy.kube.controller import KubeController
from deploy.kube.events import EventRecorder
from deploy.kube.runtime import DeploymentTaskManagers, KubeRuntime
from deploy.kube.store import FINALIZER, KubeStore, lease_name, to_job
from deploy.spec import FlinkJob, Lifecycle
from tests.unit.builders import observed
from tests.unit.fake_kube import FakeKube, flinkjob_doc

NAME = "ledger"
TASKMANAGERS = "flink-taskmanager"


@dataclass
class FakeFlink:
    """Flink in memory: a submitted job runs, a stopped one finishes with a savepoint."""

    jobs: dict[str, JobObservation] = field(default_factory=dict)
    triggers: dict[str, TriggerObservation] = field(default_factory=dict)
    acted: list[Action] = field(default_factory=list)
    client: object = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, job: FlinkJob, now: int) -> Observation:
        with self.lock:
            return observed(job, now, self.jobs, self.triggers)

    def act(self, job: FlinkJob, action: Action) -> None:
        with self.lock:
            self.acted.append(action)
            if isinstance(action, Submit):
                self.jobs[action.job_id] = JobObservation(
                    action.job_id,
                    "RUNNING",
                    all_running=True,
                    start_time=now_ms(),
                    parallelism=action.spec.job.parallelism,
                )
            elif isinstance(action, StopWithSavepoint):
                self.jobs[action.job_id] = JobObservation(action.job_id, "FINISHED")
                self.triggers[action.trigger_id] = TriggerObservation(
                    "COMPLETED", location=f"file:/sp/{action.trigger_id[:6]}"
                )
            elif isinstance(action, TriggerSavepoint):
                self.triggers[action.trigger_id] = TriggerObservation(
                    "COMPLETED", location=f"file:/sp/{action.trigger_id[:6]}"
                )
            elif isinstance(action, Cancel):
                self.jobs[action.job_id] = JobObservation(action.job_id, "CANCELED")

    def kinds(self) -> list[str]:
        with self.lock:
            return [a.kind for a in self.acted]

    def live(self) -> list[str]:
        with self.lock:
            return [j for j, o in self.jobs.items() if o.alive]


@dataclass
class Running:
    kube: FakeKube
    store: KubeStore
    flink: FakeFlink
    controller: KubeController

    def job(self) -> FlinkJob | None:
        doc = self.kube.jobs.get(NAME)
        return to_job(copy.deepcopy(doc)) if doc else None

    def wait(self, done: Callable[[FlinkJob | None], bool], what: str, timeout: float = 5) -> float:
        """Seconds until `done`; fails after `timeout`."""
        start = time.monotonic()
        while not done(self.job()):
            if time.monotonic() - start > timeout:
                job = self.job()
                raise AssertionError(
                    f"not {what} in {timeout} s: {job.status if job else 'gone'}; "
                    f"actions {self.flink.kinds()}"
                )
            time.sleep(0.01)
        return time.monotonic() - start


def running_at(generation: int) -> Callable[[FlinkJob | None], bool]:
    return lambda j: j is not None and j.running_at(generation)


@pytest.fixture
def running() -> Iterator[Running]:
    kube = FakeKube("flink")
    kube.replicas[TASKMANAGERS] = 1
    store = KubeStore(kube, resync_s=300)
    flink = FakeFlink()
    runtime = KubeRuntime(flink, EventRecorder(kube, store.document))  # type: ignore[arg-type]
    slots = DeploymentTaskManagers(kube, TASKMANAGERS, 3, None, 4, store.events)
    # A long interval: the loop acts this soon only because the watch wakes it.
    ctl = KubeController(store, runtime, lease_ttl=10, interval=30, slots=slots)
    stop = threading.Event()
    thread = threading.Thread(target=ctl.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield Running(kube, store, flink, ctl)
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the controller did not stop"


def test_a_flinkjob_from_kubectl_runs_upgrades_suspends_and_is_deleted_with_a_savepoint(
    running: Running,
) -> None:
    kube, flink = running.kube, running.flink
    kube.kubectl_apply(flinkjob_doc())  # no finalizer: kubectl knows none

    running.wait(running_at(1), "run generation 1")
    assert kube.jobs[NAME]["metadata"]["finalizers"] == [FINALIZER]
    assert flink.kinds() == ["submit"]
    assert kube.leases[lease_name(NAME)]["spec"]["holderIdentity"] == running.controller.holder
    first = running.job()
    assert first is not None
    assert first.status.job_id is not None

    # A spec change: acted on well within the loop's 30 s interval (the watch wakes it).
    kube.kubectl_apply(flinkjob_doc(job={"parallelism": 2}))
    took = running.wait(running_at(2), "run generation 2")
    assert took < 5
    assert running.controller.wakes >= 1
    assert flink.kinds() == ["submit", "stop-with-savepoint", "submit"]
    upgraded = running.job()
    assert upgraded is not None
    assert upgraded.status.parallelism == 2
    assert upgraded.status.upgrade_savepoint_path is not None
    assert flink.live() == [upgraded.status.job_id]

    kube.kubectl_apply(flinkjob_doc(job={"parallelism": 2, "state": "suspended"}))
    running.wait(lambda j: j is not None and j.status.lifecycle == Lifecycle.SUSPENDED, "suspend")
    assert flink.live() == []
    kube.kubectl_apply(flinkjob_doc(job={"parallelism": 2}))
    running.wait(running_at(4), "resume")
    resumed = running.job()
    assert resumed is not None

    # Delete, asking for a final savepoint: the resource stays until it is taken.
    doc = kube.jobs[NAME]
    doc["metadata"]["annotations"] = {SAVEPOINT_ON_DELETE: "true"}
    kube.replace_job(NAME, copy.deepcopy(doc))
    kube.delete_job(NAME)
    running.wait(lambda j: j is None, "be deleted")
    assert flink.kinds()[-1] == "stop-with-savepoint"
    assert flink.live() == []
    assert lease_name(NAME) not in kube.leases
    reasons = kube.reasons(NAME)
    for reason in (
        "Submitting",  # decisions recorded in the status …
        "Deployed",
        "Upgrading",
        "Suspended",
        "Deleted",
        "Submit",  # … and the actions performed
        "StopWithSavepoint",
    ):
        assert reason in reasons, reasons
    deleted = [e["message"] for e in kube.events if e["reason"] == "Deleted"]
    assert deleted == [f"final savepoint file:/sp/{flink.acted[-1].trigger_id[:6]}"]  # type: ignore[union-attr]


def test_a_status_write_that_meets_a_users_change_is_retried_and_the_change_applied(
    running: Running,
) -> None:
    kube = running.kube
    kube.kubectl_apply(flinkjob_doc())
    running.wait(running_at(1), "run generation 1")

    def user_changes_spec(_: str) -> None:
        kube.kubectl_apply(flinkjob_doc(job={"parallelism": 3}))

    # The next status write finds the resource changed by a user since the controller read it.
    kube.before["replace_job_status"] = user_changes_spec
    kube.kubectl_apply(flinkjob_doc(job={"parallelism": 2}))
    running.wait(running_at(3), "run generation 3")
    assert running.store.conflicts >= 1
    job = running.job()
    assert job is not None
    assert job.spec.job.parallelism == 3
    assert job.status.parallelism == 3


def test_a_flinkjob_deleted_without_a_savepoint_is_cancelled_and_removed(running: Running) -> None:
    kube, flink = running.kube, running.flink
    kube.kubectl_apply(flinkjob_doc())
    running.wait(running_at(1), "run generation 1")
    kube.delete_job(NAME)
    running.wait(lambda j: j is None, "be deleted")
    assert flink.kinds() == ["submit", "cancel"]
    assert flink.live() == []


def test_the_taskmanager_deployment_grows_with_the_slots_the_jobs_want(running: Running) -> None:
    kube = running.kube
    kube.kubectl_apply(flinkjob_doc(job={"parallelism": 2}))
    running.wait(running_at(1), "run generation 1")
    assert kube.scale_requests == []  # 2 slots: the one TaskManager of 4 has them
    kube.kubectl_apply(flinkjob_doc(job={"parallelism": 6}))
    running.wait(running_at(2), "run generation 2")
    assert kube.scale_requests == [(TASKMANAGERS, 2)]
    assert kube.reasons(TASKMANAGERS) == ["ScaledUp"]
    kube.kubectl_apply(flinkjob_doc(job={"parallelism": 20}))
    running.wait(running_at(3), "run generation 3")
    assert kube.scale_requests == [(TASKMANAGERS, 2), (TASKMANAGERS, 3)]
    assert kube.reasons(TASKMANAGERS) == ["ScaledUp", "ScaledUp", "AtMaximum"]
