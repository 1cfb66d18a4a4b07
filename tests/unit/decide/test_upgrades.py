"""Savepoint upgrades: a spec change stops the job with a savepoint, and the new job starts from
it only once the old one has ended (deploy/controller/decide/upgrades.py)."""

from __future__ import annotations

import pytest

from deploy.controller.decide import SAVEPOINT_TIMEOUT_MS, action_failed, decide, new_id
from deploy.controller.model import (
    JobObservation,
    StopWithSavepoint,
    Submit,
    TriggerObservation,
)
from deploy.spec import FlinkJob, Lifecycle, Operation, SavepointInfo, UpgradeMode
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
    stopping,
    the,
    with_status,
)

DONE = TriggerObservation("COMPLETED", location=SP)


def test_a_spec_change_with_upgrade_mode_savepoint_stops_with_a_savepoint(
    deployed_job: FlinkJob,
) -> None:
    job = change_job(deployed_job, parallelism=2)
    plan = decide(job, obs(now=T0, job=running()))
    stop = the(plan, StopWithSavepoint)
    assert stop == StopWithSavepoint("j1", new_id(NAME, T0, "upgrade-trigger"))
    assert plan.status.operation == Operation(
        kind="upgrade",
        step="stopping",
        started_at=T0,
        job_id="j1",
        trigger_id=stop.trigger_id,
        trigger="upgrade",
        upgrade_mode=UpgradeMode.savepoint,
    )
    assert plan.status.lifecycle == Lifecycle.UPGRADING
    assert plan.status.observed_generation == 1  # generation 2 is not running yet
    assert reasons(plan.status)[-2:] == ["Upgrading", "StoppingWithSavepoint"]


def test_a_spec_change_with_savepoint_mode_stops_with_a_savepoint(deployed_job: FlinkJob) -> None:
    plan = decide(change_job(deployed_job, parallelism=2), obs(job=running()))
    assert len(plan.actions) == 1
    stop = plan.actions[0]
    assert isinstance(stop, StopWithSavepoint)
    assert stop.job_id == "j1"
    op = plan.status.operation
    assert op is not None
    assert (op.kind, op.step, op.trigger_id) == ("upgrade", "stopping", stop.trigger_id)
    assert plan.status.lifecycle == Lifecycle.UPGRADING


def test_a_completed_stop_records_the_savepoint_and_submits_from_it_in_the_same_plan(
    upgrading: FlinkJob,
) -> None:
    plan = decide(upgrading, obs(now=T0 + 4000, job=ended(), trigger=DONE))
    submit = the(plan, Submit)
    assert submit == Submit(new_id(NAME, T0 + 4000, "upgrade"), upgrading.spec, SP)
    assert submit.spec.job.parallelism == 2
    st_ = plan.status
    assert st_.savepoints == [SavepointInfo(path=SP, time=T0 + 4000, trigger="upgrade")]
    assert st_.upgrade_savepoint_path == SP
    assert st_.operation == Operation(
        kind="upgrade",
        step="submitting",
        started_at=T0 + 4000,
        new_job_id=submit.job_id,
        savepoint_path=SP,
        spec=submit.spec,
        generation=2,
    )
    assert st_.lifecycle == Lifecycle.UPGRADING


def test_a_completed_stop_records_the_savepoint_then_resubmits_from_it(
    upgrading: FlinkJob,
) -> None:
    plan = decide(upgrading, obs(job=JobObservation("j1", "FINISHED"), trigger=DONE))
    assert [type(a) for a in plan.actions] == [Submit]
    submit = plan.actions[0]
    assert isinstance(submit, Submit)
    assert submit.savepoint_path == SP
    assert submit.spec.job.parallelism == 2
    st_ = plan.status
    assert st_.upgrade_savepoint_path == SP
    assert [(s.path, s.trigger) for s in st_.savepoints] == [(SP, "upgrade")]
    assert st_.operation is not None
    assert st_.operation.step == "submitting"
    assert st_.operation.savepoint_path == SP
    assert st_.operation.new_job_id == submit.job_id


def test_a_whole_savepoint_upgrade_ends_with_the_new_job_reconciled(
    deployed_job: FlinkJob,
) -> None:
    job = change_job(deployed_job, parallelism=2)
    job, plan = step(job, obs(now=T0, job=running()))
    trigger_id = the(plan, StopWithSavepoint).trigger_id
    job, plan = step(
        job, obs(now=T0 + 1000, job=running(), trigger=TriggerObservation("IN_PROGRESS"))
    )
    assert plan.actions == []
    job, plan = step(job, obs(now=T0 + 2000, job=ended(), trigger=DONE))
    new_job_id = the(plan, Submit).job_id
    assert new_job_id != "j1"
    job, plan = step(job, obs(now=T0 + 3000, job=ended(), new_job=running(new_job_id)))
    assert plan.actions == []
    st_ = plan.status
    assert st_.job_id == new_job_id
    assert st_.operation is None
    assert st_.observed_generation == 2
    assert st_.last_reconciled_spec is not None
    assert st_.last_reconciled_spec.job.parallelism == 2
    assert st_.upgrade_savepoint_path == SP
    assert trigger_id != new_job_id
    # And then the new job just runs.
    _, plan = step(job, obs(now=T0 + 4000, job=running(new_job_id)))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.RUNNING


