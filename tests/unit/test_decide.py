"""The controller's decision function (deploy/controller/decide.py), case by case.

decide(job, observation) → Plan(status, actions) is pure: each test builds a FlinkJob in some
state and an Observation with an explicit `now`, and checks the returned status and actions.
Multi-step scenarios feed the returned status back in, as the loop does after writing it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.controller.decide import (
    HA_RECOVERY_MS,
    MAX_EVENTS,
    MAX_RETRY_MS,
    SAVEPOINT_TIMEOUT_MS,
    STABLE_AFTER_MS,
    Plan,
    action_failed,
    backoff_ms,
    decide,
    latest_state,
    needs_upgrade,
    new_id,
)
from deploy.controller.model import (
    Action,
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
from deploy.spec import (
    FlinkJob,
    FlinkJobSpec,
    JobSpec,
    JobStatus,
    Lifecycle,
    Operation,
    SavepointInfo,
    UpgradeMode,
    parse,
)

T0 = 1_800_000_000_000  # epoch ms
NAME = "ledger"
SP = "file:/state/savepoints/savepoint-aa"
SP2 = "file:/state/savepoints/savepoint-bb"
CP = "file:/state/checkpoints/j1/chk-7"
DELETED_AT = "2026-11-26T12:00:00Z"


# -- building jobs and observations -------------------------------------------------------------


def flinkjob(generation: int = 1, **spec: Any) -> FlinkJob:
    """A FlinkJob as the store holds it (generation as given); `job` entries merge into
    spec.job, other keyword arguments are spec sections (camelCase, as in YAML)."""
    job: dict[str, Any] = {"entry": "jobs.ledger", "args": ["--orders-topic", "orders"]}
    job.update(spec.pop("job", {}))
    parsed = parse(
        {
            "apiVersion": "eddyline.dev/v1alpha1",
            "kind": "FlinkJob",
            "metadata": {"name": NAME},
            "spec": {"job": job, **spec},
        }
    )
    meta = parsed.metadata.model_copy(update={"generation": generation})
    return parsed.model_copy(update={"metadata": meta})


def with_status(job: FlinkJob, status: JobStatus) -> FlinkJob:
    return job.model_copy(update={"status": status})


def set_status(job: FlinkJob, **fields: Any) -> FlinkJob:
    """`job` with some status fields replaced."""
    return with_status(job, job.status.model_copy(update=fields))


def deployed(job: FlinkJob, **fields: Any) -> FlinkJob:
    """`job` as the controller leaves it once job j1 runs its current spec."""
    status: dict[str, Any] = {
        "job_id": "j1",
        "flink_state": "RUNNING",
        "lifecycle": Lifecycle.RUNNING,
        "last_reconciled_spec": job.spec,
        "observed_generation": job.metadata.generation,
        "running_since": T0 - 1000,
        "job_started_at": T0 - 2000,
        "last_restart_nonce": job.spec.restart_nonce,
        "last_savepoint_nonce": job.spec.savepoint_trigger_nonce,
    }
    status.update(fields)
    return with_status(job, JobStatus(**status))


def change_job(job: FlinkJob, **job_fields: Any) -> FlinkJob:
    """A user's change to spec.job: the spec changes and the generation goes up (the store)."""
    new_job = JobSpec.model_validate({**job.spec.job.model_dump(), **job_fields})
    return change_spec(job, job=new_job)


def change_spec(flink_job: FlinkJob, **spec_fields: Any) -> FlinkJob:
    """A user's change to the spec (validated, snake_case fields), with a new generation."""
    spec = FlinkJobSpec.model_validate({**dict(flink_job.spec), **spec_fields})
    meta = flink_job.metadata.model_copy(update={"generation": flink_job.metadata.generation + 1})
    return flink_job.model_copy(update={"spec": spec, "metadata": meta})


def deleting(job: FlinkJob, savepoint: bool | None) -> FlinkJob:
    annotations = dict(job.metadata.annotations)
    if savepoint is not None:
        annotations[SAVEPOINT_ON_DELETE] = "true" if savepoint else "false"
    meta = job.metadata.model_copy(
        update={"deletion_timestamp": DELETED_AT, "annotations": annotations}
    )
    return job.model_copy(update={"metadata": meta})


def running(job_id: str = "j1", **fields: Any) -> JobObservation:
    return JobObservation(job_id=job_id, state="RUNNING", all_running=True, **fields)


def ended(job_id: str = "j1", state: str = "FINISHED", **fields: Any) -> JobObservation:
    return JobObservation(job_id=job_id, state=state, **fields)


def obs(now: int = T0, **fields: Any) -> Observation:
    return Observation(now=now, **fields)


def step(job: FlinkJob, observation: Observation) -> tuple[FlinkJob, Plan]:
    """One reconcile: decide, then the job with the plan's status (what the loop writes)."""
    plan = decide(job, observation)
    return with_status(job, plan.status), plan


def the(plan: Plan, kind: type) -> Any:
    """The plan's only action, which must be of `kind`."""
    assert len(plan.actions) == 1, plan.actions
    action = plan.actions[0]
    assert isinstance(action, kind), plan.actions
    return action


def reasons(status: JobStatus) -> list[str]:
    return [e.reason for e in status.events]


def condition(status: JobStatus, type_: str) -> str | None:
    found = [c.status for c in status.conditions if c.type == type_]
    assert len(found) <= 1
    return found[0] if found else None


