"""The three reference jobs on the real stack, checked against independent oracles.

The input comes from the seeded generator: out-of-order events within the bound, late events,
duplicates, malformed messages, bots and unknown extra fields. Each job's output, late events
and dead letters must equal, as multisets, what tests/oracles.py computes from the exact
records in Kafka (read back with their partitions and offsets).

Lateness is made deterministic: late events are produced only after the job's watermark has
passed them, and per-partition closing events at the end push the watermark past every window
and session, so what is late and what closes does not depend on timing.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from deploy import kafka_io
from deploy.datagen.generator import GeneratorConfig, clickstream, orders
from tests import oracles
from tests.integration.jobrun import (
    Job,
    Topics,
    canonical_values,
    dead_letter_origins,
    produce,
    read_inputs,
    read_output,
)
from tests.integration.stacks import RunningStack

GAP_MS = 1_800_000
OUT_OF_ORDERNESS_MS = 5_000
CLICKSTREAM = GeneratorConfig(
    seed=11, events=4_000, users=80, ads=8, mean_gap_ms=150, late=0.02, duplicate=0.02,
    malformed=0.02, bot=0.05, out_of_order=0.15, extra_fields=0.05,
)  # fmt: skip


def _ts(value: bytes) -> int:
    return int(json.loads(value)["ts"])


def _closing_ts(messages: list[bytes]) -> int:
    """Far enough past every event that all windows and sessions close."""
    latest = max(_ts(v) for v in messages if _parses(v))
    return latest + GAP_MS + 3_600_000


def _parses(value: bytes) -> bool:
    try:
        return isinstance(json.loads(value).get("ts"), int)
    except (ValueError, AttributeError, UnicodeDecodeError):
        return False


def _closing_events(stack: RunningStack, topics: Topics, ts: int) -> None:
    """One valid event per partition of views and clicks, by users seen nowhere else."""
    sender = kafka_io.Sender(stack.bootstrap_servers)
    for topic in (topics.views, topics.clicks):
        for partition in range(2):
            user = f"closing-{topic}-{partition}"
            event = {
                "event_id": f"close-{topic}-{partition}", "user_id": user, "ad_id": "ad-closing",
                "campaign_id": "c-closing", "page": "https://closing.example/", "user_agent":
                "Mozilla/5.0", "ts": ts,
            }  # fmt: skip
            sender.send(topic, user.encode(), json.dumps(event).encode(), partition=partition)
    sender.close()


@pytest.fixture(scope="module")
def clickstream_run(stack: RunningStack) -> dict[str, object]:
    """Attribution and sessions run side by side over one generated clickstream."""
    topics = Topics.fresh("attributed")
    sessions_out = f"sessions-{topics.run}"
    kafka_io.create_topics(
        stack.bootstrap_servers,
        {topics.views: 2, topics.clicks: 2, topics.output: 2, sessions_out: 2,
         topics.late: 1, topics.dead: 1, f"late-s-{topics.run}": 1, f"dead-s-{topics.run}": 1},
    )  # fmt: skip
    messages = clickstream(CLICKSTREAM)
    names = {"views": topics.views, "clicks": topics.clicks}
    late = [m for m in messages if m.kind == "late"]
    on_time = [m for m in messages if m.kind != "late"]
    produce(stack, on_time, names)

    inputs = ["--views-topic", topics.views, "--clicks-topic", topics.clicks]
    attribution = Job(stack, "jobs.attribution", [*topics.common_args(stack), *inputs])
    session_args = [
        *topics.common_args(stack), *inputs, "--output-topic", sessions_out,
        "--late-topic", f"late-s-{topics.run}", "--dead-letter-topic", f"dead-s-{topics.run}",
        "--group-id", f"test-s-{topics.run}",
    ]  # fmt: skip
    sessions = Job(stack, "jobs.sessions", session_args)
    try:
        latest_late = max(_ts(m.value) for m in late)
        for job in (attribution, sessions):
            job.wait_running()
            job.wait_watermark(latest_late)
        produce(stack, late, names)
        closing = _closing_ts([m.value for m in messages])
        _closing_events(stack, topics, closing)

        views = read_inputs(stack, topics.views)
        clicks = read_inputs(stack, topics.clicks)
        late_values = {m.value for m in late}
        late_keys = {
            (r.topic, r.partition, r.offset) for r in views + clicks if r.value in late_values
        }
        expected_attr = oracles.attribution(views, clicks, late=late_keys)
        expected_sess = oracles.sessions(
            views, clicks, late=late_keys, gap_ms=GAP_MS,
            final_watermark=closing - OUT_OF_ORDERNESS_MS - 1,
        )  # fmt: skip
        n = sum
        outputs = {
            "topics": topics,
            "inputs": len(views) + len(clicks),
            "late_keys": late_keys,
            "attribution": (expected_attr, {
                "output": read_output(stack, topics.output, n(expected_attr.output.values())),
                "late": read_output(stack, topics.late, n(expected_attr.late.values())),
                "dead": read_output(stack, topics.dead, n(expected_attr.dead.values())),
            }),
            "sessions": (expected_sess, {
                "output": read_output(stack, sessions_out, n(expected_sess.output.values())),
                "late": read_output(stack, f"late-s-{topics.run}", n(expected_sess.late.values())),
                "dead": read_output(stack, f"dead-s-{topics.run}", n(expected_sess.dead.values())),
            }),
        }  # fmt: skip
        filtered = expected_attr.counts["filtered"]
        outputs["bots_counted"] = {
            "attribution": attribution.wait_counter("eddyline_bots_filtered", filtered),
            "sessions": sessions.wait_counter("eddyline_bots_filtered", filtered),
        }
        return outputs
    finally:
        attribution.cancel()
        sessions.cancel()


@pytest.mark.parametrize("job", ["attribution", "sessions"])
def test_output_equals_the_oracle(clickstream_run: dict[str, object], job: str) -> None:
    expected, got = clickstream_run[job]  # type: ignore[misc]
    assert sum(expected.output.values()) > 50, "the data set should give plenty of output"
    assert canonical_values(got["output"]) == expected.output


@pytest.mark.parametrize("job", ["attribution", "sessions"])
def test_late_events_go_only_to_late_events(clickstream_run: dict[str, object], job: str) -> None:
    expected, got = clickstream_run[job]  # type: ignore[misc]
    assert len(clickstream_run["late_keys"]) == round(CLICKSTREAM.late * CLICKSTREAM.events)  # type: ignore[arg-type]
    assert canonical_values(got["late"]) == expected.late


@pytest.mark.parametrize("job", ["attribution", "sessions"])
def test_malformed_messages_are_dead_lettered_with_their_offsets(
    clickstream_run: dict[str, object], job: str
) -> None:
    expected, got = clickstream_run[job]  # type: ignore[misc]
    assert expected.counts["dead_lettered"] == round(CLICKSTREAM.malformed * CLICKSTREAM.events)
    assert dead_letter_origins(got["dead"]) == expected.dead
    for record in got["dead"]:
        letter = json.loads(record.value)
        assert set(letter) >= {"source_topic", "partition", "offset", "error", "payload"}
        assert letter["error"]


@pytest.mark.parametrize("job", ["attribution", "sessions"])
def test_filtered_bots_are_counted_in_a_flink_metric(
    clickstream_run: dict[str, object], job: str
) -> None:
    expected, _ = clickstream_run[job]  # type: ignore[misc]
    assert clickstream_run["bots_counted"][job] == expected.counts["filtered"]  # type: ignore[index]


def test_every_input_message_is_accounted_for(clickstream_run: dict[str, object]) -> None:
    expected, got = clickstream_run["attribution"]  # type: ignore[misc]
    counts = expected.counts
    assert counts["in"] == clickstream_run["inputs"]
    assert counts["in"] == (
        counts["contributed"] + counts["late"] + counts["dead_lettered"] + counts["filtered"]
    )
    assert len(got["late"]) == counts["late"]
    assert len(got["dead"]) == counts["dead_lettered"]
    assert counts["filtered"] >= round(CLICKSTREAM.bot * CLICKSTREAM.events)


ORDERS = GeneratorConfig(seed=5, events=4_000, skus=40, duplicate=0.03, malformed=0.02)


def _ledger_run(stack: RunningStack, topics: Topics, group: str, output: str, *extra: str) -> Job:
    args = [
        *topics.common_args(stack), "--orders-topic", topics.orders, "--output-topic", output,
        "--group-id", group, "--transactional-id-prefix", f"eddyline-test-{group}", *extra,
    ]  # fmt: skip
    return Job(stack, "jobs.ledger", args)


def test_ledger_applies_each_movement_exactly_once_in_partition_order(
    stack: RunningStack,
) -> None:
    topics = Topics.fresh("stock-levels")
    again = f"stock-levels-again-{topics.run}"
    kafka_io.create_topics(
        stack.bootstrap_servers, {topics.orders: 2, topics.output: 2, again: 2, topics.dead: 1}
    )
    produce(stack, orders(ORDERS), {"orders": topics.orders})
    inputs = read_inputs(stack, topics.orders)
    expected = oracles.ledger(inputs)
    total = sum(expected.output.values())

    first = _ledger_run(stack, topics, f"ledger-{topics.run}", topics.output)
    try:
        records = read_output(stack, topics.output, total, read_committed=True)
    finally:
        first.cancel()
    assert canonical_values(records) == expected.output
    # Per SKU, the levels come in the order of the SKU's partition: the running sums.
    for r in records:
        assert r.key == json.loads(r.value)["sku"].encode()
    assert _levels_by_sku(records) == oracles.ledger_by_sku(inputs)
    dead = read_output(stack, topics.dead, expected.counts["dead_lettered"])
    assert dead_letter_origins(dead) == expected.dead
    assert expected.counts["filtered"] == round(ORDERS.duplicate * ORDERS.events)

    # Determinism: the same input from the earliest offsets gives the same output.
    second = _ledger_run(stack, topics, f"ledger-again-{topics.run}", again)
    try:
        replay = read_output(stack, again, total, read_committed=True)
    finally:
        second.cancel()
    assert canonical_values(replay) == canonical_values(records)


@pytest.mark.parametrize(
    "mode",
    ["process", "thread", pytest.param("thread", id="thread-again-on-the-same-taskmanagers")],
)
def test_the_ledger_gives_the_oracles_output_in_either_python_execution_mode(
    stack: RunningStack, mode: str
) -> None:
    """The keyed function's state calls go over Beam's state channel (process) or straight to
    the JVM's state backend (thread, PEMJA): the same levels, in the same order, either way. The
    second THREAD job on the same TaskManagers once failed (PEMJA's native library loaded by
    each job's classloader: `NoSuchFieldException: loadedLibraryNames` on Java 17)."""
    topics = Topics.fresh("stock-levels")
    kafka_io.create_topics(
        stack.bootstrap_servers, {topics.orders: 2, topics.output: 2, topics.dead: 1}
    )
    produce(stack, orders(ORDERS), {"orders": topics.orders})
    inputs = read_inputs(stack, topics.orders)
    expected = oracles.ledger(inputs)
    group = f"ledger-{mode}-{topics.run}"
    embedded_before = _embedded_python_starts(stack)
    job = _ledger_run(
        stack, topics, group, topics.output, "--python-execution-mode", mode
    )  # fmt: skip
    try:
        job.wait_running()
        records = read_output(
            stack, topics.output, sum(expected.output.values()), read_committed=True
        )
    finally:
        job.cancel()
    assert canonical_values(records) == expected.output
    assert _levels_by_sku(records) == oracles.ledger_by_sku(inputs)
    # Flink logs each embedded (PEMJA) interpreter it starts: only THREAD mode starts one.
    started = _embedded_python_starts(stack) - embedded_before
    assert (started > 0) == (mode == "thread"), f"{started} embedded interpreters in {mode} mode"


def _levels_by_sku(records: list[Any]) -> dict[str, list[dict[str, object]]]:
    """The output values per SKU, in the order of their partition."""
    by_sku: dict[str, list[dict[str, object]]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        value = json.loads(r.value)
        by_sku.setdefault(value["sku"], []).append(value)
    return by_sku


def _embedded_python_starts(stack: RunningStack) -> int:
    logs = (stack.settings.state_dir / "logs").glob("taskmanager-*/*taskexecutor*.log")
    return sum(
        log.read_text(errors="replace").count("EmbeddedPythonEnvironmentManager") for log in logs
    )


def test_bounded_runs_without_late_events_are_deterministic_and_match_the_oracle(
    stack: RunningStack,
) -> None:
    config = GeneratorConfig(seed=23, events=2_000, users=50, ads=5, mean_gap_ms=200, late=0.0)
    topics = Topics.fresh("attributed")
    outs = [f"attr-a-{topics.run}", f"attr-b-{topics.run}", f"sess-a-{topics.run}"]
    kafka_io.create_topics(
        stack.bootstrap_servers,
        {topics.views: 2, topics.clicks: 2, topics.late: 1, topics.dead: 1}
        | dict.fromkeys(outs, 2),
    )
    produce(stack, clickstream(config), {"views": topics.views, "clicks": topics.clicks})
    views, clicks = read_inputs(stack, topics.views), read_inputs(stack, topics.clicks)
    inputs = ["--views-topic", topics.views, "--clicks-topic", topics.clicks, "--bounded"]
    results: dict[str, Counter[str]] = {}
    for out in outs:
        module = "jobs.attribution" if out.startswith("attr") else "jobs.sessions"
        job = Job(
            stack,
            module,
            [*topics.common_args(stack), *inputs, "--output-topic", out, "--group-id", f"g-{out}"],
        )
        try:
            job.wait_finished()
        finally:
            job.cancel()
        results[out] = canonical_values(kafka_io.read_all(stack.bootstrap_servers, out))
    expected_attr = oracles.attribution(views, clicks).output
    expected_sess = oracles.sessions(views, clicks, gap_ms=GAP_MS).output
    assert results[outs[0]] == expected_attr
    assert results[outs[1]] == results[outs[0]]
    assert results[outs[2]] == expected_sess