def test_a_completed_savepoint_waits_while_the_old_job_winds_down(upgrading: FlinkJob) -> None:
    plan = decide(upgrading, obs(now=T0 + 1000, job=running(), trigger=DONE))
    assert plan.actions == []
    assert plan.status.operation is not None
    assert plan.status.operation.step == "stopping"
    assert plan.status.operation.savepoint_path == SP  # noted
    assert plan.status.operation.trigger_id == "t1"


def test_a_completed_savepoint_waits_until_the_old_job_has_ended(upgrading: FlinkJob) -> None:
    plan = decide(upgrading, obs(job=running(), trigger=DONE))
    assert plan.actions == []
    assert plan.status.operation is not None
    assert plan.status.operation.savepoint_path == SP
    assert plan.status.operation.step == "stopping"


@pytest.mark.parametrize("trigger", [None, TriggerObservation("UNKNOWN")])
def test_a_stop_flink_does_not_know_is_sent_again_with_the_same_trigger_id(
    trigger: TriggerObservation | None, upgrading: FlinkJob
) -> None:
    for later in (T0 + 1000, T0 + 50_000):
        plan = decide(upgrading, obs(now=later, job=running(), trigger=trigger))
        assert plan.actions == [StopWithSavepoint("j1", "t1")]
        assert plan.status.operation == upgrading.status.operation


def test_a_stop_flink_does_not_know_is_sent_again_with_the_same_trigger(
    upgrading: FlinkJob,
) -> None:
    plan = decide(upgrading, obs(job=running(), trigger=TriggerObservation("UNKNOWN")))
    assert plan.actions == [StopWithSavepoint("j1", "t1")]


def test_a_stop_in_progress_is_waited_for_until_it_times_out(upgrading: FlinkJob) -> None:
    pending = TriggerObservation("IN_PROGRESS")
    plan = decide(upgrading, obs(now=T0 + SAVEPOINT_TIMEOUT_MS, job=running(), trigger=pending))
    assert plan.actions == []
    assert plan.status.operation == upgrading.status.operation
    plan = decide(upgrading, obs(now=T0 + SAVEPOINT_TIMEOUT_MS + 1, job=running(), trigger=pending))
    assert plan.actions == []
    assert plan.status.operation is None
    assert "did not finish in time" in str(plan.status.error)
    assert reasons(plan.status)[-1] == "SavepointTimeout"


def test_a_failed_upgrade_savepoint_leaves_the_job_running_and_backs_off() -> None:
    job = stopping(change_job(deployed(flinkjob(restartPolicy={"backoff": "3s"})), parallelism=2))
    failed = TriggerObservation("FAILED", failure="java.io.IOException: disk full")
    job, plan = step(job, obs(now=T0 + 1000, job=running(), trigger=failed))
    assert plan.actions == []
    st_ = plan.status
    assert st_.operation is None
    assert st_.lifecycle == Lifecycle.RUNNING
    assert st_.error == "upgrade: the savepoint failed: java.io.IOException: disk full"
    assert st_.failures == 1
    assert st_.next_retry_at == T0 + 1000 + 3000
    assert reasons(st_)[-1] == "SavepointFailed"
    # Nothing is tried during the backoff; then the upgrade starts over with a new trigger.
    job, plan = step(job, obs(now=T0 + 3999, job=running()))
    assert plan.actions == []
    _, plan = step(job, obs(now=T0 + 4000, job=running()))
    stop = the(plan, StopWithSavepoint)
    assert stop.trigger_id == new_id(NAME, T0 + 4000, "upgrade-trigger")
    assert stop.trigger_id != "t1"


def test_a_failed_savepoint_leaves_the_job_running_and_backs_off(upgrading: FlinkJob) -> None:
    failed = TriggerObservation("FAILED", failure="disk full")
    plan = decide(upgrading, obs(now=T0 + 1000, job=running(), trigger=failed))
    assert plan.actions == []
    assert plan.status.operation is None
    assert plan.status.lifecycle == Lifecycle.RUNNING
    assert "disk full" in str(plan.status.error)
    assert plan.status.next_retry_at == T0 + 1000 + 5000
    # While backing off, nothing is retried.
    later = decide(with_status(upgrading, plan.status), obs(now=T0 + 2000, job=running()))
    assert later.actions == []


