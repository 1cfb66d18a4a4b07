"""A job that failed, vanished or ended outside the controller: restarted after a backoff from
its newest state, FAILED after maxRetries until the spec changes or a restart is asked for
(deploy/controller/decide: recovery, backoff, savepoints.latest_state)."""

from __future__ import annotations

from deploy.controller.decide import backoff_ms, decide, latest_state, new_id
from deploy.controller.model import JobObservation, Submit
from deploy.spec import FlinkJob, JobStatus, Lifecycle, SavepointInfo
from tests.unit.builders import (
    CP,
    NAME,
    SP,
    SP2,
    T0,
    change_job,
    change_spec,
    deployed,
    ended,
    flinkjob,
    obs,
    reasons,
    step,
    the,
    with_status,
)


def test_a_failed_job_backs_off_then_restarts_from_its_latest_state() -> None:
    job = deployed(
        flinkjob(restartPolicy={"maxRetries": 3, "backoff": "2s"}),
        savepoints=[SavepointInfo(path=SP, time=T0 - 60_000, trigger="manual")],
        last_checkpoint_path=CP,
        last_checkpoint_time=T0 - 1_000,
    )
    failed = ended(state="FAILED", root_exception="RuntimeError: boom\n  at line 3")
    job, plan = step(job, obs(now=T0, job=failed))
    assert plan.actions == []
    st_ = plan.status
    assert st_.next_retry_at == T0 + 2000
    assert st_.error == "job failed: RuntimeError: boom; restarting in 2 s (restart 1 of 3)"
    assert st_.restarts == 0
    assert st_.flink_state == "FAILED"
    assert st_.running_since is None
    assert reasons(st_)[-1] == "JobFailed"
    job, plan = step(job, obs(now=T0 + 1999, job=failed))
    assert plan.actions == []
    assert reasons(plan.status).count("JobFailed") == 1
    job, plan = step(job, obs(now=T0 + 2000, job=failed))
    submit = the(plan, Submit)
    assert submit.job_id == new_id(NAME, T0 + 2000, "restart")
    assert submit.savepoint_path == CP  # the checkpoint is newer than the savepoint
    assert plan.status.restarts == 1
    assert plan.status.next_retry_at is None
    assert plan.status.operation is not None
    assert plan.status.operation.kind == "restart"
    assert plan.status.lifecycle == Lifecycle.DEPLOYING


def test_a_failed_job_is_restarted_after_a_backoff_from_the_newest_state() -> None:
    job = deployed(
        flinkjob(restartPolicy={"maxRetries": 3, "backoff": "2s"}),
        savepoints=[SavepointInfo(path=SP, time=T0 - 60_000, trigger="manual")],
        last_checkpoint_path=CP,
        last_checkpoint_time=T0 - 1_000,
    )
    failed = JobObservation("j1", "FAILED", root_exception="RuntimeError: boom")
    plan = decide(job, obs(now=T0, job=failed))
    assert plan.actions == []
    assert plan.status.next_retry_at == T0 + 2000
    assert "RuntimeError: boom" in str(plan.status.error)
    assert "restart 1 of 3" in str(plan.status.error)

    job = with_status(job, plan.status)
    assert decide(job, obs(now=T0 + 1999, job=failed)).actions == []
    plan = decide(job, obs(now=T0 + 2000, job=failed))
    assert isinstance(plan.actions[0], Submit)
    assert plan.actions[0].savepoint_path == CP  # newer than the savepoint
    assert plan.status.restarts == 1
    assert plan.status.operation is not None
    assert plan.status.operation.kind == "restart"


def test_a_failed_stateless_job_restarts_without_state() -> None:
    job = deployed(
        flinkjob(job={"upgradeMode": "stateless"}),
        last_checkpoint_path=CP,
        last_checkpoint_time=T0,
        next_retry_at=T0,
    )
    plan = decide(job, obs(now=T0, job=ended(state="FAILED")))
    assert the(plan, Submit).savepoint_path is None


def test_restart_backoff_doubles_with_each_restart_up_to_max_backoff() -> None:
    policy = {"maxRetries": 10, "backoff": "1s", "maxBackoff": "10s"}
    delays = []
    for restarts in range(6):
        job = deployed(flinkjob(restartPolicy=policy), restarts=restarts)
        plan = decide(job, obs(now=T0, job=ended(state="FAILED")))
        assert plan.status.next_retry_at is not None
        delays.append(plan.status.next_retry_at - T0)
    assert delays == [1000, 2000, 4000, 8000, 10_000, 10_000]


