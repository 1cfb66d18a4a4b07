"""The Kubernetes-mode runtime (deploy/kube/runtime.py): an Event for each action; and the
TaskManager Deployment as slot provider, scaled up through its scale subresource when the jobs
want more slots than its TaskManagers have."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from deploy.controller.model import (
    Action,
    Cancel,
    Dispose,
    Observation,
    Rescale,
    StopWithSavepoint,
    Submit,
    TriggerSavepoint,
)
from deploy.errors import FlinkError
from deploy.kube.events import EventRecorder
from deploy.kube.runtime import DeploymentTaskManagers, KubeRuntime, plan_replicas
from deploy.spec import FlinkJob, parse
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

    def observe(self, job: FlinkJob, now: int) -> Observation:
        return Observation(now=now)

    def act(self, job: FlinkJob, action: Action) -> None:
        if action.kind in self.fail:
            raise self.fail[action.kind]
        self.acted.append(action)


def job(parallelism: int = 1) -> FlinkJob:
    return parse(flinkjob_doc(job={"parallelism": parallelism}))


@pytest.fixture
def kube() -> FakeKube:
    k = FakeKube("flink")
    k.replicas[DEPLOYMENT] = 1
    return k


def runtime(kube: FakeKube) -> tuple[KubeRuntime, FakeFlinkRuntime]:
    flink = FakeFlinkRuntime()
    return KubeRuntime(flink, EventRecorder(kube)), flink  # type: ignore[arg-type]


def submit(parallelism: int) -> Submit:
    return Submit("a" * 32, job(parallelism).spec, None)


def taskmanagers(
    kube: FakeKube, max_replicas: int = 4, per: int | None = None, **overview: int
) -> DeploymentTaskManagers:
    flink = FakeClient({"taskmanagers": 1, "slots-total": 4, "slots-available": 4, **overview})
    return DeploymentTaskManagers(
        kube,
        DEPLOYMENT,
        max_replicas,
        flink,
        per,
        EventRecorder(kube),  # type: ignore[arg-type]
    )


# -- how many TaskManagers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slots", "per", "replicas", "cap", "wanted", "capped"),
    [
        (0, 4, 1, 4, 1, False),  # nothing wanted: never fewer than now
        (4, 4, 1, 4, 1, False),  # exactly enough
        (5, 4, 1, 4, 2, False),  # one more TaskManager
        (13, 4, 1, 8, 4, False),  # three more
        (13, 4, 1, 3, 3, True),  # capped at the maximum
        (3, 2, 1, 8, 2, False),  # two slots per TaskManager
        (2, 4, 6, 4, 6, False),  # more than the maximum already: left as it is
        (30, 4, 6, 4, 6, True),
    ],
)
def test_plan_replicas(
    slots: int, per: int, replicas: int, cap: int, wanted: int, capped: bool
) -> None:
    plan = plan_replicas(slots, per, replicas, cap)
    assert (plan.wanted, plan.capped) == (wanted, capped)
    assert plan.act == (wanted > replicas)


def test_the_deployment_is_scaled_up_when_the_jobs_want_more_slots(kube: FakeKube) -> None:
    tms = taskmanagers(kube)
    tms.want(4)
    assert kube.scale_requests == []
    tms.want(9)  # 4 slots per TaskManager (Flink's count): three
    assert kube.scale_requests == [(DEPLOYMENT, 3)]
    tms.want(9)
    tms.want(2)  # fewer: the Deployment keeps its TaskManagers
    assert kube.scale_requests == [(DEPLOYMENT, 3)]
    (event,) = kube.events
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": DEPLOYMENT,
        "namespace": "flink",
    }
    assert (event["reason"], event["type"]) == ("ScaledUp", "Normal")
    assert event["message"] == (
        "1 → 3 replicas: the FlinkJobs want 9 task slots, 4 per TaskManager"
    )


def test_replicas_are_read_again_after_a_while_not_each_tick(kube: FakeKube) -> None:
    tms = taskmanagers(kube)
    for _ in range(5):
        tms.want(2)
    assert kube.count("get_replicas") == 1


def test_at_the_maximum_a_warning_once(kube: FakeKube) -> None:
    tms = taskmanagers(kube, max_replicas=2)
    tms.want(12)
    tms.want(12)
    assert kube.scale_requests == [(DEPLOYMENT, 2)]
    assert [(e["reason"], e["type"]) for e in kube.events] == [
        ("ScaledUp", "Normal"),
        ("AtMaximum", "Warning"),
    ]
    assert "at most 2 are allowed (--max-taskmanagers)" in kube.events[1]["message"]


def test_slots_per_taskmanager_configured_or_unknown(
    kube: FakeKube, caplog: pytest.LogCaptureFixture
) -> None:
    unknown = taskmanagers(kube, taskmanagers=0, **{"slots-total": 0})
    unknown.want(3)
    unknown.want(3)
    assert kube.scale_requests == []
    warned = [r.getMessage() for r in caplog.records if "not scaled" in r.getMessage()]
    assert len(warned) == 1  # once, not each tick
    assert "--taskmanager-slots" in warned[0]
    taskmanagers(kube, per=2, taskmanagers=0).want(3)
    assert kube.scale_requests == [(DEPLOYMENT, 2)]


def test_a_missing_deployment_is_logged_and_no_headroom(
    kube: FakeKube, caplog: pytest.LogCaptureFixture
) -> None:
    del kube.replicas[DEPLOYMENT]
    tms = taskmanagers(kube)
    tms.want(8)
    assert any("not found" in r.getMessage() for r in caplog.records)
    assert tms.headroom() == 0
    kube.replicas[DEPLOYMENT] = 1  # created later: asked for then
    tms.want(8)
    assert kube.scale_requests == [(DEPLOYMENT, 2)]


def test_headroom_is_what_the_deployment_can_still_add(kube: FakeKube) -> None:
    assert taskmanagers(kube, max_replicas=3).headroom() == 8
    kube.replicas[DEPLOYMENT] = 3
    assert taskmanagers(kube, max_replicas=3).headroom() == 0


# -- acting ----------------------------------------------------------------------------------


def test_each_action_is_performed_and_posted_as_an_event(kube: FakeKube) -> None:
    rt, flink = runtime(kube)
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
    rt, flink = runtime(kube)
    flink.fail["submit"] = FlinkError("Flink REST POST /jars/x/run answered 500: boom", 500)
    with pytest.raises(FlinkError):
        rt.act(job(), submit(1))
    (event,) = kube.events
    assert (event["reason"], event["type"]) == ("SubmitFailed", "Warning")
    assert "boom" in event["message"]


def test_an_in_place_rescale_is_an_event_too(kube: FakeKube) -> None:
    rt, _ = runtime(kube)
    rt.act(job(), Rescale("b" * 32, 3))
    (event,) = kube.events
    assert (event["reason"], event["message"]) == ("Rescale", f"job {'b' * 32} to parallelism 3")
