"""Process kills under the controller: while the ledger works through a backlog of stock
movements, the stack's own servers are killed with SIGKILL — TaskManagers (Flink restarts the
job, or the controller once Flink gives up), the JobManager (every job is gone: the controller
resubmits from the latest checkpoint) and the Kafka broker (the supervisor restarts it on the
same data). Afterwards the committed output (read_committed) must equal the oracle: no
movement lost, none applied twice, levels in partition order.

Only the stack fixture's own processes are killed, by the PIDs its supervisor recorded.
`make test` runs the short profile; `make soak` the long one.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from deploy import kafka_io
from deploy.datagen.generator import GeneratorConfig, orders
from deploy.errors import FlinkError
from deploy.flink import health as flink_health
from deploy.flink.rest import FlinkClient
from deploy.local.stack import health, processes, state
from deploy.local.stack.components import JOBMANAGER, KAFKA
from deploy.local.stack.components import TASKMANAGER as TASKMANAGER_KIND
from tests import figures, oracles
from tests.integration.jobrun import Topics, produce, read_inputs, read_output
from tests.integration.managed import Managed, flinkjob
from tests.integration.stacks import RunningStack

PARTITIONS = 4
TASKMANAGER = "taskmanagers"  # every TaskManager the stack runs at that moment


# The JobManager killed while the controller is away (stopped, then started again once the
# JobManager is back): every job is gone and the controller has not seen the newest checkpoint.
JOBMANAGER_AWAY = f"{JOBMANAGER} (controller away)"


@dataclass(frozen=True)
class Profile:
    name: str
    events: int
    kills: tuple[str, ...]  # killed one after another as the backlog drains


# `make test` runs the short profile: enough to kill each kind of server once mid-backlog on a
# shared 2-core machine in a few minutes. `make soak` runs the long one (≥ 100,000 movements,
# every kind killed repeatedly, the JobManager with the controller present and away).
SHORT = Profile("short", 20_000, (TASKMANAGER, JOBMANAGER_AWAY, KAFKA))
SOAK = Profile(
    "soak",
    200_000,
    (TASKMANAGER, TASKMANAGER, JOBMANAGER, KAFKA, TASKMANAGER, JOBMANAGER_AWAY, TASKMANAGER,
     KAFKA, TASKMANAGER, JOBMANAGER),
)  # fmt: skip


@pytest.fixture
def managed(stack: RunningStack, tmp_path: Path) -> Iterator[Managed]:
    m = Managed(stack, tmp_path)
    m.start_controller()
    try:
        yield m
    finally:
        m.close()


# -- the stack's processes ---------------------------------------------------------------------


def component(stack: RunningStack, name: str) -> state.ComponentState:
    current = state.load(stack.settings.state_dir)
    assert current is not None, "the stack has no state file"
    return current.component(name)


def taskmanagers(stack: RunningStack) -> list[str]:
    current = state.load(stack.settings.state_dir)
    assert current is not None
    running = [c.name for c in current.components if c.kind == TASKMANAGER_KIND and c.pid]
    assert running, "no TaskManager runs"
    return running


def kill(stack: RunningStack, name: str) -> state.ComponentState:
    """SIGKILL the stack's `name` (the PID its supervisor started); what it was before."""
    c = component(stack, name)
    assert c.pid is not None, f"{name} is not running"
    assert processes.alive(c.pid, c.started_at), f"{name} (pid {c.pid}) is not the one started"
    os.kill(c.pid, signal.SIGKILL)
    return c


# What the supervisor logs when it lets an extra TaskManager go (deploy/local/stack/supervisor.py).
LET_GO = "stopped {name}: idle and no longer wanted"


