"""The autoscaler's second lag source: the job's consumer group and its committed-offset lag,
used when the Kafka source reports no pendingRecords or reads fewer records waiting."""

from __future__ import annotations

from typing import Any

import pytest

from deploy.controller.autoscale import Sample
from deploy.flink import inputs
from deploy.flink.inputs import with_committed_lag
from deploy.flink.runtime import group_id
from deploy.spec import FlinkJob, parse


def _job(args: list[str], entry: str = "jobs.ledger", topics: list[str] | None = None) -> FlinkJob:
    return parse(
        {
            "apiVersion": "eddyline.dev/v1alpha1",
            "kind": "FlinkJob",
            "metadata": {"name": "x"},
            "spec": {
                "job": {"entry": entry, "args": args},
                "kafka": {"inputTopics": topics or []},
            },
        }
    )


def test_the_group_is_the_flag_or_the_jobs_default() -> None:
    assert group_id(_job(["--group-id", "g1"])) == "g1"
    assert group_id(_job(["--orders-topic", "o", "--group-id=g2"])) == "g2"
    assert group_id(_job([])) == "ledger"
    assert group_id(_job([], entry="custom/my_job.py")) == "my_job"


def _sample(source: str, lag: int = 0, rate: float = 0.0) -> Sample:
    return Sample(time=1, parallelism=1, vertices=(), lag=lag, input_rate=rate, lag_source=source)


@pytest.fixture(autouse=True)
def _kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    def lag(servers: str, group: str, topics: Any, timeout: float) -> int | None:
        assert (servers, group, list(topics)) == ("kafka:9092", "g", ["orders"])
        return 700

    monkeypatch.setattr(inputs.kafka_io, "consumer_lag", lag)


def committed(job: FlinkJob, sample: Sample) -> Sample:
    return with_committed_lag(job, sample, "kafka:9092")


def test_committed_lag_stands_in_when_the_source_reports_no_pending_records() -> None:
    job = _job(["--group-id", "g"], topics=["orders"])
    got = committed(job, _sample("none"))
    assert (got.lag, got.lag_source, got.committed_lag) == (700, "committed", 700)
    # With Flink's own measure, that one decides while the committed lag is within one
    # checkpoint interval (10 s) of input; Kafka's is kept beside it.
    got = committed(job, _sample("pending", lag=50, rate=100.0))
    assert (got.lag, got.lag_source, got.committed_lag) == (50, "pending", 700)
    got = committed(job, _sample("pending", lag=50, rate=65.0))
    assert (got.lag, got.lag_source, got.committed_lag) == (50, "pending", 700)  # 700 - 650


def test_committed_lag_decides_when_more_waits_than_pending_records_say() -> None:
    """Seen with jobs.loadsim in bench.autoscaler: its chained Python map busy, the source read
    4,400 pending records while 45,000 were uncommitted and the job fell further behind."""
    job = _job(["--group-id", "g"], topics=["orders"])
    got = committed(job, _sample("pending", lag=40, rate=20.0))
    # 700 committed - 10 s x 20/s that a checkpoint interval leaves uncommitted anyway = 500.
    assert (got.lag, got.lag_source, got.committed_lag) == (500, "committed", 700)


def test_no_input_topics_no_committed_lag() -> None:
    sample = _sample("none")
    assert committed(_job(["--group-id", "g"]), sample) is sample
