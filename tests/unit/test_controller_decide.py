"""The controller's decisions, case by case: decide(job, observation) → (status, actions)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.controller.autoscale import Sample, VertexSample
from deploy.controller.decide import (
    STABLE_AFTER_MS,
    action_failed,
    backoff_ms,
    decide,
    effective_spec,
    latest_state,
    new_id,
)
from deploy.controller.model import (
    Cancel,
    Dispose,
    Forget,
    JobObservation,
    Observation,
    StopWithSavepoint,
    Submit,
    TriggerObservation,
    TriggerSavepoint,
)
from deploy.controller.store import SAVEPOINT_ON_DELETE
from deploy.spec import FlinkJob, JobStatus, Lifecycle, Operation, SavepointInfo, parse

T0 = 1_800_000_000_000
SP = "file:/state/savepoints/savepoint-1"
CP = "file:/state/checkpoints/j1/chk-7"


def flinkjob(generation: int = 1, **spec: Any) -> FlinkJob:
    job = {"entry": "jobs.ledger", "args": ["--orders-topic", "orders"]}
    job.update(spec.pop("job", {}))
    job_doc = parse(
        {
            "apiVersion": "eddyline.dev/v1alpha1",
            "kind": "FlinkJob",
            "metadata": {"name": "ledger", "generation": generation},
            "spec": {"job": job, **spec},
        }
    )
    meta = job_doc.metadata.model_copy(update={"generation": generation})
    return job_doc.model_copy(update={"metadata": meta})


def with_status(job: FlinkJob, **fields: Any) -> FlinkJob:
    return job.model_copy(update={"status": JobStatus(**fields)})


def deployed(job: FlinkJob, **fields: Any) -> FlinkJob:
    """`job` as the controller leaves it once job j1 runs its current spec."""
    base: dict[str, Any] = {
        "job_id": "j1",
        "lifecycle": Lifecycle.RUNNING,
        "last_reconciled_spec": job.spec,
        "observed_generation": job.metadata.generation,
        "running_since": T0,
    }
    base.update(fields)
    return with_status(job, **base)


def running(job_id: str = "j1", **fields: Any) -> JobObservation:
    return JobObservation(job_id=job_id, state="RUNNING", all_running=True, **fields)


def obs(now: int = T0 + 1000, **fields: Any) -> Observation:
    return Observation(now=now, **fields)


def change(job: FlinkJob, **job_fields: Any) -> FlinkJob:
    """The same job with a changed spec.job and the generation bumped (as the store does)."""
    spec = job.spec.model_copy(update={"job": job.spec.job.model_copy(update=job_fields)})
    meta = job.metadata.model_copy(update={"generation": job.metadata.generation + 1})
    return job.model_copy(update={"spec": spec, "metadata": meta})


# -- first deployment ------------------------------------------------------------------------


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


def test_a_new_job_starts_from_its_initial_savepoint() -> None:
    plan = decide(flinkjob(job={"initialSavepointPath": SP}), obs())
    assert isinstance(plan.actions[0], Submit)
    assert plan.actions[0].savepoint_path == SP


def test_a_submission_not_yet_visible_is_sent_again_with_the_same_id() -> None:
    first = decide(flinkjob(), obs())
    job = flinkjob().model_copy(update={"status": first.status})
    again = decide(job, obs(now=T0 + 5000))
    assert again.actions == first.actions
    assert again.status.operation == first.status.operation


def test_a_submitted_job_once_visible_is_adopted() -> None:
    first = decide(flinkjob(), obs())
    job_id = first.status.operation.new_job_id  # type: ignore[union-attr]
    job = flinkjob().model_copy(update={"status": first.status})
    plan = decide(job, obs(new_job=running(str(job_id), start_time=T0)))
    st_ = plan.status
    assert plan.actions == []
    assert st_.operation is None
    assert st_.job_id == job_id
    assert st_.last_reconciled_spec == job.spec
    assert st_.observed_generation == 1
    assert st_.lifecycle == Lifecycle.RUNNING


def test_running_becomes_stable_after_a_while_and_remembers_the_stable_spec() -> None:
    job = deployed(flinkjob(), running_since=None)
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.status.lifecycle == Lifecycle.RUNNING
    assert plan.status.running_since == T0
    later = decide(
        job.model_copy(update={"status": plan.status}),
        obs(now=T0 + STABLE_AFTER_MS, job=running()),
    )
    assert later.status.lifecycle == Lifecycle.STABLE
    assert later.status.last_stable_spec == job.spec
    assert later.actions == []


def test_a_job_not_all_running_is_deploying() -> None:
    job = deployed(flinkjob())
    plan = decide(job, obs(job=JobObservation("j1", "RESTARTING", all_running=False)))
    assert plan.status.lifecycle == Lifecycle.DEPLOYING
    assert plan.status.running_since is None


# -- upgrades ----------------------------------------------------------------------------------


def test_a_spec_change_with_savepoint_mode_stops_with_a_savepoint() -> None:
    job = change(deployed(flinkjob()), parallelism=2)
    plan = decide(job, obs(job=running()))
    assert len(plan.actions) == 1
    stop = plan.actions[0]
    assert isinstance(stop, StopWithSavepoint)
    assert stop.job_id == "j1"
    op = plan.status.operation
    assert op is not None
    assert (op.kind, op.step, op.trigger_id) == ("upgrade", "stopping", stop.trigger_id)
    assert plan.status.lifecycle == Lifecycle.UPGRADING


def _stopping(job: FlinkJob, kind: str = "upgrade") -> FlinkJob:
    op = Operation(
        kind=kind,  # type: ignore[arg-type]
        step="stopping",
        started_at=T0,
        job_id="j1",
        trigger_id="t1",
        trigger=kind,  # type: ignore[arg-type]
    )
    return job.model_copy(
        update={"status": job.status.model_copy(update={"operation": op, "lifecycle": "UPGRADING"})}
    )


def test_a_completed_stop_records_the_savepoint_then_resubmits_from_it() -> None:
    job = _stopping(change(deployed(flinkjob()), parallelism=2))
    finished = JobObservation("j1", "FINISHED")
    plan = decide(job, obs(job=finished, trigger=TriggerObservation("COMPLETED", location=SP)))
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


def test_a_completed_savepoint_waits_until_the_old_job_has_ended() -> None:
    job = _stopping(change(deployed(flinkjob()), parallelism=2))
    plan = decide(job, obs(job=running(), trigger=TriggerObservation("COMPLETED", location=SP)))
    assert plan.actions == []
    assert plan.status.operation is not None
    assert plan.status.operation.savepoint_path == SP
    assert plan.status.operation.step == "stopping"


def test_a_stop_flink_does_not_know_is_sent_again_with_the_same_trigger() -> None:
    job = _stopping(change(deployed(flinkjob()), parallelism=2))
    plan = decide(job, obs(job=running(), trigger=TriggerObservation("UNKNOWN")))
    assert plan.actions == [StopWithSavepoint("j1", "t1")]


def test_a_failed_savepoint_leaves_the_job_running_and_backs_off() -> None:
    job = _stopping(change(deployed(flinkjob()), parallelism=2))
    plan = decide(
        job, obs(job=running(), trigger=TriggerObservation("FAILED", failure="disk full"))
    )
    assert plan.actions == []
    assert plan.status.operation is None
    assert plan.status.lifecycle == Lifecycle.RUNNING
    assert "disk full" in str(plan.status.error)
    assert plan.status.next_retry_at == T0 + 1000 + 5000
    # While backing off, nothing is retried.
    later = decide(
        job.model_copy(update={"status": plan.status}), obs(now=T0 + 2000, job=running())
    )
    assert later.actions == []


def test_a_stopped_job_whose_answer_was_lost_resumes_from_its_own_savepoint() -> None:
    job = _stopping(change(deployed(flinkjob()), parallelism=2))
    finished = JobObservation("j1", "FINISHED", latest_savepoint=SP, latest_savepoint_time=T0 + 10)
    plan = decide(job, obs(job=finished, trigger=TriggerObservation("UNKNOWN")))
    assert isinstance(plan.actions[0], Submit)
    assert plan.actions[0].savepoint_path == SP


def test_last_state_upgrade_cancels_then_resumes_from_the_last_checkpoint() -> None:
    job = change(deployed(flinkjob(job={"upgradeMode": "last-state"})), parallelism=2)
    plan = decide(job, obs(job=running()))
    assert plan.actions == [Cancel("j1")]
    assert plan.status.operation is not None
    assert plan.status.operation.step == "cancelling"
    job = job.model_copy(update={"status": plan.status})
    cancelled = JobObservation("j1", "CANCELED", latest_checkpoint=CP, latest_checkpoint_time=T0)
    plan = decide(job, obs(now=T0 + 3000, job=cancelled))
    assert isinstance(plan.actions[0], Submit)
    assert plan.actions[0].savepoint_path == CP


def test_stateless_upgrade_cancels_then_starts_fresh() -> None:
    job = change(deployed(flinkjob(job={"upgradeMode": "stateless"})), parallelism=2)
    plan = decide(job, obs(job=running()))
    assert plan.actions == [Cancel("j1")]
    job = job.model_copy(update={"status": plan.status})
    cancelled = JobObservation("j1", "CANCELED", latest_checkpoint=CP, latest_checkpoint_time=T0)
    plan = decide(job, obs(now=T0 + 3000, job=cancelled))
    assert isinstance(plan.actions[0], Submit)
    assert plan.actions[0].savepoint_path is None


def test_a_restart_nonce_restarts_and_an_autoscaler_change_does_not() -> None:
    job = deployed(flinkjob())
    spec = job.spec.model_copy(update={"restart_nonce": 1})
    meta = job.metadata.model_copy(update={"generation": 2})
    plan = decide(job.model_copy(update={"spec": spec, "metadata": meta}), obs(job=running()))
    assert isinstance(plan.actions[0], StopWithSavepoint)

    auto = job.spec.autoscaler.model_copy(update={"max_parallelism": 4})
    spec = job.spec.model_copy(update={"autoscaler": auto})
    plan = decide(job.model_copy(update={"spec": spec, "metadata": meta}), obs(job=running()))
    assert plan.actions == []
    assert plan.status.observed_generation == 2
    assert plan.status.last_reconciled_spec == spec


# -- suspend and resume ------------------------------------------------------------------------


def test_suspend_stops_with_a_savepoint_and_resume_starts_from_it() -> None:
    job = change(deployed(flinkjob()), state="suspended")
    plan = decide(job, obs(job=running()))
    assert isinstance(plan.actions[0], StopWithSavepoint)
    assert plan.status.operation is not None
    assert plan.status.operation.kind == "suspend"

    job = job.model_copy(update={"status": plan.status})
    trig = TriggerObservation("COMPLETED", location=SP)
    plan = decide(job, obs(job=JobObservation("j1", "FINISHED"), trigger=trig))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.SUSPENDED
    assert plan.status.job_id is None
    assert plan.status.upgrade_savepoint_path == SP
    assert [s.trigger for s in plan.status.savepoints] == ["suspend"]

    resumed = change(job.model_copy(update={"status": plan.status}), state="running")
    plan = decide(resumed, obs(now=T0 + 9000))
    assert isinstance(plan.actions[0], Submit)
    assert plan.actions[0].savepoint_path == SP


def test_a_job_submitted_suspended_is_not_started() -> None:
    plan = decide(flinkjob(job={"state": "suspended"}), obs())
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.SUSPENDED


# -- savepoints --------------------------------------------------------------------------------


def test_a_savepoint_nonce_triggers_a_manual_savepoint() -> None:
    job = deployed(flinkjob())
    spec = job.spec.model_copy(update={"savepoint_trigger_nonce": 1})
    plan = decide(job.model_copy(update={"spec": spec}), obs(job=running()))
    assert len(plan.actions) == 1
    trigger = plan.actions[0]
    assert isinstance(trigger, TriggerSavepoint)
    assert plan.status.last_savepoint_nonce == 1
    job = job.model_copy(update={"spec": spec, "status": plan.status})
    done = TriggerObservation("COMPLETED", location=SP)
    plan = decide(job, obs(job=running(), trigger=done))
    assert [(s.path, s.trigger) for s in plan.status.savepoints] == [(SP, "manual")]
    assert plan.status.operation is None


def test_periodic_savepoints_fall_due_after_their_interval() -> None:
    job = deployed(flinkjob(savepoints={"interval": "1m"}), job_started_at=T0)
    assert decide(job, obs(now=T0 + 59_000, job=running())).actions == []
    plan = decide(job, obs(now=T0 + 60_000, job=running()))
    assert isinstance(plan.actions[0], TriggerSavepoint)
    assert plan.status.operation is not None
    assert plan.status.operation.trigger == "periodic"


def test_retention_disposes_by_count_and_age_but_never_the_newest_or_the_upgrade_one() -> None:
    def sp(i: int, age_h: int) -> SavepointInfo:
        return SavepointInfo(path=f"sp{i}", time=T0 - age_h * 3_600_000, trigger="periodic")

    kept = [sp(1, 100), sp(2, 50), sp(3, 30), sp(4, 2), sp(5, 1)]
    job = deployed(
        flinkjob(savepoints={"maxCount": 3, "maxAge": "1d"}),
        savepoints=kept,
        upgrade_savepoint_path="sp1",
    )
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.actions == [Dispose("sp2"), Dispose("sp3")]
    assert [s.path for s in plan.status.savepoints] == ["sp1", "sp4", "sp5"]


# -- failures ----------------------------------------------------------------------------------


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

    job = job.model_copy(update={"status": plan.status})
    assert decide(job, obs(now=T0 + 1999, job=failed)).actions == []
    plan = decide(job, obs(now=T0 + 2000, job=failed))
    assert isinstance(plan.actions[0], Submit)
    assert plan.actions[0].savepoint_path == CP  # newer than the savepoint
    assert plan.status.restarts == 1
    assert plan.status.operation is not None
    assert plan.status.operation.kind == "restart"


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_ms("5s", "30s", n) for n in range(5)] == [5000, 10000, 20000, 30000, 30000]


def test_after_max_retries_the_job_is_failed_with_the_cause_and_left_alone() -> None:
    job = deployed(flinkjob(restartPolicy={"maxRetries": 2}), restarts=2)
    failed = JobObservation("j1", "FAILED", root_exception="RuntimeError: boom\nmore lines")
    plan = decide(job, obs(job=failed))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.FAILED
    assert plan.status.error == "failed after 2 restarts: RuntimeError: boom"
    job = job.model_copy(update={"status": plan.status})
    again = decide(job, obs(now=T0 + 600_000, job=failed))
    assert again.actions == []
    assert again.status.events == plan.status.events  # no new event each reconcile

    # A spec change is a new try (from the newest state).
    fixed = change(job, parallelism=2)
    plan = decide(fixed, obs(now=T0 + 700_000, job=failed))
    assert isinstance(plan.actions[0], Submit)
    assert plan.status.restarts == 0


def test_a_job_gone_from_flink_is_treated_as_failed() -> None:
    job = deployed(flinkjob())
    plan = decide(job, obs(now=T0, job=None))
    assert plan.actions == []
    assert "gone from Flink" in str(plan.status.error)
    assert plan.status.next_retry_at is not None


def test_a_job_cancelled_outside_the_controller_is_failed_until_restarted() -> None:
    job = deployed(flinkjob())
    plan = decide(job, obs(job=JobObservation("j1", "CANCELED")))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.FAILED
    assert "outside the controller" in str(plan.status.error)


# -- unreachable, refused ----------------------------------------------------------------------


def test_flink_unreachable_changes_nothing_but_says_so_and_backs_off() -> None:
    job = change(deployed(flinkjob()), parallelism=2)
    plan = decide(job, obs(now=T0, flink_error="connection refused"))
    assert plan.actions == []
    st_ = plan.status
    assert "Flink unreachable: connection refused" in str(st_.error)
    assert st_.outages == 1
    assert st_.outage_retry_at == T0 + 1000
    assert st_.job_id == "j1"
    assert [c.status for c in st_.conditions if c.type == "FlinkReachable"] == ["False"]
    job = job.model_copy(update={"status": st_})
    plan = decide(job, obs(now=T0 + 1000, flink_error="connection refused"))
    assert plan.status.outage_retry_at == T0 + 1000 + 2000
    recovered = decide(
        job.model_copy(update={"status": plan.status}), obs(now=T0 + 5000, job=running())
    )
    assert recovered.status.outages == 0
    assert recovered.status.error is None
    assert [c.status for c in recovered.status.conditions if c.type == "FlinkReachable"] == ["True"]
    assert isinstance(recovered.actions[0], StopWithSavepoint)  # the pending change goes on


def test_a_spec_that_cannot_run_here_fails_without_a_submission() -> None:
    plan = decide(flinkjob(), obs(precheck_error="input topics are not co-partitioned"))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.FAILED
    assert plan.status.error == "input topics are not co-partitioned"
    job = flinkjob().model_copy(update={"status": plan.status})
    assert decide(job, obs(now=T0 + 60_000)).actions == []  # until the spec changes


def test_kafka_unreachable_waits_and_retries() -> None:
    plan = decide(flinkjob(), obs(kafka_error="waiting for input topics to exist: orders"))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.CREATED
    assert "waiting for input topics" in str(plan.status.error)
    assert plan.status.outage_retry_at is not None


# -- deletion ----------------------------------------------------------------------------------


def _deleting(job: FlinkJob, savepoint: bool) -> FlinkJob:
    annotations = {SAVEPOINT_ON_DELETE: "true" if savepoint else "false"}
    meta = job.metadata.model_copy(
        update={"deletion_timestamp": "2026-11-26T00:00:00Z", "annotations": annotations}
    )
    return job.model_copy(update={"metadata": meta})


def test_delete_without_savepoint_cancels_and_forgets() -> None:
    plan = decide(_deleting(deployed(flinkjob()), False), obs(job=running()))
    assert plan.actions == [Cancel("j1"), Forget()]
    assert plan.status.lifecycle == Lifecycle.DELETING


def test_delete_with_savepoint_stops_with_one_then_forgets() -> None:
    job = _deleting(deployed(flinkjob()), True)
    plan = decide(job, obs(job=running()))
    assert isinstance(plan.actions[0], StopWithSavepoint)
    job = job.model_copy(update={"status": plan.status})
    done = TriggerObservation("COMPLETED", location=SP)
    # The savepoint is done but the job is still winding down: not gone yet.
    plan = decide(job, obs(job=running(), trigger=done))
    assert plan.actions == []
    job = job.model_copy(update={"status": plan.status})
    plan = decide(job, obs(job=JobObservation("j1", "FINISHED"), trigger=done))
    assert plan.actions == [Forget()]
    assert [s.trigger for s in plan.status.savepoints] == ["delete"]


# -- failed actions, purity, ids ---------------------------------------------------------------


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


def test_a_failed_disposal_is_only_an_event() -> None:
    job = deployed(flinkjob())
    st_ = action_failed(job, job.status, Dispose("sp"), "not found", T0)
    assert st_.failures == 0
    assert st_.error is None
    assert st_.events[-1].reason == "DisposeFailed"


def test_ids_are_stable_for_the_same_inputs_and_differ_otherwise() -> None:
    assert new_id("a", T0, "submit") == new_id("a", T0, "submit")
    assert (
        len({new_id("a", T0, "submit"), new_id("b", T0, "submit"), new_id("a", T0 + 1, "submit")})
        == 3
    )


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


OBSERVATIONS = st.builds(
    Observation,
    now=st.integers(T0, T0 + 10_000_000),
    flink_error=st.none() | st.just("down"),
    job=st.none()
    | st.builds(
        JobObservation,
        job_id=st.sampled_from(["j1", "j2"]),
        state=st.sampled_from(["RUNNING", "FAILED", "FINISHED", "CANCELED", "RESTARTING"]),
        all_running=st.booleans(),
        latest_savepoint=st.none() | st.just(SP),
        latest_savepoint_time=st.none() | st.just(T0 + 5),
    ),
    new_job=st.none() | st.builds(JobObservation, job_id=st.just("n1"), state=st.just("RUNNING")),
    trigger=st.none()
    | st.builds(
        TriggerObservation,
        state=st.sampled_from(["IN_PROGRESS", "COMPLETED", "FAILED", "UNKNOWN"]),
        location=st.just(SP),
    ),
    precheck_error=st.none() | st.just("bad"),
    kafka_error=st.none() | st.just("down"),
)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(OBSERVATIONS, min_size=1, max_size=12),
    parallelism=st.integers(1, 3),
    suspended=st.booleans(),
)
def test_every_submission_is_written_to_the_status_before_it_is_sent(
    steps: list[Observation], parallelism: int, suspended: bool
) -> None:
    """Whatever Flink answers, a plan sends at most one submission, and its id is the one the
    returned status records (which the loop writes before acting); decide never mutates."""
    job = flinkjob(
        job={"parallelism": parallelism, "state": "suspended" if suspended else "running"}
    )
    for observation in sorted(steps, key=lambda o: o.now):
        before = job.model_copy(deep=True)
        plan = decide(job, observation)
        assert job == before
        submits = [a for a in plan.actions if isinstance(a, Submit)]
        assert len(submits) <= 1
        if submits:
            assert plan.status.operation is not None
            assert plan.status.operation.new_job_id == submits[0].job_id
        stops = [a for a in plan.actions if isinstance(a, StopWithSavepoint | TriggerSavepoint)]
        for a in stops:
            assert plan.status.operation is not None
            assert plan.status.operation.trigger_id == a.trigger_id
        if any(isinstance(a, Forget) for a in plan.actions):
            break
        job = job.model_copy(update={"status": plan.status})


# -- the autoscaler inside decide ---------------------------------------------------------------


def _saturated(parallelism: int, n: int = 8) -> tuple[Sample, ...]:
    return tuple(
        Sample(
            time=T0 + i * 5000,
            parallelism=parallelism,
            vertices=(
                VertexSample("src", 0.1, 0.0, records_out_per_s=1000.0, is_source=True),
                VertexSample("ledger", 1.0, 1000.0),
            ),
            lag=10_000 + i * 5_000,
            input_rate=1000.0,
        )
        for i in range(n)
    )


def test_an_autoscaler_decision_is_a_savepoint_upgrade_to_the_chosen_parallelism() -> None:
    job = deployed(
        flinkjob(autoscaler={"enabled": True, "maxParallelism": 4}), running_since=T0 - 600_000
    )
    samples = _saturated(1)
    plan = decide(job, obs(now=samples[-1].time, job=running(), samples=samples, partitions=4))
    assert isinstance(plan.actions[0], StopWithSavepoint)
    a = plan.status.autoscaler
    assert a["parallelism"] == 4
    assert a["base"] == 1
    assert a["rescales"] == 1
    assert a["decisions"][-1]["reason"].startswith("scale up 1 → 4")
    # Once stopped, the new job is submitted at the autoscaler's parallelism; the spec keeps 1.
    job = job.model_copy(update={"status": plan.status})
    done = TriggerObservation("COMPLETED", location=SP)
    plan = decide(
        job, obs(now=samples[-1].time + 2000, job=JobObservation("j1", "FINISHED"), trigger=done)
    )
    submit = plan.actions[0]
    assert isinstance(submit, Submit)
    assert submit.spec.job.parallelism == 4
    assert job.spec.job.parallelism == 1


def test_the_autoscaler_is_capped_by_the_free_slots_and_a_user_scale_overrides_it() -> None:
    job = deployed(
        flinkjob(autoscaler={"enabled": True, "maxParallelism": 8}), running_since=T0 - 600_000
    )
    samples = _saturated(1)
    plan = decide(
        job,
        obs(now=samples[-1].time, job=running(), samples=samples, partitions=8, slots_for_job=2),
    )
    assert plan.status.autoscaler["parallelism"] == 2
    # The user scales by hand: the autoscaler's choice no longer applies.
    status = plan.status.model_copy(update={"operation": None})
    user = change(job.model_copy(update={"status": status}), parallelism=3)
    assert effective_spec(user.spec, user.status).job.parallelism == 3
