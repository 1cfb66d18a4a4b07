"""The autoscaler on the real stack: a backlog far beyond one subtask makes the ledger scale up
(a savepoint upgrade, so every movement still counts once); once the backlog is gone it scales
back down after the delay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import kafka_io
from deploy.generator import GeneratorConfig, orders
from deploy.spec import FlinkJob
from tests import oracles
from tests.integration.jobrun import Topics, canonical_values, produce, read_inputs, read_output
from tests.integration.managed import Managed, flinkjob
from tests.integration.stacks import RunningStack

BACKLOG = GeneratorConfig(seed=3, events=40_000, skus=200, duplicate=0.01, malformed=0.0)


@pytest.fixture
def managed(stack: RunningStack, tmp_path: Path) -> Iterator[Managed]:
    m = Managed(stack, tmp_path)
    m.start_controller()
    try:
        yield m
    finally:
        m.close()


def test_a_backlog_scales_the_ledger_up_and_its_end_scales_it_down(managed: Managed) -> None:
    stack = managed.stack
    topics = Topics.fresh("scaled")
    kafka_io.create_topics(
        stack.bootstrap_servers, {topics.orders: 4, topics.output: 4, topics.dead: 1}
    )
    produce(stack, orders(BACKLOG), {"orders": topics.orders})
    doc = flinkjob(
        "scaled",
        "jobs.ledger",
        [
            "--orders-topic", topics.orders, "--output-topic", topics.output,
            "--dead-letter-topic", topics.dead, "--group-id", f"scaled-{topics.run}",
            "--starting-offsets", "earliest", "--transactional-id-prefix", f"scaled-{topics.run}",
        ],
        autoscaler={
            "enabled": True, "maxParallelism": 2, "targetUtilization": 0.5,
            "utilizationBand": 0.2, "metricsWindow": "20s", "stabilization": "10s",
            "cooldown": "20s", "scaleDownDelay": "20s", "catchUp": "1m",
        },
        kafka={"inputTopics": [topics.orders]},
    )  # fmt: skip
    assert managed.submit(doc).returncode == 0
    managed.wait_running("scaled", 1)

    def decided(parallelism: int) -> object:
        def done(job: FlinkJob) -> bool:
            decisions = job.status.autoscaler.get("decisions", [])
            return (
                any(d["parallelism"] == parallelism for d in decisions)
                and job.status.parallelism == parallelism
                and job.status.operation is None
            )

        return done

    up = managed.wait("scaled", decided(2), "scale up to 2", timeout=240)  # type: ignore[arg-type]
    first = up.status.autoscaler["decisions"][0]
    assert first["current"] == 1
    assert first["reason"].startswith("scale up 1 → 2")
    assert first["inputs"]["utilisation"] > 0.7 or first["inputs"]["lag"] > 0
    # The local stack runs the adaptive scheduler: the job is rescaled in place.
    assert first["applied"] == "in place"
    assert up.spec.job.parallelism == 1  # the user's spec is left as written

    # Every movement once, across the rescale.
    inputs = read_inputs(stack, topics.orders)
    expected = oracles.ledger(inputs)
    records = read_output(stack, topics.output, sum(expected.output.values()), read_committed=True)
    assert canonical_values(records) == expected.output

    down = managed.wait("scaled", decided(1), "scale back down to 1", timeout=240)  # type: ignore[arg-type]
    last = down.status.autoscaler["decisions"][-1]
    assert last["reason"].startswith("scale down 2 → 1")
    assert len(down.status.autoscaler["decisions"]) == 2  # no flapping in between