def test_a_stopped_job_whose_trigger_answer_was_lost_resumes_from_its_own_savepoint() -> None:
    job = deployed(flinkjob(), last_checkpoint_path=CP, last_checkpoint_time=T0 - 5000)
    job = stopping(change_job(job, parallelism=2))
    finished = ended(latest_savepoint=SP, latest_savepoint_time=T0 + 10)
    plan = decide(job, obs(now=T0 + 2000, job=finished, trigger=TriggerObservation("UNKNOWN")))
    assert the(plan, Submit).savepoint_path == SP
    assert plan.status.upgrade_savepoint_path == SP
    assert [(s.path, s.trigger) for s in plan.status.savepoints] == [(SP, "upgrade")]


def test_a_stopped_job_whose_answer_was_lost_resumes_from_its_own_savepoint(
    upgrading: FlinkJob,
) -> None:
    finished = JobObservation("j1", "FINISHED", latest_savepoint=SP, latest_savepoint_time=T0 + 10)
    plan = decide(upgrading, obs(job=finished, trigger=TriggerObservation("UNKNOWN")))
    assert isinstance(plan.actions[0], Submit)
    assert plan.actions[0].savepoint_path == SP


def test_a_savepoint_older_than_the_operation_is_not_taken_for_its_result() -> None:
    job = deployed(flinkjob(), last_checkpoint_path=CP, last_checkpoint_time=T0 - 5000)
    job = stopping(change_job(job, parallelism=2))
    old = ended(state="FAILED", latest_savepoint=SP, latest_savepoint_time=T0 - 60_000)
    plan = decide(job, obs(now=T0 + 2000, job=old, trigger=TriggerObservation("UNKNOWN")))
    assert the(plan, Submit).savepoint_path == CP  # the newest consistent state there is
    assert "SavepointMissing" in reasons(plan.status)


def test_a_job_that_ended_without_any_state_is_resubmitted_fresh(upgrading: FlinkJob) -> None:
    plan = decide(upgrading, obs(now=T0 + 2000, job=None, trigger=TriggerObservation("UNKNOWN")))
    assert the(plan, Submit).savepoint_path is None
    assert any("nothing (fresh)" in e.message for e in plan.status.events)


# -- regressions: bugs found in review and fixed in ae58e0d, one test each ------------------------


def test_a_savepoint_seen_completed_is_used_when_the_trigger_answer_is_later_lost() -> None:
    """The stop's savepoint completed while the old job was still winding down, so its location
    was noted in the operation. If the trigger's answer is lost afterwards (a JobManager restart
    forgets both the trigger and the finished job), the upgrade must resume from that savepoint,
    not from the older checkpoint."""
    job = deployed(flinkjob(), last_checkpoint_path=CP, last_checkpoint_time=T0 - 60_000)
    job = stopping(change_job(job, parallelism=2))
    job, plan = step(job, obs(now=T0 + 1000, job=running(), trigger=DONE))
    assert plan.status.operation is not None
    assert plan.status.operation.savepoint_path == SP
    _, plan = step(job, obs(now=T0 + 2000, job=None, trigger=TriggerObservation("UNKNOWN")))
    assert the(plan, Submit).savepoint_path == SP


def test_a_failed_stop_request_is_not_sent_again_before_its_backoff() -> None:
    """action_failed gives a failed stop-with-savepoint a backoff (next_retry_at); the next
    reconciles must wait for it instead of sending the stop again right away."""
    job = change_job(deployed(flinkjob(restartPolicy={"backoff": "5s"})), parallelism=2)
    job, plan = step(job, obs(now=T0, job=running()))
    stop = the(plan, StopWithSavepoint)
    job = with_status(job, action_failed(job, job.status, stop, "Flink answered 503", T0 + 10))
    assert job.status.next_retry_at == T0 + 10 + 5000
    plan = decide(job, obs(now=T0 + 210, job=running(), trigger=TriggerObservation("UNKNOWN")))
    assert plan.actions == []
    plan = decide(job, obs(now=T0 + 5010, job=running(), trigger=TriggerObservation("UNKNOWN")))
    assert plan.actions == [stop]


def test_consecutive_failed_upgrade_savepoints_back_off_exponentially() -> None:
    """failures counts consecutive failed actions (stops included) and the backoff doubles with
    each: a savepoint that keeps failing is retried ever more slowly, not every `backoff`."""
    job = change_job(deployed(flinkjob(restartPolicy={"backoff": "2s"})), parallelism=2)
    failed = TriggerObservation("FAILED", failure="disk full")
    now = T0
    delays = []
    for _ in range(3):
        job, plan = step(job, obs(now=now, job=running()))  # the upgrade starts (again)
        the(plan, StopWithSavepoint)
        now += 100
        job, plan = step(job, obs(now=now, job=running(), trigger=failed))
        assert plan.status.next_retry_at is not None
        delays.append(plan.status.next_retry_at - now)
        now = plan.status.next_retry_at
        job, _ = step(job, obs(now=now - 1, job=running()))  # waiting
    assert delays == [2000, 4000, 8000]
