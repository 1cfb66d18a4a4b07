"""The Kubernetes-mode runtime (deploy/kube/runtime.py): an Event for each action; and the
TaskManager Deployment as slot provider, scaled up through its scale subresource when the jobs
want more slots than its TaskManagers have."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from deploy.kube.runtime import (
    DELETION_COST,
    DeploymentTaskManagers,
    KubeRuntime,
    TaskManagerPod,
    plan_replicas,
    removable,
    surplus,
)
from deploy.spec import FlinkJob, parse
from tests.unit.fake_kube import FakeKube, flinkjob_doc

DEPLOYMENT = "flink-taskmanager"


@dataclass
class FakeClient:
    overview_doc: dict[str, Any] = field(
        default_factory=lambda: {"taskmanagers": 1, "slots-total": 4, "slots-available": 4}
    )
    taskmanager_docs: list[dict[str, Any]] = field(default_factory=list)

    def overview(self) -> dict[str, Any]:
        return dict(self.overview_doc)

    def taskmanagers(self) -> list[dict[str, Any]]:
        return [dict(t) for t in self.taskmanager_docs]


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
    tms.want(2)  # fewer: kept until they have been surplus for the scale-down delay
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


# -- fewer TaskManagers ----------------------------------------------------------------------

NOW = 1_800_000_000.0


def pod(name: str, age: float, deleting: bool = False) -> TaskManagerPod:
    return TaskManagerPod(name, NOW - age, deleting)


def tm(name: str, free: int, slots: int = 4) -> dict[str, Any]:
    return {"id": name, "slotsNumber": slots, "freeSlots": free}


@pytest.mark.parametrize(
    ("slots", "per", "replicas", "floor", "extra"),
    [
        (0, 4, 3, 1, 2),  # nothing wanted: down to the floor
        (0, 4, 1, 1, 0),
        (5, 4, 3, 1, 1),  # two TaskManagers take 5 slots
        (5, 4, 3, 3, 0),  # the floor is higher
        (16, 4, 3, 1, 0),  # more wanted than there are: nothing surplus
    ],
)
def test_surplus(slots: int, per: int, replicas: int, floor: int, extra: int) -> None:
    assert surplus(slots, per, replicas, floor) == extra


def test_removable_pods_hold_no_task_orphans_first_oldest_first() -> None:
    pods = [
        pod("busy", 900),
        pod("idle-new", 100),
        pod("idle-old", 800),
        pod("orphan-new", 400),
        pod("orphan-old", 700),
        pod("starting", 5),  # no TaskManager yet, but younger than the delay: left alone
        pod("going", 990, deleting=True),  # already being deleted: not counted
    ]
    flink = [tm("busy", 1), tm("idle-new", 4), tm("idle-old", 4), tm("elsewhere", 4)]
    assert removable(pods, flink, NOW, 60) == ["orphan-old", "orphan-new", "idle-old", "idle-new"]
    assert removable(pods, [], NOW, 60) == ["busy", "idle-old", "orphan-old", "orphan-new",
                                            "idle-new"]  # fmt: skip
    # A TaskManager document without slot counts is not taken for idle.
    assert removable([pod("odd", 900)], [{"id": "odd"}], NOW, 60) == []


def test_a_pod_document_gives_name_age_and_deletion() -> None:
    doc = {"metadata": {"name": "tm-1", "creationTimestamp": "2026-11-27T07:00:00Z"}}
    created = datetime(2026, 11, 27, 7, tzinfo=UTC).timestamp()
    assert TaskManagerPod.of(doc) == TaskManagerPod("tm-1", created, False)
    doc["metadata"]["deletionTimestamp"] = "2026-11-27T08:00:00Z"
    assert TaskManagerPod.of(doc).deleting
    unknown = TaskManagerPod.of({"metadata": {"name": "x", "creationTimestamp": "soon"}})
    assert abs(unknown.created - time.time()) < 60  # an unreadable age counts as new: not taken


def shrinking(
    kube: FakeKube, delay: float | None = 0.0, floor: int = 1, **flink: list[dict[str, Any]]
) -> DeploymentTaskManagers:
    """Three replicas, four slots each: one busy, one idle, one that never registered."""
    kube.replicas[DEPLOYMENT] = 3
    old = "2026-01-01T00:00:00Z"
    for name in ("tm-busy", "tm-idle", "tm-lost"):
        kube.add_pod(DEPLOYMENT, name, old)
    kube.add_pod("someone-else", "other", old)
    client = FakeClient(taskmanager_docs=flink.get("tms", [tm("tm-busy", 2), tm("tm-idle", 4)]))
    return DeploymentTaskManagers(
        kube,
        DEPLOYMENT,
        4,
        client,
        None,
        EventRecorder(kube),  # type: ignore[arg-type]
        min_replicas=floor,
        scale_down_delay=delay,
    )


def cost(kube: FakeKube, name: str) -> str | None:
    return (kube.pods[name]["metadata"].get("annotations") or {}).get(DELETION_COST)


def test_idle_and_lost_pods_are_marked_and_the_deployment_scaled_down(kube: FakeKube) -> None:
    tms = shrinking(kube)
    tms.want(2)  # one TaskManager's worth
    assert kube.scale_requests == [(DEPLOYMENT, 1)]
    assert [cost(kube, n) for n in ("tm-lost", "tm-idle", "tm-busy", "other")] == [
        "-1000",
        "-1000",
        None,
        None,
    ]
    marked = [c for c in kube.calls if c.startswith(("annotate_pod", "set_replicas"))]
    assert marked[-1] == f"set_replicas {DEPLOYMENT}"  # marked before the count goes down
    (event,) = kube.events
    assert (event["reason"], event["type"]) == ("ScaledDown", "Normal")
    assert event["message"] == (
        "3 → 1 replicas: the FlinkJobs want 2 task slots, 4 per TaskManager; "
        "removing tm-lost, tm-idle (no tasks on them)"
    )
    tms.want(2)
    assert kube.scale_requests == [(DEPLOYMENT, 1)]


def test_never_below_the_floor_nor_more_than_the_surplus(kube: FakeKube) -> None:
    shrinking(kube, floor=2).want(0)
    assert kube.scale_requests == [(DEPLOYMENT, 2)]
    assert cost(kube, "tm-lost") == "-1000"
    assert cost(kube, "tm-idle") is None


def test_busy_taskmanagers_stay_and_the_pods_are_not_listed_each_tick(
    kube: FakeKube, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eddyline.kube.runtime")
    busy = [tm("tm-busy", 0), tm("tm-idle", 3), tm("tm-lost", 1)]
    tms = shrinking(kube, tms=busy)
    for _ in range(5):
        tms.want(1)
    assert kube.scale_requests == []
    assert kube.count("list_pods") == 1  # looked again only after SCALE_DOWN_RECHECK_S
    said = [r.getMessage() for r in caplog.records if "each runs tasks" in r.getMessage()]
    assert len(said) == 1


def test_the_delay_must_pass_with_the_surplus_lasting(
    kube: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("deploy.kube.runtime.time.monotonic", lambda: clock[0])
    tms = shrinking(kube, delay=300)
    tms.want(0)
    clock[0] += 200
    tms.want(12)  # needed again: the surplus is gone, the wait starts over
    clock[0] += 200
    tms.want(0)
    clock[0] += 299
    tms.want(0)
    assert kube.scale_requests == []
    clock[0] += 1
    tms.want(0)
    assert kube.scale_requests == [(DEPLOYMENT, 1)]


def test_no_scale_down_when_switched_off(kube: FakeKube) -> None:
    shrinking(kube, delay=None).want(0)
    assert kube.scale_requests == []
    assert kube.count("list_pods") == 0


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