def stopping(job: FlinkJob, kind: str = "upgrade", **op: Any) -> FlinkJob:
    """`job` with a stop-with-savepoint of j1 (trigger t1) in flight since T0."""
    fields: dict[str, Any] = {
        "kind": kind,
        "step": "stopping",
        "started_at": T0,
        "job_id": "j1",
        "trigger_id": "t1",
        "trigger": kind,
        "upgrade_mode": UpgradeMode.savepoint,
    }
    fields.update(op)
    return set_status(job, operation=Operation(**fields), lifecycle=Lifecycle.UPGRADING)


def savepointing(job: FlinkJob, trigger: str = "manual") -> FlinkJob:
    op = Operation(
        kind="savepoint",
        step="savepointing",
        started_at=T0,
        job_id="j1",
        trigger_id="t2",
        trigger=trigger,  # type: ignore[arg-type]
    )
    return set_status(job, operation=op)


# -- first deployment ------------------------------------------------------------------------------


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


@pytest.mark.parametrize("mode", ["savepoint", "last-state", "stateless"])
def test_a_new_job_starts_from_its_initial_savepoint(mode: str) -> None:
    plan = decide(flinkjob(job={"initialSavepointPath": SP, "upgradeMode": mode}), obs())
    assert the(plan, Submit).savepoint_path == SP
    assert plan.status.operation is not None
    assert plan.status.operation.savepoint_path == SP


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


def test_a_resubmission_waits_for_the_backoff_of_a_failed_submission() -> None:
    job, first = step(flinkjob(restartPolicy={"backoff": "2s"}), obs(now=T0))
    submit = the(first, Submit)
    job = with_status(job, action_failed(job, job.status, submit, "connection reset", T0 + 10))
    assert job.status.next_retry_at == T0 + 10 + 2000
    assert decide(job, obs(now=T0 + 2009)).actions == []
    assert decide(job, obs(now=T0 + 2010)).actions == [submit]


# -- running and stable ----------------------------------------------------------------------------


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


def test_a_job_that_is_restarting_inside_flink_is_deploying_again() -> None:
    job = deployed(flinkjob(), lifecycle=Lifecycle.STABLE)
    plan = decide(job, obs(job=JobObservation("j1", "RESTARTING", all_running=False)))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.DEPLOYING
    assert plan.status.running_since is None
    assert plan.status.flink_state == "RESTARTING"


def test_observing_a_job_records_its_checkpoint_parallelism_and_start() -> None:
    job = deployed(flinkjob())
    seen = running(
        parallelism=3, start_time=T0 - 500, latest_checkpoint=CP, latest_checkpoint_time=T0 - 10
    )
    st_ = decide(job, obs(job=seen)).status
    assert (st_.parallelism, st_.job_started_at) == (3, T0 - 500)
    assert (st_.last_checkpoint_path, st_.last_checkpoint_time) == (CP, T0 - 10)


def test_a_running_job_clears_an_old_error_but_keeps_counting_failed_actions() -> None:
    job = deployed(flinkjob(), error="an old problem", failures=3)
    st_ = decide(job, obs(job=running())).status
    assert st_.error is None
    assert st_.failures == 3  # reset when an operation succeeds, so backoffs keep growing


def test_an_unchanged_running_job_needs_nothing() -> None:
    job = deployed(flinkjob())
    plan = decide(job, obs(job=running()))
    assert plan.actions == []
    assert plan.status.operation is None
    assert plan.status.observed_generation == 1


# -- savepoint upgrades ----------------------------------------------------------------------------


def test_a_spec_change_with_upgrade_mode_savepoint_stops_with_a_savepoint() -> None:
    job = change_job(deployed(flinkjob()), parallelism=2)
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


def test_a_completed_stop_records_the_savepoint_and_submits_from_it_in_the_same_plan() -> None:
    job = stopping(change_job(deployed(flinkjob()), parallelism=2))
    done = TriggerObservation("COMPLETED", location=SP)
    plan = decide(job, obs(now=T0 + 4000, job=ended(), trigger=done))
    submit = the(plan, Submit)
    assert submit == Submit(new_id(NAME, T0 + 4000, "upgrade"), job.spec, SP)
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


def test_a_whole_savepoint_upgrade_ends_with_the_new_job_reconciled() -> None:
    job = change_job(deployed(flinkjob()), parallelism=2)
    job, plan = step(job, obs(now=T0, job=running()))
    trigger_id = the(plan, StopWithSavepoint).trigger_id
    job, plan = step(
        job, obs(now=T0 + 1000, job=running(), trigger=TriggerObservation("IN_PROGRESS"))
    )
    assert plan.actions == []
    done = TriggerObservation("COMPLETED", location=SP)
    job, plan = step(job, obs(now=T0 + 2000, job=ended(), trigger=done))
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


def test_a_completed_savepoint_waits_while_the_old_job_winds_down() -> None:
    job = stopping(change_job(deployed(flinkjob()), parallelism=2))
    done = TriggerObservation("COMPLETED", location=SP)
    plan = decide(job, obs(now=T0 + 1000, job=running(), trigger=done))
    assert plan.actions == []
    assert plan.status.operation is not None
    assert plan.status.operation.step == "stopping"
    assert plan.status.operation.savepoint_path == SP  # noted
    assert plan.status.operation.trigger_id == "t1"


@pytest.mark.parametrize("trigger", [None, TriggerObservation("UNKNOWN")])
def test_a_stop_flink_does_not_know_is_sent_again_with_the_same_trigger_id(
    trigger: TriggerObservation | None,
) -> None:
    job = stopping(change_job(deployed(flinkjob()), parallelism=2))
    for later in (T0 + 1000, T0 + 50_000):
        plan = decide(job, obs(now=later, job=running(), trigger=trigger))
        assert plan.actions == [StopWithSavepoint("j1", "t1")]
        assert plan.status.operation == job.status.operation


