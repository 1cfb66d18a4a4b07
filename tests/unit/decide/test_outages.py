"""Flink or Kafka unreachable: say so, back off and change nothing else; a spec that cannot run
here is FAILED without a submission until it changes (deploy/controller/decide: status,
backoff, start)."""

from __future__ import annotations

from deploy.controller.decide import MAX_RETRY_MS, decide
from deploy.controller.model import StopWithSavepoint, Submit
from deploy.spec import FlinkJob, Lifecycle
from tests.unit.builders import (
    SP,
    T0,
    change_job,
    change_spec,
    condition,
    flinkjob,
    obs,
    reasons,
    running,
    step,
    the,
    with_status,
)


def test_flink_unreachable_changes_nothing_but_says_so_and_backs_off(
    deployed_job: FlinkJob,
) -> None:
    job = change_job(deployed_job, parallelism=2)
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


def test_flink_unreachable_backs_off_and_the_pending_change_goes_on_once_back(
    deployed_job: FlinkJob,
) -> None:
    job = change_job(deployed_job, parallelism=2)
    plan = decide(job, obs(now=T0, flink_error="connection refused"))
    assert plan.actions == []
    st_ = plan.status
    assert "Flink unreachable: connection refused" in str(st_.error)
    assert st_.outages == 1
    assert st_.outage_retry_at == T0 + 1000
    assert st_.job_id == "j1"
    assert [c.status for c in st_.conditions if c.type == "FlinkReachable"] == ["False"]
    job = with_status(job, st_)
    plan = decide(job, obs(now=T0 + 1000, flink_error="connection refused"))
    assert plan.status.outage_retry_at == T0 + 1000 + 2000
    recovered = decide(with_status(job, plan.status), obs(now=T0 + 5000, job=running()))
    assert recovered.status.outages == 0
    assert recovered.status.error is None
    assert [c.status for c in recovered.status.conditions if c.type == "FlinkReachable"] == ["True"]
    assert isinstance(recovered.actions[0], StopWithSavepoint)  # the pending change goes on


def test_flink_unreachable_during_an_operation_keeps_the_operation(upgrading: FlinkJob) -> None:
    plan = decide(upgrading, obs(now=T0 + 1000, flink_error="timed out"))
    assert plan.actions == []
    assert plan.status.operation == upgrading.status.operation


def test_recovery_from_an_outage_clears_it_and_goes_on(deployed_job: FlinkJob) -> None:
    job = change_job(deployed_job, parallelism=2)
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


def test_a_refused_spec_is_failed_until_it_changes() -> None:
    plan = decide(flinkjob(), obs(precheck_error="input topics are not co-partitioned"))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.FAILED
    assert plan.status.error == "input topics are not co-partitioned"
    job = with_status(flinkjob(), plan.status)
    assert decide(job, obs(now=T0 + 60_000)).actions == []  # until the spec changes


def test_a_stateless_job_refused_once_still_starts_from_its_initial_savepoint() -> None:
    """initialSavepointPath is where the job starts the first time it is deployed. A precheck
    refusal deploys nothing, so once the spec is fixed the first deployment still starts there.
    (A regression: found in review and fixed in ae58e0d.)"""
    job = flinkjob(job={"upgradeMode": "stateless", "initialSavepointPath": SP})
    job, plan = step(job, obs(now=T0, precheck_error="input topics are not co-partitioned"))
    assert plan.status.lifecycle == Lifecycle.FAILED
    fixed = change_spec(job, kafka=job.spec.kafka.model_copy(update={"copartitioned": False}))
    plan = decide(fixed, obs(now=T0 + 1000))
    assert the(plan, Submit).savepoint_path == SP


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


def test_kafka_unreachable_waits_and_retries() -> None:
    plan = decide(flinkjob(), obs(kafka_error="waiting for input topics to exist: orders"))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.CREATED
    assert "waiting for input topics" in str(plan.status.error)
    assert plan.status.outage_retry_at is not None


def test_a_broker_that_refuses_us_is_named_in_a_condition_and_an_event() -> None:
    """Wrong credentials, an untrusted certificate or a missing ACL: the job waits (someone must
    fix them outside the spec) and says which broker refused what; once Kafka lets it in, it
    starts and the condition turns True."""
    refused = "Kafka at k:9093 refused the connection (SASL_SSL, ...): SASL authentication failed"
    job, plan = step(flinkjob(), obs(now=T0, kafka_error=refused, kafka_refused=True))
    assert plan.actions == []
    st_ = plan.status
    assert st_.lifecycle == Lifecycle.CREATED
    assert condition(st_, "KafkaAccess") == "False"
    [access] = [c for c in st_.conditions if c.type == "KafkaAccess"]
    assert (access.reason, access.message) == ("Refused", refused)
    assert reasons(st_) == ["KafkaRefused"]
    assert [e.type for e in st_.events] == ["Warning"]
    assert st_.error == f"{refused}; retrying in 1 s"
    _, plan = step(job, obs(now=T0 + 2000))
    assert the(plan, Submit)
    assert condition(plan.status, "KafkaAccess") == "True"


def test_consecutive_kafka_errors_back_off_longer_and_warn_once() -> None:
    """outages counts consecutive reconciles that could not reach Flink/Kafka, and the retry
    delay grows with it, as it does for Flink outages.
    (A regression: found in review and fixed in ae58e0d.)"""
    job, plan = step(flinkjob(), obs(now=T0, kafka_error="Kafka at k:9092 unreachable"))
    assert plan.status.outages == 1
    job, plan = step(job, obs(now=T0 + 1000, kafka_error="Kafka at k:9092 unreachable"))
    assert plan.actions == []
    assert plan.status.outages == 2
    assert plan.status.outage_retry_at == T0 + 1000 + 2000
    assert reasons(plan.status).count("Retrying") == 1


def test_a_precheck_problem_is_not_looked_at_while_the_job_runs(deployed_job: FlinkJob) -> None:
    plan = decide(deployed_job, obs(job=running(), precheck_error="x", kafka_error="y"))
    assert plan.actions == []
    assert plan.status.lifecycle == Lifecycle.RUNNING
