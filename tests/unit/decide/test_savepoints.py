"""Savepoints the job runs on through — manual (a new savepointTriggerNonce) and periodic — and
their retention (deploy/controller/decide/savepoints.py)."""

from __future__ import annotations

from typing import Any

from deploy.controller.decide import SAVEPOINT_TIMEOUT_MS, decide, new_id
from deploy.controller.model import Dispose, JobObservation, TriggerObservation, TriggerSavepoint
from deploy.spec import FlinkJob, Lifecycle, Operation, SavepointInfo
from tests.unit.builders import (
    NAME,
    SP,
    T0,
    change_spec,
    deployed,
    ended,
    flinkjob,
    obs,
    reasons,
    running,
    savepoint_info,
    savepointing,
    step,
    the,
    with_status,
)

DONE = TriggerObservation("COMPLETED", location=SP)
HOUR = 3_600_000


# -- manual and periodic savepoints ----------------------------------------------------------------


def test_a_savepoint_trigger_nonce_takes_a_manual_savepoint(deployed_job: FlinkJob) -> None:
    job = change_spec(deployed_job, savepoint_trigger_nonce=1)
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
    job, plan = step(job, obs(now=T0 + 2000, job=running(), trigger=DONE))
    assert plan.actions == []
    assert plan.status.operation is None
    assert plan.status.savepoints == [SavepointInfo(path=SP, time=T0 + 2000, trigger="manual")]
    assert reasons(plan.status)[-1] == "SavepointTaken"
    # The nonce was handled: no second savepoint.
    _, plan = step(job, obs(now=T0 + 3000, job=running()))
    assert plan.actions == []


def test_a_savepoint_nonce_triggers_a_manual_savepoint(deployed_job: FlinkJob) -> None:
    job = change_spec(deployed_job, savepoint_trigger_nonce=1)
    plan = decide(job, obs(job=running()))
    assert len(plan.actions) == 1
    trigger = plan.actions[0]
    assert isinstance(trigger, TriggerSavepoint)
    assert plan.status.last_savepoint_nonce == 1
    job = with_status(job, plan.status)
    plan = decide(job, obs(job=running(), trigger=DONE))
    assert [(s.path, s.trigger) for s in plan.status.savepoints] == [(SP, "manual")]
    assert plan.status.operation is None


def test_a_failed_manual_savepoint_is_only_reported(deployed_job: FlinkJob) -> None:
    job = savepointing(deployed_job)
    plan = decide(
        job, obs(now=T0 + 10, job=running(), trigger=TriggerObservation("FAILED", failure="x"))
    )
    assert plan.actions == []
    assert plan.status.operation is None
    assert plan.status.savepoints == []
    assert reasons(plan.status)[-1] == "SavepointFailed"


def test_a_savepoint_of_a_job_that_ended_is_given_up(deployed_job: FlinkJob) -> None:
    job = savepointing(deployed_job)
    plan = decide(job, obs(now=T0 + 10, job=ended(state="FAILED")))
    assert plan.actions == []
    assert plan.status.operation is None


def test_a_savepoint_in_progress_times_out(deployed_job: FlinkJob) -> None:
    job = savepointing(deployed_job, trigger="periodic")
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


def test_periodic_savepoints_fall_due_after_their_interval() -> None:
    job = deployed(flinkjob(savepoints={"interval": "1m"}), job_started_at=T0)
    assert decide(job, obs(now=T0 + 59_000, job=running())).actions == []
    plan = decide(job, obs(now=T0 + 60_000, job=running()))
    assert isinstance(plan.actions[0], TriggerSavepoint)
    assert plan.status.operation is not None
    assert plan.status.operation.trigger == "periodic"


def test_a_periodic_savepoint_counts_from_the_last_savepoint_or_attempt() -> None:
    spec: dict[str, Any] = {"savepoints": {"interval": "10m"}}
    recent = deployed(
        flinkjob(**spec),
        job_started_at=T0 - HOUR,
        savepoints=[SavepointInfo(path=SP, time=T0 - 60_000, trigger="manual")],
    )
    assert decide(recent, obs(now=T0, job=running())).actions == []
    attempted = deployed(
        flinkjob(**spec), job_started_at=T0 - HOUR, last_savepoint_attempt_at=T0 - 60_000
    )
    assert decide(attempted, obs(now=T0, job=running())).actions == []
    due = deployed(flinkjob(**spec), job_started_at=T0 - HOUR)
    assert the(decide(due, obs(now=T0, job=running())), TriggerSavepoint).job_id == "j1"


