"""An action the loop could not perform: the status records the error and a backoff; a
submission that keeps failing leaves the job FAILED until its spec changes; a failed disposal
is only an event (deploy/controller/decide/backoff.py: action_failed)."""

from __future__ import annotations

import pytest

from deploy.controller.decide import MAX_EVENTS, action_failed, decide
from deploy.controller.model import (
    Action,
    Cancel,
    Dispose,
    StopWithSavepoint,
    Submit,
    TriggerSavepoint,
)
from deploy.spec import FlinkJob, Lifecycle
from tests.unit.builders import (
    T0,
    change_job,
    deployed,
    flinkjob,
    obs,
    the,
    with_status,
)


def test_a_failed_submission_backs_off_and_is_failed_beyond_max_retries() -> None:
    job = flinkjob(generation=3, restartPolicy={"maxRetries": 2, "backoff": "1s"})
    plan = decide(job, obs(now=T0))
    submit = the(plan, Submit)
    st1 = action_failed(job, plan.status, submit, "ModuleNotFoundError: no x", T0)
    assert st1.failures == 1
    assert st1.next_retry_at == T0 + 1000
    assert st1.operation == plan.status.operation  # the same submission, tried again later
    assert st1.error == "submit failed: ModuleNotFoundError: no x; retrying in 1 s"
    st2 = action_failed(job, st1, submit, "ModuleNotFoundError: no x", T0 + 2000)
    assert st2.next_retry_at == T0 + 2000 + 2000
    assert st2.lifecycle == Lifecycle.DEPLOYING
    st3 = action_failed(job, st2, submit, "ModuleNotFoundError: no x", T0 + 5000)
    assert st3.lifecycle == Lifecycle.FAILED
    assert st3.operation is None
    assert st3.next_retry_at is None
    assert st3.error == "submission failed 3 times: ModuleNotFoundError: no x"
    assert st3.observed_generation == 3
    assert st3.events[-1].reason == "ActionFailed"
    assert st3.events[-1].type == "Warning"
    # Failed: no more submissions until the spec changes.
    failed_job = with_status(job, st3)
    assert decide(failed_job, obs(now=T0 + 600_000)).actions == []
    fixed = change_job(failed_job, args=["--fixed"])
    assert the(decide(fixed, obs(now=T0 + 600_001)), Submit).spec.job.args == ["--fixed"]


def test_a_failed_submission_backs_off_and_fails_after_max_retries() -> None:
    job = flinkjob(restartPolicy={"maxRetries": 1, "backoff": "1s"})
    plan = decide(job, obs())
    submit = plan.actions[0]
    st1 = action_failed(job, plan.status, submit, "ModuleNotFoundError", T0)
    assert st1.failures == 1
    assert st1.next_retry_at == T0 + 1000
    assert st1.operation is not None  # the same submission is tried again
    st2 = action_failed(job, st1, submit, "ModuleNotFoundError", T0 + 2000)
    assert st2.lifecycle == Lifecycle.FAILED
    assert st2.operation is None
    assert "submission failed 2 times: ModuleNotFoundError" in str(st2.error)


def test_action_failed_does_not_change_its_input(deployed_job: FlinkJob) -> None:
    before = deployed_job.status.model_copy(deep=True)
    action_failed(deployed_job, deployed_job.status, Cancel("j1"), "boom", T0)
    assert deployed_job.status == before


@pytest.mark.parametrize(
    "action",
    [StopWithSavepoint("j1", "t1"), TriggerSavepoint("j1", "t2"), Cancel("j1")],
    ids=lambda a: a.kind,
)
def test_other_failed_actions_back_off_without_failing_the_job(action: Action) -> None:
    job = deployed(flinkjob(restartPolicy={"maxRetries": 0}))
    st_ = action_failed(job, job.status, action, "503", T0)
    assert st_.failures == 1
    assert st_.next_retry_at == T0 + 5000
    assert st_.error == f"{action.kind} failed: 503; retrying in 5 s"
    assert st_.lifecycle == Lifecycle.RUNNING


def test_a_failed_disposal_is_only_an_event(deployed_job: FlinkJob) -> None:
    job = deployed_job
    st_ = action_failed(job, job.status, Dispose("sp1"), "not found", T0)
    assert st_.failures == 0
    assert st_.error is None
    assert st_.next_retry_at is None
    assert st_.events[-1].reason == "DisposeFailed"
    assert st_.events[-1].message == "sp1: not found"
    assert st_.model_copy(update={"events": []}) == job.status.model_copy(update={"events": []})


def test_a_failed_disposal_counts_no_failure(deployed_job: FlinkJob) -> None:
    st_ = action_failed(deployed_job, deployed_job.status, Dispose("sp"), "not found", T0)
    assert st_.failures == 0
    assert st_.error is None
    assert st_.events[-1].reason == "DisposeFailed"


def test_events_are_capped() -> None:
    job = deployed(flinkjob(), error=None)
    now = T0
    for _ in range(MAX_EVENTS + 10):
        now += 1000
        st_ = action_failed(job, job.status, Dispose("sp"), "x", now)
        job = with_status(job, st_)
    assert len(job.status.events) == MAX_EVENTS
    assert job.status.events[-1].time == now
