"""The Kubernetes-mode runtime (deploy/kube/runtime.py): an Event for each action, and the
TaskManager Deployment scaled through its scale subresource when a job needs more slots than
Flink has free."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from deploy.controller.model import (
    Action,
    Cancel,
    Dispose,
    Observation,
    StopWithSavepoint,
    Submit,
    TriggerSavepoint,
)
from deploy.errors import FlinkError
from deploy.kube.events import EventRecorder
from deploy.kube.runtime import KubeRuntime, TaskManagerScaler, plan_scale
from deploy.spec import FlinkJob, JobStatus, parse
from tests.unit.fake_kube import FakeKube, flinkjob_doc

DEPLOYMENT = "flink-taskmanager"


@dataclass
class FakeClient:
    overview_doc: dict[str, Any] = field(
        default_factory=lambda: {"taskmanagers": 1, "slots-total": 4, "slots-available": 4}
    )

    def overview(self) -> dict[str, Any]:
        return dict(self.overview_doc)


@dataclass
class FakeFlinkRuntime:
    """Stands in for FlinkRuntime: records actions, fails the kinds it is told to."""

    client: FakeClient = field(default_factory=FakeClient)
    acted: list[Action] = field(default_factory=list)
    fail: dict[str, Exception] = field(default_factory=dict)
    slots_for_job: int | None = None

    def observe(self, job: FlinkJob, now: int) -> Observation:
        return Observation(now=now, slots_for_job=self.slots_for_job)

    def act(self, job: FlinkJob, action: Action) -> None:
        if action.kind in self.fail:
            raise self.fail[action.kind]
        self.acted.append(action)


def job(parallelism: int = 1, running: int | None = None) -> FlinkJob:
    j = parse(flinkjob_doc(job={"parallelism": parallelism}))
    return j.model_copy(update={"status": JobStatus(parallelism=running)})


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube("flink")
    k.replicas[DEPLOYMENT] = 1
    return k


def runtime(
    kube: FakeKube, scaler: bool = True, max_replicas: int = 4
) -> tuple[KubeRuntime, FakeFlinkRuntime]:
    flink = FakeFlinkRuntime()
    tm = TaskManagerScaler(kube, DEPLOYMENT, max_replicas) if scaler else None
    return KubeRuntime(flink, EventRecorder(kube), tm), flink  # type: ignore[arg-type]


def submit(parallelism: int) -> Submit:
    return Submit("a" * 32, job(parallelism).spec, None)


# -- the decision ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("needed", "free", "registered", "replicas", "per", "cap", "wanted"),
    [
        (2, 4, 1, 1, 4, 4, 1),  # enough free slots
        (4, 4, 1, 1, 4, 4, 1),  # exactly enough
        (5, 4, 1, 1, 4, 4, 2),  # one more TaskManager
        (9, 0, 1, 1, 4, 8, 4),  # three more
        (9, 0, 1, 1, 4, 3, 3),  # capped at the maximum
        (6, 0, 1, 3, 4, 8, 3),  # two asked for and not registered yet cover it
        (10, 0, 1, 3, 4, 8, 4),  # …and one more is needed beyond those
        (3, 1, 2, 2, 2, 8, 3),  # two slots per TaskManager
        (5, 4, 1, 6, 4, 4, 6),  # already above the maximum: never scaled down here
    ],
)
def test_plan_scale(
    needed: int, free: int, registered: int, replicas: int, per: int, cap: int, wanted: int
) -> None:
    d = plan_scale(needed, free, registered, replicas, per, cap)
    assert d.wanted == wanted
    assert d.act == (wanted > replicas)


def test_plan_scale_says_when_it_is_capped() -> None:
    assert plan_scale(9, 0, 1, 1, 4, 3).capped
    assert not plan_scale(8, 0, 1, 1, 4, 3).capped


# -- acting ----------------------------------------------------------------------------------


def test_each_action_is_performed_and_posted_as_an_event(kube: FakeKube) -> None:
    rt, flink = runtime(kube, scaler=False)
    actions: list[Action] = [
        submit(1),
        StopWithSavepoint("b" * 32, "c" * 32),
        TriggerSavepoint("b" * 32, "d" * 32),
        Cancel("b" * 32),
        Dispose("file:/sp/1"),
    ]
    for action in actions:
        rt.act(job(), action)
    assert flink.acted == actions
    assert kube.reasons("ledger") == [
        "Submit",
        "StopWithSavepoint",
        "TriggerSavepoint",
        "Cancel",
        "DisposeSavepoint",
    ]
    assert kube.events[0]["message"] == f"job {'a' * 32} (fresh, parallelism 1)"
    assert kube.events[-1]["message"] == "file:/sp/1"


def test_a_failed_action_is_a_warning_event_and_still_raised(kube: FakeKube) -> None:
    rt, flink = runtime(kube, scaler=False)
    flink.fail["submit"] = FlinkError("Flink REST POST /jars/x/run answered 500: boom", 500)
    with pytest.raises(FlinkError):
        rt.act(job(), submit(1))
    (event,) = kube.events
    assert (event["reason"], event["type"]) == ("SubmitFailed", "Warning")
    assert "boom" in event["message"]


def test_a_submission_needing_more_slots_scales_the_taskmanagers_first(kube: FakeKube) -> None:
    rt, flink = runtime(kube)
    flink.client.overview_doc = {"taskmanagers": 1, "slots-total": 4, "slots-available": 1}
    rt.act(job(), submit(6))
    assert kube.scale_requests == [(DEPLOYMENT, 3)]  # 5 missing → two more TaskManagers of 4
    assert kube.reasons("ledger") == ["ScaledTaskManagers", "Submit"]
    assert "1 → 3 replicas" in kube.events[0]["message"]
    # Sent again before the new TaskManagers registered: they are counted, nothing more asked.
    rt.act(job(), submit(6))
    assert kube.scale_requests == [(DEPLOYMENT, 3)]
    assert len(flink.acted) == 2


def test_a_submission_that_fits_asks_nothing_of_kubernetes(kube: FakeKube) -> None:
    rt, _ = runtime(kube)
    rt.act(job(), submit(4))
    assert kube.scale_requests == []
    assert kube.count("get_replicas") == 1
    rt.act(job(), Cancel("b" * 32))
    assert kube.count("get_replicas") == 1  # only submissions need slots


def test_at_the_maximum_the_job_is_submitted_with_a_warning(kube: FakeKube) -> None:
    rt, flink = runtime(kube, max_replicas=2)
    flink.client.overview_doc = {"taskmanagers": 1, "slots-total": 4, "slots-available": 0}
    rt.act(job(), submit(12))
    assert kube.scale_requests == [(DEPLOYMENT, 2)]
    assert kube.reasons("ledger") == ["ScaledTaskManagers", "TaskManagersAtMaximum", "Submit"]
    assert kube.events[1]["type"] == "Warning"


def test_a_missing_deployment_fails_the_submission_saying_so(kube: FakeKube) -> None:
    del kube.replicas[DEPLOYMENT]
    rt, flink = runtime(kube)
    flink.client.overview_doc = {"taskmanagers": 1, "slots-total": 4, "slots-available": 0}
    with pytest.raises(Exception, match="cannot scale TaskManager Deployment 'flink-taskmanager'"):
        rt.act(job(), submit(2))
    assert flink.acted == []
    assert kube.reasons("ledger") == ["SubmitFailed"]


def test_slots_per_taskmanager_unknown_without_a_registered_one(kube: FakeKube) -> None:
    rt, flink = runtime(kube)
    flink.client.overview_doc = {"taskmanagers": 0, "slots-total": 0, "slots-available": 0}
    with pytest.raises(FlinkError, match="--taskmanager-slots"):
        rt.act(job(), submit(2))
    tm = TaskManagerScaler(kube, DEPLOYMENT, 4, slots_per_taskmanager=2)
    rt2 = KubeRuntime(flink, EventRecorder(kube), tm)  # type: ignore[arg-type]
    rt2.act(job(), submit(3))  # the one replica not registered yet counts as 2 slots coming
    assert kube.scale_requests == [(DEPLOYMENT, 2)]


def test_an_in_place_rescale_up_counts_the_slots_the_job_holds(kube: FakeKube) -> None:
    @dataclass(frozen=True)
    class Rescale:
        job_id: str
        parallelism: int
        kind: str = "rescale"

    rt, flink = runtime(kube)
    flink.client.overview_doc = {"taskmanagers": 1, "slots-total": 4, "slots-available": 2}
    rt.act(job(2, running=2), Rescale("b" * 32, 4))  # type: ignore[arg-type]
    assert kube.scale_requests == []  # two more, two free
    rt.act(job(2, running=2), Rescale("b" * 32, 6))  # type: ignore[arg-type]
    assert kube.scale_requests == [(DEPLOYMENT, 2)]
    assert kube.reasons("ledger")[-1] == "Rescale"


def test_the_autoscaler_may_count_the_taskmanagers_still_to_add(kube: FakeKube) -> None:
    rt, flink = runtime(kube, max_replicas=3)
    flink.slots_for_job = 4
    assert rt.observe(job(), 0).slots_for_job == 4 + 2 * 4
    flink.slots_for_job = None  # autoscaler off: nothing asked of Kubernetes
    assert rt.observe(job(), 0).slots_for_job is None
    plain, flink2 = runtime(kube, scaler=False)
    flink2.slots_for_job = 4
    assert plain.observe(job(), 0).slots_for_job == 4