def wait_back(stack: RunningStack, killed: state.ComponentState, timeout: float = 300) -> None:
    """Until the supervisor has restarted `killed` and it answers again — or, for a TaskManager
    the jobs no longer want, until the supervisor has let it go (see let_go)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = component(stack, killed.name)
        except KeyError:
            let_go(stack, killed)
            return
        if c.restarts > killed.restarts and processes.alive(c.pid) and _answers(stack, c.name):
            return
        time.sleep(1)
    raise AssertionError(f"{killed.name} was not restarted and healthy within {timeout:.0f} s")


def let_go(stack: RunningStack, killed: state.ComponentState) -> None:
    """A killed server that left the state file instead of being restarted: only a TaskManager,
    only when the supervisor says it stopped it as no longer wanted, with its process gone and
    at least the configured TaskManagers still running and registered with Flink."""
    name = killed.name
    assert killed.kind == TASKMANAGER_KIND, f"{name} left the stack instead of being restarted"
    log = stack.settings.state_dir / "logs" / "supervisor.log"
    assert LET_GO.format(name=name) in log.read_text(), (
        f"{name} left the stack's state file without the supervisor letting it go:\n"
        + "\n".join(log.read_text().splitlines()[-15:])
    )
    assert not processes.alive(killed.pid, killed.started_at), f"{name} still runs"
    current = state.load(stack.settings.state_dir)
    assert current is not None
    left = [c for c in current.components if c.kind == TASKMANAGER_KIND]
    assert len(left) >= stack.settings.taskmanagers, f"only {[c.name for c in left]} left"
    for c in left:
        assert processes.alive(c.pid), f"{c.name} is not running"
    names, deadline = {c.name for c in left}, time.monotonic() + 120
    while not names <= (flink_health.flink_taskmanagers(stack.flink_url) or set()):
        assert time.monotonic() < deadline, f"{sorted(names)} not all registered with Flink"
        time.sleep(1)


def _answers(stack: RunningStack, name: str) -> bool:
    if name == KAFKA:
        return health.kafka_answers(stack.bootstrap_servers)
    registered = flink_health.flink_taskmanagers(stack.flink_url)
    if registered is None:
        return False
    return name == JOBMANAGER or name in registered


def away_until_a_new_checkpoint(managed: Managed, name: str) -> None:
    """Stop the controller, then wait until the job completes a checkpoint it has not seen."""
    assert managed.controller is not None
    managed.controller.stop()
    job = managed.job(name)
    seen = job.status.last_checkpoint_path
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        latest = _latest_checkpoint(managed.flink, str(job.status.job_id))
        if latest is not None and latest[0] != seen:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} completed no checkpoint after {seen} within 300 s")


def _latest_checkpoint(flink: FlinkClient, job_id: str) -> tuple[str, int] | None:
    try:
        completed = (flink.checkpoints(job_id).get("latest") or {}).get("completed") or {}
    except FlinkError:
        return None  # the JobManager is restarting, or the job is not there yet
    if not completed.get("external_path"):
        return None
    return str(completed["external_path"]), int(completed.get("latest_ack_timestamp") or 0)


def wait_recovered(managed: Managed, name: str, since_ms: int, what: str) -> None:
    """Until the job the controller runs has completed a checkpoint after `since_ms`: it runs
    again and its progress is being committed."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job = managed.job(name)
        if job.running_at(1) and job.status.job_id:
            latest = _latest_checkpoint(managed.flink, job.status.job_id)
            if latest is not None and latest[1] > since_ms:
                return
        time.sleep(1)
    job = managed.job(name)
    raise AssertionError(
        f"{name} did not run and checkpoint again within 600 s after {what}: "
        f"{job.status.lifecycle} {job.status.error}; events "
        f"{[e.message for e in job.status.events][-8:]}\n"
        f"{managed.controller.tail() if managed.controller else ''}"
    )


# -- progress --------------------------------------------------------------------------------


def consumed(stack: RunningStack, group: str, topic: str) -> int:
    """How many input messages the job's checkpoints have committed (its consumer group)."""
    consumer = Consumer(kafka_io.client_config(stack.bootstrap_servers, **{"group.id": group}))
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = consumer.committed(parts, timeout=10)
        return sum(max(0, tp.offset) for tp in committed)
    except Exception:  # Kafka restarting: no progress to report right now
        return -1
    finally:
        consumer.close()


