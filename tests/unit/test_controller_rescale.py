"""In-place rescaling on the adaptive scheduler: a parallelism change (by the user or the
autoscaler) becomes a resource-requirements update of the running job, not a savepoint upgrade."""

from __future__ import annotations

from deploy.controller.decide import RESCALE_TIMEOUT_MS, decide, parallelism_only
from deploy.controller.model import JobObservation, Rescale, StopWithSavepoint
from deploy.spec import FlinkJob, Lifecycle
from tests.unit.test_controller_decide import (
    T0,
    _saturated,
    change,
    deployed,
    flinkjob,
    obs,
    running,
)


def _rescaling(job: FlinkJob, now: int = T0 + 1000) -> FlinkJob:
    plan = decide(job, obs(now=now, job=running(parallelism=1), adaptive=True))
    return job.model_copy(update={"status": plan.status})


def test_only_a_parallelism_difference_counts_as_a_rescale() -> None:
    job = flinkjob()
    assert parallelism_only(change(job, parallelism=2).spec, job.spec)
    assert not parallelism_only(job.spec, job.spec)
    assert not parallelism_only(change(job, parallelism=2).spec, None)
    both = change(job, parallelism=2, args=["--orders-topic", "other"])
    assert not parallelism_only(both.spec, job.spec)


def test_a_parallelism_change_on_the_adaptive_scheduler_rescales_in_place() -> None:
    job = change(deployed(flinkjob()), parallelism=3)
    plan = decide(job, obs(job=running(parallelism=1), adaptive=True))
    assert plan.actions == [Rescale("j1", 3)]
    op = plan.status.operation
    assert op is not None
    assert (op.kind, op.step, op.job_id) == ("rescale", "rescaling", "j1")
    assert op.spec is not None
    assert op.spec.job.parallelism == 3
    assert plan.status.lifecycle == Lifecycle.UPGRADING
    assert plan.status.job_id == "j1"  # the same job keeps running


def test_without_the_adaptive_scheduler_a_parallelism_change_is_a_savepoint_upgrade() -> None:
    job = change(deployed(flinkjob()), parallelism=3)
    plan = decide(job, obs(job=running(parallelism=1), adaptive=False))
    assert isinstance(plan.actions[0], StopWithSavepoint)


def test_another_change_with_the_parallelism_is_still_an_upgrade() -> None:
    job = change(deployed(flinkjob()), parallelism=3, args=["--orders-topic", "other"])
    plan = decide(job, obs(job=running(parallelism=1), adaptive=True))
    assert isinstance(plan.actions[0], StopWithSavepoint)


def test_a_rescale_is_done_when_every_task_runs_at_the_new_parallelism() -> None:
    job = _rescaling(change(deployed(flinkjob()), parallelism=3))
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
    job = job.model_copy(update={"status": st})
    plan = decide(job, obs(now=T0 + 13_000, job=running(parallelism=3), adaptive=True))
    assert plan.actions == []
    assert plan.status.operation is None


def test_a_rescale_request_flink_does_not_have_is_sent_again() -> None:
    job = _rescaling(change(deployed(flinkjob()), parallelism=3))
    # A controller that died after writing the status and before the request: Flink still has 1.
    lost = running(parallelism=1, requested_parallelism=1)
    plan = decide(job, obs(now=T0 + 5000, job=lost, adaptive=True))
    assert plan.actions == [Rescale("j1", 3)]


def test_a_rescale_short_of_slots_is_taken_as_it_runs_after_the_timeout() -> None:
    job = _rescaling(change(deployed(flinkjob()), parallelism=4))
    partial = running(parallelism=2, requested_parallelism=4)
    plan = decide(job, obs(now=T0 + 1000 + RESCALE_TIMEOUT_MS + 1, job=partial, adaptive=True))
    st = plan.status
    assert st.operation is None
    assert st.events[-1].type == "Warning"
    assert "runs at 2 of 4" in st.events[-1].message
    assert plan.actions == []


def test_a_job_that_ends_while_rescaling_is_left_to_the_next_decision() -> None:
    job = _rescaling(change(deployed(flinkjob()), parallelism=3))
    plan = decide(job, obs(now=T0 + 5000, job=JobObservation("j1", "FAILED"), adaptive=True))
    assert plan.status.operation is None
    assert plan.status.events[-1].reason == "RescaleAborted"


def test_an_autoscaler_decision_on_the_adaptive_scheduler_is_applied_in_place() -> None:
    job = deployed(
        flinkjob(autoscaler={"enabled": True, "maxParallelism": 4}), running_since=T0 - 600_000
    )
    samples = _saturated(1)
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
    job = job.model_copy(update={"status": plan.status})
    now = samples[-1].time + 10_000
    plan = decide(job, obs(now=now, job=running(parallelism=4), adaptive=True))
    assert plan.status.operation is None
    assert plan.status.last_reconciled_spec is not None
    assert plan.status.last_reconciled_spec.job.parallelism == 4
    assert job.spec.job.parallelism == 1
    job = job.model_copy(update={"status": plan.status})
    plan = decide(job, obs(now=now + 1000, job=running(parallelism=4), adaptive=True))
    assert plan.actions == []