def test_a_stop_in_progress_is_waited_for_until_it_times_out() -> None:
    job = stopping(change_job(deployed(flinkjob()), parallelism=2))
    pending = TriggerObservation("IN_PROGRESS")
    plan = decide(job, obs(now=T0 + SAVEPOINT_TIMEOUT_MS, job=running(), trigger=pending))
    assert plan.actions == []
    assert plan.status.operation == job.status.operation
    plan = decide(job, obs(now=T0 + SAVEPOINT_TIMEOUT_MS + 1, job=running(), trigger=pending))
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


def test_a_stopped_job_whose_trigger_answer_was_lost_resumes_from_its_own_savepoint() -> None:
    job = deployed(flinkjob(), last_checkpoint_path=CP, last_checkpoint_time=T0 - 5000)
    job = stopping(change_job(job, parallelism=2))
    finished = ended(latest_savepoint=SP, latest_savepoint_time=T0 + 10)
    plan = decide(job, obs(now=T0 + 2000, job=finished, trigger=TriggerObservation("UNKNOWN")))
    assert the(plan, Submit).savepoint_path == SP
    assert plan.status.upgrade_savepoint_path == SP
    assert [(s.path, s.trigger) for s in plan.status.savepoints] == [(SP, "upgrade")]


def test_a_savepoint_older_than_the_operation_is_not_taken_for_its_result() -> None:
    job = deployed(flinkjob(), last_checkpoint_path=CP, last_checkpoint_time=T0 - 5000)
    job = stopping(change_job(job, parallelism=2))
    old = ended(state="FAILED", latest_savepoint=SP, latest_savepoint_time=T0 - 60_000)
    plan = decide(job, obs(now=T0 + 2000, job=old, trigger=TriggerObservation("UNKNOWN")))
    assert the(plan, Submit).savepoint_path == CP  # the newest consistent state there is
    assert "SavepointMissing" in reasons(plan.status)


def test_a_job_that_ended_without_any_state_is_resubmitted_fresh() -> None:
    job = stopping(change_job(deployed(flinkjob()), parallelism=2))
    plan = decide(job, obs(now=T0 + 2000, job=None, trigger=TriggerObservation("UNKNOWN")))
    assert the(plan, Submit).savepoint_path is None
    assert any("nothing (fresh)" in e.message for e in plan.status.events)


# -- last-state and stateless upgrades -------------------------------------------------------------


def test_a_last_state_upgrade_cancels_then_resumes_from_the_latest_checkpoint() -> None:
    job = change_job(deployed(flinkjob(job={"upgradeMode": "last-state"})), parallelism=2)
    job, plan = step(job, obs(now=T0, job=running()))
    assert plan.actions == [Cancel("j1")]
    assert plan.status.operation == Operation(
        kind="upgrade",
        step="cancelling",
        started_at=T0,
        job_id="j1",
        upgrade_mode=UpgradeMode.last_state,
    )
    assert plan.status.lifecycle == Lifecycle.UPGRADING
    # Still running: cancel again (harmless), no submission side by side.
    job, plan = step(job, obs(now=T0 + 500, job=running(latest_checkpoint=CP)))
    assert plan.actions == [Cancel("j1")]
    cancelled = ended(state="CANCELED", latest_checkpoint=CP, latest_checkpoint_time=T0 + 400)
    job, plan = step(job, obs(now=T0 + 1000, job=cancelled))
    submit = the(plan, Submit)
    assert submit.savepoint_path == CP
    assert submit.job_id == new_id(NAME, T0 + 1000, "upgrade")
    assert submit.spec.job.parallelism == 2
    assert plan.status.operation is not None
    assert plan.status.operation.step == "submitting"
    assert plan.status.operation.savepoint_path == CP


def test_a_last_state_upgrade_of_a_vanished_job_resumes_from_the_recorded_state() -> None:
    job = deployed(
        flinkjob(job={"upgradeMode": "last-state"}),
        savepoints=[SavepointInfo(path=SP, time=T0 - 10, trigger="manual")],
    )
    job = change_job(job, parallelism=2)
    job, plan = step(job, obs(now=T0, job=running()))
    plan = decide(job, obs(now=T0 + 1000, job=None))
    assert the(plan, Submit).savepoint_path == SP


def test_a_stateless_upgrade_cancels_then_starts_without_state() -> None:
    job = deployed(
        flinkjob(job={"upgradeMode": "stateless", "initialSavepointPath": SP}),
        last_checkpoint_path=CP,
        last_checkpoint_time=T0 - 10,
    )
    job = change_job(job, parallelism=2)
    job, plan = step(job, obs(now=T0, job=running()))
    assert plan.actions == [Cancel("j1")]
    assert plan.status.operation is not None
    assert plan.status.operation.upgrade_mode == UpgradeMode.stateless
    cancelled = ended(state="CANCELED", latest_checkpoint=CP, latest_checkpoint_time=T0)
    _, plan = step(job, obs(now=T0 + 1000, job=cancelled))
    submit = the(plan, Submit)
    assert submit.savepoint_path is None
    assert submit.spec.job.parallelism == 2


def test_a_restart_nonce_change_upgrades_the_job_once() -> None:
    job = change_spec(deployed(flinkjob()), restart_nonce=1)
    job, plan = step(job, obs(now=T0, job=running()))
    assert the(plan, StopWithSavepoint).job_id == "j1"
    assert any("restartNonce changed" in e.message for e in plan.status.events)
    job, plan = step(
        job, obs(now=T0 + 1000, job=ended(), trigger=TriggerObservation("COMPLETED", location=SP))
    )
    new_job_id = the(plan, Submit).job_id
    job, plan = step(job, obs(now=T0 + 2000, new_job=running(new_job_id)))
    assert plan.status.last_restart_nonce == 1
    _, plan = step(job, obs(now=T0 + 3000, job=running(new_job_id)))
    assert plan.actions == []