def wait_consumed(
    stack: RunningStack, group: str, topic: str, at_least: int, timeout: float
) -> int:
    deadline = time.monotonic() + timeout
    done = consumed(stack, group, topic)
    while done < at_least:
        if time.monotonic() > deadline:
            raise AssertionError(f"the ledger consumed {done} of {at_least} within {timeout} s")
        time.sleep(2)
        done = consumed(stack, group, topic)
    return done


# -- the test --------------------------------------------------------------------------------


@pytest.mark.timeout(7200)
@pytest.mark.parametrize(
    "profile", [SHORT, pytest.param(SOAK, marks=pytest.mark.soak)], ids=lambda p: p.name
)
def test_killed_servers_lose_and_duplicate_no_ledger_movement(
    managed: Managed, profile: Profile
) -> None:
    stack = managed.stack
    t = Topics.fresh("levels")
    group = f"kills-{t.run}"
    kafka_io.create_topics(
        stack.bootstrap_servers,
        {t.orders: PARTITIONS, t.output: PARTITIONS, t.dead: 1},
    )
    config = GeneratorConfig(
        seed=97, events=profile.events, skus=500, duplicate=0.02, malformed=0.002
    )
    produce(stack, orders(config), {"orders": t.orders})
    doc = flinkjob(
        "ledger-kills",
        "jobs.ledger",
        [
            "--orders-topic", t.orders, "--output-topic", t.output,
            "--dead-letter-topic", t.dead, "--group-id", group,
            "--starting-offsets", "earliest", "--transactional-id-prefix", f"kills-{t.run}",
        ],
        job={"parallelism": 2},
        kafka={"inputTopics": [t.orders], "outputTopics": [t.output, t.dead]},
        restartPolicy={"maxRetries": 50, "backoff": "1s", "maxBackoff": "8s",
                       "flinkAttempts": 2},
    )  # fmt: skip
    assert managed.submit(doc).returncode == 0
    managed.wait_running("ledger-kills", 1, timeout=300)

    started = time.monotonic()
    survived: Counter[str] = Counter()
    step = profile.events // (len(profile.kills) + 1)
    for i, kind in enumerate(profile.kills, start=1):
        wait_consumed(stack, group, t.orders, step * i, timeout=900)
        if kind == TASKMANAGER:
            names = taskmanagers(stack)
        else:
            names = [JOBMANAGER if kind == JOBMANAGER_AWAY else kind]
        if kind == JOBMANAGER_AWAY:
            away_until_a_new_checkpoint(managed, "ledger-kills")
        killed_at = int(time.time() * 1000)
        for killed in [kill(stack, name) for name in names]:
            wait_back(stack, killed)
        if kind == JOBMANAGER_AWAY:
            managed.start_controller()
        wait_recovered(managed, "ledger-kills", killed_at, f"{kind} was killed")
        survived[kind] += 1

    inputs = read_inputs(stack, t.orders)
    assert len(inputs) == profile.events
    expected = oracles.ledger(inputs)
    total = sum(expected.output.values())
    records = read_output(stack, t.output, total, read_committed=True)
    got = Counter(oracles.canonical(json.loads(r.value)) for r in records)
    lost = sum((expected.output - got).values())
    duplicated = sum((got - expected.output).values())
    job = managed.job("ledger-kills")
    figures.record(
        "process-kills",
        profile=profile.name,
        movements=profile.events,
        kills=dict(survived),
        lost=lost,
        duplicated=duplicated,
        resubmissions=[e.message for e in job.status.events if e.reason == "Submitting"],
        seconds=round(time.monotonic() - started),
    )
    assert (lost, duplicated) == (0, 0), (
        f"{lost} movements lost, {duplicated} applied twice after kills {dict(survived)}; "
        f"controller events: {[e.message for e in job.status.events]}"
    )
    by_sku: dict[str, list[dict[str, object]]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        value = json.loads(r.value)
        by_sku.setdefault(str(value["sku"]), []).append(value)
    assert by_sku == oracles.ledger_by_sku(inputs)
    assert managed.live_flink_jobs() == [job.status.job_id]
    with FlinkClient(stack.flink_url) as flink:
        assert len(flink.taskmanagers()) >= stack.settings.taskmanagers
