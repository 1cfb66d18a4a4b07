"""Reference jobs for the monitoring tests, run by the session stack's own controller.

Each test module starts the jobs it needs from their specs in jobs/specs/ — under their own
names (the name Flink shows them by is the job module's, e.g. `attribution`, whatever the
FlinkJob is called), but on topics and consumer groups of their own, so they meet nothing else
on the shared stack — feeds them generated events at a steady rate while its tests look, and
deletes them afterwards (their task slots are needed by the modules that follow).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx
import yaml

from deploy import kafka_io, paths
from deploy.datagen import generator
from deploy.datagen.loadgen import Pacer
from deploy.flink.rest import FlinkClient
from deploy.local.store import SqliteStore
from deploy.spec import FlinkJob
from tests.integration.cli import eddyline
from tests.integration.stacks import RunningStack

SPECS = paths.PROJECT_ROOT / "jobs" / "specs"
PARTITIONS = 2
START_TIMEOUT_S = 300.0
FEED_RATE = 30.0  # events per second into each input, by default


class Feeder(threading.Thread):
    """Produces `messages` round and round at `rate` per second until stopped. Repeats are
    duplicates and, once the watermark has passed them, late events: both are routes the
    monitoring views count."""

    def __init__(
        self,
        servers: str,
        messages: Sequence[generator.Message],
        topics: dict[str, str],
        rate: float,
    ) -> None:
        super().__init__(daemon=True, name="monitoring-feeder")
        self.servers, self.messages, self.topics, self.rate = servers, messages, topics, rate
        self.stopping = threading.Event()
        self.sent = 0

    def run(self) -> None:
        sender = kafka_io.Sender(self.servers)
        pacer = Pacer(self.rate, time.monotonic())
        for n, msg in enumerate(cycle(self.messages)):
            if self.stopping.wait(pacer.delay(n, time.monotonic())):
                break
            sender.send(self.topics[msg.topic], msg.key, msg.value)
            self.sent += 1
        sender.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=90)


def _spec(
    job: str, run: str, topics: dict[str, str], autoscaler: bool, health: Mapping[str, Any]
) -> dict[str, Any]:
    """jobs/specs/<job>.yaml moved onto this run's topics and consumer group, with `health`
    (spec.health fields) over the spec's own."""
    doc: dict[str, Any] = yaml.safe_load((SPECS / f"{job}.yaml").read_text())
    spec = doc["spec"]
    args: list[str] = spec["job"]["args"]
    for i, arg in enumerate(args[:-1]):
        if arg.endswith("-topic"):
            args[i + 1] = topics[args[i + 1]]
    args += ["--late-topic", topics["late-events"], "--dead-letter-topic", topics["dead-letter"],
             "--group-id", f"{job}-{run}"]  # fmt: skip
    kafka = spec["kafka"]
    kafka["inputTopics"] = [topics[t] for t in kafka["inputTopics"]]
    kafka["outputTopics"] = [topics.get(t, t) for t in kafka.get("outputTopics", [])]
    if autoscaler:  # evaluates (and reports) every few seconds, but may not rescale
        spec["autoscaler"] = {"enabled": True, "minParallelism": 1, "maxParallelism": 1}
    if health:
        spec["health"] = {**spec.get("health", {}), **health}
    return doc


def running_at(job: FlinkJob | None) -> bool:
    return job is not None and job.running_at(job.metadata.generation)


@contextmanager
def reference_jobs(
    stack: RunningStack,
    jobs: Sequence[str],
    folder: Path,
    rate: float = FEED_RATE,
    autoscaler: Sequence[str] = (),
    health: Mapping[str, Any] | None = None,
) -> Iterator[dict[str, FlinkJob]]:
    """The reference `jobs` running under the stack's controller, fed at `rate` events per
    second per input, each with `health` over its spec.health; yields them by name."""
    run = uuid.uuid4().hex[:8]
    names = ("views", "clicks", "orders", "attributed-clicks", "sessions", "stock-levels",
             "late-events", "dead-letter")  # fmt: skip
    topics = {t: f"{t}-{run}" for t in names}
    kafka_io.create_topics(stack.bootstrap_servers, {t: PARTITIONS for t in topics.values()})
    state_dir = str(stack.settings.state_dir)
    feeders = [
        Feeder(stack.bootstrap_servers, msgs, topics, rate)
        for msgs in (
            generator.clickstream(generator.GeneratorConfig(seed=3, events=20_000)),
            generator.orders(generator.GeneratorConfig(seed=4, events=20_000)),
        )
    ]
    for feeder in feeders:
        feeder.start()
    store = SqliteStore(stack.settings.controller_db)
    submitted: list[str] = []
    try:
        for job in jobs:
            assert store.get(job) is None, f"a FlinkJob {job} is already on the stack"
            spec = folder / f"{job}.yaml"
            spec.write_text(
                yaml.safe_dump(_spec(job, run, topics, job in autoscaler, health or {}))
            )
            done = eddyline("submit", str(spec), "--state-dir", state_dir)
            assert done.returncode == 0, done.stderr
            submitted.append(job)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(running_at(store.get(n)) for n in submitted):
            states = {n: (j.status.lifecycle.value, j.status.error) for n in submitted
                      if (j := store.get(n)) is not None}  # fmt: skip
            assert time.monotonic() < deadline, (
                f"not all running after {START_TIMEOUT_S} s: {states}"
            )
            time.sleep(1)
        found = {job: store.get(job) for job in jobs}
        yield {job: j for job, j in found.items() if j is not None}
    finally:
        for feeder in feeders:
            feeder.stop()
        for name in submitted:
            eddyline("delete", name, "--wait", "--timeout", "120", "--state-dir", state_dir)


def wait_for_checkpoint(flink_url: str, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Flink's checkpoint statistics of the job once one checkpoint has completed."""
    deadline = time.monotonic() + timeout
    with FlinkClient(flink_url) as flink:
        while True:
            stats = flink.checkpoints(job_id)
            if stats.get("counts", {}).get("completed", 0) >= 1:
                return stats
            assert time.monotonic() < deadline, f"no completed checkpoint of {job_id}: {stats}"
            time.sleep(1)


def scrape(port: int) -> str:
    """One Prometheus endpoint's exposition text."""
    resp = httpx.get(f"http://localhost:{port}/metrics", timeout=15)
    resp.raise_for_status()
    return resp.text


def top_frames(stack: RunningStack, *args: str) -> list[dict[str, Any]]:
    """`eddyline top -o json` frames."""
    done = eddyline("top", "-o", "json", "--state-dir", str(stack.settings.state_dir), *args)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
