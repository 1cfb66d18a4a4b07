"""The controller's Flink runtime against a fake Flink REST API (httpx.MockTransport), and the
reconcile loop against a fake runtime and a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.controller.loop import Controller
from deploy.controller.model import (
    Action,
    Cancel,
    Dispose,
    Forget,
    JobObservation,
    Observation,
    Rescale,
    StopWithSavepoint,
    Submit,
    TriggerObservation,
    TriggerSavepoint,
)
from deploy.errors import (
    FlinkError,
    FlinkNotFoundError,
    FlinkRefusedError,
    FlinkUnavailableError,
    FlinkUnreachableError,
    KafkaAccessError,
    SpecError,
)
from deploy.flink.inputs import Precheck
from deploy.flink.rest import FlinkClient
from deploy.flink.runtime import (
    FlinkRuntime,
    copartition_problem,
    job_args,
    job_configuration,
    root_cause,
)
from deploy.flink.states import PYTHON_DRIVER
from deploy.local.store import SqliteStore
from deploy.spec import FlinkJob, JobStatus, Operation
from tests.unit.builders import flinkjob, with_status


class FakeFlink:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.triggers: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, str] = {}
        self.scheduler = "default"
        self.requirements: dict[str, dict[str, Any]] = {}
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused")
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content else None
        self.requests.append((method, path, body))
        parts = path.strip("/").split("/")
        if path == "/jobmanager/config":
            return httpx.Response(
                200, json=[{"key": "jobmanager.scheduler", "value": self.scheduler}]
            )
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
            if parts[2] == "resource-requirements":
                if method == "PUT":
                    self.requirements[parts[1]] = body
                return httpx.Response(200, json=self.requirements.get(parts[1], {}))
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
    problem, transient, _refused = runtime.precheck(spec)
    assert "not co-partitioned (views: 2, clicks: 3 partitions)" in str(problem)
    assert transient is None
    counts["clicks"] = None
    assert runtime.precheck(spec) == Precheck(transient="waiting for input topics to exist: clicks")
    counts["clicks"] = 2
    assert runtime.precheck(spec) == Precheck()
    unjoined = flinkjob(kafka={"inputTopics": ["views", "clicks"], "copartitioned": False}).spec
    counts["clicks"] = 3
    assert runtime.precheck(unjoined) == Precheck()
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
    # Named after the FlinkJob, unless the user names the pipeline.
    assert job_configuration(spec, "ledger-eu")["pipeline.name"] == "ledger-eu"
    assert "pipeline.name" not in job_configuration(spec)
    renamed = flinkjob(flinkConfiguration={"pipeline.name": "mine"}).spec
    assert job_configuration(renamed, "ledger-eu")["pipeline.name"] == "mine"

    assert "python.execution-mode" not in conf  # the job's own default
    threaded = flinkjob(job={"pythonExecutionMode": "thread"}).spec
    assert job_configuration(threaded)["python.execution-mode"] == "thread"

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
    from deploy.flink import jobmetrics  # noqa: PLC0415 - keeps the import next to its test

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


# -- FlinkRuntime against a recording REST API, request by request ------------------------------

JOB = {
    "state": "RUNNING",
    "start-time": 1_700_000_000_000,
    "vertices": [
        {"id": "v1", "status": "RUNNING", "parallelism": 2},
        {"id": "v2", "status": "RUNNING", "parallelism": 3},
    ],
}
CHECKPOINTS = {
    "latest": {
        "completed": {"external_path": "file:/cp/chk-9", "latest_ack_timestamp": 1234},
        "savepoint": None,
    }
}


class Api:
    """Answers from a table of (method, path) → (status, body), records every request, and can
    refuse connections."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], tuple[int, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.down = False
        self.jar_uploaded = False
        self.on("GET", "/jobmanager/config", 200, [])

    def on(self, method: str, path: str, status: int, body: Any = None) -> None:
        self.answers[(method, path)] = (status, {} if body is None else body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        method, path = request.method, request.url.path
        body = None
        if request.content and request.headers.get("content-type") == "application/json":
            body = json.loads(request.content)
        self.requests.append((method, path, dict(request.url.params), body))
        if (method, path) == ("GET", "/jars"):
            files = [{"id": "abc_py.jar", "name": "flink-python.jar"}] if self.jar_uploaded else []
            return httpx.Response(200, json={"files": files})
        if (method, path) == ("POST", "/jars/upload"):
            self.jar_uploaded = True
            return httpx.Response(200, json={"filename": "/tmp/up/abc_py.jar", "status": "ok"})
        status, answer = self.answers.get((method, path), (404, {"errors": ["Not found"]}))
        return httpx.Response(status, json=answer)

    def sent(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _, _ in self.requests]


@pytest.fixture
def api() -> Api:
    return Api()


@pytest.fixture
def rt(api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FlinkRuntime:
    jar = tmp_path / "flink-python.jar"
    jar.write_bytes(b"PK")
    monkeypatch.setattr("deploy.paths.flink_python_jar", lambda: jar)
    client = FlinkClient("http://flink:8081", transport=httpx.MockTransport(api))
    return FlinkRuntime(client, "kafka:9092")


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """partition_counts without Kafka: 4 partitions per topic; records its calls."""
    calls: list[tuple[str, list[str]]] = []

    def counts(servers: str, topics: Any, timeout: float) -> dict[str, int | None]:
        calls.append((servers, list(topics)))
        return dict.fromkeys(topics, 4)

    monkeypatch.setattr("deploy.kafka_io.partition_counts", counts)
    return calls


def job_with(status: JobStatus, **spec: Any) -> FlinkJob:
    return with_status(flinkjob(**spec), status)


def test_observe_maps_a_running_job_and_its_latest_checkpoint(api: Api, rt: FlinkRuntime) -> None:
    api.on("GET", "/jobs/j1", 200, JOB)
    api.on("GET", "/jobs/j1/checkpoints", 200, CHECKPOINTS)
    observation = rt.observe(job_with(JobStatus(job_id="j1")), 99)
    assert observation.now == 99
    assert observation.flink_error is None
    assert observation.job == JobObservation(
        job_id="j1",
        state="RUNNING",
        all_running=True,
        start_time=1_700_000_000_000,
        parallelism=3,
        latest_checkpoint="file:/cp/chk-9",
        latest_checkpoint_time=1234,
    )
    assert observation.new_job is None
    assert observation.trigger is None
    # A running job is neither prechecked nor asked for its exceptions.
    assert observation.precheck_error is None
    assert ("GET", "/jobs/j1/exceptions") not in api.sent()


def test_observe_a_failing_checkpoint_with_where_it_writes_and_the_cluster_mode(
    api: Api, rt: FlinkRuntime
) -> None:
    """The newest checkpoint failed after the last completed one: its id and Flink's reason
    (first line); the checkpoint folder and HA from the JobManager's configuration, asked once."""
    api.on("GET", "/jobmanager/config", 200, [
        {"key": "execution.checkpointing.dir", "value": "s3://state/eddyline/checkpoints"},
        {"key": "high-availability.type", "value": "kubernetes"},
    ])  # fmt: skip
    failed = {
        "id": 12,
        "failure_message": "java.nio.file.AccessDeniedException: s3://state/x: 403 Forbidden"
        "\n\tat org.apache.hadoop.fs.s3a.S3AUtils.translateException",
    }
    api.on("GET", "/jobs/j1", 200, JOB)
    api.on(
        "GET", "/jobs/j1/checkpoints", 200, {"latest": {**CHECKPOINTS["latest"], "failed": failed}}
    )
    observation = rt.observe(job_with(JobStatus(job_id="j1")), 99)
    assert observation.high_availability is True
    assert observation.checkpoint_dir == "s3://state/eddyline/checkpoints"
    assert observation.job is not None
    assert observation.job.checkpoint_failure_id == 12
    assert observation.job.checkpoint_failure == (
        "java.nio.file.AccessDeniedException: s3://state/x: 403 Forbidden"
    )
    # A job's own folder wins; an older failure than the last completed one is no failure.
    stale = {
        "latest": {"completed": {"id": 13, "external_path": "s3://b/chk-13"}, "failed": failed}
    }
    api.on("GET", "/jobs/j1/checkpoints", 200, stale)
    own = job_with(
        JobStatus(job_id="j1"), flinkConfiguration={"execution.checkpointing.dir": "s3://own/cp"}
    )
    again = rt.observe(own, 100)
    assert again.checkpoint_dir == "s3://own/cp"
    assert again.job is not None
    assert again.job.checkpoint_failure is None
    assert api.sent().count(("GET", "/jobmanager/config")) == 1
    # Flink unreachable (a JobManager replaced): the next one is asked again.
    api.down = True
    assert rt.observe(own, 101).flink_error
    api.down = False
    rt.observe(own, 102)
    assert api.sent().count(("GET", "/jobmanager/config")) == 2


def test_observe_a_job_not_all_running_and_one_without_vertices(api: Api, rt: FlinkRuntime) -> None:
    vertices = [{"status": "RUNNING", "parallelism": 1}, {"status": "DEPLOYING", "parallelism": 1}]
    mixed = {**JOB, "vertices": vertices}
    api.on("GET", "/jobs/j1", 200, mixed)
    api.on("GET", "/jobs/j1/checkpoints", 200, {"latest": {}})
    seen = rt.observe(job_with(JobStatus(job_id="j1")), 1).job
    assert seen is not None
    assert seen.all_running is False
    assert seen.latest_checkpoint is None
    api.on("GET", "/jobs/j1", 200, {"state": "CREATED", "vertices": []})
    seen = rt.observe(job_with(JobStatus(job_id="j1")), 2).job
    assert seen is not None
    assert (seen.all_running, seen.parallelism, seen.start_time) == (False, None, None)


def test_observe_a_failed_job_reads_its_root_exception(api: Api, rt: FlinkRuntime) -> None:
    api.on("GET", "/jobs/j1", 200, {**JOB, "state": "FAILED"})
    api.on("GET", "/jobs/j1/checkpoints", 200, CHECKPOINTS)
    trace = (
        "org.apache.flink.runtime.JobException: Recovery is suppressed\n"
        "Caused by: java.lang.RuntimeException: Python process exited\n"
        'Traceback (most recent call last):\n  File "ledger.py", line 9\n'
        "ValueError: bad record 7\n"
    )
    api.on(
        "GET",
        "/jobs/j1/exceptions",
        200,
        {"exceptionHistory": {"entries": [{"stacktrace": trace}]}},
    )
    seen = rt.observe(job_with(JobStatus(job_id="j1")), 1).job
    assert seen is not None
    assert seen.terminal
    assert seen.root_exception == "ValueError: bad record 7"
    # Older Flink: root-exception only.
    api.on(
        "GET",
        "/jobs/j1/exceptions",
        200,
        {"root-exception": "java.lang.Exception: x\nCaused by: java.io.IOException: disk"},
    )
    seen = rt.observe(job_with(JobStatus(job_id="j1")), 2).job
    assert seen is not None
    assert seen.root_exception == "Caused by: java.io.IOException: disk"


def test_observe_a_job_flink_does_not_know_as_none(api: Api, rt: FlinkRuntime, kafka: Any) -> None:
    observation = rt.observe(job_with(JobStatus(job_id="gone")), 1)
    assert observation.flink_error is None
    assert observation.job is None
    assert ("GET", "/jobs/gone/checkpoints") not in api.sent()


def test_observe_the_job_being_submitted(api: Api, rt: FlinkRuntime, kafka: Any) -> None:
    op = Operation(kind="submit", step="submitting", started_at=0, new_job_id="n1")
    job = job_with(JobStatus(operation=op))
    assert rt.observe(job, 1).new_job is None  # not there yet
    api.on("GET", "/jobs/n1", 200, JOB)
    api.on("GET", "/jobs/n1/checkpoints", 200, {"latest": {}})
    new_job = rt.observe(job, 2).new_job
    assert new_job is not None
    assert (new_job.job_id, new_job.state) == ("n1", "RUNNING")


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (404, {"errors": ["no such trigger"]}, TriggerObservation("UNKNOWN")),
        (400, {"errors": ["bad trigger"]}, TriggerObservation("UNKNOWN")),
        (200, {"status": {"id": "IN_PROGRESS"}}, TriggerObservation("IN_PROGRESS")),
        (
            200,
            {"status": {"id": "COMPLETED"}, "operation": {"location": "file:/sp/3"}},
            TriggerObservation("COMPLETED", location="file:/sp/3"),
        ),
        (
            200,
            {
                "status": {"id": "COMPLETED"},
                "operation": {
                    "failure-cause": {
                        "class": "java.util.concurrent.CompletionException",
                        "stack-trace": "java.util.concurrent.CompletionException: x\n\tat a.b\n"
                        "Caused by: java.io.IOException: No space left on device\n\tat c.d",
                    }
                },
            },
            TriggerObservation(
                "FAILED", failure="Caused by: java.io.IOException: No space left on device"
            ),
        ),
    ],
    ids=["404", "400", "in-progress", "completed", "failed"],
)
def test_observe_maps_savepoint_triggers(
    api: Api, rt: FlinkRuntime, status: int, answer: Any, expected: TriggerObservation
) -> None:
    api.on("GET", "/jobs/j1", 200, JOB)
    api.on("GET", "/jobs/j1/checkpoints", 200, {"latest": {}})
    api.on("GET", "/jobs/j1/savepoints/t1", status, answer)
    op = Operation(kind="upgrade", step="stopping", started_at=0, job_id="j1", trigger_id="t1")
    assert rt.observe(job_with(JobStatus(job_id="j1", operation=op)), 1).trigger == expected


