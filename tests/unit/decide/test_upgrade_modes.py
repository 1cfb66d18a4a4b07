"""Which changes restart a job, and how: last-state upgrades cancel and resume from the latest
checkpoint, stateless ones start without state, a restartNonce restarts the same spec, and the
controller's own settings restart nothing (deploy/controller/decide: upgrades, specs)."""

from __future__ import annotations

from typing import Any

import pytest

from deploy.controller.decide import decide, needs_upgrade, new_id
from deploy.controller.model import (
    Cancel,
    JobObservation,
    StopWithSavepoint,
    Submit,
    TriggerObservation,
)
from deploy.spec import FlinkJob, Lifecycle, Operation, SavepointInfo, UpgradeMode
from tests.unit.builders import (
    CP,
    NAME,
    SP,
    T0,
    change_job,
    change_spec,
    deployed,
    ended,
    flinkjob,
    obs,
    running,
    step,
    the,
    with_status,
)


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


def test_last_state_upgrade_cancels_then_resumes_from_the_last_checkpoint() -> None:
    job = change_job(deployed(flinkjob(job={"upgradeMode": "last-state"})), parallelism=2)
    plan = decide(job, obs(job=running()))
    assert plan.actions == [Cancel("j1")]
    assert plan.status.operation is not None
    assert plan.status.operation.step == "cancelling"
    job = with_status(job, plan.status)
    cancelled = JobObservation("j1", "CANCELED", latest_checkpoint=CP, latest_checkpoint_time=T0)
    plan = decide(job, obs(now=T0 + 3000, job=cancelled))
    assert isinstance(plan.actions[0], Submit)
    assert plan.actions[0].savepoint_path == CP


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


def test_stateless_upgrade_cancels_then_starts_fresh() -> None:
    job = change_job(deployed(flinkjob(job={"upgradeMode": "stateless"})), parallelism=2)
    plan = decide(job, obs(job=running()))
    assert plan.actions == [Cancel("j1")]
    job = with_status(job, plan.status)
    cancelled = JobObservation("j1", "CANCELED", latest_checkpoint=CP, latest_checkpoint_time=T0)
    plan = decide(job, obs(now=T0 + 3000, job=cancelled))
    assert isinstance(plan.actions[0], Submit)
    assert plan.actions[0].savepoint_path is None


def test_a_restart_nonce_change_upgrades_the_job_once(deployed_job: FlinkJob) -> None:
    job = change_spec(deployed_job, restart_nonce=1)
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


def test_a_restart_nonce_restarts_and_an_autoscaler_change_does_not(
    deployed_job: FlinkJob,
) -> None:
    restart = change_spec(deployed_job, restart_nonce=1)
    assert restart.metadata.generation == 2
    plan = decide(restart, obs(job=running()))
    assert isinstance(plan.actions[0], StopWithSavepoint)

    auto = deployed_job.spec.autoscaler.model_copy(update={"max_parallelism": 4})
    rescaled = change_spec(deployed_job, autoscaler=auto)
    assert rescaled.metadata.generation == 2
    plan = decide(rescaled, obs(job=running()))
    assert plan.actions == []
    assert plan.status.observed_generation == 2
    assert plan.status.last_reconciled_spec == rescaled.spec


@pytest.mark.parametrize(
    "spec_change",
    [
        {"autoscaler": {"enabled": False, "maxParallelism": 4}},
        {"savepoints": {"maxCount": 2}},
        {"savepoints": {"interval": "1h"}},
    ],
)
def test_a_change_to_controller_settings_restarts_nothing(
    spec_change: dict[str, Any], deployed_job: FlinkJob
) -> None:
    after = flinkjob(generation=2, **spec_change)
    job = with_status(after, deployed_job.status)
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