def test_backoff_ms() -> None:
    assert [backoff_ms("5s", "30s", n) for n in range(5)] == [5000, 10000, 20000, 30000, 30000]
    assert backoff_ms("500ms", "5m", 0) == 500
    assert backoff_ms("1s", "1h", 1000) == 3_600_000  # huge attempts are capped, not overflowing
    assert backoff_ms("10s", "1s", 0) == 1000  # the cap wins over the first delay


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_ms("5s", "30s", n) for n in range(5)] == [5000, 10000, 20000, 30000, 30000]


def test_backoff_is_exact_in_milliseconds() -> None:
    """backoff: 1001ms waits 1001 ms: backoff_ms converts through float seconds
    (int(seconds(d) * 1000)), and 1001 / 1000.0 * 1000 = 1000.9999999999999.
    (A regression: found in review and fixed in ae58e0d.)"""
    assert backoff_ms("1001ms", "1h", 0) == 1001
    assert backoff_ms("1001ms", "1h", 1) == 2002


def test_a_full_restart_cycle_ends_failed_after_max_retries() -> None:
    job = deployed(flinkjob(restartPolicy={"maxRetries": 2, "backoff": "1s"}))
    now = T0
    submits = 0
    for _ in range(20):
        job_id = job.status.job_id
        op = job.status.operation
        if op is not None and op.new_job_id:
            job, plan = step(job, obs(now=now, new_job=ended(op.new_job_id, state="FAILED")))
        else:
            failed = ended(str(job_id), state="FAILED", root_exception="ValueError: bad record")
            job, plan = step(job, obs(now=now, job=failed))
        submits += sum(isinstance(a, Submit) for a in plan.actions)
        now += 10_000
        if job.status.lifecycle == Lifecycle.FAILED:
            break
    assert submits == 2
    assert job.status.lifecycle == Lifecycle.FAILED
    assert job.status.error == "failed after 2 restarts: ValueError: bad record"


def test_after_max_retries_the_job_is_failed_with_the_first_line_of_its_cause() -> None:
    job = deployed(flinkjob(restartPolicy={"maxRetries": 2}), restarts=2)
    trace = "\n  RuntimeError: poisoned record 'x'\nTraceback (most recent call last):\n  ..."
    failed = ended(state="FAILED", root_exception=trace)
    job, plan = step(job, obs(now=T0, job=failed))
    assert plan.actions == []
    st_ = plan.status
    assert st_.lifecycle == Lifecycle.FAILED
    assert st_.error == "failed after 2 restarts: RuntimeError: poisoned record 'x'"
    assert st_.next_retry_at is None
    assert reasons(st_)[-1] == "Failed"
    # FAILED stays FAILED, quietly, however long it waits.
    for later in (T0 + 60_000, T0 + 86_400_000):
        _, again = step(job, obs(now=later, job=failed))
        assert again.actions == []
        assert again.status.lifecycle == Lifecycle.FAILED
        assert again.status.events == st_.events


def test_after_max_retries_the_job_is_failed_with_the_cause_and_left_alone() -> None:
    job = deployed(flinkjob(restartPolicy={"maxRetries": 2}), restarts=2)
    failed = JobObservation("j1", "FAILED", root_exception="RuntimeError: boom\nmore lines")
    plan = decide(job, obs(job=failed))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.FAILED
    assert plan.status.error == "failed after 2 restarts: RuntimeError: boom"
    job = with_status(job, plan.status)
    again = decide(job, obs(now=T0 + 600_000, job=failed))
    assert again.actions == []
    assert again.status.events == plan.status.events  # no new event each reconcile

    # A spec change is a new try (from the newest state).
    fixed = change_job(job, parallelism=2)
    plan = decide(fixed, obs(now=T0 + 700_000, job=failed))
    assert isinstance(plan.actions[0], Submit)
    assert plan.status.restarts == 0


def test_a_failed_job_without_a_cause_says_so() -> None:
    job = deployed(flinkjob(restartPolicy={"maxRetries": 0}))
    plan = decide(job, obs(job=ended(state="FAILED")))
    assert plan.status.error == "failed after 0 restarts: the job failed"
    blank = decide(job, obs(job=ended(state="FAILED", root_exception="  \n ")))
    assert blank.status.lifecycle == Lifecycle.FAILED