def test_observe_reports_an_unreachable_or_failing_flink(
    api: Api, rt: FlinkRuntime, kafka: Any
) -> None:
    job = job_with(JobStatus(job_id="j1"))
    api.down = True
    down = rt.observe(job, 5)
    assert down.job is None
    assert down.now == 5
    assert "Flink REST GET /jobs/j1 at http://flink:8081 failed: connection refused" in str(
        down.flink_error
    )
    assert kafka == []  # nothing else is looked at
    api.down = False
    api.on("GET", "/jobs/j1", 503, {"errors": ["overloaded"]})
    assert "answered 503: overloaded" in str(rt.observe(job, 6).flink_error)
    api.on("GET", "/jobs/j1", 200, JOB)
    api.on("GET", "/jobs/j1/checkpoints", 200, {"latest": {}})
    api.on("GET", "/jobs/j1/savepoints/t1", 500, {"errors": ["boom"]})
    op = Operation(
        kind="savepoint", step="savepointing", started_at=0, job_id="j1", trigger_id="t1"
    )
    assert "answered 500" in str(
        rt.observe(job_with(JobStatus(job_id="j1", operation=op)), 7).flink_error
    )


def test_prechecks_run_only_when_a_job_may_be_started(
    api: Api, rt: FlinkRuntime, kafka: Any
) -> None:
    spec = {"kafka": {"inputTopics": ["orders"]}}
    rt.observe(job_with(JobStatus(), **spec), 1)  # nothing running: checked
    assert kafka == [("kafka:9092", ["orders"])]
    api.on("GET", "/jobs/j1", 200, JOB)
    api.on("GET", "/jobs/j1/checkpoints", 200, {"latest": {}})
    rt.observe(job_with(JobStatus(job_id="j1"), **spec), 2)  # running: not checked
    assert len(kafka) == 1
    api.on("GET", "/jobs/j1", 200, {**JOB, "state": "CANCELED"})
    rt.observe(job_with(JobStatus(job_id="j1"), **spec), 3)  # ended: checked
    assert len(kafka) == 2
    deleting = job_with(JobStatus(), **spec)
    meta = deleting.metadata.model_copy(update={"deletion_timestamp": "2026-01-01T00:00:00Z"})
    rt.observe(deleting.model_copy(update={"metadata": meta}), 4)  # being deleted: not checked
    assert len(kafka) == 2


