"""The controller on the real stack: submit, savepoint upgrades, suspend/resume, restarts of a
failed job, and a controller killed in the middle of an upgrade. The ledger is the witness:
its levels are running sums and it drops redelivered movements, so a lost state or a movement
applied twice shows up as a wrong level."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from deploy import kafka_io
from deploy.datagen.generator import GeneratorConfig, Message, orders
from deploy.spec import FlinkJob, Lifecycle
from tests import oracles
from tests.integration.jobrun import Topics, canonical_values, produce, read_inputs, read_output
from tests.integration.managed import Managed, flinkjob
from tests.integration.stacks import RunningStack

ORDERS = GeneratorConfig(seed=11, events=1_200, skus=20, duplicate=0.05, malformed=0.02)


@pytest.fixture
def managed(stack: RunningStack, tmp_path: Path) -> Iterator[Managed]:
    m = Managed(stack, tmp_path)
    m.start_controller()
    try:
        yield m
    finally:
        m.close()


# A spec change that needs a new job (unlike a parallelism change alone, done in place).
UPGRADED_CONFIG = {"pipeline.name": "ledger-v2"}


class Ledger:
    """A ledger FlinkJob on its own topics, and what it must have written."""

    def __init__(self, managed: Managed, name: str) -> None:
        self.m = managed
        self.name = name
        self.topics = Topics.fresh("levels")
        kafka_io.create_topics(
            managed.stack.bootstrap_servers,
            {self.topics.orders: 2, self.topics.output: 2, self.topics.dead: 1},
        )
        self.messages = orders(ORDERS)
        half = len(self.messages) // 2
        self.halves: tuple[list[Message], list[Message]] = (
            self.messages[:half],
            self.messages[half:],
        )

    def doc(self, parallelism: int = 1, **spec: object) -> dict[str, object]:
        t = self.topics
        return flinkjob(
            self.name,
            "jobs.ledger",
            [
                "--orders-topic", t.orders, "--output-topic", t.output,
                "--dead-letter-topic", t.dead, "--group-id", f"test-{t.run}",
                "--starting-offsets", "earliest",
                "--transactional-id-prefix", f"eddyline-test-{t.run}",
            ],
            job={"parallelism": parallelism},
            kafka={"inputTopics": [t.orders], "outputTopics": [t.output, t.dead]},
            **spec,
        )  # fmt: skip

    def produce(self, part: int) -> None:
        produce(self.m.stack, self.halves[part], {"orders": self.topics.orders})

    def assert_exact(self) -> None:
        """The committed output equals the oracle over everything produced: every movement
        once, levels continuing across restarts, in partition order per SKU."""
        inputs = read_inputs(self.m.stack, self.topics.orders)
        expected = oracles.ledger(inputs)
        total = sum(expected.output.values())
        records = read_output(self.m.stack, self.topics.output, total, read_committed=True)
        assert canonical_values(records) == expected.output
        by_sku: dict[str, list[dict[str, object]]] = {}
        for r in sorted(records, key=lambda r: (r.partition, r.offset)):
            value = json.loads(r.value)
            by_sku.setdefault(str(value["sku"]), []).append(value)
        assert by_sku == oracles.ledger_by_sku(inputs)

    def wait_output(self, produced: int) -> None:
        """Until the job has written what the first `produced` halves must give."""
        inputs = read_inputs(self.m.stack, self.topics.orders)
        total = sum(oracles.ledger(inputs).output.values())
        records = read_output(self.m.stack, self.topics.output, total, read_committed=True)
        assert len(records) == total, f"{len(records)} of {total} levels after half {produced}"


def test_submit_runs_and_a_savepoint_upgrade_keeps_the_ledgers_state(managed: Managed) -> None:
    ledger = Ledger(managed, "ledger-upgrade")
    ledger.produce(0)
    done = managed.submit(ledger.doc())
    assert done.returncode == 0, done.stderr
    assert "flinkjob/ledger-upgrade created (generation 1)" in done.stdout
    first = managed.wait_running(ledger.name, 1)
    assert first.status.job_id is not None
    assert first.status.last_reconciled_spec == first.spec
    ledger.wait_output(1)

    # A configuration change with the parallelism: a savepoint upgrade (a parallelism change
    # alone is done in place, see test_rescale.py).
    done = managed.submit(ledger.doc(2, flinkConfiguration=UPGRADED_CONFIG))
    assert done.returncode == 0, done.stderr
    upgraded = managed.wait_running(ledger.name, 2)
    st = upgraded.status
    assert st.job_id != first.status.job_id
    assert st.parallelism == 2
    assert st.upgrade_savepoint_path is not None
    assert [s.trigger for s in st.savepoints if s.path == st.upgrade_savepoint_path] == ["upgrade"]
    assert managed.flink.job(str(first.status.job_id))["state"] == "FINISHED"
    assert managed.live_flink_jobs() == [st.job_id]

    ledger.produce(1)  # half of these redeliver movements of the first half: state must know
    ledger.assert_exact()

    assert managed.controller is not None
    metrics = httpx.get(f"http://localhost:{managed.controller.metrics_port}/metrics").text
    for family in (
        'eddyline_controller_actions_total{job_name="ledger-upgrade",kind="submit",result="ok"}',
        'eddyline_controller_actions_total{job_name="ledger-upgrade",kind="stop-with-savepoint"',
        "eddyline_controller_reconciles_total",
        'eddyline_job_lifecycle{job_name="ledger-upgrade",lifecycle="RUNNING"} 1.0',
        'eddyline_savepoint_duration_seconds_count{job_name="ledger-upgrade",trigger="upgrade"} '
        "1.0",
        'eddyline_last_savepoint_age_seconds{job_name="ledger-upgrade"}',
        'eddyline_job_parallelism{job_name="ledger-upgrade"} 2.0',
    ):
        assert family in metrics, family


def test_suspend_while_input_arrives_then_resume_from_the_savepoint(managed: Managed) -> None:
    ledger = Ledger(managed, "ledger-suspend")
    ledger.produce(0)
    assert managed.submit(ledger.doc()).returncode == 0
    running = managed.wait_running(ledger.name, 1)
    ledger.wait_output(1)

    done = managed.cli("suspend", ledger.name, "--wait", "--timeout", "180")
    assert done.returncode == 0, done.stderr
    suspended = managed.job(ledger.name)
    assert suspended.status.lifecycle == Lifecycle.SUSPENDED
    assert suspended.status.job_id is None
    assert managed.flink.job(str(running.status.job_id))["state"] == "FINISHED"
    assert managed.live_flink_jobs() == []
    savepoint = suspended.status.upgrade_savepoint_path
    assert savepoint is not None
    assert [s.trigger for s in suspended.status.savepoints] == ["suspend"]

    ledger.produce(1)  # arrives while nothing runs
    done = managed.cli("resume", ledger.name, "--wait", "--timeout", "180")
    assert done.returncode == 0, done.stderr
    resumed = managed.job(ledger.name)
    assert resumed.status.lifecycle in (Lifecycle.RUNNING, Lifecycle.STABLE)
    assert resumed.status.upgrade_savepoint_path == savepoint
    assert [e.message for e in resumed.status.events if e.reason == "Submitting"][-1].endswith(
        f"from {savepoint}"
    )
    ledger.assert_exact()


def test_a_failing_job_is_restarted_with_backoff_then_failed_then_restarted_on_request(
    managed: Managed, tmp_path: Path
) -> None:
    stack = managed.stack
    topics = Topics.fresh("flaky")
    kafka_io.create_topics(stack.bootstrap_servers, {topics.views: 1, topics.output: 1})
    marker = tmp_path / "poisoned"
    marker.touch()
    kafka_io.produce(
        stack.bootstrap_servers, topics.views, [(None, v) for v in (b"a", b"b", b"boom", b"c")]
    )
    doc = flinkjob(
        "flaky",
        "tests/jobs/flaky.py",
        [
            "--input-topic", topics.views, "--output-topic", topics.output,
            "--group-id", f"flaky-{topics.run}", "--marker", str(marker),
        ],
        job={"upgradeMode": "last-state"},
        restartPolicy={"maxRetries": 2, "backoff": "1s", "maxBackoff": "2s", "flinkAttempts": 0},
    )  # fmt: skip
    done = managed.submit(doc)
    assert done.returncode == 0, done.stderr

    failed = managed.wait(
        "flaky", lambda j: j.status.lifecycle == Lifecycle.FAILED, "fail for good", timeout=300
    )
    st = failed.status
    assert st.restarts == 2
    assert st.error is not None
    assert "poisoned message 'boom'" in st.error, st.error
    reasons = [e.reason for e in st.events]
    assert reasons.count("Submitting") == 3  # the first run and two restarts
    assert reasons.count("JobFailed") == 2  # each failure but the last schedules a restart
    assert reasons[-1] == "Failed"
    assert managed.live_flink_jobs() == []

    # Fixed (the marker is gone) and a restart asked for: it runs again and gets past `boom`.
    marker.unlink()
    doc["spec"]["restartNonce"] = 1  # type: ignore[index]
    assert managed.submit(doc).returncode == 0
    managed.wait_running("flaky", 2)
    out = read_output(stack, topics.output, 4)
    assert {r.value for r in out} == {b"A", b"B", b"BOOM", b"C"}


@pytest.mark.parametrize("failpoint", ["before:submit", "after:submit"])
def test_a_controller_killed_in_an_upgrade_resumes_it_with_exactly_one_job(
    managed: Managed, failpoint: str
) -> None:
    ledger = Ledger(managed, "ledger-crash")
    ledger.produce(0)
    assert managed.submit(ledger.doc()).returncode == 0
    first = managed.wait_running(ledger.name, 1)
    ledger.wait_output(1)

    assert managed.controller is not None
    managed.controller.stop()
    doomed = managed.start_controller(failpoints=failpoint)
    assert managed.submit(ledger.doc(2, flinkConfiguration=UPGRADED_CONFIG)).returncode == 0
    assert doomed.wait_killed() == -9, doomed.tail()

    # What the dead controller had written before it died: the savepoint and the new job's id.
    st = managed.job(ledger.name).status
    assert st.operation is not None
    assert st.operation.step == "submitting"
    recorded_job, recorded_savepoint = st.operation.new_job_id, st.operation.savepoint_path
    assert recorded_job is not None
    assert recorded_savepoint is not None
    assert managed.flink.job(str(first.status.job_id))["state"] == "FINISHED"

    managed.start_controller()
    upgraded = managed.wait_running(ledger.name, 2)
    assert upgraded.status.job_id == recorded_job
    assert upgraded.status.upgrade_savepoint_path == recorded_savepoint
    assert managed.live_flink_jobs() == [recorded_job]
    ledger.produce(1)
    ledger.assert_exact()


def test_joined_topics_with_different_partition_counts_are_refused(managed: Managed) -> None:
    topics = Topics.fresh("attributed")
    kafka_io.create_topics(managed.stack.bootstrap_servers, {topics.views: 2, topics.clicks: 3})
    doc = flinkjob(
        "attribution-bad",
        "jobs.attribution",
        ["--views-topic", topics.views, "--clicks-topic", topics.clicks],
        kafka={
            "bootstrapServers": managed.stack.bootstrap_servers,
            "inputTopics": [topics.views, topics.clicks],
        },
    )
    # The CLI can reach this Kafka: refused at submit, nothing stored.
    done = managed.submit(doc)
    assert done.returncode == 2
    assert "spec.kafka.inputTopics: input topics are not co-partitioned" in done.stderr
    assert f"{topics.views}: 2, {topics.clicks}: 3" in done.stderr
    assert managed.store.get("attribution-bad") is None

    # Where only the controller can tell (its default Kafka), it refuses before submitting.
    del doc["spec"]["kafka"]["bootstrapServers"]  # type: ignore[index]
    assert managed.submit(doc).returncode == 0
    refused = managed.wait(
        "attribution-bad", lambda j: j.status.lifecycle == Lifecycle.FAILED, "be refused", 60
    )
    assert "not co-partitioned" in str(refused.status.error)
    assert refused.status.job_id is None
    assert managed.live_flink_jobs() == []


def test_periodic_savepoints_are_taken_and_old_ones_disposed(managed: Managed) -> None:
    topics = Topics.fresh("periodic")
    kafka_io.create_topics(managed.stack.bootstrap_servers, {topics.views: 1, topics.output: 1})
    doc = flinkjob(
        "periodic",
        "jobs.smoke",
        ["--input-topic", topics.views, "--output-topic", topics.output],
        savepoints={"interval": "3s", "maxCount": 2},
    )
    assert managed.submit(doc).returncode == 0
    managed.wait_running("periodic", 1)

    def taken(n: int) -> Callable[[FlinkJob], bool]:
        return lambda j: [e.reason for e in j.status.events].count("SavepointTaken") >= n

    job = managed.wait("periodic", taken(4), "take 4 periodic savepoints", timeout=120)
    job = managed.wait(
        "periodic",
        lambda j: [e.reason for e in j.status.events].count("SavepointDisposed") >= 2,
        "dispose of the oldest",
        timeout=30,
    )
    kept = job.status.savepoints
    assert 1 <= len(kept) <= 2
    assert {s.trigger for s in kept} == {"periodic"}
    disposed = [e.message for e in job.status.events if e.reason == "SavepointDisposed"]
    for path in (p.removeprefix("file:") for p in disposed):
        deadline = time.monotonic() + 30
        while Path(path).exists() and time.monotonic() < deadline:
            time.sleep(0.5)  # Flink disposes of it in the background
        assert not Path(path).exists(), path
    for sp in kept:
        assert Path(sp.path.removeprefix("file:")).exists()
