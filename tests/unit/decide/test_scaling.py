"""Parallelism changes (deploy/controller/decide/scaling.py). On the adaptive scheduler, a
parallelism change — by the user or the autoscaler — becomes a resource-requirements update of
the running job (in place), not a savepoint upgrade; elsewhere the autoscaler's choice is a
savepoint upgrade to it, and the user's spec keeps its own parallelism."""

from __future__ import annotations

from deploy.controller.decide import RESCALE_TIMEOUT_MS, decide, effective_spec, parallelism_only
from deploy.controller.model import (
    JobObservation,
    Rescale,
    StopWithSavepoint,
    Submit,
    TriggerObservation,
)
from deploy.spec import FlinkJob, Lifecycle
from tests.unit.builders import (
    SP,
    T0,
    change_job,
    deployed,
    flinkjob,
    obs,
    running,
    saturated,
    with_status,
)


def rescaling(job: FlinkJob, now: int = T0 + 1000) -> FlinkJob:
    """`job` after the reconcile that started its in-place rescale at `now`."""
    plan = decide(job, obs(now=now, job=running(parallelism=1), adaptive=True))
    return with_status(job, plan.status)


def autoscaled(max_parallelism: int) -> FlinkJob:
    """j1 has run at parallelism 1 for ten minutes, with the autoscaler on."""
    spec = {"enabled": True, "maxParallelism": max_parallelism}
    return deployed(flinkjob(autoscaler=spec), running_since=T0 - 600_000)


# -- in place, on the adaptive scheduler ----------------------------------------------------------


def test_only_a_parallelism_difference_counts_as_a_rescale() -> None:
    job = flinkjob()
    assert parallelism_only(change_job(job, parallelism=2).spec, job.spec)
    assert not parallelism_only(job.spec, job.spec)
    assert not parallelism_only(change_job(job, parallelism=2).spec, None)
    both = change_job(job, parallelism=2, args=["--orders-topic", "other"])
    assert not parallelism_only(both.spec, job.spec)


def test_a_parallelism_change_on_the_adaptive_scheduler_rescales_in_place(
    deployed_job: FlinkJob,
) -> None:
    job = change_job(deployed_job, parallelism=3)
    plan = decide(job, obs(job=running(parallelism=1), adaptive=True))
    assert plan.actions == [Rescale("j1", 3)]
    op = plan.status.operation
    assert op is not None
    assert (op.kind, op.step, op.job_id) == ("rescale", "rescaling", "j1")
    assert op.spec is not None
    assert op.spec.job.parallelism == 3
    assert plan.status.lifecycle == Lifecycle.UPGRADING
    assert plan.status.job_id == "j1"  # the same job keeps running


def test_without_the_adaptive_scheduler_a_parallelism_change_is_a_savepoint_upgrade(
    deployed_job: FlinkJob,
) -> None:
    job = change_job(deployed_job, parallelism=3)
    plan = decide(job, obs(job=running(parallelism=1), adaptive=False))
    assert isinstance(plan.actions[0], StopWithSavepoint)


def test_another_change_with_the_parallelism_is_still_an_upgrade(deployed_job: FlinkJob) -> None:
    job = change_job(deployed_job, parallelism=3, args=["--orders-topic", "other"])
    plan = decide(job, obs(job=running(parallelism=1), adaptive=True))
    assert isinstance(plan.actions[0], StopWithSavepoint)


def test_a_rescale_is_done_when_every_task_runs_at_the_new_parallelism(
    deployed_job: FlinkJob,
) -> None:
    job = rescaling(change_job(deployed_job, parallelism=3))
    # Flink has the request but has not restarted the tasks yet: nothing is sent again.
    waiting = running(parallelism=1, requested_parallelism=3)
    plan = decide(job, obs(now=T0 + 5000, job=waiting, adaptive=True))
    assert plan.actions == []
    assert plan.status.operation is not None
    restarting = JobObservation("j1", "RUNNING", all_running=False, parallelism=3)
    plan = decide(job, obs(now=T0 + 8000, job=restarting, adaptive=True))
    assert plan.status.operation is not None
    plan = decide(
        job,
        obs(now=T0 + 12_000, job=running(parallelism=3, requested_parallelism=3), adaptive=True),
    )
    st = plan.status
    assert st.operation is None
    assert st.parallelism == 3
    assert st.last_reconciled_spec is not None
    assert st.last_reconciled_spec.job.parallelism == 3
    assert st.observed_generation == job.metadata.generation
    assert st.lifecycle == Lifecycle.RUNNING
    assert st.events[-1].reason == "Rescaled"
    # …and the next reconcile sees nothing to do.
    job = with_status(job, st)
    plan = decide(job, obs(now=T0 + 13_000, job=running(parallelism=3), adaptive=True))
    assert plan.actions == []
    assert plan.status.operation is None