def test_a_failed_job_is_resubmitted_when_the_generation_changes() -> None:
    job = deployed(
        flinkjob(restartPolicy={"maxRetries": 1}),
        restarts=1,
        last_checkpoint_path=CP,
        last_checkpoint_time=T0 - 10,
    )
    job, plan = step(job, obs(now=T0, job=ended(state="FAILED")))
    assert plan.status.lifecycle == Lifecycle.FAILED
    fixed = change_job(job, args=["--orders-topic", "orders-v2"])
    plan = decide(fixed, obs(now=T0 + 1000, job=ended(state="FAILED")))
    submit = the(plan, Submit)
    assert submit.savepoint_path == CP
    assert submit.spec.job.args == ["--orders-topic", "orders-v2"]
    assert plan.status.restarts == 0
    assert plan.status.operation is not None
    assert plan.status.operation.kind == "submit"


def test_a_failed_job_is_resubmitted_when_a_restart_is_requested() -> None:
    job = deployed(flinkjob(restartPolicy={"maxRetries": 0}))
    job, plan = step(job, obs(now=T0, job=ended(state="FAILED")))
    assert plan.status.lifecycle == Lifecycle.FAILED
    restart = change_spec(job, restart_nonce=1)
    assert the(decide(restart, obs(now=T0 + 1, job=ended(state="FAILED"))), Submit)


def test_a_job_gone_from_flink_is_treated_as_a_failure() -> None:
    job = deployed(
        flinkjob(restartPolicy={"backoff": "4s"}),
        last_checkpoint_path=CP,
        last_checkpoint_time=T0 - 10,
    )
    job, plan = step(job, obs(now=T0, job=None))
    assert plan.actions == []
    assert "job j1 is gone from Flink" in str(plan.status.error)
    assert plan.status.next_retry_at == T0 + 4000
    _, plan = step(job, obs(now=T0 + 4000, job=None))
    submit = the(plan, Submit)
    assert submit.savepoint_path == CP
    assert plan.status.restarts == 1


def test_a_job_gone_from_flink_is_treated_as_failed(deployed_job: FlinkJob) -> None:
    plan = decide(deployed_job, obs(now=T0, job=None))
    assert plan.actions == []
    assert "gone from Flink" in str(plan.status.error)
    assert plan.status.next_retry_at is not None


def test_a_job_that_ended_outside_the_controller_is_failed_until_asked_again(
    deployed_job: FlinkJob,
) -> None:
    job, plan = step(deployed_job, obs(now=T0, job=ended(state="CANCELED")))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.FAILED
    assert plan.status.error == "job j1 ended CANCELED outside the controller"
    assert reasons(plan.status)[-1] == "EndedOutside"
    assert decide(job, obs(now=T0 + 60_000, job=ended(state="CANCELED"))).actions == []
    restart = change_spec(job, restart_nonce=7)
    assert the(decide(restart, obs(now=T0 + 1, job=ended(state="CANCELED"))), Submit)


def test_a_job_cancelled_outside_the_controller_is_failed_until_restarted(
    deployed_job: FlinkJob,
) -> None:
    plan = decide(deployed_job, obs(job=JobObservation("j1", "CANCELED")))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.FAILED
    assert "outside the controller" in str(plan.status.error)


# -- where a restarted job resumes ----------------------------------------------------------------


def test_latest_state_is_the_newer_of_checkpoint_and_savepoint() -> None:
    sp = SavepointInfo(path=SP, time=T0, trigger="manual")
    assert latest_state(JobStatus()) is None
    assert latest_state(JobStatus(upgrade_savepoint_path=SP2)) == SP2
    assert latest_state(JobStatus(savepoints=[sp], upgrade_savepoint_path=SP2)) == SP
    older_cp = JobStatus(savepoints=[sp], last_checkpoint_path=CP, last_checkpoint_time=T0 - 1)
    assert latest_state(older_cp) == SP
    newer_cp = older_cp.model_copy(update={"last_checkpoint_time": T0 + 1})
    assert latest_state(newer_cp) == CP
    only_cp = JobStatus(last_checkpoint_path=CP, last_checkpoint_time=5)
    assert latest_state(only_cp) == CP
    two = [sp, SavepointInfo(path=SP2, time=T0 + 5, trigger="periodic")]
    assert latest_state(JobStatus(savepoints=list(reversed(two)))) == SP2


def test_latest_state_prefers_the_newer_of_checkpoint_and_savepoint() -> None:
    newer_sp = JobStatus(
        savepoints=[SavepointInfo(path=SP, time=T0, trigger="manual")],
        last_checkpoint_path=CP,
        last_checkpoint_time=T0 - 1,
    )
    assert latest_state(newer_sp) == SP
    newer_cp = newer_sp.model_copy(update={"last_checkpoint_time": T0 + 1})
    assert latest_state(newer_cp) == CP
    assert latest_state(JobStatus()) is None
