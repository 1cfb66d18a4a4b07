"""Suspend and resume: a suspended spec stops the job with a savepoint and starts nothing; set
running again, it starts from that savepoint (deploy/controller/decide: live, upgrades, start)."""

from __future__ import annotations

import pytest

from deploy.controller.decide import decide, new_id
from deploy.controller.model import JobObservation, StopWithSavepoint, Submit, TriggerObservation
from deploy.spec import FlinkJob, Lifecycle, SavepointInfo
from tests.unit.builders import (
    CP,
    NAME,
    SP,
    T0,
    change_job,
    deployed,
    ended,
    flinkjob,
    obs,
    reasons,
    running,
    step,
    the,
    with_status,
)

DONE = TriggerObservation("COMPLETED", location=SP)


def test_suspend_stops_with_a_savepoint_then_the_job_is_suspended(deployed_job: FlinkJob) -> None:
    job = change_job(deployed_job, state="suspended")
    job, plan = step(job, obs(now=T0, job=running()))
    stop = the(plan, StopWithSavepoint)
    assert stop == StopWithSavepoint("j1", new_id(NAME, T0, "suspend-trigger"))
    op = plan.status.operation
    assert op is not None
    assert (op.kind, op.step, op.trigger) == ("suspend", "stopping", "suspend")
    assert plan.status.lifecycle == Lifecycle.UPGRADING

    job, plan = step(job, obs(now=T0 + 1000, job=ended(), trigger=DONE))
    assert plan.actions == []
    st_ = plan.status
    assert st_.lifecycle == Lifecycle.SUSPENDED
    assert st_.job_id is None
    assert st_.operation is None
    assert st_.flink_state == "FINISHED"
    assert st_.upgrade_savepoint_path == SP
    assert st_.savepoints == [SavepointInfo(path=SP, time=T0 + 1000, trigger="suspend")]
    assert st_.observed_generation == 2
    assert reasons(st_)[-1] == "Suspended"
    # And it stays suspended.
    _, plan = step(job, obs(now=T0 + 600_000))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.SUSPENDED


def test_suspend_stops_with_a_savepoint_and_resume_starts_from_it(deployed_job: FlinkJob) -> None:
    job = change_job(deployed_job, state="suspended")
    plan = decide(job, obs(job=running()))
    assert isinstance(plan.actions[0], StopWithSavepoint)
    assert plan.status.operation is not None
    assert plan.status.operation.kind == "suspend"

    job = with_status(job, plan.status)
    plan = decide(job, obs(job=JobObservation("j1", "FINISHED"), trigger=DONE))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.SUSPENDED
    assert plan.status.job_id is None
    assert plan.status.upgrade_savepoint_path == SP
    assert [s.trigger for s in plan.status.savepoints] == ["suspend"]

    resumed = change_job(with_status(job, plan.status), state="running")
    plan = decide(resumed, obs(now=T0 + 9000))
    assert isinstance(plan.actions[0], Submit)
    assert plan.actions[0].savepoint_path == SP


@pytest.mark.parametrize("mode", ["savepoint", "last-state", "stateless"])
def test_resuming_a_suspended_job_submits_from_the_suspend_savepoint(mode: str) -> None:
    job = deployed(
        flinkjob(generation=2, job={"state": "suspended", "upgradeMode": mode}),
        job_id=None,
        lifecycle=Lifecycle.SUSPENDED,
        upgrade_savepoint_path=SP,
        savepoints=[SavepointInfo(path=SP, time=T0 - 1000, trigger="suspend")],
        last_checkpoint_path=CP,
        last_checkpoint_time=T0 - 2000,
    )
    resumed = change_job(job, state="running")
    plan = decide(resumed, obs(now=T0))
    submit = the(plan, Submit)
    assert submit.savepoint_path == SP
    assert plan.status.lifecycle == Lifecycle.DEPLOYING


def test_a_job_submitted_suspended_is_not_started() -> None:
    plan = decide(flinkjob(job={"state": "suspended"}), obs())
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.SUSPENDED
    assert plan.status.observed_generation == 1


def test_a_job_submitted_suspended_is_suspended_and_nothing_else() -> None:
    plan = decide(flinkjob(job={"state": "suspended"}), obs())
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.SUSPENDED


def test_suspend_waits_for_the_backoff_of_a_failed_action_then_goes_ahead() -> None:
    job = deployed(flinkjob(), next_retry_at=T0 + 60_000)
    job = change_job(job, state="suspended")
    assert decide(job, obs(now=T0, job=running())).actions == []
    assert the(decide(job, obs(now=T0 + 60_000, job=running())), StopWithSavepoint).job_id == "j1"
