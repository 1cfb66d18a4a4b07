"""Bad events, fuzzed: hypothesis writes malformed messages into every input topic (views and
clicks for attribution and sessions, orders for the ledger) between valid generated events —
random bytes and text, JSON values that are no object, wrong types, huge fields, missing keys,
invalid UTF-8, JSON nested far too deep, trailing content, NaN, whole numbers written as floats
(`2.68e+16`, `1.5e1`) — and, as a control, valid events that only look odd (unknown fields that
are huge, nested or of any type; unusual spacing).

With all three jobs running on those topics, the test checks that:
- every malformed message is in `dead-letter` once, with its topic, partition and offset, the
  reason, and its payload as sent (base64 when not UTF-8); nothing valid is there;
- the jobs keep running: still RUNNING afterwards, never restarted;
- every message is accounted for: in = contributed + late + dead-lettered + filtered, and the
  outputs equal the oracle's (so odd-but-valid events were used, not dropped). The ledger's four
  counts are all measured from the job; for attribution and sessions, late, dead-lettered and the
  output are measured, and the bot metric `eddyline_bots_filtered` equals the oracle's filtered
  count (it once also counted malformed and late bots: the planner runs Python UDFs on every row
  ahead of the filter, so the rule is now told which rows are on the filtered route).

Which messages are malformed is decided by tests/oracles.py (written from the contract), not by
the fuzzer's intent; the fuzzer's own labels only say what kind of damage was done.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from deploy import kafka_io
from deploy.datagen.generator import GeneratorConfig, Message, clickstream, orders
from tests import figures, oracles
from tests.integration.jobrun import (
    Job,
    Topics,
    canonical_values,
    dead_letter_origins,
    read_inputs,
    read_output,
)
from tests.integration.stacks import RunningStack

# One run of three jobs feeds every test here; on a busy 2-core machine it outlasts the default.
pytestmark = pytest.mark.timeout(3600)

GAP_MS = 1_800_000
OUT_OF_ORDERNESS_MS = 5_000
PARTITIONS = 2
STRINGS = {
    "clickstream": ("event_id", "user_id", "ad_id", "campaign_id", "page", "user_agent"),
    "orders": ("movement_id", "sku", "warehouse"),
}
INTS = {"clickstream": ("ts",), "orders": ("delta", "ts")}


@dataclass(frozen=True)
class Profile:
    name: str
    valid: int  # generated events per profile (clickstream, orders)
    fuzzed: int  # fuzzed messages per input topic
    jobs: tuple[str, ...]


# Attribution and sessions read views and clicks through the same SQL (jobs/clickstream.py):
# the short profile fuzzes every topic through attribution and the ledger, the soak adds sessions.
SHORT = Profile("short", 1_500, 150, ("attribution", "ledger"))
SOAK = Profile("soak", 20_000, 2_500, ("attribution", "sessions", "ledger"))


# -- what the fuzzer writes ------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
BAD_UTF8 = st.sampled_from(
    [b"\xff", b"\xfe\xff", b"caf\xe9", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\x80", b"\xf8\x88"]
) | st.binary(min_size=1, max_size=12).filter(lambda b: not _decodes(b))


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _deep(depth: int, shape: int) -> bytes:
    if shape == 0:
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@st.composite
def damage(draw: st.DrawFn, role: str) -> tuple[str, Any]:
    """One way to break an event of `role` (applied to a real event later)."""
    strings, ints = STRINGS[role], INTS[role]
    fields = strings + ints
    kind = draw(
        st.sampled_from(
            [
                "random bytes", "random text", "not an object", "wrong type", "missing key",
                "huge field", "invalid UTF-8", "nested too deep", "trailing content",
                "not a number", "too many digits", "integer as float",
            ]
        )
    )  # fmt: skip
    if kind == "random bytes":
        return kind, draw(st.binary(max_size=300))
    if kind == "random text":
        return kind, draw(st.text(max_size=300))
    if kind == "not an object":
        return kind, draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))
    if kind == "wrong type":
        field = draw(st.sampled_from(fields))
        if field in ints:
            wrong = draw(
                st.text(max_size=10)
                | st.booleans()
                | st.none()
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.lists(st.integers(), max_size=2)
                | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
            )
        else:
            wrong = draw(
                st.integers()
                | st.booleans()
                | st.none()
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.lists(st.text(max_size=5), max_size=2)
                | st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)
            )
        return kind, (field, wrong)
    if kind == "missing key":
        return kind, draw(st.sets(st.sampled_from(fields), min_size=1))
    if kind == "huge field":
        return kind, (draw(st.sampled_from(strings)), draw(st.integers(65_537, 200_000)))
    if kind == "invalid UTF-8":
        return kind, (draw(st.sampled_from(strings)), draw(BAD_UTF8))
    if kind == "nested too deep":
        where = draw(st.sampled_from(["whole", "field", "extra"]))
        return kind, (where, draw(st.integers(1_200, 20_000)), draw(st.integers(0, 1)))
    if kind == "trailing content":
        return kind, draw(st.sampled_from([b"}", b"]", b" x", b"{}", b",", b"\x00", b"null"]))
    if kind == "not a number":
        return kind, (draw(st.sampled_from(ints)), draw(st.sampled_from(["NaN", "Infinity"])))
    if kind == "integer as float":
        # Whole numbers in float notation; JSON_QUERY hands some back as plain integers.
        token = st.one_of(
            st.integers(10**16, 10**18).map(lambda v: repr(float(v))),
            st.integers(1, 10**6).map(lambda v: f"{v}.0"),
            st.sampled_from(["1.5e1", "1E2", "-4.0057670713473864E+16", "2.0e0"]),
        )
        return kind, (draw(st.sampled_from(ints)), draw(token))
    field = draw(st.sampled_from(ints))
    return kind, (field, draw(st.integers(10**18, 10**40) | st.integers(-(10**40), -(10**18))))


@st.composite
def oddity(draw: st.DrawFn) -> tuple[str, Any]:
    """Valid after all: unknown fields of any size and shape, unusual spacing."""
    kind = draw(st.sampled_from(["huge extra field", "nested extra field", "extra fields",
                                 "spacing"]))  # fmt: skip
    if kind == "huge extra field":
        return kind, draw(st.integers(70_000, 200_000))
    if kind == "nested extra field":
        return kind, draw(st.integers(1, 60))
    if kind == "extra fields":
        names = st.text(min_size=1, max_size=10).filter(
            lambda n: n not in STRINGS["clickstream"] + STRINGS["orders"] + ("ts", "delta")
        )
        return kind, draw(st.dictionaries(names, JSON_VALUES, min_size=1, max_size=4))
    return kind, draw(st.sampled_from([" ", "\n", "\t", "\r\n  "]))


def apply(kind: str, how: Any, record: dict[str, Any]) -> bytes:
    r = dict(record)
    if kind == "random bytes":
        return bytes(how)
    if kind == "random text":
        return str(how).encode("utf-8", "surrogatepass")
    if kind == "not an object":
        return _dumps(how)
    if kind == "wrong type":
        field, wrong = how
        r[field] = wrong
        return _dumps(r)
    if kind == "missing key":
        for field in how:
            r.pop(field, None)
        return _dumps(r)
    if kind == "huge field":
        field, size = how
        r[field] = (str(r[field]) + "x" * size)[:size]
        return _dumps(r)
    if kind == "invalid UTF-8":
        field, bad = how
        r[field] = "@@mark@@"
        return _dumps(r).replace(b"@@mark@@", bad)
    if kind == "nested too deep":
        where, depth, shape = how
        nested = _deep(depth, shape)
        if where == "whole":
            return nested
        r["ts" if where == "field" else "deep_extra"] = "@@mark@@"
        return _dumps(r).replace(b'"@@mark@@"', nested)
    if kind == "trailing content":
        return _dumps(r) + bytes(how)
    if kind in ("not a number", "integer as float"):
        field, word = how
        r[field] = "@@mark@@"
        return _dumps(r).replace(b'"@@mark@@"', word.encode())
    if kind == "too many digits":
        field, number = how
        r[field] = number
        return _dumps(r)
    # oddities (valid)
    if kind == "huge extra field":
        r["notes"] = "n" * int(how)
        return _dumps(r)
    if kind == "nested extra field":
        r["deep_extra"] = "@@mark@@"
        return _dumps(r).replace(b'"@@mark@@"', _deep(int(how), 1))
    if kind == "extra fields":
        extras = {k: v for k, v in dict(how).items() if k not in r}
        return _dumps({**r, **extras})
    if kind == "spacing":
        return json.dumps(r, ensure_ascii=False, indent=str(how)).encode()
    raise AssertionError(kind)


def fuzz(role: str, n: int, salt: int) -> list[tuple[str, Any]]:
    """`n` ways to damage (and a few to oddly decorate) events of `role`, drawn by hypothesis."""
    drawn: list[tuple[str, Any]] = []

    @seed(salt)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(damage(role), damage(role), damage(role), oddity()))
    def collect(case: tuple[str, Any]) -> None:
        drawn.append(case)

    collect()
    return drawn


def interleave(
    valid: list[Message], role: str, topics: list[str], cases: list[tuple[str, Any]]
) -> tuple[list[Message], list[tuple[str, bytes]]]:
    """Each fuzz case applied to a copy of a valid event of `topics`, sent right after it (same
    key and time, so it moves no watermark past the events around it). Returns the messages and
    (kind, value) of each fuzzed one."""
    out: list[Message] = []
    sent: list[tuple[str, bytes]] = []
    eligible = sum(1 for m in valid if m.topic in topics)
    every = max(1, eligible // max(1, len(cases)))
    queue = list(cases)
    seen = 0
    contract = "orders" if role == "orders" else "clickstream"
    for message in valid:
        out.append(message)
        if message.topic not in topics or message.kind == "fuzzed":
            continue
        seen += 1
        if queue and seen % every == 0:
            event, _ = oracles.parse(message.value, contract)
            if event is None:
                continue
            kind, how = queue.pop()
            value = apply(kind, how, event)
            out.append(Message(message.topic, message.key, value, "fuzzed"))
            sent.append((kind, value))
    return out, sent


# -- the run ---------------------------------------------------------------------------------


def _closing_events(stack: RunningStack, topics: Topics, ts: int) -> None:
    """One valid event per partition of views and clicks, past every window and session."""
    sender = kafka_io.Sender(stack.bootstrap_servers)
    for topic in (topics.views, topics.clicks):
        for partition in range(PARTITIONS):
            user = f"closing-{topic}-{partition}"
            event = {
                "event_id": f"close-{topic}-{partition}", "user_id": user, "ad_id": "ad-x",
                "campaign_id": "c-x", "page": "https://closing.example/",
                "user_agent": "Mozilla/5.0", "ts": ts,
            }  # fmt: skip
            sender.send(topic, user.encode(), json.dumps(event).encode(), partition=partition)
    sender.close()


def _send(stack: RunningStack, messages: list[Message], names: dict[str, str]) -> None:
    sender = kafka_io.Sender(stack.bootstrap_servers)
    for m in messages:
        sender.send(names[m.topic], m.key, m.value)
    sender.close()


def run(stack: RunningStack, profile: Profile) -> dict[str, Any]:
    t = Topics.fresh("fuzz")
    s = {  # the sessions job's own output, late and dead-letter topics
        "output": f"sessions-{t.run}", "late": f"late-s-{t.run}", "dead": f"dead-s-{t.run}",
    }  # fmt: skip
    kafka_io.create_topics(
        stack.bootstrap_servers,
        {t.views: PARTITIONS, t.clicks: PARTITIONS, t.orders: PARTITIONS, t.output: 2,
         t.late: 1, t.dead: 1, s["output"]: 2, s["late"]: 1, s["dead"]: 1,
         f"levels-{t.run}": 2, f"dead-o-{t.run}": 1},
    )  # fmt: skip
    clicks_valid = clickstream(
        GeneratorConfig(seed=31, events=profile.valid, users=60, ads=6, mean_gap_ms=200,
                        late=0.0, out_of_order=0.0, malformed=0.0, duplicate=0.0, bot=0.05,
                        extra_fields=0.05)
    )  # fmt: skip
    orders_valid = orders(
        GeneratorConfig(seed=32, events=profile.valid, skus=40, malformed=0.0, duplicate=0.03)
    )
    views_msgs, views_sent = interleave(
        clicks_valid, "clickstream", ["views"], fuzz("clickstream", profile.fuzzed, 1)
    )
    click_msgs, clicks_sent = interleave(
        views_msgs, "clickstream", ["clicks"], fuzz("clickstream", profile.fuzzed, 2)
    )
    order_msgs, orders_sent = interleave(
        orders_valid, "orders", ["orders"], fuzz("orders", profile.fuzzed, 3)
    )
    names = {"views": t.views, "clicks": t.clicks, "orders": t.orders}
    _send(stack, click_msgs + order_msgs, names)
    latest = max(
        int(json.loads(m.value)["ts"]) for m in clicks_valid if m.topic in ("views", "clicks")
    )
    # Windows and sessions close once the watermark passes them: a closing event at the end of
    # each partition. No partition is ever idle here (each has events to its end), so the jobs
    # run without idleness: on a busy machine a partition read later than the other would
    # otherwise be declared idle and its events would arrive late.
    closing = latest + GAP_MS + 3_600_000
    _closing_events(stack, t, closing)

    common = [
        "--bootstrap-servers", stack.bootstrap_servers, "--starting-offsets", "earliest",
        "--checkpoint-interval", "2s",
    ]  # fmt: skip
    inputs = ["--views-topic", t.views, "--clicks-topic", t.clicks, "--idle-timeout", "1h"]
    args = {
        "attribution": ("jobs.attribution", [
            *common, *inputs, "--output-topic", t.output, "--late-topic", t.late,
            "--dead-letter-topic", t.dead, "--group-id", f"fa-{t.run}"]),
        "sessions": ("jobs.sessions", [
            *common, *inputs, "--output-topic", s["output"], "--late-topic", s["late"],
            "--dead-letter-topic", s["dead"], "--group-id", f"fs-{t.run}"]),
        "ledger": ("jobs.ledger", [
            *common, "--orders-topic", t.orders, "--output-topic", f"levels-{t.run}",
            "--dead-letter-topic", f"dead-o-{t.run}", "--group-id", f"fo-{t.run}",
            "--transactional-id-prefix", f"fuzz-{t.run}"]),
    }  # fmt: skip
    jobs: dict[str, Job] = {}
    try:
        for name in profile.jobs:
            jobs[name] = Job(stack, *args[name])
        views, clicks = read_inputs(stack, t.views), read_inputs(stack, t.clicks)
        order_inputs = read_inputs(stack, t.orders)
        expected = {
            "attribution": oracles.attribution(views, clicks),
            "sessions": oracles.sessions(
                views, clicks, gap_ms=GAP_MS, final_watermark=closing - OUT_OF_ORDERNESS_MS - 1
            ),
            "ledger": oracles.ledger(order_inputs),
        }
        where = {
            "attribution": (t.output, t.late, t.dead, False),
            "sessions": (s["output"], s["late"], s["dead"], False),
            "ledger": (f"levels-{t.run}", None, f"dead-o-{t.run}", True),
        }
        got: dict[str, dict[str, Any]] = {}
        for name in profile.jobs:
            out, late, dead, committed = where[name]
            e = expected[name]
            got[name] = {
                "output": read_output(stack, out, sum(e.output.values()), read_committed=committed),
                "late": read_output(stack, late, sum(e.late.values())) if late else [],
                "dead": read_output(stack, dead, e.counts["dead_lettered"]),
            }
        for name, job in jobs.items():
            if name == "ledger":
                got[name]["applied"] = job.wait_counter(
                    "ledger_applied", expected[name].counts["contributed"]
                )
                got[name]["duplicates"] = job.wait_counter(
                    "ledger_duplicates", expected[name].counts["filtered"]
                )
            else:
                got[name]["filtered"] = job.wait_counter(
                    "eddyline_bots_filtered", expected[name].counts["filtered"]
                )
            got[name]["state"] = job.state()
            got[name]["failures"] = job.failure()
        return {
            "inputs": {"views": views, "clicks": clicks, "orders": order_inputs},
            "expected": {name: expected[name] for name in profile.jobs},
            "got": got,
            "fuzzed": {"views": views_sent, "clicks": clicks_sent, "orders": orders_sent},
        }
    finally:
        for job in jobs.values():
            job.cancel()


@pytest.fixture(scope="module", params=[SHORT, pytest.param(SOAK, marks=pytest.mark.soak)],
                ids=lambda p: p.name)  # fmt: skip
def fuzzed(stack: RunningStack, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    profile: Profile = request.param
    result = run(stack, profile)
    yield result
    kinds = {t: Counter(k for k, _ in sent) for t, sent in result["fuzzed"].items()}
    figures.record(
        "event-fuzz",
        profile=profile.name,
        messages_fuzzed=sum(len(sent) for sent in result["fuzzed"].values()),
        kinds={t: dict(k) for t, k in kinds.items()},
        counts={name: e.counts for name, e in result["expected"].items()},
        dead_letters={n: len(g["dead"]) for n, g in result["got"].items()},
        states={n: g["state"] for n, g in result["got"].items()},
    )


def _topics(job: str) -> list[str]:
    return ["orders"] if job == "ledger" else ["views", "clicks"]


def test_every_malformed_message_is_dead_lettered_once_with_its_offset_and_payload(
    fuzzed: dict[str, Any],
) -> None:
    for job, got in fuzzed["got"].items():
        expected = fuzzed["expected"][job]
        assert dead_letter_origins(got["dead"]) == expected.dead, job
        by_origin = {r.origin: r for t in _topics(job) for r in fuzzed["inputs"][t]}
        for record in got["dead"]:
            letter = json.loads(record.value)
            assert letter["error"], (job, letter)
            original = by_origin[(letter["source_topic"], letter["partition"], letter["offset"])]
            if letter.get("payload_encoding") == "base64":
                assert base64.b64decode(letter["payload"]) == original.value, job
                with pytest.raises(UnicodeDecodeError):
                    original.value.decode("utf-8")
            else:
                assert letter["payload"].encode() == original.value, job


def test_the_jobs_keep_running_through_the_fuzz(fuzzed: dict[str, Any]) -> None:
    for job, got in fuzzed["got"].items():
        assert got["state"] == "RUNNING", job
        assert got["failures"] == "", f"{job} failed (and restarted) on the way: {got['failures']}"


def test_the_bot_metric_counts_only_the_filtered_route(fuzzed: dict[str, Any]) -> None:
    for job, got in fuzzed["got"].items():
        if job != "ledger":
            assert got["filtered"] == fuzzed["expected"][job].counts["filtered"], job


def test_every_message_is_accounted_for_and_the_outputs_equal_the_oracle(
    fuzzed: dict[str, Any],
) -> None:
    for job, got in fuzzed["got"].items():
        counts = fuzzed["expected"][job].counts
        assert counts["in"] == sum(len(fuzzed["inputs"][t]) for t in _topics(job)), job
        assert len(got["dead"]) == counts["dead_lettered"], job
        assert len(got["late"]) == counts["late"], job
        if job == "ledger":
            # Every count measured from the job itself.
            assert got["applied"] == counts["contributed"] == len(got["output"])
            assert got["duplicates"] == counts["filtered"]
            assert counts["in"] == got["applied"] + len(got["dead"]) + got["duplicates"]
        assert counts["in"] == (
            counts["contributed"] + counts["late"] + counts["dead_lettered"] + counts["filtered"]
        )
        assert canonical_values(got["output"]) == fuzzed["expected"][job].output, job


DAMAGE = {"random bytes", "random text", "not an object", "wrong type", "missing key",
          "huge field", "invalid UTF-8", "nested too deep", "trailing content", "not a number",
          "too many digits", "integer as float"}  # fmt: skip


def test_the_fuzz_reached_every_topic_with_every_kind_of_damage(fuzzed: dict[str, Any]) -> None:
    """The fuzzer did what it says: damage is malformed by the contract, oddities are valid."""
    for topic, sent in fuzzed["fuzzed"].items():
        kinds = Counter(kind for kind, _ in sent)
        assert sum(kinds.values()) >= 100, (topic, kinds)
        assert set(kinds) >= DAMAGE, (topic, kinds)
        contract = "orders" if topic == "orders" else "clickstream"
        for kind, value in sent:
            event, _ = oracles.parse(value, contract)
            assert (event is None) == (kind in DAMAGE), (topic, kind, value[:200])
