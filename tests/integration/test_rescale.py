"""Rescaling in place on the adaptive scheduler, with elastic TaskManagers: on a stack of one
single-slot TaskManager, `eddyline scale --parallelism 2` makes the stack start a second
TaskManager and the running job grow into it under the same job id, with every movement applied
once; scaling back makes the extra TaskManager go once it is idle."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import kafka_io
from deploy.datagen.generator import GeneratorConfig, orders
from deploy.errors import EddylineError
from deploy.local.stack import control
from deploy.local.stack import state as stack_state
from deploy.local.stack.elastic import IDLE_GRACE_S
from deploy.spec import FlinkJob
from tests import oracles
from tests.integration.jobrun import Topics, canonical_values, produce, read_inputs, read_output
from tests.integration.managed import Managed, flinkjob
from tests.integration.stacks import RunningStack, free_settings

FIRST = GeneratorConfig(seed=5, events=8_000, skus=100, duplicate=0.01, malformed=0.0)
SECOND = GeneratorConfig(seed=6, events=8_000, skus=100, duplicate=0.01, malformed=0.0)


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of its own: one TaskManager with one slot, allowed to grow to two."""
    settings = free_settings(tmp_path_factory.mktemp("small")).model_copy(
        update={
            "slots": 1,
            "taskmanagers": 1,
            "max_taskmanagers": 2,
            "scheduler": "adaptive",
            "controller": False,
            "taskmanager_memory": "1536m",
        }
    )
    try:
        result = control.up(settings)
    except EddylineError as e:
        pytest.fail(f"the small stack did not start: {e}", pytrace=False)
    try:
        yield RunningStack(settings, result.state)
    finally:
        control.down(settings.state_dir)


def taskmanagers(stack: RunningStack) -> int:
    st = stack_state.load(stack.settings.state_dir)
    assert st is not None
    return st.taskmanagers


def test_scale_rescales_in_place_and_the_stack_grows_and_shrinks_with_it(
    small_stack: RunningStack, tmp_path: Path
) -> None:
    stack = small_stack
    managed = Managed(stack, tmp_path)
    managed.start_controller(elastic=True)
    try:
        topics = Topics.fresh("inplace")
        kafka_io.create_topics(
            stack.bootstrap_servers, {topics.orders: 2, topics.output: 2, topics.dead: 1}
        )
        produce(stack, orders(FIRST), {"orders": topics.orders})
        doc = flinkjob(
            "inplace",
            "jobs.ledger",
            [
                "--orders-topic", topics.orders, "--output-topic", topics.output,
                "--dead-letter-topic", topics.dead, "--group-id", f"inplace-{topics.run}",
                "--starting-offsets", "earliest",
                "--transactional-id-prefix", f"inplace-{topics.run}",
            ],
            kafka={"inputTopics": [topics.orders]},
        )  # fmt: skip
        assert managed.submit(doc).returncode == 0
        first = managed.wait_running("inplace", 1)
        assert taskmanagers(stack) == 1

        scaled = managed.cli("scale", "inplace", "--parallelism", "2")
        assert scaled.returncode == 0, scaled.stderr

        def at(parallelism: int, generation: int) -> object:
            def done(job: FlinkJob) -> bool:
                return (
                    job.status.parallelism == parallelism
                    and job.status.operation is None
                    and job.status.observed_generation == generation
                    and job.status.last_reconciled_spec is not None
                    and job.status.last_reconciled_spec.job.parallelism == parallelism
                )

            return done

        up = managed.wait("inplace", at(2, 2), "rescale to 2", timeout=300)  # type: ignore[arg-type]
        assert up.status.job_id == first.status.job_id  # in place: the same Flink job
        reasons = [e.reason for e in up.status.events]
        assert "Rescaled" in reasons
        assert "StoppingWithSavepoint" not in reasons[reasons.index("Rescaling") :]
        assert taskmanagers(stack) == 2  # the stack grew to give it the second slot

        # Every movement once, before and after the rescale.
        produce(stack, orders(SECOND), {"orders": topics.orders})
        inputs = read_inputs(stack, topics.orders)
        expected = oracles.ledger(inputs)
        records = read_output(
            stack, topics.output, sum(expected.output.values()), read_committed=True
        )
        assert canonical_values(records) == expected.output

        assert managed.cli("scale", "inplace", "--parallelism", "1").returncode == 0
        down = managed.wait("inplace", at(1, 3), "rescale to 1", timeout=300)  # type: ignore[arg-type]
        assert down.status.job_id == first.status.job_id
        deadline = time.monotonic() + IDLE_GRACE_S + 120
        while taskmanagers(stack) != 1:
            assert time.monotonic() < deadline, "the idle extra TaskManager was never stopped"
            time.sleep(2)
        assert managed.live_flink_jobs() == [first.status.job_id]
    finally:
        managed.close()
