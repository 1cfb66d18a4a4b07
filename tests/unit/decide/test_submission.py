"""A new FlinkJob is submitted with an id fixed (and written) before it is sent, sent again with
the same id until Flink shows it, then adopted (deploy/controller/decide: start, operations).

decide(job, observation) → Plan(status, actions) is pure: each test builds a FlinkJob in some
state and an Observation with an explicit `now`, and checks the returned status and actions.
Multi-step scenarios feed the returned status back in, as the loop does after writing it.
"""

from __future__ import annotations

import pytest

from deploy.controller.decide import action_failed, decide, new_id
from deploy.controller.model import JobObservation, Submit
from deploy.spec import Lifecycle, Operation
from tests.unit.builders import (
    NAME,
    SP,
    T0,
    condition,
    flinkjob,
    obs,
    reasons,
    running,
    step,
    the,
    with_status,
)


def test_a_new_job_is_submitted_with_a_fixed_id_written_to_its_operation() -> None:
    job = flinkjob()
    plan = decide(job, obs(now=T0))
    submit = the(plan, Submit)
    assert submit.job_id == new_id(NAME, T0, "submit")
    assert len(submit.job_id) == 32
    int(submit.job_id, 16)  # Flink's JobID: 32 hex digits
    assert submit.spec == job.spec
    assert submit.savepoint_path is None
    assert submit.kind == "submit"
    assert plan.status.operation == Operation(
        kind="submit",
        step="submitting",
        started_at=T0,
        new_job_id=submit.job_id,
        savepoint_path=None,
        spec=job.spec,
        generation=1,
    )
    assert plan.status.lifecycle == Lifecycle.DEPLOYING
    assert plan.status.job_id is None
    assert plan.status.observed_generation == 0  # not reconciled until the job is seen
    assert reasons(plan.status) == ["Submitting"]
    assert condition(plan.status, "FlinkReachable") == "True"


def test_a_new_job_is_submitted_with_its_id_written_first() -> None:
    plan = decide(flinkjob(), obs())
    assert len(plan.actions) == 1
    submit = plan.actions[0]
    assert isinstance(submit, Submit)
    assert submit.savepoint_path is None
    op = plan.status.operation
    assert op is not None
    assert (op.kind, op.step, op.new_job_id) == ("submit", "submitting", submit.job_id)
    assert plan.status.lifecycle == Lifecycle.DEPLOYING
    assert len(submit.job_id) == 32
    int(submit.job_id, 16)  # Flink's JobID format: 32 hex digits


def test_the_same_inputs_give_the_same_plan() -> None:
    assert decide(flinkjob(), obs(now=T0)) == decide(flinkjob(), obs(now=T0))
    assert the(decide(flinkjob(), obs(now=T0 + 1)), Submit).job_id != new_id(NAME, T0, "submit")


def test_ids_are_hex_and_depend_on_name_time_and_purpose() -> None:
    ids = {
        new_id("a", T0, "submit"),
        new_id("b", T0, "submit"),
        new_id("a", T0 + 1, "submit"),
        new_id("a", T0, "upgrade-trigger"),
    }
    assert len(ids) == 4
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert new_id("a", T0, "submit") == new_id("a", T0, "submit")


def test_ids_are_stable_for_the_same_inputs_and_differ_otherwise() -> None:
    assert new_id("a", T0, "submit") == new_id("a", T0, "submit")
    assert (
        len({new_id("a", T0, "submit"), new_id("b", T0, "submit"), new_id("a", T0 + 1, "submit")})
        == 3
    )


@pytest.mark.parametrize("mode", ["savepoint", "last-state", "stateless"])
def test_a_new_job_starts_from_its_initial_savepoint(mode: str) -> None:
    plan = decide(flinkjob(job={"initialSavepointPath": SP, "upgradeMode": mode}), obs())
    assert the(plan, Submit).savepoint_path == SP
    assert plan.status.operation is not None
    assert plan.status.operation.savepoint_path == SP


def test_a_new_job_in_the_default_mode_starts_from_its_initial_savepoint() -> None:
    plan = decide(flinkjob(job={"initialSavepointPath": SP}), obs())
    assert isinstance(plan.actions[0], Submit)
    assert plan.actions[0].savepoint_path == SP


def test_a_submitted_job_once_visible_is_adopted_and_the_spec_reconciled() -> None:
    job, first = step(flinkjob(job={"initialSavepointPath": SP}), obs(now=T0))
    job_id = the(first, Submit).job_id
    plan = decide(job, obs(now=T0 + 3000, new_job=running(job_id, start_time=T0 + 2000)))
    st_ = plan.status
    assert plan.actions == []
    assert st_.operation is None
    assert st_.job_id == job_id
    assert st_.flink_state == "RUNNING"
    assert st_.job_started_at == T0 + 2000
    assert st_.last_reconciled_spec == job.spec
    assert st_.observed_generation == 1
    assert st_.upgrade_savepoint_path == SP
    assert st_.lifecycle == Lifecycle.RUNNING
    assert (st_.failures, st_.next_retry_at, st_.error) == (0, None, None)
    assert reasons(st_)[-1] == "Deployed"


def test_a_submitted_job_once_visible_is_adopted() -> None:
    first = decide(flinkjob(), obs())
    job_id = first.status.operation.new_job_id  # type: ignore[union-attr]
    job = with_status(flinkjob(), first.status)
    plan = decide(job, obs(new_job=running(str(job_id), start_time=T0)))
    st_ = plan.status
    assert plan.actions == []
    assert st_.operation is None
    assert st_.job_id == job_id
    assert st_.last_reconciled_spec == job.spec
    assert st_.observed_generation == 1
    assert st_.lifecycle == Lifecycle.RUNNING


def test_a_visible_job_whose_tasks_are_not_all_running_yet_is_deploying() -> None:
    job, first = step(flinkjob(), obs(now=T0))
    job_id = the(first, Submit).job_id
    plan = decide(job, obs(now=T0 + 1000, new_job=JobObservation(job_id, "CREATED")))
    assert plan.status.job_id == job_id
    assert plan.status.lifecycle == Lifecycle.DEPLOYING
    assert plan.status.job_started_at == T0 + 1000  # no start time from Flink: now


def test_a_submission_not_yet_visible_is_sent_again_with_the_same_id() -> None:
    job, first = step(flinkjob(), obs(now=T0))
    for later in (T0 + 1000, T0 + 60_000, T0 + 3_600_000):
        job, plan = step(job, obs(now=later))
        assert plan.actions == first.actions
        assert plan.status.operation == first.status.operation


def test_a_submission_not_yet_visible_a_few_seconds_later_is_sent_again() -> None:
    first = decide(flinkjob(), obs())
    job = with_status(flinkjob(), first.status)
    again = decide(job, obs(now=T0 + 5000))
    assert again.actions == first.actions
    assert again.status.operation == first.status.operation


def test_a_resubmission_waits_for_the_backoff_of_a_failed_submission() -> None:
    job, first = step(flinkjob(restartPolicy={"backoff": "2s"}), obs(now=T0))
    submit = the(first, Submit)
    job = with_status(job, action_failed(job, job.status, submit, "connection reset", T0 + 10))
    assert job.status.next_retry_at == T0 + 10 + 2000
    assert decide(job, obs(now=T0 + 2009)).actions == []
    assert decide(job, obs(now=T0 + 2010)).actions == [submit]
