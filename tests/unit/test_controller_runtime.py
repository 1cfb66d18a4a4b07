"""The controller's Flink runtime against a fake Flink REST API (httpx.MockTransport), and the
reconcile loop against a fake runtime and a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.controller.flink import (
    FlinkRuntime,
    copartition_problem,
    job_args,
    job_configuration,
    root_cause,
)
from deploy.controller.loop import Controller
from deploy.controller.model import (
    Action,
    Cancel,
    Dispose,
    JobObservation,
    Observation,
    StopWithSavepoint,
    Submit,
    TriggerSavepoint,
)
from deploy.errors import FlinkError
from deploy.flink_rest import FlinkClient
from deploy.spec import FlinkJob, JobStatus, Operation, parse
from deploy.store import SqliteStore


def flinkjob(**spec: Any) -> FlinkJob:
    job = {"entry": "jobs.ledger", "args": ["--orders-topic", "orders"]}
    job.update(spec.pop("job", {}))
    return parse(
        {
            "apiVersion": "eddyline.dev/v1alpha1",
            "kind": "FlinkJob",
            "metadata": {"name": "ledger"},
            "spec": {"job": job, **spec},
        }
    )


class FakeFlink:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.triggers: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, str] = {}
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused")
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content else None
        self.requests.append((method, path, body))
        parts = path.strip("/").split("/")
        if path == "/jars" and method == "GET":
            return httpx.Response(
                200, json={"files": [{"id": "py.jar", "name": "flink-python-2.2.1.jar"}]}
            )
        if path == "/jars/py.jar/run":
            return httpx.Response(200, json={"jobid": body["jobId"]})
        if parts[0] == "jobs" and len(parts) >= 2:
            job = self.jobs.get(parts[1])
            if job is None:
                return httpx.Response(404, json={"errors": [f"Job {parts[1]} not found"]})
            if len(parts) == 2 and method == "GET":
                return httpx.Response(200, json=job)
            if len(parts) == 2 and method == "PATCH":
                return httpx.Response(409 if job["state"] == "FINISHED" else 202, json={})
            if parts[2] == "checkpoints":
                return httpx.Response(200, json=job.get("checkpoints", {"latest": {}}))
            if parts[2] == "exceptions":
                history = [{"stacktrace": self.failures.get(parts[1], "")}]
                return httpx.Response(200, json={"exceptionHistory": {"entries": history}})
            if parts[2] == "savepoints" and len(parts) == 4:
                t = self.triggers.get(parts[3])
                return httpx.Response(200, json=t) if t else httpx.Response(404, json={})
            if parts[2] in ("savepoints", "stop"):
                return httpx.Response(202, json={"request-id": body["triggerId"]})
        if path == "/savepoint-disposal":
            return httpx.Response(202, json={"request-id": "d"})
        return httpx.Response(500, text=f"unexpected {method} {path}")


@pytest.fixture
def fake() -> FakeFlink:
    return FakeFlink()


@pytest.fixture
def runtime(fake: FakeFlink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FlinkRuntime:
    jar = tmp_path / "flink-python-2.2.1.jar"
    jar.write_bytes(b"PK")
    monkeypatch.setattr("deploy.paths.flink_python_jar", lambda: jar)
    client = FlinkClient("http://flink:8081", transport=httpx.MockTransport(fake))
    return FlinkRuntime(client, "kafka:9092")


def test_observe_reads_the_job_its_checkpoints_and_its_failure(
    fake: FakeFlink, runtime: FlinkRuntime
) -> None:
    fake.jobs["j1"] = {
        "state": "FAILED",
        "start-time": 1000,
        "vertices": [{"status": "FAILED", "parallelism": 2}],
        "checkpoints": {
            "latest": {
                "completed": {"external_path": "file:/cp/chk-3", "latest_ack_timestamp": 5},
                "savepoint": {"external_path": "file:/sp/1", "latest_ack_timestamp": 4},
            }
        },
    }
    fake.failures["j1"] = (
        "org.apache.flink.runtime.JobException: Recovery is suppressed\n"
        "Caused by: java.lang.RuntimeException: Error received from SDK harness\n"
        'Traceback (most recent call last):\n  File "x.py", line 3\n'
        "RuntimeError: poisoned message 'boom'\n\tat org.apache.beam.Foo"
    )
    job = flinkjob().model_copy(update={"status": JobStatus(job_id="j1")})
    obs = runtime.observe(job, 123)
    assert obs.flink_error is None
    assert obs.job == JobObservation(
        job_id="j1",
        state="FAILED",
        all_running=False,
        start_time=1000,
        parallelism=2,
        root_exception="RuntimeError: poisoned message 'boom'",
        latest_checkpoint="file:/cp/chk-3",
        latest_checkpoint_time=5,
        latest_savepoint="file:/sp/1",
        latest_savepoint_time=4,
    )


def test_observe_a_missing_job_a_pending_trigger_and_an_unreachable_flink(
    fake: FakeFlink, runtime: FlinkRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "deploy.kafka_io.partition_counts",
        lambda servers, topics, timeout: dict.fromkeys(topics, 2),
    )
    fake.jobs["j1"] = {"state": "RUNNING", "vertices": [{"status": "RUNNING", "parallelism": 1}]}
    fake.triggers["t1"] = {"status": {"id": "COMPLETED"}, "operation": {"location": "file:/sp/2"}}
    op = Operation(kind="upgrade", step="stopping", started_at=0, job_id="j1", trigger_id="t1")
    job = flinkjob().model_copy(update={"status": JobStatus(job_id="gone", operation=op)})
    obs = runtime.observe(job, 1)
    assert obs.job is not None
    assert obs.job.job_id == "j1"  # the job the operation stops, since status.jobId is gone
    assert obs.trigger is not None
    assert (obs.trigger.state, obs.trigger.location) == ("COMPLETED", "file:/sp/2")
    fake.down = True
    assert "connection refused" in str(runtime.observe(job, 2).flink_error)


def test_precheck_refuses_uncopartitioned_joins_and_waits_for_missing_topics(
    runtime: FlinkRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts: dict[str, int | None] = {"views": 2, "clicks": 3}
    monkeypatch.setattr("deploy.kafka_io.partition_counts", lambda s, topics, timeout: counts)
    spec = flinkjob(kafka={"inputTopics": ["views", "clicks"]}).spec
    problem, transient = runtime.precheck(spec)
    assert "not co-partitioned (views: 2, clicks: 3 partitions)" in str(problem)
    assert transient is None
    counts["clicks"] = None
    assert runtime.precheck(spec) == (None, "waiting for input topics to exist: clicks")
    counts["clicks"] = 2
    assert runtime.precheck(spec) == (None, None)
    unjoined = flinkjob(kafka={"inputTopics": ["views", "clicks"], "copartitioned": False}).spec
    counts["clicks"] = 3
    assert runtime.precheck(unjoined) == (None, None)
    bad_entry = flinkjob(job={"entry": "jobs.nope"}).spec
    assert "no module jobs.nope" in str(runtime.precheck(bad_entry)[0])


def test_act_sends_idempotent_requests(fake: FakeFlink, runtime: FlinkRuntime) -> None:
    job = flinkjob(job={"parallelism": 2})
    fake.jobs["j1"] = {"state": "FINISHED", "vertices": []}
    actions: list[Action] = [
        Submit("a" * 32, job.spec, "file:/sp/1"),
        StopWithSavepoint("j1", "t1"),
        TriggerSavepoint("j1", "t2"),
        Cancel("j1"),  # 409: already ended — fine
        Cancel("nope"),  # 404: already gone — fine
        Dispose("file:/sp/0"),
    ]
    for action in actions:
        runtime.act(job, action)
    sent = [(m, p, b) for m, p, b in fake.requests if p != "/jars"]
    run = sent[0][2]
    assert run["jobId"] == "a" * 32
    assert run["savepointPath"] == "file:/sp/1"
    assert run["parallelism"] == 2
    assert run["programArgsList"][:2] == ["-pym", "jobs.ledger"]
    assert run["programArgsList"][-2:] == ["--bootstrap-servers", "kafka:9092"]
    assert run["flinkConfiguration"]["parallelism.default"] == "2"
    assert sent[1] == ("POST", "/jobs/j1/stop", {"triggerId": "t1", "drain": False})
    assert sent[2] == ("POST", "/jobs/j1/savepoints", {"triggerId": "t2", "cancel-job": False})
    assert sent[-1] == ("POST", "/savepoint-disposal", {"savepoint-path": "file:/sp/0"})


def test_job_configuration_and_args() -> None:
    spec = flinkjob(
        checkpointing={"interval": "5s", "mode": "AT_LEAST_ONCE", "timeout": "2m"},
        flinkConfiguration={"state.backend.type": "rocksdb", "parallelism.default": 7},
    ).spec
    conf = job_configuration(spec)
    assert conf["execution.checkpointing.interval"] == "5000 ms"
    assert conf["execution.checkpointing.mode"] == "AT_LEAST_ONCE"
    assert conf["execution.checkpointing.timeout"] == "120000 ms"
    assert (
        conf["execution.checkpointing.externalized-checkpoint-retention"]
        == "RETAIN_ON_CANCELLATION"
    )
    assert conf["restart-strategy.type"] == "fixed-delay"
    assert conf["restart-strategy.fixed-delay.attempts"] == "2"
    assert conf["state.backend.type"] == "rocksdb"
    assert conf["parallelism.default"] == "7"  # the user's configuration wins
    own = flinkjob(flinkConfiguration={"restart-strategy.type": "none"}).spec
    assert "restart-strategy.fixed-delay.attempts" not in job_configuration(own)

    assert job_args(spec, "k:1") == ["--orders-topic", "orders", "--bootstrap-servers", "k:1"]
    named = flinkjob(job={"args": ["--bootstrap-servers=b:2"]}).spec
    assert job_args(named, "k:1") == ["--bootstrap-servers=b:2"]
    via_spec = flinkjob(kafka={"bootstrapServers": "s:3"}).spec
    assert job_args(via_spec, "k:1")[-1] == "s:3"
    assert copartition_problem({"a": 2, "b": 2}, ["a", "b"]) is None


def test_root_cause_prefers_the_python_exception() -> None:
    assert root_cause("") is None
    assert root_cause(
        "java.lang.IllegalStateException: x\nCaused by: java.io.IOException: disk"
    ) == ("Caused by: java.io.IOException: disk")


# -- the loop ---------------------------------------------------------------------------------


class FakeRuntime:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.acted: list[tuple[Action, JobStatus]] = []
        self.fail_with: FlinkError | None = None

    def observe(self, job: FlinkJob, now: int) -> Observation:
        return Observation(now=now)

    def act(self, job: FlinkJob, action: Action) -> None:
        stored = self.store.get(job.name)
        assert stored is not None
        self.acted.append((action, stored.status))
        if self.fail_with:
            raise self.fail_with


def test_the_status_is_written_before_the_action_runs(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "jobs.db")
    store.apply(flinkjob())
    runtime = FakeRuntime(store)
    Controller(store, runtime).reconcile("ledger")
    ((action, status_then),) = runtime.acted
    assert isinstance(action, Submit)
    assert status_then.operation is not None
    assert status_then.operation.new_job_id == action.job_id


def test_a_failed_action_is_recorded_with_a_backoff(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "jobs.db")
    store.apply(flinkjob())
    runtime = FakeRuntime(store)
    runtime.fail_with = FlinkError("Flink REST POST /jars/x/run answered 500: boom", status=500)
    Controller(store, runtime).reconcile("ledger")
    job = store.get("ledger")
    assert job is not None
    assert job.status.failures == 1
    assert "submit failed: Flink REST POST" in str(job.status.error)
    assert job.status.next_retry_at is not None
    assert job.status.events[-1].reason == "ActionFailed"


def test_a_second_controller_leaves_a_leased_job_alone(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "jobs.db")
    store.apply(flinkjob())
    first, second = FakeRuntime(store), FakeRuntime(store)
    Controller(store, first, lease_ttl=30).reconcile("ledger")
    Controller(store, second, lease_ttl=30).reconcile("ledger")
    assert len(first.acted) == 1
    assert second.acted == []


def test_a_finished_deletion_removes_the_job(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "jobs.db")
    store.apply(flinkjob())
    store.request_delete("ledger", savepoint=False)
    Controller(store, FakeRuntime(store)).reconcile("ledger")
    assert store.get("ledger") is None


def test_a_metrics_sample_reads_busy_time_rates_and_pending_records(fake: FakeFlink) -> None:
    from deploy.controller import jobmetrics  # noqa: PLC0415 - keeps the import next to its test

    fake.jobs["j1"] = {
        "state": "RUNNING",
        "vertices": [
            {"id": "v1", "name": "Source: orders[1] -> Calc", "parallelism": 2},
            {"id": "v2", "name": "ledger -> sink", "parallelism": 2},
        ],
    }
    metrics = {
        "v1": [
            {"id": "busyTimeMsPerSecond", "max": 200.0, "sum": 300.0},
            {"id": "numRecordsOutPerSecond", "max": 60.0, "sum": 100.0},
            {"id": "Source__orders[1].pendingRecords", "max": 40.0, "sum": 70.0},
        ],
        "v2": [
            {"id": "busyTimeMsPerSecond", "max": 900.0, "sum": 1500.0},
            {"id": "backPressuredTimeMsPerSecond", "max": 0.0, "sum": 0.0},
            {"id": "numRecordsInPerSecond", "max": 60.0, "sum": 100.0},
        ],
    }

    def answer(request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        if request.url.path.endswith("/subtasks/metrics"):
            return httpx.Response(200, json=metrics[parts[3]])
        return fake(request)

    client = FlinkClient("http://flink:8081", transport=httpx.MockTransport(answer))
    sample = jobmetrics.sample(client, "j1", 5)
    assert sample.parallelism == 2
    assert sample.lag == 70
    assert sample.input_rate == 100.0
    source, ledger = sample.vertices
    assert source.is_source
    assert (source.busy, source.records_out_per_s) == (0.2, 100.0)
    assert (ledger.busy, ledger.records_in_per_s, ledger.is_source) == (0.9, 100.0, False)
