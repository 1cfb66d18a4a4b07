"""Data-level health on the real stack: a job that stalls (tests/jobs/stall.py waits while a
marker file exists) while its input keeps flowing. Its controller turns LagHealthy and
WatermarkAdvancing False with a Warning Event each; a real Prometheus scraping that controller
and loading the chart's alert rules (helm/eddyline/files/alerts/eddyline-rules.yaml) fires
EddylineLagGrowing and EddylineWatermarkStalled for it; once the marker is gone the job catches
up, the conditions turn True again with a Normal Event each, and the alerts stop. The same job
routing a third of its input to its dead-letter topic turns DeadLettersLow False and fires
EddylineDeadLettersHigh, until the bad input stops. Stalled under a short checkpoint timeout
that Flink tolerates, its checkpoints fail in a row: CheckpointsHealthy turns False and
EddylineCheckpointsFailing fires, until the stall ends and a checkpoint completes.

The job's spec shortens its own windows to 20 s (thresholds the controller exports beside its
measures, which the rules compare with); the rules are the production file with only `for:`
shortened (tests/promtool checks the production file as it is). What Prometheus and the
FlinkJob show while the alerts fire is kept in test-artifacts/health/alerts-firing.json.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from deploy import kafka_io, paths
from deploy.flink import datasignals
from deploy.spec import FlinkJob
from tests.integration import prometheus
from tests.integration.jobrun import Topics
from tests.integration.managed import Managed, flinkjob
from tests.integration.stacks import RunningStack

RULES = paths.PROJECT_ROOT / "helm" / "eddyline" / "files" / "alerts" / "eddyline-rules.yaml"
ARTIFACTS = paths.PROJECT_ROOT / "test-artifacts" / "health"
NAME = "stalled"
RATE = 20.0  # records per second into the job's input, the whole test long
STALLED_ALERTS = {"EddylineLagGrowing", "EddylineWatermarkStalled"}


class Feed(threading.Thread):
    """Produces numbered records to `topic` at `rate` per second until stopped; while `bad_every`
    is set, every such record is a bad one (starting with "bad")."""

    def __init__(self, servers: str, topic: str, rate: float) -> None:
        super().__init__(daemon=True, name="health-feed")
        self.servers, self.topic, self.rate = servers, topic, rate
        self.stopping = threading.Event()
        self.sent = 0
        self.bad_every = 0

    def run(self) -> None:
        sender = kafka_io.Sender(self.servers)
        while not self.stopping.wait(1 / self.rate):
            every = self.bad_every
            kind = "bad" if every and self.sent % every == 0 else "r"
            sender.send(self.topic, None, f"{kind}{self.sent}".encode())
            self.sent += 1
        sender.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=60)


def fast_rules(folder: Path) -> Path:
    """The production rules with `for:` cut to 2 s (the windows are the job's, in its spec)."""
    doc: dict[str, Any] = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["for"] = "2s"
    path = folder / "eddyline-rules.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@contextmanager
def watched(
    managed: Managed, tmp_path: Path, topic: str
) -> Iterator[tuple[Feed, prometheus.Prometheus]]:
    """`topic` fed at RATE, and a real Prometheus scraping the controller with fast_rules()."""
    controller = managed.controller
    assert controller is not None
    feed = Feed(managed.stack.bootstrap_servers, topic, RATE)
    feed.start()
    targets = {"eddyline-controller": [f"127.0.0.1:{controller.metrics_port}"]}
    try:
        with prometheus.running(targets, tmp_path / "prometheus", [fast_rules(tmp_path)]) as prom:
            yield feed, prom
    finally:
        feed.stop()


def condition(job: FlinkJob, type_: str) -> str | None:
    return next((c.status for c in job.status.conditions if c.type == type_), None)


def firing(prom: prometheus.Prometheus, job_name: str) -> set[str]:
    return {
        a["labels"]["alertname"]
        for a in prom.alerts()
        if a["state"] == "firing" and a["labels"].get("job_name") == job_name
    }


def wait_until(done: Callable[[], bool], what: str, timeout: float, why: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s: {why()}"
        time.sleep(1)


def _keep_evidence(prom: prometheus.Prometheus, job: FlinkJob) -> None:
    """What Prometheus and the FlinkJob showed while the alerts fired (the README's example)."""
    alerts = [a for a in prom.alerts() if a["labels"].get("job_name") == NAME]
    status = job.status.model_dump(mode="json", by_alias=True)
    shown = {k: status[k] for k in ("conditions", "events", "health")}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "alerts-firing.json").write_text(
        json.dumps({"alerts": alerts, "flinkjob": shown}, indent=2) + "\n"
    )


def lag_and_watermark_healthy(job: FlinkJob) -> bool:
    return condition(job, "LagHealthy") == "True" and condition(job, "WatermarkAdvancing") == "True"


@pytest.fixture
def managed(stack: RunningStack, tmp_path: Path) -> Iterator[Managed]:
    m = Managed(stack, tmp_path)
    m.start_controller()
    try:
        yield m
    finally:
        m.close()


def test_a_stalled_job_turns_its_conditions_false_and_fires_prometheus_alerts_until_it_recovers(
    managed: Managed, tmp_path: Path
) -> None:
    stack = managed.stack
    topics = Topics.fresh("stalled")
    kafka_io.create_topics(stack.bootstrap_servers, {topics.views: 1, topics.output: 1})
    marker = tmp_path / "stall"
    try:
        with watched(managed, tmp_path, topics.views) as (_, prom):
            doc = flinkjob(
                NAME,
                "tests/jobs/stall.py",
                [
                    "--input-topic", topics.views, "--output-topic", topics.output,
                    "--group-id", f"stalled-{topics.run}", "--marker", str(marker),
                ],
                kafka={"inputTopics": [topics.views]},
                health={"lagWindow": "20s", "watermarkStall": "20s"},
            )  # fmt: skip
            assert managed.submit(doc).returncode == 0
            managed.wait_running(NAME, 1)
            healthy = managed.wait(
                NAME, lag_and_watermark_healthy, "report its lag steady and its watermark "
                "advancing", timeout=180,
            )  # fmt: skip
            assert healthy.status.health["watermark"] > 0
            assert firing(prom, NAME) == set()

            marker.touch()  # the job stalls; its input keeps coming
            wait_until(
                lambda: firing(prom, NAME) >= STALLED_ALERTS,
                f"{sorted(STALLED_ALERTS)} firing",
                240,
                lambda: f"alerts {prom.alerts()}; health {managed.job(NAME).status.health}",
            )
            stalled = managed.job(NAME)
            _keep_evidence(prom, stalled)
            assert condition(stalled, "LagHealthy") == "False"
            assert condition(stalled, "WatermarkAdvancing") == "False"
            warnings = {e.reason for e in stalled.status.events if e.type == "Warning"}
            assert {"LagGrowing", "WatermarkStalled"} <= warnings
            lag = prom.query(f'eddyline_job_consumer_lag_records{{job_name="{NAME}"}}')
            assert float(lag[0]["value"][1]) > RATE * 20  # ≥ 20 s of input waiting

            marker.unlink()  # it catches up
            recovered = managed.wait(NAME, lag_and_watermark_healthy, "recover", timeout=180)
            normal = {e.reason for e in recovered.status.events if e.type == "Normal"}
            assert {"LagRecovered", "WatermarkRecovered"} <= normal
            wait_until(
                lambda: firing(prom, NAME) == set(),
                "no alert firing after recovery",
                120,
                lambda: f"alerts {prom.alerts()}",
            )
            # One Warning per condition for the one stall: no Event every reconcile.
            reasons = [e.reason for e in managed.job(NAME).status.events]
            assert reasons.count("LagGrowing") == 1, reasons
            assert reasons.count("WatermarkStalled") == 1, reasons
    finally:
        marker.unlink(missing_ok=True)


def test_dead_letters_above_the_jobs_ratio_turn_its_condition_false_and_fire_the_alert(
    managed: Managed, tmp_path: Path
) -> None:
    stack = managed.stack
    name = "dead-letters"
    topics = Topics.fresh("deadletters")
    kafka_io.create_topics(
        stack.bootstrap_servers, {topics.views: 1, topics.output: 1, topics.dead: 1}
    )
    with watched(managed, tmp_path, topics.views) as (feed, prom):
        doc = flinkjob(
            name,
            "tests/jobs/stall.py",
            [
                "--input-topic", topics.views, "--output-topic", topics.output,
                "--group-id", f"dead-{topics.run}", "--marker", str(tmp_path / "never"),
                "--dead-letter-topic", topics.dead,
            ],
            kafka={"inputTopics": [topics.views], "outputTopics": [topics.output, topics.dead]},
            health={"deadLetterWindow": "20s", "deadLetterRatio": 0.2},
        )  # fmt: skip
        assert managed.submit(doc).returncode == 0
        managed.wait_running(name, 1)
        managed.wait(
            name, lambda j: condition(j, "DeadLettersLow") == "True",
            "judge its dead letters low on clean input", timeout=180,
        )  # fmt: skip
        assert firing(prom, name) == set()

        feed.bad_every = 3  # a third of the input is bad: above the job's ratio of 0.2
        wait_until(
            lambda: "EddylineDeadLettersHigh" in firing(prom, name),
            "EddylineDeadLettersHigh firing",
            180,
            lambda: f"alerts {prom.alerts()}; health {managed.job(name).status.health}",
        )
        high = managed.job(name)
        assert condition(high, "DeadLettersLow") == "False"
        assert "DeadLettersHigh" in {e.reason for e in high.status.events if e.type == "Warning"}
        ratio = prom.query(f'eddyline_job_dead_letter_ratio{{job_name="{name}"}}')
        assert 0.2 < float(ratio[0]["value"][1]) <= 0.5, ratio
        assert "EddylineLagGrowing" not in firing(prom, name)  # bad input is not a stall

        feed.bad_every = 0
        recovered = managed.wait(
            name, lambda j: condition(j, "DeadLettersLow") == "True", "recover", timeout=180
        )
        normal = {e.reason for e in recovered.status.events if e.type == "Normal"}
        assert "DeadLettersRecovered" in normal
        wait_until(
            lambda: firing(prom, name) == set(),
            "no alert firing after the bad input stopped",
            120,
            lambda: f"alerts {prom.alerts()}",
        )


def test_checkpoints_failing_in_a_row_turn_its_condition_false_and_fire_the_alert(
    managed: Managed, tmp_path: Path
) -> None:
    """A stalled map holds the checkpoint barrier: each checkpoint expires after the spec's 4 s
    timeout. Flink is told to tolerate that (no failover), so the job keeps RUNNING while its
    checkpoints fail in a row, as a job whose checkpoint storage misbehaves would."""
    stack = managed.stack
    name = "checkpoints"
    topics = Topics.fresh("checkpoints")
    kafka_io.create_topics(stack.bootstrap_servers, {topics.views: 1, topics.output: 1})
    marker = tmp_path / "stall"
    try:
        with watched(managed, tmp_path, topics.views) as (_, prom):
            doc = flinkjob(
                name,
                "tests/jobs/stall.py",
                [
                    "--input-topic", topics.views, "--output-topic", topics.output,
                    "--group-id", f"checkpoints-{topics.run}", "--marker", str(marker),
                ],
                kafka={"inputTopics": [topics.views]},
                checkpointing={"interval": "1s", "timeout": "4s"},
                flinkConfiguration={"execution.checkpointing.tolerable-failed-checkpoints": 1000},
                health={"checkpointFailures": 3},
            )  # fmt: skip
            assert managed.submit(doc).returncode == 0
            running = managed.wait_running(name, 1)
            managed.wait(
                name, lambda j: condition(j, "CheckpointsHealthy") == "True",
                "report its checkpoints completing", timeout=180,
            )  # fmt: skip
            assert firing(prom, name) == set()

            marker.touch()  # the map waits: no barrier gets through
            wait_until(
                lambda: "EddylineCheckpointsFailing" in firing(prom, name),
                "EddylineCheckpointsFailing firing",
                180,
                lambda: f"alerts {prom.alerts()}; health {managed.job(name).status.health}",
            )
            failing = managed.job(name)
            assert condition(failing, "CheckpointsHealthy") == "False"
            assert "CheckpointsFailing" in {
                e.reason for e in failing.status.events if e.type == "Warning"
            }
            assert failing.status.health["checkpointsFailedInARow"] >= 3
            in_a_row = prom.query(f'eddyline_job_checkpoints_failed_in_a_row{{job_name="{name}"}}')
            assert float(in_a_row[0]["value"][1]) >= 3, in_a_row
            assert failing.status.job_id == running.status.job_id  # no restart, no resubmission

            marker.unlink()  # the map moves again; the next checkpoint completes
            recovered = managed.wait(
                name, lambda j: condition(j, "CheckpointsHealthy") == "True", "recover",
                timeout=180,
            )  # fmt: skip
            normal = {e.reason for e in recovered.status.events if e.type == "Normal"}
            assert "CheckpointsRecovered" in normal
            wait_until(
                lambda: "EddylineCheckpointsFailing" not in firing(prom, name),
                "EddylineCheckpointsFailing resolved after the checkpoints completed",
                120,
                lambda: f"alerts {prom.alerts()}",
            )
    finally:
        marker.unlink(missing_ok=True)


def test_the_kafka_signals_count_arrivals_commits_and_dead_letters(stack: RunningStack) -> None:
    """What the controller reads from Kafka for a job, against the real broker: records arrived
    on the inputs, the group's committed progress and lag, and the dead-letter topic's size."""
    topics = Topics.fresh("signals")
    servers = stack.bootstrap_servers
    kafka_io.create_topics(servers, {topics.views: 2, topics.clicks: 1, topics.dead: 1})
    kafka_io.produce(servers, topics.views, [(f"k{i}".encode(), b"v") for i in range(10)])
    kafka_io.produce(servers, topics.clicks, [(None, b"c")] * 5)
    kafka_io.produce(servers, topics.dead, [(None, b"bad")] * 3)
    group = f"signals-{topics.run}"
    before = datasignals.kafka_offsets(servers, group, [topics.views, topics.clicks], topics.dead)
    assert before == {"lag": 15, "arrived": 15, "consumed": 0, "dead_letters": 3}
    committer = Consumer(kafka_io.client_config(servers, **{"group.id": group}))
    try:
        committer.commit(offsets=[TopicPartition(topics.clicks, 0, 4)], asynchronous=False)
    finally:
        committer.close()
    after = datasignals.kafka_offsets(servers, group, [topics.views, topics.clicks], topics.dead)
    assert after == {"lag": 11, "arrived": 15, "consumed": 4, "dead_letters": 3}
    missing = datasignals.kafka_offsets(servers, group, [f"none-{topics.run}"], None)
    assert missing == dict.fromkeys(("lag", "arrived", "consumed", "dead_letters"))
