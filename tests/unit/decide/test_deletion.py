"""A FlinkJob being deleted: every job it may have started is cancelled — or stopped with a final
savepoint when its annotation asks — and then forgotten (deploy/controller/decide/deletion.py).
Deletion while Flink's HA recovers the job: tests/unit/decide/test_high_availability.py."""

from __future__ import annotations

import pytest

from deploy.controller.decide import decide, new_id
from deploy.controller.model import (
    Cancel,
    Forget,
    JobObservation,
    StopWithSavepoint,
    TriggerObservation,
)
from deploy.spec import FlinkJob, Lifecycle, Operation, SavepointInfo
from tests.unit.builders import (
    NAME,
    SP,
    T0,
    deleting,
    deployed,
    ended,
    flinkjob,
    obs,
    reasons,
    running,
    set_status,
    step,
    stopping,
    the,
    with_status,
)

DONE = TriggerObservation("COMPLETED", location=SP)


@pytest.mark.parametrize("annotation", [False, None])
def test_deletion_without_a_savepoint_cancels_and_forgets(
    annotation: bool | None, deployed_job: FlinkJob
) -> None:
    plan = decide(deleting(deployed_job, annotation), obs(job=running()))
    assert plan.actions == [Cancel("j1"), Forget()]
    assert plan.status.lifecycle == Lifecycle.DELETING
    assert reasons(plan.status)[-1] == "Deleted"


def test_delete_without_savepoint_cancels_and_forgets(deployed_job: FlinkJob) -> None:
    plan = decide(deleting(deployed_job, False), obs(job=running()))
    assert plan.actions == [Cancel("j1"), Forget()]
    assert plan.status.lifecycle == Lifecycle.DELETING


def test_deleting_a_job_that_is_not_running_just_forgets_it() -> None:
    assert decide(deleting(flinkjob(), True), obs()).actions == [Forget()]
    failed = deployed(flinkjob(), lifecycle=Lifecycle.FAILED)
    assert decide(deleting(failed, True), obs(job=ended(state="FAILED"))).actions == [Forget()]


def test_deleting_during_a_submission_cancels_every_job_the_spec_may_have_made(
    deployed_job: FlinkJob,
) -> None:
    job = stopping(deployed_job)
    op = Operation(kind="upgrade", step="submitting", started_at=T0, new_job_id="n1")
    job = deleting(set_status(job, operation=op), False)
    plan = decide(job, obs(job=running(), new_job=running("n1")))
    assert plan.actions == [Cancel("j1"), Cancel("n1"), Forget()]


def test_deletion_with_a_savepoint_stops_with_one_then_forgets(deployed_job: FlinkJob) -> None:
    job = deleting(deployed_job, True)
    job, plan = step(job, obs(now=T0, job=running()))
    stop = the(plan, StopWithSavepoint)
    assert stop == StopWithSavepoint("j1", new_id(NAME, T0, "delete-trigger"))
    op = plan.status.operation
    assert op is not None
    assert (op.kind, op.trigger_id) == ("delete", stop.trigger_id)
    # Not known to Flink yet: the same stop again; in progress: wait.
    _, again = step(job, obs(now=T0 + 100, job=running(), trigger=TriggerObservation("UNKNOWN")))
    assert again.actions == [stop]
    _, wait = step(job, obs(now=T0 + 100, job=running(), trigger=TriggerObservation("IN_PROGRESS")))
    assert wait.actions == []
    _, plan = step(job, obs(now=T0 + 1000, job=ended(), trigger=DONE))
    assert plan.actions == [Forget()]
    assert plan.status.savepoints == [SavepointInfo(path=SP, time=T0 + 1000, trigger="delete")]


def test_delete_with_savepoint_stops_with_one_then_forgets(
    deployed_job: FlinkJob,
) -> None:
    job = deleting(deployed_job, True)
    plan = decide(job, obs(job=running()))
    assert isinstance(plan.actions[0], StopWithSavepoint)
    job = with_status(job, plan.status)
    # The savepoint is done but the job is still winding down: not gone yet.
    plan = decide(job, obs(job=running(), trigger=DONE))
    assert plan.actions == []
    job = with_status(job, plan.status)
    plan = decide(job, obs(job=JobObservation("j1", "FINISHED"), trigger=DONE))
    assert plan.actions == [Forget()]
    assert [s.trigger for s in plan.status.savepoints] == ["delete"]


def test_a_failed_final_savepoint_is_tried_again(deployed_job: FlinkJob) -> None:
    job = deleting(deployed_job, True)
    job, plan = step(job, obs(now=T0, job=running()))
    failed = TriggerObservation("FAILED", failure="disk full")
    job, plan = step(job, obs(now=T0 + 100, job=running(), trigger=failed))
    assert plan.actions == []
    assert plan.status.operation is None
    assert "final savepoint failed: disk full" in str(plan.status.error)
    _, plan = step(job, obs(now=T0 + 200, job=running()))
    assert the(plan, StopWithSavepoint).trigger_id == new_id(NAME, T0 + 200, "delete-trigger")


def test_a_job_that_ended_during_its_final_savepoint_is_forgotten(deployed_job: FlinkJob) -> None:
    job = deleting(deployed_job, True)
    job, _ = step(job, obs(now=T0, job=running()))
    finished = ended(latest_savepoint=SP, latest_savepoint_time=T0 + 10)
    plan = decide(job, obs(now=T0 + 100, job=finished, trigger=TriggerObservation("UNKNOWN")))
    assert plan.actions == [Forget()]
    assert [s.path for s in plan.status.savepoints] == [SP]


def test_deletion_with_a_savepoint_of_a_suspended_job_forgets_it() -> None:
    job = deployed(flinkjob(job={"state": "suspended"}), job_id=None, lifecycle="SUSPENDED")
    assert decide(deleting(job, True), obs()).actions == [Forget()]
