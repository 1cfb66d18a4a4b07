"""The autoscaler on the real stack: a backlog far beyond one subtask makes the ledger scale up
(in place, on the adaptive scheduler: the same job rescaled from its latest checkpoint, so every
movement still counts once); once the backlog is gone it scales back down after the delay."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy import kafka_io
from deploy.datagen.generator import GeneratorConfig, orders
from deploy.spec import FlinkJob
from tests import oracles
from tests.integration.jobrun import Topics, canonical_values, produce, read_inputs, read_output
from tests.integration.managed import Managed, flinkjob
from tests.integration.stacks import RunningStack

BACKLOG = GeneratorConfig(seed=3, events=40_000, skus=200, duplicate=0.01, malformed=0.0)


CATCH_UP_S = 60  # the spec's catchUp below
HIGH = 0.5 + 0.2  # its targetUtilization + utilizationBand


def assert_scale_up_follows_from_its_inputs(decision: dict[str, Any]) -> None:
    """The recorded inputs are what the decision was made from, and they call for it: records
    waiting (at most the backlog produced), a need of more than one subtask, the target rate
    made of the input rate and the lag over catchUp, and the reason's trigger true of them."""
    inputs = decision["inputs"]
    assert 0 < inputs["lag"] <= BACKLOG.events, inputs
    assert inputs["needed"] >= 2, inputs
    assert inputs["target_rate"] == pytest.approx(
        inputs["input_rate"] + inputs["lag"] / CATCH_UP_S, abs=0.15
    ), inputs
    reason = decision["reason"]
    if reason.endswith("lag is growing"):
        assert inputs["lag_growth_per_s"] > 0, inputs
    else:
        busy = re.fullmatch(r"scale up 1 → 2: busy (\d+)%", reason)
        assert busy is not None, reason
        assert inputs["utilisation"] > HIGH, inputs
        assert abs(int(busy[1]) - inputs["utilisation"] * 100) <= 1, (reason, inputs)


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
    assert_scale_up_follows_from_its_inputs(first)
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