@pytest.mark.parametrize(
    "spec_change",
    [
        {"autoscaler": {"enabled": False, "maxParallelism": 4}},
        {"savepoints": {"maxCount": 2}},
        {"savepoints": {"interval": "1h"}},
    ],
)
def test_a_change_to_controller_settings_restarts_nothing(spec_change: dict[str, Any]) -> None:
    before = deployed(flinkjob())
    after = flinkjob(generation=2, **spec_change)
    job = with_status(after, before.status)
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.actions == []
    assert plan.status.observed_generation == 2
    assert plan.status.last_reconciled_spec == after.spec
    assert plan.status.job_id == "j1"


def test_needs_upgrade_compares_deployments() -> None:
    spec = flinkjob().spec
    assert needs_upgrade(spec, None)
    assert not needs_upgrade(spec, spec)
    assert not needs_upgrade(spec.model_copy(update={"restart_nonce": 5}), spec)
    bigger = spec.model_copy(update={"job": spec.job.model_copy(update={"parallelism": 2})})
    assert needs_upgrade(bigger, spec)


# -- suspend and resume ----------------------------------------------------------------------------


def test_suspend_stops_with_a_savepoint_then_the_job_is_suspended() -> None:
    job = change_job(deployed(flinkjob()), state="suspended")
    job, plan = step(job, obs(now=T0, job=running()))
    stop = the(plan, StopWithSavepoint)
    assert stop == StopWithSavepoint("j1", new_id(NAME, T0, "suspend-trigger"))
    op = plan.status.operation
    assert op is not None
    assert (op.kind, op.step, op.trigger) == ("suspend", "stopping", "suspend")
    assert plan.status.lifecycle == Lifecycle.UPGRADING

    done = TriggerObservation("COMPLETED", location=SP)
    job, plan = step(job, obs(now=T0 + 1000, job=ended(), trigger=done))
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


def test_suspend_waits_for_the_backoff_of_a_failed_action_then_goes_ahead() -> None:
    job = deployed(flinkjob(), next_retry_at=T0 + 60_000)
    job = change_job(job, state="suspended")
    assert decide(job, obs(now=T0, job=running())).actions == []
    assert the(decide(job, obs(now=T0 + 60_000, job=running())), StopWithSavepoint).job_id == "j1"


# -- manual and periodic savepoints ----------------------------------------------------------------


def test_a_savepoint_trigger_nonce_takes_a_manual_savepoint() -> None:
    job = change_spec(deployed(flinkjob()), savepoint_trigger_nonce=1)
    job, plan = step(job, obs(now=T0, job=running()))
    trigger = the(plan, TriggerSavepoint)
    assert trigger == TriggerSavepoint("j1", new_id(NAME, T0, "manual-savepoint"))
    assert plan.status.operation == Operation(
        kind="savepoint",
        step="savepointing",
        started_at=T0,
        job_id="j1",
        trigger_id=trigger.trigger_id,
        trigger="manual",
    )
    assert plan.status.last_savepoint_nonce == 1
    assert plan.status.last_savepoint_attempt_at == T0
    assert plan.status.lifecycle == Lifecycle.RUNNING  # no restart
    # Not known yet: the same request; in progress: wait.
    _, again = step(job, obs(now=T0 + 100, job=running(), trigger=TriggerObservation("UNKNOWN")))
    assert again.actions == [trigger]
    _, wait = step(job, obs(now=T0 + 100, job=running(), trigger=TriggerObservation("IN_PROGRESS")))
    assert wait.actions == []
    done = TriggerObservation("COMPLETED", location=SP)
    job, plan = step(job, obs(now=T0 + 2000, job=running(), trigger=done))
    assert plan.actions == []
    assert plan.status.operation is None
    assert plan.status.savepoints == [SavepointInfo(path=SP, time=T0 + 2000, trigger="manual")]
    assert reasons(plan.status)[-1] == "SavepointTaken"
    # The nonce was handled: no second savepoint.
    _, plan = step(job, obs(now=T0 + 3000, job=running()))
    assert plan.actions == []


def test_a_failed_manual_savepoint_is_only_reported() -> None:
    job = savepointing(deployed(flinkjob()))
    plan = decide(
        job, obs(now=T0 + 10, job=running(), trigger=TriggerObservation("FAILED", failure="x"))
    )
    assert plan.actions == []
    assert plan.status.operation is None
    assert plan.status.savepoints == []
    assert reasons(plan.status)[-1] == "SavepointFailed"


def test_a_savepoint_of_a_job_that_ended_is_given_up() -> None:
    job = savepointing(deployed(flinkjob()))
    plan = decide(job, obs(now=T0 + 10, job=ended(state="FAILED")))
    assert plan.actions == []
    assert plan.status.operation is None


def test_a_savepoint_in_progress_times_out() -> None:
    job = savepointing(deployed(flinkjob()), trigger="periodic")
    pending = TriggerObservation("IN_PROGRESS")
    plan = decide(job, obs(now=T0 + SAVEPOINT_TIMEOUT_MS, job=running(), trigger=pending))
    assert plan.status.operation is not None
    plan = decide(job, obs(now=T0 + SAVEPOINT_TIMEOUT_MS + 1, job=running(), trigger=pending))
    assert plan.status.operation is None
    assert reasons(plan.status)[-1] == "SavepointTimeout"