def test_precheck_names_the_kafka_it_could_not_reach(
    rt: FlinkRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(servers: str, topics: Any, timeout: float) -> dict[str, int | None]:
        raise RuntimeError("timed out")

    monkeypatch.setattr("deploy.kafka_io.partition_counts", unreachable)
    spec = flinkjob(kafka={"inputTopics": ["orders"], "bootstrapServers": "k2:9093"}).spec
    assert rt.precheck(spec) == Precheck(transient="Kafka at k2:9093 unreachable: timed out")
    observation = rt.observe(job_with(JobStatus(), kafka={"inputTopics": ["orders"]}), 1)
    assert observation.kafka_error == "Kafka at kafka:9092 unreachable: timed out"
    assert observation.precheck_error is None
    assert not observation.kafka_refused


def test_precheck_says_which_broker_refused_us_and_why(
    rt: FlinkRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials, TLS trust and ACLs are the broker refusing us, not being down: the
    observation says so, and the message is Kafka's own error with the broker named."""
    message = "Kafka at k2:9093 refused the connection (SASL_SSL, ...): SASL authentication error"

    def refused(servers: str, topics: Any, timeout: float) -> dict[str, int | None]:
        raise KafkaAccessError(message)

    monkeypatch.setattr("deploy.kafka_io.partition_counts", refused)
    observation = rt.observe(job_with(JobStatus(), kafka={"inputTopics": ["orders"]}), 1)
    assert observation.kafka_error == message
    assert observation.kafka_refused


def test_precheck_refuses_an_entry_that_does_not_resolve(rt: FlinkRuntime, kafka: Any) -> None:
    problem, transient, _ = rt.precheck(flinkjob(job={"entry": "jobs.does_not_exist"}).spec)
    assert problem is not None
    assert problem.startswith("spec.job.entry: 'jobs.does_not_exist' no module")
    assert transient is None
    assert kafka == []
    assert rt.precheck(flinkjob().spec) == Precheck()  # no input topics: Kafka not asked


def test_act_stop_trigger_cancel_and_dispose_send_the_right_requests(
    api: Api, rt: FlinkRuntime
) -> None:
    job = flinkjob()
    api.on("POST", "/jobs/j1/stop", 202, {"request-id": "t1"})
    api.on("POST", "/jobs/j1/savepoints", 202, {"request-id": "t2"})
    api.on("PATCH", "/jobs/j1", 202)
    api.on("POST", "/savepoint-disposal", 200, {"request-id": "d"})
    rt.act(job, StopWithSavepoint("j1", "t1"))
    rt.act(job, TriggerSavepoint("j1", "t2"))
    rt.act(job, Cancel("j1"))
    rt.act(job, Dispose("file:/sp/0"))
    rt.act(job, Forget())
    assert api.requests == [
        ("POST", "/jobs/j1/stop", {}, {"triggerId": "t1", "drain": False}),
        ("POST", "/jobs/j1/savepoints", {}, {"triggerId": "t2", "cancel-job": False}),
        ("PATCH", "/jobs/j1", {"mode": "cancel"}, None),
        ("POST", "/savepoint-disposal", {}, {"savepoint-path": "file:/sp/0"}),
    ]


@pytest.mark.parametrize("status", [404, 409])
def test_cancelling_a_job_that_is_gone_or_ended_is_fine(
    api: Api, rt: FlinkRuntime, status: int
) -> None:
    api.on("PATCH", "/jobs/j1", status, {"errors": ["not running"]})
    rt.act(flinkjob(), Cancel("j1"))  # returns: the job is not running, which was the point
    # The cancel was sent, once, and nothing else was.
    assert api.requests == [("PATCH", "/jobs/j1", {"mode": "cancel"}, None)]


def test_other_failures_of_an_action_are_raised(api: Api, rt: FlinkRuntime) -> None:
    api.on("PATCH", "/jobs/j1", 500, {"errors": ["busy"]})
    with pytest.raises(FlinkError, match="answered 500: busy") as info:
        rt.act(flinkjob(), Cancel("j1"))
    assert info.value.status == 500
    assert isinstance(info.value, FlinkUnavailableError)  # temporary: the next try may pass
    with pytest.raises(FlinkError, match="answered 404") as missing:
        rt.act(flinkjob(), StopWithSavepoint("nope", "t"))
    assert isinstance(missing.value, FlinkNotFoundError)  # permanent: no such job
    api.down = True
    with pytest.raises(FlinkError, match="connection refused") as down:
        rt.act(flinkjob(), Dispose("file:/sp/0"))
    assert isinstance(down.value, FlinkUnreachableError)
    assert down.value.status is None


def test_submit_uploads_the_jar_once_and_runs_the_python_driver(api: Api, rt: FlinkRuntime) -> None:
    api.on("POST", "/jars/abc_py.jar/run", 200, {"jobid": "a" * 32})
    job = flinkjob(
        job={"parallelism": 2, "allowNonRestoredState": True},
        flinkConfiguration={"state.backend.type": "rocksdb"},
    )
    rt.act(job, Submit("a" * 32, job.spec, "file:/sp/1"))
    assert api.sent() == [
        ("GET", "/jars"),
        ("POST", "/jars/upload"),
        ("POST", "/jars/abc_py.jar/run"),
    ]
    body = api.requests[-1][3]
    assert body == {
        "entryClass": PYTHON_DRIVER,
        "programArgsList": [
            "-pym",
            "jobs.ledger",
            "--orders-topic",
            "orders",
            "--bootstrap-servers",
            "kafka:9092",
        ],
        "parallelism": 2,
        "jobId": "a" * 32,
        "flinkConfiguration": job_configuration(job.spec, job.name),
        "savepointPath": "file:/sp/1",
        "allowNonRestoredState": True,
    }
    assert body["flinkConfiguration"]["state.backend.type"] == "rocksdb"
    # A second submission finds the uploaded jar; without a savepoint there is no savepointPath.
    api.requests.clear()
    api.on("POST", "/jars/abc_py.jar/run", 200, {"jobid": "b" * 32})
    rt.act(job, Submit("b" * 32, job.spec, None))
    assert api.sent() == [("GET", "/jars"), ("POST", "/jars/abc_py.jar/run")]
    body = api.requests[-1][3]
    assert body["jobId"] == "b" * 32
    assert "savepointPath" not in body
    assert "allowNonRestoredState" not in body


def test_a_resubmission_of_a_job_that_already_exists_is_fine(api: Api, rt: FlinkRuntime) -> None:
    api.on("POST", "/jars/abc_py.jar/run", 400, {"errors": ["DuplicateJobSubmissionException"]})
    api.on("GET", "/jobs/" + "a" * 32, 200, JOB)
    rt.act(flinkjob(), Submit("a" * 32, flinkjob().spec, None))  # returns: the job exists
    # Taken as done only once Flink confirmed a job of that id exists; nothing sent twice.
    assert api.sent()[-2:] == [("POST", "/jars/abc_py.jar/run"), ("GET", "/jobs/" + "a" * 32)]
    assert api.sent().count(("POST", "/jars/abc_py.jar/run")) == 1


def test_a_refused_submission_of_a_job_that_does_not_exist_is_raised(
    api: Api, rt: FlinkRuntime
) -> None:
    """The contrast: the same refusal for an id Flink does not know is a real failure."""
    api.on("POST", "/jars/abc_py.jar/run", 400, {"errors": ["Could not execute application"]})
    api.on("GET", "/jobmanager/log", 200, "")
    with pytest.raises(FlinkError, match="answered 400") as info:
        rt.act(flinkjob(), Submit("a" * 32, flinkjob().spec, None))
    assert info.value.status == 400
    assert isinstance(info.value, FlinkRefusedError)  # no traceback in the log to name
    assert ("GET", "/jobs/" + "a" * 32) in api.sent()


def test_submit_refuses_an_entry_before_sending_anything(api: Api, rt: FlinkRuntime) -> None:
    spec = flinkjob(job={"entry": "jobs.nope"}).spec
    with pytest.raises(SpecError) as info:
        rt.act(flinkjob(), Submit("a" * 32, spec, None))
    assert info.value.problems[0].startswith("spec.job.entry: ")
    assert api.requests == []


# -- pure helpers --------------------------------------------------------------------------------


def test_job_configuration_of_a_default_spec() -> None:
    assert job_configuration(flinkjob().spec) == {
        "parallelism.default": "1",
        "execution.checkpointing.interval": "10000 ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.timeout": "600000 ms",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "2",
        "restart-strategy.fixed-delay.delay": "2 s",
    }


def test_job_configuration_follows_the_spec_and_the_user_config_wins() -> None:
    spec = flinkjob(
        job={"parallelism": 4},
        checkpointing={"interval": "500ms", "mode": "AT_LEAST_ONCE", "timeout": "1h"},
        restartPolicy={"flinkAttempts": 0},
        flinkConfiguration={
            "execution.checkpointing.interval": "1 min",
            "execution.checkpointing.externalized-checkpoint-retention": "DELETE_ON_CANCELLATION",
        },
    ).spec
    conf = job_configuration(spec)
    assert conf["parallelism.default"] == "4"
    assert conf["execution.checkpointing.interval"] == "1 min"
    assert conf["execution.checkpointing.mode"] == "AT_LEAST_ONCE"
    assert conf["execution.checkpointing.timeout"] == "3600000 ms"
    assert (
        conf["execution.checkpointing.externalized-checkpoint-retention"]
        == "DELETE_ON_CANCELLATION"
    )
    assert conf["restart-strategy.fixed-delay.attempts"] == "0"


@pytest.mark.parametrize(
    "key",
    ["restart-strategy", "restart-strategy.type", "restart-strategy.exponential-delay.attempts"],
)
def test_a_users_restart_strategy_replaces_the_default_one(key: str) -> None:
    conf = job_configuration(flinkjob(flinkConfiguration={key: "x"}).spec)
    assert conf[key] == "x"
    defaults = job_configuration(flinkjob().spec)
    ours = {k for k in defaults if k.startswith("restart-strategy")} - {key}
    assert len(ours) >= 2
    assert not ours & set(conf)


def test_job_args_add_the_bootstrap_servers_only_when_absent() -> None:
    plain = flinkjob().spec
    assert job_args(plain, "k:1") == ["--orders-topic", "orders", "--bootstrap-servers", "k:1"]
    assert plain.job.args == ["--orders-topic", "orders"]  # the spec is not changed
    own = flinkjob(job={"args": ["--bootstrap-servers", "b:2", "--x"]}).spec
    assert job_args(own, "k:1") == ["--bootstrap-servers", "b:2", "--x"]
    equals = flinkjob(job={"args": ["--bootstrap-servers=b:2"]}).spec
    assert job_args(equals, "k:1") == ["--bootstrap-servers=b:2"]
    lookalike = flinkjob(job={"args": ["--bootstrap-servers-file", "f"]}).spec
    assert job_args(lookalike, "k:1")[-2:] == ["--bootstrap-servers", "k:1"]
    via_spec = flinkjob(job={"args": []}, kafka={"bootstrapServers": "s:3"}).spec
    assert job_args(via_spec, "k:1") == ["--bootstrap-servers", "s:3"]


def test_copartition_problem() -> None:
    assert copartition_problem({"a": 4, "b": 4}, ["a", "b"]) is None
    assert copartition_problem({"a": 4}, ["a"]) is None
    assert copartition_problem({}, []) is None
    problem = copartition_problem({"views": 2, "clicks": 3}, ["views", "clicks"])
    assert problem is not None
    assert problem.startswith(
        "input topics are not co-partitioned (views: 2, clicks: 3 partitions)"
    )
    assert "kafka.copartitioned: false" in problem
    unknown = copartition_problem({"views": 2}, ["views", "clicks"])
    assert unknown is not None
    assert "clicks: None" in unknown


def test_root_cause_of_flink_traces() -> None:
    assert root_cause("   \n") is None
    assert root_cause("java.lang.IllegalStateException: only line") == (
        "java.lang.IllegalStateException: only line"
    )
    python = "pyflink.util.exceptions.TableException: bad\nCaused by: java.lang.Exception: y"
    assert root_cause(python) == "pyflink.util.exceptions.TableException: bad"


def test_root_cause_names_the_storage_location_it_failed_on() -> None:
    trace = (
        "java.util.concurrent.CompletionException: Failed to create checkpoint storage\n"
        "Caused by: org.apache.flink.util.FlinkRuntimeException: Failed to create checkpoint"
        " storage\n"
        "Caused by: org.apache.hadoop.fs.s3a.UnknownStoreException: `s3://state-missing/cp/j1/shared':"
        " getFileStatus on s3://state-missing/cp/j1/shared: NoSuchBucket: The specified bucket does"
        " not exist.\n\tat org.apache.hadoop.fs.s3a.S3AUtils.translateException(S3AUtils.java:1)\n"
        "Caused by: com.amazonaws.services.s3.model.AmazonS3Exception: The specified bucket does"
        " not exist. (Status Code: 404; Error Code: NoSuchBucket)\n"
    )
    cause = root_cause(trace)
    assert cause is not None
    assert "UnknownStoreException: `s3://state-missing/cp/j1/shared'" in cause
    assert "NoSuchBucket" in cause


def test_a_job_that_failed_before_running_has_its_failure_in_its_result(
    api: Api, rt: FlinkRuntime
) -> None:
    """No exception history (its JobMaster never started): the execution result's cause."""
    api.on("GET", "/jobs/j1", 200, {**JOB, "state": "FAILED"})
    api.on("GET", "/jobs/j1/checkpoints", 200, {"latest": {}})
    api.on("GET", "/jobs/j1/exceptions", 200, {"exceptionHistory": {"entries": []}})
    api.on("GET", "/jobs/j1/execution-result", 200, {
        "status": {"id": "COMPLETED"},
        "job-execution-result": {
            "application-status": "FAILED",
            "failure-cause": {
                "class": "java.util.concurrent.CompletionException",
                "stack-trace": "java.util.concurrent.CompletionException: x\nCaused by: "
                "java.io.FileNotFoundException: s3://b/cp: No such bucket\n\tat a.b(C.java)",
            },
        },
    })  # fmt: skip
    seen = rt.observe(job_with(JobStatus(job_id="j1")), 1).job
    assert seen is not None
    assert (
        seen.root_exception == "Caused by: java.io.FileNotFoundException: s3://b/cp: No such bucket"
    )


# -- production bug: each test below fails against the current code (see the report) -------------


def test_durations_are_converted_to_exact_milliseconds() -> None:
    """1001ms is 1001 ms, not 1000: job_configuration converts through float seconds
    (int(seconds(d) * 1000)), and 1001 / 1000.0 * 1000 = 1000.9999999999999."""
    spec = flinkjob(checkpointing={"interval": "1001ms", "timeout": "2002ms"}).spec
    conf = job_configuration(spec)
    assert conf["execution.checkpointing.interval"] == "1001 ms"
    assert conf["execution.checkpointing.timeout"] == "2002 ms"


def test_on_the_adaptive_scheduler_a_rescale_sets_every_vertex_and_is_observed(
    fake: FakeFlink, runtime: FlinkRuntime
) -> None:
    fake.scheduler = "adaptive"
    fake.jobs["j1"] = {
        "state": "RUNNING",
        "vertices": [{"status": "RUNNING", "parallelism": 1}] * 2,
    }
    one = {"parallelism": {"lowerBound": 1, "upperBound": 1}}
    fake.requirements["j1"] = {"v1": one, "v2": one}
    job = flinkjob().model_copy(update={"status": JobStatus(job_id="j1")})
    assert runtime.observe(job, 1).adaptive
    runtime.act(job, Rescale("j1", 3))
    three = {"parallelism": {"lowerBound": 1, "upperBound": 3}}
    assert fake.requests[-1] == (
        "PUT",
        "/jobs/j1/resource-requirements",
        {"v1": three, "v2": three},
    )
    op = Operation(kind="rescale", step="rescaling", started_at=1, job_id="j1")
    rescaling = job.model_copy(update={"status": JobStatus(job_id="j1", operation=op)})
    observed = runtime.observe(rescaling, 2).job
    assert observed is not None
    assert observed.requested_parallelism == 3


def test_the_default_scheduler_is_not_adaptive(fake: FakeFlink, runtime: FlinkRuntime) -> None:
    job = flinkjob().model_copy(update={"status": JobStatus()})
    assert not runtime.observe(job, 1).adaptive
