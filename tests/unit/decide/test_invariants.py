"""What holds for every decision, whatever the rule: decide never changes its input, gives the
same plan for the same input, and writes every id it sends into the status it returns (the loop
writes that status before it acts) — checked on fixed scenarios and on random sequences."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.controller.decide import action_failed, decide
from deploy.controller.model import (
    Forget,
    JobObservation,
    Observation,
    StopWithSavepoint,
    Submit,
    TriggerObservation,
    TriggerSavepoint,
)
from deploy.spec import FlinkJob, UpgradeMode
from tests.unit.builders import (
    CP,
    SP,
    SP2,
    T0,
    change_job,
    deleting,
    deployed,
    ended,
    flinkjob,
    obs,
    running,
    savepoint_info,
    savepointing,
    stopping,
    with_status,
)

# -- purity ----------------------------------------------------------------------------------------

DONE = TriggerObservation("COMPLETED", location=SP)
SCENARIOS = [
    (flinkjob(), obs()),
    (deployed(flinkjob()), obs(job=running())),
    (change_job(deployed(flinkjob()), parallelism=2), obs(job=running())),
    (stopping(deployed(flinkjob())), obs(job=running(), trigger=DONE)),
    (stopping(deployed(flinkjob())), obs(job=ended(), trigger=DONE)),
    (stopping(deployed(flinkjob())), obs(job=running(), trigger=TriggerObservation("FAILED"))),
    (savepointing(deployed(flinkjob())), obs(job=running(), trigger=DONE)),
    (
        deployed(
            flinkjob(savepoints={"maxCount": 1}),
            savepoints=[savepoint_info(1, 9), savepoint_info(2, 1)],
        ),
        obs(job=running()),
    ),
    (deployed(flinkjob()), obs(job=ended(state="FAILED"))),
    (deployed(flinkjob(), next_retry_at=T0), obs(job=ended(state="FAILED"))),
    (deployed(flinkjob()), obs(flink_error="down")),
    (deployed(flinkjob(), outages=2, outage_retry_at=T0), obs(job=running())),
    (deleting(deployed(flinkjob()), True), obs(job=running())),
    (change_job(deployed(flinkjob()), state="suspended"), obs(job=running())),
]


@pytest.mark.parametrize(("job", "observation"), SCENARIOS)
def test_decide_never_changes_its_input(job: FlinkJob, observation: Observation) -> None:
    before = job.model_copy(deep=True)
    plan = decide(job, observation)
    assert job == before
    # Changing the returned status afterwards does not reach the input either.
    plan.status.events.clear()
    plan.status.savepoints.clear()
    plan.status.conditions.clear()
    if plan.status.operation is not None:
        plan.status.operation.job_id = "mutated"
    assert job == before


# -- the write-ahead invariant under random observations ------------------------------------------

JOB_IDS = ["j1", "j2"]
STATES = ["RUNNING", "RESTARTING", "CREATED", "FAILED", "FINISHED", "CANCELED"]


@st.composite
def job_observations(draw: st.DrawFn, job_id: str) -> JobObservation | None:
    if draw(st.integers(0, 4)) == 0:
        return None
    state = draw(st.sampled_from(STATES))
    return JobObservation(
        job_id=job_id,
        state=state,
        all_running=state == "RUNNING" and draw(st.booleans()),
        root_exception=draw(st.none() | st.just("RuntimeError: boom\nmore")),
        latest_checkpoint=draw(st.none() | st.just(CP)),
        latest_checkpoint_time=T0,
        latest_savepoint=draw(st.none() | st.just(SP2)),
        latest_savepoint_time=draw(st.integers(T0 - 1000, T0 + 10_000_000)),
    )


@st.composite
def events(draw: st.DrawFn, job: FlinkJob, now: int) -> tuple[str, Any]:
    """What happens next: a spec change, a deletion request, or an observation of the jobs the
    status names (consistent ids, random states)."""
    kind = draw(st.sampled_from(["observe"] * 6 + ["change", "delete"]))
    if kind == "change":
        return kind, draw(
            st.sampled_from(
                [
                    {"parallelism": 2},
                    {"parallelism": 1},
                    {"state": "suspended"},
                    {"state": "running"},
                    {"upgrade_mode": UpgradeMode.last_state},
                    {"upgrade_mode": UpgradeMode.stateless},
                    {"upgrade_mode": UpgradeMode.savepoint},
                ]
            )
        )
    if kind == "delete":
        return kind, draw(st.booleans())
    st_ = job.status
    op = st_.operation
    observed_id = st_.job_id or (op.job_id if op else None) or draw(st.sampled_from(JOB_IDS))
    new_job = None
    if op is not None and op.new_job_id:
        new_job = draw(job_observations(op.new_job_id))
    trigger = None
    if op is not None and op.trigger_id:
        trigger = draw(
            st.none()
            | st.builds(
                TriggerObservation,
                state=st.sampled_from(["IN_PROGRESS", "COMPLETED", "FAILED", "UNKNOWN"]),
                location=st.sampled_from([SP, SP2]),
                failure=st.just("boom"),
            )
        )
    return kind, Observation(
        now=now,
        flink_error=draw(st.sampled_from([None] * 8 + ["down"])),
        job=draw(job_observations(observed_id)),
        new_job=new_job,
        trigger=trigger,
        precheck_error=draw(st.sampled_from([None] * 8 + ["refused"])),
        kafka_error=draw(st.sampled_from([None] * 6 + ["kafka down"])),
    )


@settings(max_examples=300, deadline=None)
@given(data=st.data(), fail_actions=st.lists(st.booleans(), min_size=30, max_size=30))
def test_write_ahead_holds_for_any_sequence_of_observations(
    data: st.DataObject, fail_actions: list[bool]
) -> None:
    """Whatever happens, a plan sends at most one submission, and the ids of every submission
    and savepoint request it sends are the ones its status records (the loop writes the status
    before it acts); decide never changes its input and gives the same plan twice."""
    job = flinkjob(restartPolicy={"maxRetries": 2, "backoff": "1s"})
    now = T0
    for i in range(data.draw(st.integers(1, 30), label="steps")):
        now += data.draw(st.integers(0, 120_000), label="elapsed")
        kind, what = data.draw(events(job, now), label="event")
        if kind == "change":
            if job.metadata.deletion_timestamp is None:
                job = change_job(job, **what)
            continue
        if kind == "delete":
            job = deleting(job, what)
            continue
        observation: Observation = what
        before = job.model_copy(deep=True)
        plan = decide(job, observation)
        assert job == before
        assert decide(job, observation) == plan
        st_ = plan.status
        op = st_.operation
        submits = [a for a in plan.actions if isinstance(a, Submit)]
        assert len(submits) <= 1
        if observation.flink_error:
            assert plan.actions == []
        for submit in submits:
            assert op is not None
            assert op.step == "submitting"
            assert op.new_job_id == submit.job_id
            assert op.savepoint_path == submit.savepoint_path
        for request in plan.actions:
            if isinstance(request, StopWithSavepoint | TriggerSavepoint):
                assert op is not None
                assert op.trigger_id == request.trigger_id
                assert op.job_id == request.job_id
        if any(isinstance(a, Forget) for a in plan.actions):
            assert job.metadata.deletion_timestamp is not None
            assert isinstance(plan.actions[-1], Forget)
            return
        if job.metadata.deletion_timestamp is not None:
            assert submits == []
        job = with_status(job, st_)
        # Sometimes the first action fails when the loop performs it.
        if plan.actions and fail_actions[i]:
            job = with_status(job, action_failed(job, st_, plan.actions[0], "boom", now))


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
        job = with_status(job, plan.status)
