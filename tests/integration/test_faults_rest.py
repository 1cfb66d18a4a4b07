"""Flink's REST API failing under the controller: a fault-injecting proxy (tests/faultproxy.py)
between the controller and the real JobManager.

- Every answer to a job submission is lost (the job starts, the controller hears nothing): the
  controller finds the job it submitted under the id it chose, and submits nothing twice.
- Random faults on every request (5xx answers, delays, resets, lost answers) through a savepoint
  upgrade: it completes, with one job per generation and one savepoint.
- A total outage in which every request hangs past the client's timeout: the status says Flink
  is unreachable and why, backs off, and nothing is started, stopped or cancelled.
- When the faults stop, it recovers: reachable again, the same job running, exactly-once output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy import kafka_io
from deploy.datagen.generator import GeneratorConfig, Message, orders
from deploy.spec import FlinkJob
from tests import figures, oracles
from tests.faultproxy import FaultProxy, Faults
from tests.integration.jobrun import Topics, canonical_values, produce, read_inputs, read_output
from tests.integration.managed import ControllerProcess, Managed, flinkjob
from tests.integration.stacks import RunningStack

ORDERS = GeneratorConfig(seed=59, events=3_000, skus=30, duplicate=0.05, malformed=0.01)
NAME = "ledger-rest"


@dataclass(frozen=True)
class Via:
    """The stack as the controller sees it: Flink behind the proxy."""

    flink_url: str
    bootstrap_servers: str


@pytest.fixture
def proxied(stack: RunningStack, tmp_path: Path) -> Iterator[tuple[Managed, FaultProxy]]:
    with FaultProxy(stack.flink_url) as proxy:
        m = Managed(stack, tmp_path)
        m.controller = ControllerProcess(
            Via(proxy.url, stack.bootstrap_servers),  # type: ignore[arg-type]
            tmp_path,
        )
        try:
            yield m, proxy
        finally:
            proxy.heal()
            m.close()


def _run_requests(proxy: FaultProxy, since: float = 0.0) -> list[str]:
    """The job ids of the submissions the controller sent (each a POST /jars/<jar>/run)."""
    return [
        json.loads(e.request_body).get("jobId")
        for e in proxy.exchanges(since)
        if e.method == "POST" and e.path.endswith("/run")
    ]


def _condition(job: FlinkJob, kind: str) -> str | None:
    return next((c.status for c in job.status.conditions if c.type == kind), None)


@pytest.mark.timeout(1500)
def test_the_controller_rides_out_rest_faults_without_doing_anything_twice(
    proxied: tuple[Managed, FaultProxy],
) -> None:
    managed, proxy = proxied
    stack = managed.stack
    t = Topics.fresh("levels")
    kafka_io.create_topics(stack.bootstrap_servers, {t.orders: 2, t.output: 2, t.dead: 1})
    messages = orders(ORDERS)
    halves: tuple[list[Message], list[Message]] = (messages[::2], messages[1::2])
    produce(stack, halves[0], {"orders": t.orders})
    doc = flinkjob(
        NAME,
        "jobs.ledger",
        [
            "--orders-topic", t.orders, "--output-topic", t.output, "--dead-letter-topic",
            t.dead, "--group-id", f"rest-{t.run}", "--starting-offsets", "earliest",
            "--transactional-id-prefix", f"rest-{t.run}",
        ],
        kafka={"inputTopics": [t.orders], "outputTopics": [t.output, t.dead]},
        restartPolicy={"maxRetries": 20, "backoff": "1s", "maxBackoff": "4s"},
    )  # fmt: skip
    jobs_before = {j["jid"] for j in managed.flink.jobs()}

    # 1. Every submission is carried out by Flink, and every answer to it is lost.
    proxy.set(Faults(lost=1.0, applies_to=lambda method, path: path.endswith("/run")))
    assert managed.submit(doc).returncode == 0
    first = managed.wait_running(NAME, 1, timeout=300)
    submitted = _run_requests(proxy)
    assert submitted, "the controller never submitted"
    assert set(submitted) == {first.status.job_id}, submitted
    assert {e.fault for e in proxy.exchanges() if e.path.endswith("/run")} == {"lost"}

    # 2. Random faults on every request, through a savepoint upgrade.
    since = time.time()
    proxy.set(
        Faults(error=0.15, delay=0.15, delay_s=2.0, reset=0.1, lost=0.1, error_status=503,
               seed=int(since))
    )  # fmt: skip
    # A configuration change and a new parallelism: a savepoint upgrade on any scheduler.
    doc["spec"]["job"]["parallelism"] = 2  # type: ignore[index]
    doc["spec"]["flinkConfiguration"] = {"pipeline.name": "ledger-rest-2"}  # type: ignore[index]
    assert managed.submit(doc).returncode == 0
    upgraded = managed.wait_running(NAME, 2, timeout=420)
    faults_during_upgrade = proxy.fault_counts(since)
    proxy.heal()
    new_id = upgraded.status.job_id
    assert set(_run_requests(proxy, since)) == {new_id}
    assert managed.flink.job(str(first.status.job_id))["state"] == "FINISHED"
    history = managed.flink.checkpoints(str(first.status.job_id)).get("history") or []
    savepoints = [h for h in history if h.get("is_savepoint") and h["status"] == "COMPLETED"]
    assert [h["external_path"] for h in savepoints] == [upgraded.status.upgrade_savepoint_path]
    assert sum(n for f, n in faults_during_upgrade.items() if f != "none") >= 3

    # 3. An outage: every request hangs until the client gives up. First the controller must have
    #    seen Flink answer again: otherwise a 503 left from the random faults above passes for
    #    the outage (seen once: the status still named "503: injected by the fault proxy").
    managed.wait(
        NAME,
        lambda j: _condition(j, "FlinkReachable") == "True" and j.status.outages == 0,
        "see Flink answer again after the random faults",
        timeout=120,
    )
    outage = time.time()
    proxy.set(Faults(hang=1.0, hang_s=45.0))
    down = managed.wait(
        NAME,
        lambda j: _condition(j, "FlinkReachable") == "False" and j.status.outages >= 1,
        "notice that Flink does not answer",
        timeout=180,
    )
    assert "Flink unreachable" in str(down.status.error)
    assert "timed out" in str(down.status.error).lower()
    assert down.status.job_id == new_id
    assert down.status.operation is None
    during = proxy.exchanges(outage)
    assert {e.method for e in during} <= {"GET"}, "only looking while Flink is unreachable"

    # 4. Faults stop: reachable again, the same job running, nothing resubmitted.
    proxy.heal()
    healed = time.time()
    back = managed.wait(
        NAME,
        lambda j: (
            _condition(j, "FlinkReachable") == "True" and j.status.outages == 0 and j.running_at(2)
        ),
        "recover once Flink answers again",
        timeout=240,
    )
    assert back.status.job_id == new_id
    assert back.status.error is None
    assert "Recovered" in [e.reason for e in back.status.events]
    assert _run_requests(proxy, healed) == []
    new_jobs = {j["jid"] for j in managed.flink.jobs()} - jobs_before
    assert new_jobs == {first.status.job_id, new_id}, "one Flink job per generation"

    produce(stack, halves[1], {"orders": t.orders})
    inputs = read_inputs(stack, t.orders)
    expected = oracles.ledger(inputs)
    records = read_output(stack, t.output, sum(expected.output.values()), read_committed=True)
    got = canonical_values(records)
    figures.record(
        "rest-faults",
        requests=len(proxy.exchanges()),
        faults=dict(proxy.fault_counts()),
        submissions_sent=len(_run_requests(proxy)),
        flink_jobs=len(new_jobs),
        lost=sum((expected.output - got).values()),
        duplicated=sum((got - expected.output).values()),
    )
    assert got == expected.output
