"""The controller killed (SIGKILL, at a named failpoint) at each step of a savepoint upgrade.

tests/integration/test_controller.py kills it after the savepoint and before the resubmission
(`before:submit`) and after the resubmission, before the status names the new job
(`after:submit`). This adds the steps before them, on one ledger job upgraded twice:
- `before:stop-with-savepoint`: the trigger id is recorded, the request never sent;
- `after:stop-with-savepoint`: the request was sent, the savepoint not yet seen.
After each, a new controller finishes the upgrade: exactly one job runs, started from the
savepoint that trigger made (the only savepoint of the old job), and the ledger's committed
output is exactly once over everything produced.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import kafka_io
from deploy.datagen.generator import GeneratorConfig, Message, orders
from tests import figures, oracles
from tests.integration.jobrun import Topics, canonical_values, produce, read_inputs, read_output
from tests.integration.managed import Managed, flinkjob
from tests.integration.stacks import RunningStack

ORDERS = GeneratorConfig(seed=43, events=3_000, skus=30, duplicate=0.05, malformed=0.01)
STEPS = ["before:stop-with-savepoint", "after:stop-with-savepoint"]


@pytest.fixture
def managed(stack: RunningStack, tmp_path: Path) -> Iterator[Managed]:
    m = Managed(stack, tmp_path)
    m.start_controller()
    try:
        yield m
    finally:
        m.close()


def _savepoints_of(managed: Managed, job_id: str) -> list[str]:
    """Every savepoint Flink completed for `job_id` (its checkpoint history)."""
    history = managed.flink.checkpoints(job_id).get("history") or []
    return [
        str(h.get("external_path"))
        for h in history
        if h.get("is_savepoint") and h.get("status") == "COMPLETED"
    ]


@pytest.mark.timeout(1500)
def test_a_controller_killed_before_or_after_the_savepoint_request_finishes_the_upgrade_once(
    managed: Managed,
) -> None:
    stack = managed.stack
    t = Topics.fresh("levels")
    kafka_io.create_topics(stack.bootstrap_servers, {t.orders: 2, t.output: 2, t.dead: 1})
    messages = orders(ORDERS)
    parts: list[list[Message]] = [messages[i :: len(STEPS) + 1] for i in range(len(STEPS) + 1)]
    doc = flinkjob(
        "ledger-steps",
        "jobs.ledger",
        [
            "--orders-topic", t.orders, "--output-topic", t.output, "--dead-letter-topic",
            t.dead, "--group-id", f"steps-{t.run}", "--starting-offsets", "earliest",
            "--transactional-id-prefix", f"steps-{t.run}",
        ],
        kafka={"inputTopics": [t.orders], "outputTopics": [t.output, t.dead]},
    )  # fmt: skip
    produce(stack, parts[0], {"orders": t.orders})
    assert managed.submit(doc).returncode == 0
    job = managed.wait_running("ledger-steps", 1)

    survived = []
    for i, failpoint in enumerate(STEPS, start=1):
        old_job = str(job.status.job_id)
        assert managed.controller is not None
        managed.controller.stop()
        doomed = managed.start_controller(failpoints=failpoint)
        # A configuration change: a savepoint upgrade whatever the scheduler (a parallelism
        # change alone is done in place on the adaptive scheduler).
        doc["spec"]["flinkConfiguration"] = {"pipeline.name": f"ledger-steps-{i}"}  # type: ignore[index]
        done = managed.submit(doc)
        assert done.returncode == 0, done.stderr
        assert doomed.wait_killed() == -9, doomed.tail()

        # What the dead controller left: an upgrade in flight with its trigger id.
        st = managed.job("ledger-steps").status
        assert st.operation is not None
        assert st.operation.kind == "upgrade"
        assert st.operation.job_id == old_job
        trigger = st.operation.trigger_id
        assert trigger is not None
        if failpoint.startswith("before:"):
            assert managed.flink.job(old_job)["state"] == "RUNNING"  # never asked to stop

        managed.start_controller()
        job = managed.wait_running("ledger-steps", i + 1, timeout=300)
        assert job.status.last_reconciled_spec == job.spec
        answer = managed.flink.savepoint_status(old_job, trigger)
        made = str((answer.get("operation") or {}).get("location"))
        assert job.status.upgrade_savepoint_path == made
        assert _savepoints_of(managed, old_job) == [made], "one savepoint per upgrade"
        assert managed.flink.job(old_job)["state"] == "FINISHED"
        assert managed.live_flink_jobs() == [job.status.job_id]
        produce(stack, parts[i], {"orders": t.orders})
        survived.append(failpoint)

    inputs = read_inputs(stack, t.orders)
    expected = oracles.ledger(inputs)
    records = read_output(stack, t.output, sum(expected.output.values()), read_committed=True)
    got = canonical_values(records)
    figures.record(
        "controller-kills",
        steps=survived,
        movements=len(inputs),
        lost=sum((expected.output - got).values()),
        duplicated=sum((got - expected.output).values()),
    )
    assert got == expected.output
    by_sku: dict[str, list[dict[str, object]]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        value = json.loads(r.value)
        by_sku.setdefault(str(value["sku"]), []).append(value)
    assert by_sku == oracles.ledger_by_sku(inputs)