def test_no_periodic_savepoint_without_an_interval_or_while_not_all_running() -> None:
    job = deployed(flinkjob(), job_started_at=T0 - 10 * HOUR)
    assert decide(job, obs(now=T0, job=running())).actions == []
    periodic = deployed(flinkjob(savepoints={"interval": "1m"}), job_started_at=T0 - HOUR)
    starting = JobObservation("j1", "RUNNING", all_running=False)
    assert decide(periodic, obs(now=T0, job=starting)).actions == []


# -- retention -------------------------------------------------------------------------------------


def test_retention_by_count_disposes_the_oldest() -> None:
    kept = [savepoint_info(i, (10 - i) * 1000) for i in range(1, 6)]  # sp1 oldest … sp5 newest
    job = deployed(flinkjob(savepoints={"maxCount": 2}), savepoints=kept)
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.actions == [Dispose("sp1"), Dispose("sp2"), Dispose("sp3")]
    assert [s.path for s in plan.status.savepoints] == ["sp4", "sp5"]
    assert reasons(plan.status)[-3:] == ["SavepointDisposed"] * 3


def test_retention_by_age_disposes_the_old_ones_but_never_the_newest() -> None:
    day = 86_400_000
    kept = [savepoint_info(1, 5 * day), savepoint_info(2, 3 * day), savepoint_info(3, 2 * day)]
    job = deployed(flinkjob(savepoints={"maxAge": "1d", "maxCount": 10}), savepoints=kept)
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.actions == [Dispose("sp1"), Dispose("sp2")]
    assert [s.path for s in plan.status.savepoints] == ["sp3"]  # old, but the newest


def test_retention_never_disposes_the_upgrade_savepoint() -> None:
    kept = [savepoint_info(i, (10 - i) * 1000) for i in range(1, 5)]
    job = deployed(
        flinkjob(savepoints={"maxCount": 1}), savepoints=kept, upgrade_savepoint_path="sp1"
    )
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.actions == [Dispose("sp2"), Dispose("sp3")]
    assert [s.path for s in plan.status.savepoints] == ["sp1", "sp4"]


def test_retention_by_count_and_age_together() -> None:
    ages = [100, 50, 30, 2, 1]
    kept = [savepoint_info(i, age * HOUR) for i, age in enumerate(ages, start=1)]
    job = deployed(
        flinkjob(savepoints={"maxCount": 4, "maxAge": "1d"}),
        savepoints=kept,
        upgrade_savepoint_path="sp1",
    )
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.actions == [Dispose("sp2"), Dispose("sp3")]
    assert [s.path for s in plan.status.savepoints] == ["sp1", "sp4", "sp5"]


def test_retention_disposes_by_count_and_age_but_never_the_newest_or_the_upgrade_one() -> None:
    ages = [100, 50, 30, 2, 1]
    kept = [savepoint_info(i, age * HOUR) for i, age in enumerate(ages, start=1)]
    job = deployed(
        flinkjob(savepoints={"maxCount": 3, "maxAge": "1d"}),
        savepoints=kept,
        upgrade_savepoint_path="sp1",
    )
    plan = decide(job, obs(now=T0, job=running()))
    assert plan.actions == [Dispose("sp2"), Dispose("sp3")]
    assert [s.path for s in plan.status.savepoints] == ["sp1", "sp4", "sp5"]


def test_nothing_is_disposed_within_the_limits_or_while_an_operation_runs() -> None:
    kept = [savepoint_info(i, (10 - i) * 1000) for i in range(1, 4)]
    within = deployed(flinkjob(savepoints={"maxCount": 3, "maxAge": "1d"}), savepoints=kept)
    assert decide(within, obs(now=T0, job=running())).actions == []
    busy = savepointing(deployed(flinkjob(savepoints={"maxCount": 1}), savepoints=kept))
    plan = decide(busy, obs(now=T0, job=running(), trigger=TriggerObservation("IN_PROGRESS")))
    assert not any(isinstance(a, Dispose) for a in plan.actions)
