"""Running the reference jobs on the test stack and reading what they wrote."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from deploy import kafka_io
from deploy.datagen.generator import Message
from deploy.errors import FlinkError
from deploy.flink import pyjobs
from deploy.flink.rest import FlinkClient
from deploy.flink.states import TERMINAL_STATES
from tests.integration.stacks import RunningStack
from tests.oracles import InputRecord, canonical


@dataclass(frozen=True)
class Topics:
    """One test's own topics, so tests never see each other's data."""

    run: str
    views: str
    clicks: str
    orders: str
    output: str
    late: str
    dead: str

    @classmethod
    def fresh(cls, output: str) -> Topics:
        run = uuid.uuid4().hex[:8]
        return cls(
            run,
            f"views-{run}",
            f"clicks-{run}",
            f"orders-{run}",
            f"{output}-{run}",
            f"late-{run}",
            f"dead-{run}",
        )

    def common_args(self, stack: RunningStack) -> list[str]:
        return [
            "--bootstrap-servers", stack.bootstrap_servers,
            "--output-topic", self.output,
            "--late-topic", self.late,
            "--dead-letter-topic", self.dead,
            "--group-id", f"test-{self.run}",
            "--starting-offsets", "earliest",
            "--checkpoint-interval", "2s",
        ]  # fmt: skip


def produce(stack: RunningStack, messages: Iterable[Message], topics: dict[str, str]) -> None:
    sender = kafka_io.Sender(stack.bootstrap_servers)
    for m in messages:
        sender.send(topics[m.topic], m.key, m.value)
    sender.close()


def read_inputs(stack: RunningStack, topic: str) -> list[InputRecord]:
    return [
        InputRecord(r.topic, r.partition, r.offset, r.key, r.value)
        for r in kafka_io.read_all(stack.bootstrap_servers, topic, timeout=60)
    ]


def read_output(
    stack: RunningStack, topic: str, expected: int, read_committed: bool = False
) -> list[kafka_io.Record]:
    """All records of `topic`: waits for `expected`, then a few seconds more to catch extras."""
    return kafka_io.read_all(
        stack.bootstrap_servers,
        topic,
        expected=expected,
        timeout=180,
        idle=4.0,
        read_committed=read_committed,
    )


def canonical_values(records: Sequence[kafka_io.Record]) -> Counter[str]:
    return Counter(canonical(json.loads(r.value)) for r in records)


def dead_letter_origins(records: Sequence[kafka_io.Record]) -> Counter[tuple[str, int, int]]:
    out: Counter[tuple[str, int, int]] = Counter()
    for r in records:
        d = json.loads(r.value)
        out[(d["source_topic"], d["partition"], d["offset"])] += 1
    return out


class Job:
    """A job submitted to the stack through the REST API, as the controller does."""

    def __init__(self, stack: RunningStack, module: str, args: list[str]) -> None:
        self.flink = FlinkClient(stack.flink_url)
        try:
            self.id = pyjobs.submit(self.flink, module, args)
        except BaseException:
            self.flink.close()
            raise

    def state(self) -> str:
        return str(self.flink.job(self.id)["state"])

    def failure(self) -> str:
        return self.flink.failure(self.id)[:3000]

    def _detail(self) -> dict[str, Any] | None:
        """The job's details; None while the REST API answers 503 (with JobManager HA it does
        so while a leader is elected, after a JobManager pod was replaced)."""
        try:
            return self.flink.job(self.id)
        except FlinkError as e:
            if e.status == 503:
                return None
            raise

    def wait_running(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            detail = self._detail()
            if detail is None:
                time.sleep(0.5)
                continue
            if detail["state"] in TERMINAL_STATES:
                raise AssertionError(f"job ended {detail['state']}: {self.failure()}")
            if all(v["status"] == "RUNNING" for v in detail["vertices"]):
                return
            time.sleep(0.5)
        raise AssertionError(f"job not running after {timeout} s: {self.failure()}")

    def wait_finished(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        state = self.state()
        while state not in TERMINAL_STATES and time.monotonic() < deadline:
            time.sleep(1)
            state = self.state()
        assert state == "FINISHED", f"job is {state}: {self.failure()}"

    def min_watermark(self) -> int | None:
        """The lowest input watermark of the job's non-source vertices (None before any)."""
        lowest: int | None = None
        for vertex in self.flink.job(self.id)["vertices"]:
            marks = self.flink.vertex_watermarks(self.id, vertex["id"])
            values = [int(m["value"]) for m in marks if m["id"].endswith("currentInputWatermark")]
            if values:
                low = min(values)
                lowest = low if lowest is None else min(lowest, low)
        return lowest

    def wait_watermark(self, at_least: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mark = self.min_watermark()
            if mark is not None and mark >= at_least:
                return
            if self.state() in TERMINAL_STATES:
                raise AssertionError(f"job ended: {self.failure()}")
            time.sleep(0.5)
        raise AssertionError(f"watermark did not reach {at_least} (at {self.min_watermark()})")

    def counter(self, suffix: str) -> int:
        """The sum over all vertices and subtasks of the metrics whose id ends with `suffix`."""
        total = 0
        for vertex in self.flink.job(self.id)["vertices"]:
            ids = [
                i for i in self.flink.vertex_metrics(self.id, vertex["id"]) if i.endswith(suffix)
            ]
            if ids:
                values = self.flink.vertex_metrics(self.id, vertex["id"], ids)
                total += sum(int(float(v)) for v in values.values() if v)
        return total

    def wait_counter(self, suffix: str, expected: int, timeout: float = 60) -> int:
        """The counter once it reaches `expected` (metrics are fetched every few seconds)."""
        deadline = time.monotonic() + timeout
        value = self.counter(suffix)
        while value < expected and time.monotonic() < deadline:
            time.sleep(2)
            value = self.counter(suffix)
        return value

    def cancel(self) -> None:
        if self.state() not in TERMINAL_STATES:
            self.flink.cancel(self.id)
        self.flink.close()