def test_a_periodic_savepoint_falls_due_after_its_interval() -> None:
    job = deployed(flinkjob(savepoints={"interval": "10m"}), job_started_at=T0)
    assert decide(job, obs(now=T0 + 599_999, job=running())).actions == []
    plan = decide(job, obs(now=T0 + 600_000, job=running()))
    trigger = the(plan, TriggerSavepoint)
    assert trigger.trigger_id == new_id(NAME, T0 + 600_000, "periodic-savepoint")
    assert plan.status.operation is not None
    assert plan.status.operation.trigger == "periodic"


def test_a_periodic_savepoint_counts_from_the_last_savepoint_or_attempt() -> None:
    spec = {"savepoints": {"interval": "10m"}}
    recent = deployed(
        flinkjob(**spec),
        job_started_at=T0 - 3_600_000,
        savepoints=[SavepointInfo(path=SP, time=T0 - 60_000, trigger="manual")],
    )
    assert decide(recent, obs(now=T0, job=running())).actions == []
    attempted = deployed(
        flinkjob(**spec), job_started_at=T0 - 3_600_000, last_savepoint_attempt_at=T0 - 60_000
    )
    assert decide(attempted, obs(now=T0, job=running())).actions == []
    due = deployed(flinkjob(**spec), job_started_at=T0 - 3_600_000)
    assert the(decide(due, obs(now=T0, job=running())), TriggerSavepoint).job_id == "j1"


def test_no_periodic_savepoint_without_an_interval_or_while_not_all_running() -> None:
    job = deployed(flinkjob(), job_started_at=T0 - 10 * 3_600_000)
    assert decide(job, obs(now=T0, job=running())).actions == []
    periodic = deployed(flinkjob(savepoints={"interval": "1m"}), job_started_at=T0 - 3_600_000)
    starting = JobObservation("j1", "RUNNING", all_running=False)
    assert decide(periodic, obs(now=T0, job=starting)).actions == []


# -- retention -------------------------------------------------------------------------------------


def _sp(i: int, age_ms: int, trigger: str = "periodic") -> SavepointInfo:
    return SavepointInfo(path=f"sp{i}", time=T0 - age_ms, trigger=trigger)  # type: ignore[arg-type]


def test_retention_by_count_disposes_the_oldest() -> None:
    kept = [_sp(i, (10 - i) * 1000) for i in range(1, 6)]  # sp1 oldest … sp5 newest
    job = deployed(flinkjob(savepoints={"maxCount": 2}), savepoints=kept)
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.actions == [Dispose("sp1"), Dispose("sp2"), Dispose("sp3")]
    assert [s.path for s in plan.status.savepoints] == ["sp4", "sp5"]
    assert reasons(plan.status)[-3:] == ["SavepointDisposed"] * 3


def test_retention_by_age_disposes_the_old_ones_but_never_the_newest() -> None:
    day = 86_400_000
    kept = [_sp(1, 5 * day), _sp(2, 3 * day), _sp(3, 2 * day)]
    job = deployed(flinkjob(savepoints={"maxAge": "1d", "maxCount": 10}), savepoints=kept)
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.actions == [Dispose("sp1"), Dispose("sp2")]
    assert [s.path for s in plan.status.savepoints] == ["sp3"]  # old, but the newest


def test_retention_never_disposes_the_upgrade_savepoint() -> None:
    kept = [_sp(i, (10 - i) * 1000) for i in range(1, 5)]
    job = deployed(
        flinkjob(savepoints={"maxCount": 1}), savepoints=kept, upgrade_savepoint_path="sp1"
    )
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.actions == [Dispose("sp2"), Dispose("sp3")]
    assert [s.path for s in plan.status.savepoints] == ["sp1", "sp4"]


def test_retention_by_count_and_age_together() -> None:
    hour = 3_600_000
    ages = [100, 50, 30, 2, 1]
    kept = [_sp(i, age * hour) for i, age in enumerate(ages, start=1)]
    job = deployed(
        flinkjob(savepoints={"maxCount": 4, "maxAge": "1d"}),
        savepoints=kept,
        upgrade_savepoint_path="sp1",
    )
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.actions == [Dispose("sp2"), Dispose("sp3")]
    assert [s.path for s in plan.status.savepoints] == ["sp1", "sp4", "sp5"]


def test_nothing_is_disposed_within_the_limits_or_while_an_operation_runs() -> None:
    kept = [_sp(i, (10 - i) * 1000) for i in range(1, 4)]
    within = deployed(flinkjob(savepoints={"maxCount": 3, "maxAge": "1d"}), savepoints=kept)
    assert decide(within, obs(now=T0, job=running())).actions == []
    busy = savepointing(deployed(flinkjob(savepoints={"maxCount": 1}), savepoints=kept))
    plan = decide(busy, obs(now=T0, job=running(), trigger=TriggerObservation("IN_PROGRESS")))
    assert not any(isinstance(a, Dispose) for a in plan.actions)


# -- failures and restarts -------------------------------------------------------------------------


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


def test_with_ha_a_job_gone_from_flink_is_awaited_not_started_twice() -> None:
    """A JobManager restart with HA: the new leader recovers the job under the same id. The
    controller waits for it (starting it again would run it twice) and takes it back."""
    job = deployed(flinkjob(), last_checkpoint_path=CP, last_checkpoint_time=T0 - 10)
    job, plan = step(job, obs(now=T0, job=None, high_availability=True))
    assert plan.actions == []
    assert plan.status.missing_since == T0
    assert reasons(plan.status)[-1] == "AwaitingRecovery"
    job, plan = step(job, obs(now=T0 + HA_RECOVERY_MS - 1, job=None, high_availability=True))
    assert plan.actions == []
    assert plan.status.restarts == 0
    job, plan = step(job, obs(now=T0 + HA_RECOVERY_MS, job=running(), high_availability=True))
    assert plan.actions == []
    assert plan.status.missing_since is None
    assert plan.status.job_id == "j1"
    assert reasons(plan.status)[-1] == "Recovered"
    assert plan.status.restarts == 0


