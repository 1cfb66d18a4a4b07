"""With JobManager high availability, a job Flink no longer knows (a JobManager restart) comes
back under its id once the new leader has recovered it: the controller waits, up to
HA_RECOVERY_MS, before anything that would start, forget or replace it
(deploy/controller/decide/recovery.py)."""

from __future__ import annotations

import pytest

from deploy.controller.decide import HA_RECOVERY_MS
from deploy.controller.model import (
    Cancel,
    Forget,
    StopWithSavepoint,
    Submit,
    TriggerObservation,
)
from deploy.spec import FlinkJob, Lifecycle, Operation, UpgradeMode
from tests.unit.builders import (
    CP,
    T0,
    deleting,
    deployed,
    flinkjob,
    obs,
    reasons,
    running,
    set_status,
    step,
    stopping,
    the,
)


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


def test_with_ha_a_job_awaited_is_not_shown_as_running(deployed_job: FlinkJob) -> None:
    job = set_status(deployed_job, lifecycle=Lifecycle.STABLE)
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
