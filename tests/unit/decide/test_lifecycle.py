"""What an observation of a live job writes into its status: DEPLOYING → RUNNING → STABLE, its
checkpoints, parallelism and start, and a condition while its checkpoints fail
(deploy/controller/decide/status.py)."""

from __future__ import annotations

from deploy.controller.decide import STABLE_AFTER_MS, decide
from deploy.controller.model import JobObservation, Submit, TriggerObservation
from deploy.spec import FlinkJob, Lifecycle
from tests.unit.builders import (
    CP,
    SP,
    T0,
    change_job,
    condition,
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


def test_running_becomes_stable_after_stable_after_ms_with_its_stable_spec() -> None:
    job = deployed(flinkjob(), running_since=None, restarts=2, lifecycle=Lifecycle.DEPLOYING)
    job, plan = step(job, obs(now=T0, job=running()))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.RUNNING
    assert plan.status.running_since == T0
    assert plan.status.last_stable_spec is None
    job, plan = step(job, obs(now=T0 + STABLE_AFTER_MS - 1, job=running()))
    assert plan.status.lifecycle == Lifecycle.RUNNING
    job, plan = step(job, obs(now=T0 + STABLE_AFTER_MS, job=running()))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.STABLE
    assert plan.status.last_stable_spec == job.spec
    assert plan.status.restarts == 0
    assert reasons(plan.status).count("Stable") == 1
    _, plan = step(job, obs(now=T0 + 10 * STABLE_AFTER_MS, job=running()))
    assert plan.status.lifecycle == Lifecycle.STABLE
    assert reasons(plan.status).count("Stable") == 1  # said once


def test_running_becomes_stable_after_a_while_and_remembers_the_stable_spec() -> None:
    job = deployed(flinkjob(), running_since=None)
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.status.lifecycle == Lifecycle.RUNNING
    assert plan.status.running_since == T0
    later = decide(with_status(job, plan.status), obs(now=T0 + STABLE_AFTER_MS, job=running()))
    assert later.status.lifecycle == Lifecycle.STABLE
    assert later.status.last_stable_spec == job.spec
    assert later.actions == []


def test_a_job_that_is_restarting_inside_flink_is_deploying_again() -> None:
    job = deployed(flinkjob(), lifecycle=Lifecycle.STABLE)
    plan = decide(job, obs(job=JobObservation("j1", "RESTARTING", all_running=False)))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.DEPLOYING
    assert plan.status.running_since is None
    assert plan.status.flink_state == "RESTARTING"


def test_a_job_not_all_running_is_deploying(deployed_job: FlinkJob) -> None:
    plan = decide(deployed_job, obs(job=JobObservation("j1", "RESTARTING", all_running=False)))
    assert plan.status.lifecycle == Lifecycle.DEPLOYING
    assert plan.status.running_since is None


def test_observing_a_job_records_its_checkpoint_parallelism_and_start(
    deployed_job: FlinkJob,
) -> None:
    seen = running(
        parallelism=3, start_time=T0 - 500, latest_checkpoint=CP, latest_checkpoint_time=T0 - 10
    )
    st_ = decide(deployed_job, obs(job=seen)).status
    assert (st_.parallelism, st_.job_started_at) == (3, T0 - 500)
    assert (st_.last_checkpoint_path, st_.last_checkpoint_time) == (CP, T0 - 10)


def test_a_running_job_clears_an_old_error_but_keeps_counting_failed_actions() -> None:
    job = deployed(flinkjob(), error="an old problem", failures=3)
    st_ = decide(job, obs(job=running())).status
    assert st_.error is None
    assert st_.failures == 3  # reset when an operation succeeds, so backoffs keep growing


def test_an_unchanged_running_job_needs_nothing(deployed_job: FlinkJob) -> None:
    plan = decide(deployed_job, obs(job=running()))
    assert plan.actions == []
    assert plan.status.operation is None
    assert plan.status.observed_generation == 1


def test_failing_checkpoints_are_a_condition_and_one_event_per_reason(
    deployed_job: FlinkJob,
) -> None:
    """A wrong endpoint, a missing bucket or refused credentials: the job runs on from its last
    checkpoint, and the FlinkJob says where Flink writes and why it cannot."""
    job = deployed_job
    where = "s3://state/eddyline/checkpoints"
    denied = "AccessDeniedException: 403 Forbidden"
    for n in (7, 8):
        failing = running(checkpoint_failure=denied, checkpoint_failure_id=n)
        job, plan = step(job, obs(now=T0 + n, job=failing, checkpoint_dir=where))
        assert plan.actions == []
    message = f"checkpoint 8 to {where} failed: {denied}"
    assert condition(plan.status, "CheckpointsSucceeding") == "False"
    assert [c.message for c in plan.status.conditions if c.type == "CheckpointsSucceeding"] == [
        message
    ]
    assert reasons(plan.status).count("CheckpointFailed") == 1
    assert plan.status.events[-1].type == "Warning"
    # Another reason is another Event; a completed checkpoint clears the condition.
    job, plan = step(job, obs(now=T0 + 9, job=running(checkpoint_failure="NoSuchBucket",
                                                       checkpoint_failure_id=9)))  # fmt: skip
    assert reasons(plan.status).count("CheckpointFailed") == 2
    assert "to the checkpoint folder failed: NoSuchBucket" in plan.status.events[-1].message
    _, plan = step(job, obs(now=T0 + 10, job=running(latest_checkpoint=CP)))
    assert condition(plan.status, "CheckpointsSucceeding") == "True"
    assert reasons(plan.status)[-1] == "CheckpointsRecovered"


def test_after_an_upgrade_the_new_job_is_not_stable_before_it_ran_stable_after_ms() -> None:
    """running_since belongs to the job that is running: a new job after an upgrade has to run
    STABLE_AFTER_MS itself before it is STABLE (and its spec the last stable one).
    (A regression: found in review and fixed in ae58e0d.)"""
    job = deployed(flinkjob(), running_since=T0 - 3_600_000, lifecycle=Lifecycle.STABLE)
    job = change_job(job, parallelism=2)
    job, plan = step(job, obs(now=T0, job=running()))
    done = TriggerObservation("COMPLETED", location=SP)
    job, plan = step(job, obs(now=T0 + 1000, job=ended(), trigger=done))
    new_job_id = the(plan, Submit).job_id
    job, plan = step(job, obs(now=T0 + 2000, job=ended(), new_job=running(new_job_id)))
    assert plan.status.lifecycle == Lifecycle.RUNNING
    _, plan = step(job, obs(now=T0 + 3000, job=running(new_job_id)))
    assert plan.status.lifecycle == Lifecycle.RUNNING  # 1 s after it started: not STABLE yet
    assert plan.status.last_stable_spec != job.spec