def test_with_ha_a_job_awaited_is_not_shown_as_running() -> None:
    job = set_status(deployed(flinkjob()), lifecycle=Lifecycle.STABLE)
    _, plan = step(job, obs(now=T0, job=None, high_availability=True))
    assert plan.status.lifecycle == Lifecycle.DEPLOYING


@pytest.mark.parametrize("savepoint", [True, False])
def test_with_ha_a_deleted_flinkjob_waits_for_its_job_to_come_back(savepoint: bool) -> None:
    """Forgetting it now would leave the job Flink recovers running with nobody to stop it."""
    job = deleting(deployed(flinkjob()), savepoint=savepoint)
    job, plan = step(job, obs(now=T0, job=None, high_availability=True))
    assert plan.actions == []
    assert reasons(plan.status)[-1] == "AwaitingRecovery"
    job, plan = step(job, obs(now=T0 + 5000, job=running(), high_availability=True))
    if savepoint:
        assert the(plan, StopWithSavepoint).job_id == "j1"
    else:
        assert plan.actions == [Cancel("j1"), Forget()]
    # Never recovered: forgotten once the wait is over.
    gone = deleting(deployed(flinkjob()), savepoint=savepoint)
    gone, _ = step(gone, obs(now=T0, job=None, high_availability=True))
    _, plan = step(gone, obs(now=T0 + HA_RECOVERY_MS, job=None, high_availability=True))
    assert any(isinstance(a, Forget) for a in plan.actions)


def test_with_ha_an_upgrade_whose_job_is_unknown_waits_instead_of_starting_another() -> None:
    """A stop-with-savepoint in flight when the JobManager died: the new leader has forgotten
    the trigger and does not know the job yet. Submitting now could run the recovered old job
    beside the new one."""
    job = stopping(deployed(flinkjob()))
    unknown = TriggerObservation("UNKNOWN")
    job, plan = step(job, obs(now=T0, job=None, trigger=unknown, high_availability=True))
    assert plan.actions == []
    job, plan = step(
        job, obs(now=T0 + 3000, job=running(), trigger=unknown, high_availability=True)
    )
    assert the(plan, StopWithSavepoint).job_id == "j1"  # asked again, on the recovered job
    cancelling = set_status(
        deployed(flinkjob()),
        operation=Operation(kind="upgrade", step="cancelling", started_at=T0, job_id="j1",
                            upgrade_mode=UpgradeMode.last_state),
    )  # fmt: skip
    _, plan = step(cancelling, obs(now=T0, job=None, high_availability=True))
    assert plan.actions == []
    # Without HA a job Flink does not know is gone: the upgrade goes on at once.
    _, plan = step(stopping(deployed(flinkjob())), obs(now=T0, job=None, trigger=unknown))
    assert the(plan, Submit)


def test_with_ha_a_job_not_recovered_in_time_is_restarted_from_its_state() -> None:
    job = deployed(
        flinkjob(restartPolicy={"backoff": "4s"}), last_checkpoint_path=CP, last_checkpoint_time=T0
    )
    job, _ = step(job, obs(now=T0, job=None, high_availability=True))
    job, plan = step(job, obs(now=T0 + HA_RECOVERY_MS, job=None, high_availability=True))
    assert plan.actions == []
    assert "not recovered by its high availability within 180 s" in str(plan.status.error)
    _, plan = step(job, obs(now=T0 + HA_RECOVERY_MS + 4000, job=None, high_availability=True))
    assert the(plan, Submit).savepoint_path == CP
    assert plan.status.missing_since is None


def test_failing_checkpoints_are_a_condition_and_one_event_per_reason() -> None:
    """A wrong endpoint, a missing bucket or refused credentials: the job runs on from its last
    checkpoint, and the FlinkJob says where Flink writes and why it cannot."""
    job = deployed(flinkjob())
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


def test_a_job_that_ended_outside_the_controller_is_failed_until_asked_again() -> None:
    job = deployed(flinkjob())
    job, plan = step(job, obs(now=T0, job=ended(state="CANCELED")))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.FAILED
    assert plan.status.error == "job j1 ended CANCELED outside the controller"
    assert reasons(plan.status)[-1] == "EndedOutside"
    assert decide(job, obs(now=T0 + 60_000, job=ended(state="CANCELED"))).actions == []
    restart = change_spec(job, restart_nonce=7)
    assert the(decide(restart, obs(now=T0 + 1, job=ended(state="CANCELED"))), Submit)


# -- Flink or Kafka unreachable, refused specs -----------------------------------------------------


def test_flink_unreachable_changes_nothing_but_says_so_and_backs_off() -> None:
    job = change_job(deployed(flinkjob()), parallelism=2)
    job, plan = step(job, obs(now=T0, flink_error="connection refused"))
    assert plan.actions == []
    st_ = plan.status
    assert st_.error == "Flink unreachable: connection refused; retrying in 1 s"
    assert (st_.outages, st_.outage_retry_at) == (1, T0 + 1000)
    assert condition(st_, "FlinkReachable") == "False"
    assert (st_.job_id, st_.lifecycle, st_.operation) == ("j1", Lifecycle.RUNNING, None)
    assert reasons(st_) == ["Retrying"]
    delays = []
    now = T0
    for _ in range(8):
        now += 1000
        job, plan = step(job, obs(now=now, flink_error="connection refused"))
        assert plan.actions == []
        assert plan.status.outage_retry_at is not None
        delays.append(plan.status.outage_retry_at - now)
    assert delays == [2000, 4000, 8000, 16_000, 32_000, MAX_RETRY_MS, MAX_RETRY_MS, MAX_RETRY_MS]
    assert reasons(job.status) == ["Retrying"]  # one warning per outage