def test_a_rescale_request_flink_does_not_have_is_sent_again(deployed_job: FlinkJob) -> None:
    job = rescaling(change_job(deployed_job, parallelism=3))
    # A controller that died after writing the status and before the request: Flink still has 1.
    lost = running(parallelism=1, requested_parallelism=1)
    plan = decide(job, obs(now=T0 + 5000, job=lost, adaptive=True))
    assert plan.actions == [Rescale("j1", 3)]


def test_a_rescale_short_of_slots_is_taken_as_it_runs_after_the_timeout(
    deployed_job: FlinkJob,
) -> None:
    job = rescaling(change_job(deployed_job, parallelism=4))
    partial = running(parallelism=2, requested_parallelism=4)
    plan = decide(job, obs(now=T0 + 1000 + RESCALE_TIMEOUT_MS + 1, job=partial, adaptive=True))
    st = plan.status
    assert st.operation is None
    assert st.events[-1].type == "Warning"
    assert "runs at 2 of 4" in st.events[-1].message
    assert plan.actions == []


def test_a_job_that_ends_while_rescaling_is_left_to_the_next_decision(
    deployed_job: FlinkJob,
) -> None:
    job = rescaling(change_job(deployed_job, parallelism=3))
    plan = decide(job, obs(now=T0 + 5000, job=JobObservation("j1", "FAILED"), adaptive=True))
    assert plan.status.operation is None
    assert plan.status.events[-1].reason == "RescaleAborted"


# -- the autoscaler --------------------------------------------------------------------------------


def test_an_autoscaler_decision_is_a_savepoint_upgrade_to_the_chosen_parallelism() -> None:
    job = autoscaled(max_parallelism=4)
    samples = saturated(1)
    plan = decide(job, obs(now=samples[-1].time, job=running(), samples=samples, partitions=4))
    assert isinstance(plan.actions[0], StopWithSavepoint)
    a = plan.status.autoscaler
    assert a["parallelism"] == 4
    assert a["base"] == 1
    assert a["rescales"] == 1
    assert a["decisions"][-1]["reason"].startswith("scale up 1 → 4")
    # Once stopped, the new job is submitted at the autoscaler's parallelism; the spec keeps 1.
    job = with_status(job, plan.status)
    done = TriggerObservation("COMPLETED", location=SP)
    plan = decide(
        job, obs(now=samples[-1].time + 2000, job=JobObservation("j1", "FINISHED"), trigger=done)
    )
    submit = plan.actions[0]
    assert isinstance(submit, Submit)
    assert submit.spec.job.parallelism == 4
    assert job.spec.job.parallelism == 1


def test_the_autoscaler_is_capped_by_the_free_slots_and_a_user_scale_overrides_it() -> None:
    job = autoscaled(max_parallelism=8)
    samples = saturated(1)
    plan = decide(
        job,
        obs(now=samples[-1].time, job=running(), samples=samples, partitions=8, slots_for_job=2),
    )
    assert plan.status.autoscaler["parallelism"] == 2
    # The user scales by hand: the autoscaler's choice no longer applies.
    status = plan.status.model_copy(update={"operation": None})
    user = change_job(with_status(job, status), parallelism=3)
    assert effective_spec(user.spec, user.status).job.parallelism == 3


def test_an_autoscaler_decision_on_the_adaptive_scheduler_is_applied_in_place() -> None:
    job = autoscaled(max_parallelism=4)
    samples = saturated(1)
    plan = decide(
        job,
        obs(
            now=samples[-1].time,
            job=running(parallelism=1),
            samples=samples,
            partitions=4,
            adaptive=True,
        ),
    )
    assert plan.actions == [Rescale("j1", 4)]
    a = plan.status.autoscaler
    assert a["decisions"][-1]["applied"] == "in place"
    assert a["parallelism"] == 4
    # Once done, the spec the job runs is the autoscaler's; the user's spec keeps 1.
    job = with_status(job, plan.status)
    now = samples[-1].time + 10_000
    plan = decide(job, obs(now=now, job=running(parallelism=4), adaptive=True))
    assert plan.status.operation is None
    assert plan.status.last_reconciled_spec is not None
    assert plan.status.last_reconciled_spec.job.parallelism == 4
    assert job.spec.job.parallelism == 1
    job = with_status(job, plan.status)
    plan = decide(job, obs(now=now + 1000, job=running(parallelism=4), adaptive=True))
    assert plan.actions == []
