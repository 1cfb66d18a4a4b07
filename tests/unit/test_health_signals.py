"""How the data-health signals are read (deploy/flink/datasignals.py, against Flink's REST
answers through an httpx MockTransport) and exported (deploy/controller/healthmetrics.py)."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from deploy.controller.metrics import ControllerMetrics
from deploy.flink import datasignals
from deploy.flink.rest import FlinkClient
from deploy.spec import Condition, FlinkJob, Lifecycle
from tests.unit.builders import deployed, flinkjob, set_status

LONG_MIN = "-9223372036854775808"
DETAIL = {
    "vertices": [
        {"id": "src", "name": "Source: in -> _stream_key_by_map_operator"},
        {"id": "map", "name": "KEYED PROCESS -> Sink: Writer"},
        {"id": "src2", "name": "Source: clicks"},
    ],
    "plan": {
        "nodes": [
            {"id": "src"},
            {"id": "src2"},
            {"id": "map", "inputs": [{"id": "src", "num": 0}, {"id": "src2", "num": 1}]},
        ]
    },
}


def client(watermarks: dict[str, list[dict[str, str]]]) -> FlinkClient:
    def answer(request: httpx.Request) -> httpx.Response:
        vid = request.url.path.split("/vertices/")[1].split("/")[0]
        return httpx.Response(200, content=json.dumps(watermarks[vid]))

    return FlinkClient("http://flink:8081", transport=httpx.MockTransport(answer))


def marks(*values: str) -> list[dict[str, str]]:
    return [{"id": f"{i}.currentInputWatermark", "value": v} for i, v in enumerate(values)]


def test_the_watermark_is_the_smallest_over_the_vertices_the_sources_feed() -> None:
    flink = client({"map": marks("1700000000500", "1700000000000"), "src": marks(LONG_MIN)})
    assert datasignals.source_fed_watermark(flink, "j1", DETAIL) == 1700000000000


def test_no_watermark_while_a_subtask_has_none() -> None:
    flink = client({"map": marks("1700000000500", LONG_MIN)})
    assert datasignals.source_fed_watermark(flink, "j1", DETAIL) is None


def test_a_job_chained_into_its_source_is_judged_by_the_source_vertex() -> None:
    detail = {"vertices": [{"id": "src", "name": "Source: in -> Map -> Sink"}], "plan": {}}
    flink = client({"src": marks("1700000000900")})
    assert datasignals.source_fed_watermark(flink, "j1", detail) == 1700000000900


def test_checkpoints_failed_in_a_row_count_back_to_the_newest_completed() -> None:
    answer: dict[str, Any] = {
        "counts": {"completed": 7, "failed": 5, "in_progress": 1},
        "history": [
            {"id": 12, "status": "IN_PROGRESS"},
            {"id": 11, "status": "FAILED"},
            {"id": 9, "status": "FAILED"},
            {"id": 10, "status": "FAILED"},
            {"id": 8, "status": "COMPLETED"},
            {"id": 7, "status": "FAILED"},
        ],
    }
    assert datasignals.checkpoint_counts(answer) == {
        "checkpoints_completed": 7,
        "checkpoints_failed": 5,
        "checkpoints_failed_in_a_row": 3,
    }
    assert datasignals.checkpoint_counts({})["checkpoints_failed_in_a_row"] == 0


@pytest.mark.parametrize(
    ("args", "outputs", "topic"),
    [
        (["--dead-letter-topic", "dl-1"], [], "dl-1"),
        (["--dead-letter-topic=dl-2"], ["dead-letter"], "dl-2"),
        ([], ["sessions", "dead-letter"], "dead-letter"),
        ([], ["sessions"], None),
    ],
)
def test_the_dead_letter_topic_is_the_jobs_flag_else_the_default_it_lists(
    args: list[str], outputs: list[str], topic: str | None
) -> None:
    job = flinkjob(job={"args": args}, kafka={"outputTopics": outputs})
    assert datasignals.dead_letter_topic(job) == topic


def test_the_window_reaches_back_over_the_longest_threshold() -> None:
    health = {"lagWindow": "1m", "watermarkStall": "3m", "deadLetterWindow": "2m"}
    spec = flinkjob(health=health).spec.health
    assert datasignals.keep_ms(spec) == 180_000 + 2 * datasignals.SAMPLE_EVERY_MS


def test_a_kafka_that_does_not_answer_is_left_alone_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[int] = []

    def unreachable(*args: Any) -> dict[str, int | None]:
        asked.append(1)
        raise RuntimeError("timed out")

    monkeypatch.setattr(datasignals, "kafka_offsets", unreachable)
    monkeypatch.setattr(datasignals, "flink_signals", lambda client, job_id: {})
    windows = datasignals.SignalWindows()
    job = flinkjob(kafka={"inputTopics": ["orders"]})
    flink = client({})
    step, backoff = datasignals.SAMPLE_EVERY_MS, datasignals.KAFKA_BACKOFF_MS
    for now in range(0, backoff, step):
        window = windows.window(flink, job, "j1", "kafka:9092", now)
    assert len(asked) == 1
    assert window[-1].lag is None
    assert len(window) == backoff // step
    windows.window(flink, job, "j1", "kafka:9092", backoff)
    assert len(asked) == 2
    # Another Flink job of the same FlinkJob starts a new window.
    assert len(windows.window(flink, job, "j2", "kafka:9092", backoff + 1)) == 1


# -- metrics -----------------------------------------------------------------------------------


def measured(job: FlinkJob, **health: Any) -> FlinkJob:
    conditions = [
        Condition(type="LagHealthy", status="False", reason="LagGrowing"),
        Condition(type="DeadLettersLow", status="True"),
    ]
    return set_status(job, health=health, conditions=conditions)


def value(m: ControllerMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, {"job_name": "ledger", **labels})


def test_measures_thresholds_and_conditions_are_exported() -> None:
    m = ControllerMetrics()
    job = deployed(flinkjob(health={"lagWindow": "20s", "deadLetterRatio": 0.2}))
    m.observe_job(
        measured(
            job, lag=420, lagGrowingSeconds=25.0, watermark=1_700_000_000_500, deadLetterRatio=None
        )
    )
    assert value(m, "eddyline_job_consumer_lag_records") == 420
    assert value(m, "eddyline_job_lag_growing_seconds") == 25
    assert value(m, "eddyline_job_health_lag_window_seconds") == 20
    assert value(m, "eddyline_job_health_watermark_stall_seconds") == 120  # the default
    assert value(m, "eddyline_job_health_dead_letter_ratio") == 0.2
    assert value(m, "eddyline_job_health_checkpoint_failures") == 3
    assert value(m, "eddyline_job_watermark_timestamp_seconds") == 1_700_000_000.5
    ratio = value(m, "eddyline_job_dead_letter_ratio")
    assert ratio is not None
    assert math.isinf(ratio)  # dead letters while nothing was consumed
    assert value(m, "eddyline_job_health_condition", condition="LagHealthy") == 0
    assert value(m, "eddyline_job_health_condition", condition="DeadLettersLow") == 1
    assert value(m, "eddyline_job_watermark_stalled_seconds") is None  # not measured


def test_counters_follow_their_sources_through_a_reset() -> None:
    m = ControllerMetrics()
    job = deployed(flinkjob())
    for failed in (2, 5, 1):  # 1: a new Flink job counts from zero again
        m.observe_job(measured(job, checkpointsFailed=failed, consumed=100 * failed))
    assert value(m, "eddyline_job_checkpoints_failed_total") == 6
    assert value(m, "eddyline_job_records_in_total") == 600


@pytest.mark.parametrize("lifecycle", [Lifecycle.SUSPENDED, Lifecycle.FAILED])
def test_a_job_that_does_not_run_withdraws_its_measures_but_keeps_its_counters(
    lifecycle: Lifecycle,
) -> None:
    m = ControllerMetrics()
    job = measured(deployed(flinkjob()), lag=10, lagGrowingSeconds=400.0, deadLetters=4)
    m.observe_job(job)
    assert value(m, "eddyline_job_lag_growing_seconds") == 400
    m.observe_job(set_status(job, lifecycle=lifecycle))
    assert value(m, "eddyline_job_lag_growing_seconds") is None
    assert value(m, "eddyline_job_health_lag_window_seconds") is None
    assert value(m, "eddyline_job_health_condition", condition="LagHealthy") is None
    assert value(m, "eddyline_job_dead_letters_total") == 4
    m.forget("ledger")
    assert value(m, "eddyline_job_dead_letters_total") is None