def test_flink_unreachable_during_an_operation_keeps_the_operation() -> None:
    job = stopping(change_job(deployed(flinkjob()), parallelism=2))
    plan = decide(job, obs(now=T0 + 1000, flink_error="timed out"))
    assert plan.actions == []
    assert plan.status.operation == job.status.operation


def test_recovery_from_an_outage_clears_it_and_goes_on() -> None:
    job = change_job(deployed(flinkjob()), parallelism=2)
    job, _ = step(job, obs(now=T0, flink_error="connection refused"))
    job, _ = step(job, obs(now=T0 + 1000, flink_error="connection refused"))
    _, plan = step(job, obs(now=T0 + 5000, job=running()))
    st_ = plan.status
    assert (st_.outages, st_.outage_retry_at, st_.error) == (0, None, None)
    assert condition(st_, "FlinkReachable") == "True"
    flink = next(c for c in st_.conditions if c.type == "FlinkReachable")
    assert flink.last_transition_time == T0 + 5000
    assert "Recovered" in reasons(st_)
    assert the(plan, StopWithSavepoint).job_id == "j1"  # the pending change goes on


def test_a_spec_that_cannot_run_here_fails_without_a_submission() -> None:
    job, plan = step(flinkjob(), obs(now=T0, precheck_error="input topics are not co-partitioned"))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.FAILED
    assert plan.status.error == "input topics are not co-partitioned"
    assert plan.status.observed_generation == 1
    assert reasons(plan.status) == ["Refused"]
    # Until the spec changes.
    assert decide(job, obs(now=T0 + 60_000)).actions == []
    fixed = change_spec(job, kafka=job.spec.kafka.model_copy(update={"copartitioned": False}))
    assert the(decide(fixed, obs(now=T0 + 61_000)), Submit).savepoint_path is None


def test_kafka_unreachable_retries_later_without_a_submission() -> None:
    job, plan = step(flinkjob(), obs(now=T0, kafka_error="Kafka at k:9092 unreachable: timeout"))
    assert plan.actions == []
    st_ = plan.status
    assert st_.lifecycle == Lifecycle.CREATED
    assert st_.error == "Kafka at k:9092 unreachable: timeout; retrying in 1 s"
    assert (st_.outages, st_.outage_retry_at) == (1, T0 + 1000)
    assert condition(st_, "FlinkReachable") == "True"
    _, plan = step(job, obs(now=T0 + 2000))
    assert the(plan, Submit)
    assert plan.status.error is None
    assert plan.status.outages == 0


def test_a_precheck_problem_is_not_looked_at_while_the_job_runs() -> None:
    job = deployed(flinkjob())
    plan = decide(job, obs(job=running(), precheck_error="x", kafka_error="y"))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.RUNNING


# -- deletion --------------------------------------------------------------------------------------


@pytest.mark.parametrize("annotation", [False, None])
def test_deletion_without_a_savepoint_cancels_and_forgets(annotation: bool | None) -> None:
    plan = decide(deleting(deployed(flinkjob()), annotation), obs(job=running()))
    assert plan.actions == [Cancel("j1"), Forget()]
    assert plan.status.lifecycle == Lifecycle.DELETING
    assert reasons(plan.status)[-1] == "Deleted"


def test_deleting_a_job_that_is_not_running_just_forgets_it() -> None:
    assert decide(deleting(flinkjob(), True), obs()).actions == [Forget()]
    failed = deployed(flinkjob(), lifecycle=Lifecycle.FAILED)
    assert decide(deleting(failed, True), obs(job=ended(state="FAILED"))).actions == [Forget()]


def test_deleting_during_a_submission_cancels_every_job_the_spec_may_have_made() -> None:
    job = stopping(deployed(flinkjob()))
    op = Operation(kind="upgrade", step="submitting", started_at=T0, new_job_id="n1")
    job = deleting(set_status(job, operation=op), False)
    plan = decide(job, obs(job=running(), new_job=running("n1")))
    assert plan.actions == [Cancel("j1"), Cancel("n1"), Forget()]


def test_deletion_with_a_savepoint_stops_with_one_then_forgets() -> None:
    job = deleting(deployed(flinkjob()), True)
    job, plan = step(job, obs(now=T0, job=running()))
    stop = the(plan, StopWithSavepoint)
    assert stop == StopWithSavepoint("j1", new_id(NAME, T0, "delete-trigger"))
    op = plan.status.operation
    assert op is not None
    assert (op.kind, op.trigger_id) == ("delete", stop.trigger_id)
    # Not known to Flink yet: the same stop again; in progress: wait.
    _, again = step(job, obs(now=T0 + 100, job=running(), trigger=TriggerObservation("UNKNOWN")))
    assert again.actions == [stop]
    _, wait = step(job, obs(now=T0 + 100, job=running(), trigger=TriggerObservation("IN_PROGRESS")))
    assert wait.actions == []
    done = TriggerObservation("COMPLETED", location=SP)
    _, plan = step(job, obs(now=T0 + 1000, job=ended(), trigger=done))
    assert plan.actions == [Forget()]
    assert plan.status.savepoints == [SavepointInfo(path=SP, time=T0 + 1000, trigger="delete")]


def test_a_failed_final_savepoint_is_tried_again() -> None:
    job = deleting(deployed(flinkjob()), True)
    job, plan = step(job, obs(now=T0, job=running()))
    failed = TriggerObservation("FAILED", failure="disk full")
    job, plan = step(job, obs(now=T0 + 100, job=running(), trigger=failed))
    assert plan.actions == []
    assert plan.status.operation is None
    assert "final savepoint failed: disk full" in str(plan.status.error)
    _, plan = step(job, obs(now=T0 + 200, job=running()))
    assert the(plan, StopWithSavepoint).trigger_id == new_id(NAME, T0 + 200, "delete-trigger")


def test_a_job_that_ended_during_its_final_savepoint_is_forgotten() -> None:
    job = deleting(deployed(flinkjob()), True)
    job, _ = step(job, obs(now=T0, job=running()))
    finished = ended(latest_savepoint=SP, latest_savepoint_time=T0 + 10)
    plan = decide(job, obs(now=T0 + 100, job=finished, trigger=TriggerObservation("UNKNOWN")))
    assert plan.actions == [Forget()]
    assert [s.path for s in plan.status.savepoints] == [SP]


def test_deletion_with_a_savepoint_of_a_suspended_job_forgets_it() -> None:
    job = deployed(flinkjob(job={"state": "suspended"}), job_id=None, lifecycle="SUSPENDED")
    assert decide(deleting(job, True), obs()).actions == [Forget()]


# -- failed actions --------------------------------------------------------------------------------


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


def test_action_failed_does_not_change_its_input() -> None:
    job = deployed(flinkjob())
    before = job.status.model_copy(deep=True)
    action_failed(job, job.status, Cancel("j1"), "boom", T0)
    assert job.status == before


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


def test_a_failed_disposal_is_only_an_event() -> None:
    job = deployed(flinkjob())
    st_ = action_failed(job, job.status, Dispose("sp1"), "not found", T0)
    assert st_.failures == 0
    assert st_.error is None
    assert st_.next_retry_at is None
    assert st_.events[-1].reason == "DisposeFailed"
    assert st_.events[-1].message == "sp1: not found"
    assert st_.model_copy(update={"events": []}) == job.status.model_copy(update={"events": []})


# -- events and latest state -----------------------------------------------------------------------


def test_events_are_capped() -> None:
    job = deployed(flinkjob(), error=None)
    now = T0
    for _ in range(MAX_EVENTS + 10):
        now += 1000
        st_ = action_failed(job, job.status, Dispose("sp"), "x", now)
        job = with_status(job, st_)
    assert len(job.status.events) == MAX_EVENTS
    assert job.status.events[-1].time == now


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
        deployed(flinkjob(savepoints={"maxCount": 1}), savepoints=[_sp(1, 9), _sp(2, 1)]),
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


# -- regressions: bugs found in review and fixed in ae58e0d, one test each ------------------------


def test_after_an_upgrade_the_new_job_is_not_stable_before_it_ran_stable_after_ms() -> None:
    """running_since belongs to the job that is running: a new job after an upgrade has to run
    STABLE_AFTER_MS itself before it is STABLE (and its spec the last stable one)."""
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


def test_consecutive_kafka_errors_back_off_longer_and_warn_once() -> None:
    """outages counts consecutive reconciles that could not reach Flink/Kafka, and the retry
    delay grows with it, as it does for Flink outages."""
    job, plan = step(flinkjob(), obs(now=T0, kafka_error="Kafka at k:9092 unreachable"))
    assert plan.status.outages == 1
    job, plan = step(job, obs(now=T0 + 1000, kafka_error="Kafka at k:9092 unreachable"))
    assert plan.actions == []
    assert plan.status.outages == 2
    assert plan.status.outage_retry_at == T0 + 1000 + 2000
    assert reasons(plan.status).count("Retrying") == 1


def test_a_savepoint_seen_completed_is_used_when_the_trigger_answer_is_later_lost() -> None:
    """The stop's savepoint completed while the old job was still winding down, so its location
    was noted in the operation. If the trigger's answer is lost afterwards (a JobManager restart
    forgets both the trigger and the finished job), the upgrade must resume from that savepoint,
    not from the older checkpoint."""
    job = deployed(flinkjob(), last_checkpoint_path=CP, last_checkpoint_time=T0 - 60_000)
    job = stopping(change_job(job, parallelism=2))
    done = TriggerObservation("COMPLETED", location=SP)
    job, plan = step(job, obs(now=T0 + 1000, job=running(), trigger=done))
    assert plan.status.operation is not None
    assert plan.status.operation.savepoint_path == SP
    _, plan = step(job, obs(now=T0 + 2000, job=None, trigger=TriggerObservation("UNKNOWN")))
    assert the(plan, Submit).savepoint_path == SP


def test_a_stateless_job_refused_once_still_starts_from_its_initial_savepoint() -> None:
    """initialSavepointPath is where the job starts the first time it is deployed. A precheck
    refusal deploys nothing, so once the spec is fixed the first deployment still starts there."""
    job = flinkjob(job={"upgradeMode": "stateless", "initialSavepointPath": SP})
    job, plan = step(job, obs(now=T0, precheck_error="input topics are not co-partitioned"))
    assert plan.status.lifecycle == Lifecycle.FAILED
    fixed = change_spec(job, kafka=job.spec.kafka.model_copy(update={"copartitioned": False}))
    plan = decide(fixed, obs(now=T0 + 1000))
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


def test_backoff_is_exact_in_milliseconds() -> None:
    """backoff: 1001ms waits 1001 ms: backoff_ms converts through float seconds
    (int(seconds(d) * 1000)), and 1001 / 1000.0 * 1000 = 1000.9999999999999."""
    assert backoff_ms("1001ms", "1h", 0) == 1001
    assert backoff_ms("1001ms", "1h", 1) == 2002
