"""deploy.datagen.generator: determinism, kind counts, the data contract and the event-time
guarantees.

The contract checks here are written independently of the generator, as a consumer of the
topics would write them, so a generator bug cannot hide behind a shared helper.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import math
import pkgutil
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy import datagen
from deploy.datagen.clickstream import HUMAN_AGENTS
from deploy.datagen.generator import (
    KINDS,
    GeneratorConfig,
    Message,
    clickstream,
    orders,
    summary,
)

TOKENS = ("bot", "crawler", "spider", "headless")
_CLICK_STRINGS = ("event_id", "user_id", "ad_id", "campaign_id", "page", "user_agent")
STRING_FIELDS: dict[str, tuple[str, ...]] = {
    "views": _CLICK_STRINGS,
    "clicks": _CLICK_STRINGS,
    "orders": ("movement_id", "sku", "warehouse"),
}
INT_FIELDS = {"views": ("ts",), "clicks": ("ts",), "orders": ("delta", "ts")}
KEY_FIELD = {"views": "user_id", "clicks": "user_id", "orders": "sku"}
MAX_STRING = 65_536
FORMATS = {
    "event_id": r"[vc]-\d{8}-[0-9a-f]{8}",
    "movement_id": r"m-\d{8}-[0-9a-f]{8}",
    "user_id": r"u\d{4}",
    "ad_id": r"ad\d{2}",
    "campaign_id": r"c\d+",
    "sku": r"sku-\d{4}",
    "warehouse": r"wh\d+",
}
CLICK_TOPICS = {"views", "clicks"}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(topic: str, value: bytes) -> dict[str, Any] | None:
    """The event if ``value`` is a valid ``topic`` event per the contract, else None."""
    try:
        # Strict UTF-8, strict JSON: NaN / Infinity are Python extensions, not JSON.
        doc = json.loads(value.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    for field in STRING_FIELDS[topic]:
        text = doc.get(field)
        if not isinstance(text, str) or len(text) > MAX_STRING:
            return None
    for field in INT_FIELDS[topic]:
        # bool is an int subclass in Python but not a JSON number.
        if type(doc.get(field)) is not int:
            return None
    return doc


def valid(topic: str, value: bytes) -> bool:
    return parse(topic, value) is not None


def is_bot(user_agent: str) -> bool:
    lowered = user_agent.lower()
    return any(token in lowered for token in TOKENS)


def good(messages: list[Message]) -> Iterator[tuple[Message, dict[str, Any]]]:
    for message in messages:
        if message.kind != "malformed":
            doc = parse(message.topic, message.value)
            assert doc is not None, message
            yield message, doc


@pytest.fixture(scope="module")
def clicks10k() -> list[Message]:
    return clickstream(GeneratorConfig())


@pytest.fixture(scope="module")
def orders10k() -> list[Message]:
    return orders(GeneratorConfig())


# Determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [clickstream, orders])
def test_same_config_gives_identical_messages(profile: Any) -> None:
    config = GeneratorConfig(seed=7, events=3_000)
    first = profile(config)
    # Global random state must not leak in.
    random.seed(12345)
    assert profile(config) == first
    assert profile(GeneratorConfig(seed=7, events=3_000)) == first


@pytest.mark.parametrize("profile", [clickstream, orders])
def test_different_seed_gives_different_messages(profile: Any) -> None:
    assert profile(GeneratorConfig(seed=1, events=500)) != profile(
        GeneratorConfig(seed=2, events=500)
    )


# Every module the generator is made of: all of deploy.datagen but the producer.
GENERATOR_MODULES = sorted(m.name for m in pkgutil.iter_modules(datagen.__path__))
GENERATOR_MODULES.remove("loadgen")


def test_the_no_io_check_covers_every_part_of_the_generator() -> None:
    assert {"generator", "contract", "config", "engine", "malformed"} <= set(GENERATOR_MODULES)


@pytest.mark.parametrize("name", GENERATOR_MODULES)
def test_generator_does_no_io_and_reads_no_clock(name: str) -> None:
    tree = ast.parse(inspect.getsource(importlib.import_module(f"deploy.datagen.{name}")))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    forbidden = {"time", "datetime", "uuid", "os", "socket", "io", "pathlib", "confluent_kafka"}
    assert not imported & forbidden


# Counts --------------------------------------------------------------------------------


@pytest.mark.parametrize("events", [0, 1, 2, 17, 1_000, 4_321])
@pytest.mark.parametrize("profile", [clickstream, orders])
def test_length_is_events(profile: Any, events: int) -> None:
    assert len(profile(GeneratorConfig(events=events))) == events


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kind_counts_match_the_fractions(seed: int) -> None:
    config = GeneratorConfig(seed=seed)
    n = config.events
    for messages, bots in ((clickstream(config), round(config.bot * n)), (orders(config), 0)):
        counts = Counter(message.kind for message in messages)
        expected = {
            "out_of_order": round(config.out_of_order * n),
            "late": round(config.late * n),
            "duplicate": round(config.duplicate * n),
            "malformed": round(config.malformed * n),
            "bot": bots,
        }
        expected["normal"] = n - sum(expected.values())
        assert {kind: counts[kind] for kind in KINDS} == expected


def test_summary_counts_topics_and_kinds(clicks10k: list[Message]) -> None:
    result = summary(clicks10k)
    topics = Counter(message.topic for message in clicks10k)
    kinds = Counter(message.kind for message in clicks10k)
    assert result["total"] == len(clicks10k) == 10_000
    assert result["views"] == topics["views"] > 0
    assert result["clicks"] == topics["clicks"] > 0
    assert result["views"] + result["clicks"] == 10_000
    for kind in KINDS:
        assert result[f"kind.{kind}"] == kinds[kind]
    assert summary([])["kind.late"] == 0
    assert summary(iter(clicks10k)) == result


def test_topics_per_profile(clicks10k: list[Message], orders10k: list[Message]) -> None:
    assert {message.topic for message in clicks10k} == CLICK_TOPICS
    assert {message.topic for message in orders10k} == {"orders"}
    assert not any(message.kind == "bot" for message in orders10k)


# The data contract ---------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["clicks10k", "orders10k"])
def test_good_messages_follow_the_contract(fixture: str, request: pytest.FixtureRequest) -> None:
    messages: list[Message] = request.getfixturevalue(fixture)
    seen = 0
    for message, doc in good(messages):
        seen += 1
        assert message.key == doc[KEY_FIELD[message.topic]].encode()
        for field, pattern in FORMATS.items():
            if field in doc:
                assert re.fullmatch(pattern, doc[field]), (field, doc[field])
        if message.topic == "clicks":
            assert doc["event_id"].startswith("c-")
        elif message.topic == "views":
            assert doc["event_id"].startswith("v-")
    assert seen == sum(1 for message in messages if message.kind != "malformed")


@pytest.mark.parametrize("fixture", ["clicks10k", "orders10k"])
def test_good_messages_are_compact_json(fixture: str, request: pytest.FixtureRequest) -> None:
    # Most events are formatted without json.dumps for speed: they must still be byte for
    # byte what json.dumps would write, or escaping went wrong somewhere.
    messages: list[Message] = request.getfixturevalue(fixture)
    for message, doc in good(messages):
        encoded = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
        assert message.value == encoded


def _depth(value: object) -> int:
    # Iterative: recursion would hit the interpreter's limit on exactly these messages.
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
        deepest = max(deepest, depth)
    return deepest


def classify(topic: str, value: bytes) -> str:
    """How a broken message is broken."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return "bad_utf8"
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        # NaN is the one non-JSON token that only breaks a field's type.
        return "wrong_type" if "NaN" in text else "not_json"
    if _depth(doc) >= 200:
        return "deep"
    if not isinstance(doc, dict):
        return "not_object"
    required = STRING_FIELDS[topic] + INT_FIELDS[topic]
    if any(field not in doc for field in required):
        return "missing_field"
    if any(isinstance(doc[f], str) and len(doc[f]) >= 100_000 for f in STRING_FIELDS[topic]):
        return "huge_field"
    return "wrong_type"


WAYS = {"bad_utf8", "not_json", "deep", "not_object", "missing_field", "huge_field", "wrong_type"}


@pytest.mark.parametrize("profile", [clickstream, orders])
def test_malformed_messages_break_the_contract_in_every_way(profile: Any) -> None:
    messages = profile(GeneratorConfig(seed=3, events=4_000, malformed=0.3))
    broken = [message for message in messages if message.kind == "malformed"]
    assert len(broken) == 1_200
    topics = {message.topic for message in messages}
    ways: Counter[str] = Counter()
    for message in broken:
        assert not valid(message.topic, message.value), message.value[:200]
        assert message.topic in topics
        if message.key is not None:
            assert re.fullmatch(r"u\d{4}|sku-\d{4}", message.key.decode())
        ways[classify(message.topic, message.value)] += 1
    assert set(ways) == WAYS
    assert any(message.key is None for message in broken)
    assert any(message.key is not None for message in broken)


def test_malformed_wrong_types_include_the_classic_ones() -> None:
    def wrong_types(messages: list[Message]) -> set[tuple[str, str]]:
        found = set()
        for message in messages:
            if message.kind != "malformed":
                continue
            try:
                doc = json.loads(message.value)
            except ValueError:
                continue
            if isinstance(doc, dict):
                for field in ("ts", "delta", "user_id"):
                    if field in doc:
                        found.add((field, type(doc[field]).__name__))
        return found

    config = GeneratorConfig(seed=5, events=5_000, malformed=0.4)
    assert {("ts", "str"), ("user_id", "int")} <= wrong_types(clickstream(config))
    assert {("delta", "float"), ("delta", "str"), ("ts", "str")} <= wrong_types(orders(config))


def test_broken_bytes_are_broken_as_documented() -> None:
    values = [m.value for m in clickstream(GeneratorConfig(seed=9, events=5_000, malformed=0.5))]
    assert any(len(value) >= 100_000 for value in values)
    assert any(value.startswith(b"\xff\xfe") for value in values)
    assert any(value.startswith(b"[" * 200) for value in values)
    assert b"[1,2]" in values


@pytest.mark.parametrize("profile", [clickstream, orders])
def test_ids_are_unique_except_for_duplicates(profile: Any) -> None:
    messages = profile(GeneratorConfig(seed=4, events=5_000))
    id_field = "movement_id" if profile is orders else "event_id"
    ids = [doc[id_field] for message, doc in good(messages) if message.kind != "duplicate"]
    assert len(ids) == len(set(ids))


# Event time ----------------------------------------------------------------------------


def check_event_time(config: GeneratorConfig, messages: list[Message]) -> None:
    """The guarantees a job with a 5 s out-of-orderness bound relies on."""
    high: int | None = None
    for message, doc in good(messages):
        ts = doc["ts"]
        if high is not None:
            if message.kind in ("normal", "bot"):
                assert ts >= high
            elif message.kind == "out_of_order":
                assert high - ts <= config.max_out_of_order_ms
            elif message.kind == "late":
                assert high - ts >= config.late_by_ms / 2
        high = ts if high is None else max(high, ts)


@pytest.mark.parametrize("fixture", ["clicks10k", "orders10k"])
def test_event_time_guarantees(fixture: str, request: pytest.FixtureRequest) -> None:
    messages: list[Message] = request.getfixturevalue(fixture)
    config = GeneratorConfig()
    check_event_time(config, messages)
    high = 0
    behind, late_by, dup_lag = [], [], []
    for message, doc in good(messages):
        if message.kind == "out_of_order":
            behind.append(high - doc["ts"])
        elif message.kind == "late":
            late_by.append(high - doc["ts"])
        elif message.kind == "duplicate":
            dup_lag.append(high - doc["ts"])
        high = max(high, doc["ts"])
    # Out-of-order events really are out of order, and all within the jobs' 5 s bound.
    assert sum(b > 0 for b in behind) > 0.9 * len(behind)
    assert max(behind) < 5_000
    # Late events are behind the bound, the 1 min windows and the 30 min sessions.
    assert min(late_by) > 30 * 60_000 + 5_000
    # Duplicates are still on time, so only deduplication (not lateness) can drop them.
    assert max(dup_lag) <= config.max_out_of_order_ms


def test_event_time_starts_at_start_ts_and_advances_at_the_mean_gap() -> None:
    config = GeneratorConfig(seed=2, events=20_000, start_ts=1_000_000_000_000)
    stamps = [doc["ts"] for m, doc in good(orders(config)) if m.kind == "normal"]
    assert config.start_ts <= stamps[0] < config.start_ts + 1_000
    mean_gap = (stamps[-1] - config.start_ts) / config.events
    assert 0.8 * config.mean_gap_ms < mean_gap < 1.2 * config.mean_gap_ms


@pytest.mark.parametrize("fixture", ["clicks10k", "orders10k"])
def test_duplicates_are_byte_copies_of_earlier_messages(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    messages: list[Message] = request.getfixturevalue(fixture)
    earlier: set[tuple[str, bytes | None, bytes]] = set()
    duplicates = 0
    for message in messages:
        copy = (message.topic, message.key, message.value)
        if message.kind == "duplicate":
            duplicates += 1
            assert copy in earlier
        elif message.kind in ("normal", "out_of_order"):
            earlier.add(copy)
    assert duplicates == 100


# Clickstream specifics -----------------------------------------------------------------


def test_bots_are_bots_and_humans_are_not(clicks10k: list[Message]) -> None:
    bot_agents, bot_users, human_users = set(), set(), set()
    bot_topics: Counter[str] = Counter()
    for message, doc in good(clicks10k):
        if message.kind == "bot":
            assert is_bot(doc["user_agent"])
            bot_agents.add(doc["user_agent"])
            bot_users.add(doc["user_id"])
            bot_topics[message.topic] += 1
        elif message.kind != "duplicate":
            assert not is_bot(doc["user_agent"]), doc["user_agent"]
            human_users.add(doc["user_id"])
    assert not bot_users & human_users
    assert bot_topics["clicks"] > 0  # bots click too
    # Tokens come in mixed case, so a case-sensitive check would miss some.
    assert any(not any(t in agent for t in TOKENS) for agent in bot_agents)
    assert not any(is_bot(agent) for agent in HUMAN_AGENTS)


def test_bot_fraction_counts_all_bot_traffic() -> None:
    messages = clickstream(GeneratorConfig(seed=8, events=5_000, bot=0.2))
    agents = [doc["user_agent"] for m, doc in good(messages) if m.kind != "duplicate"]
    assert sum(map(is_bot, agents)) == 1_000


def test_an_ad_always_belongs_to_the_same_campaign(clicks10k: list[Message]) -> None:
    campaigns: defaultdict[str, set[str]] = defaultdict(set)
    for _, doc in good(clicks10k):
        campaigns[doc["ad_id"]].add(doc["campaign_id"])
    assert len(campaigns) == GeneratorConfig().ads
    assert all(len(found) == 1 for found in campaigns.values())


def test_clicks_follow_views(clicks10k: list[Message]) -> None:
    views: defaultdict[tuple[str, str, str], list[int]] = defaultdict(list)
    human_views, paired, same_window, straddling = 0, 0, 0, 0
    clicks: list[dict[str, Any]] = []
    for message, doc in good(clicks10k):
        if message.kind not in ("normal", "out_of_order"):
            continue
        key = (doc["user_id"], doc["ad_id"], doc["campaign_id"])
        if message.topic == "views":
            human_views += 1
            views[key].append(doc["ts"])
        else:
            clicks.append(doc)
    assert 0.30 < len(clicks) / human_views < 0.40  # click_ratio 0.35
    for click in clicks:
        key = (click["user_id"], click["ad_id"], click["campaign_id"])
        starts = [ts for ts in views[key] if 0 <= click["ts"] - ts <= 20_000]
        if starts:
            paired += 1
            if any(ts // 60_000 == click["ts"] // 60_000 for ts in starts):
                same_window += 1
            else:
                straddling += 1
    assert paired > 0.98 * len(clicks)
    assert same_window > 0.5 * paired
    assert straddling > 0


def test_pages_vary_in_ways_normalisation_must_handle(clicks10k: list[Message]) -> None:
    features: Counter[str] = Counter()
    for _, doc in good(clicks10k):
        page = doc["page"]
        parts = urlsplit(page)
        assert parts.scheme.lower() == "https"
        assert parts.hostname == "shop.example.com"
        assert parts.port is None
        assert "@" not in parts.netloc
        assert parts.path.startswith("/")
        assert parts.path == parts.path.lower()
        # urlsplit lower-cases the scheme, so look at the raw text.
        features["upper_scheme"] += not page.startswith("https:")
        features["mixed_host"] += parts.netloc != "shop.example.com"
        features["trailing_slash"] += parts.path != "/" and parts.path.endswith("/")
        features["query"] += "?" in page
        features["fragment"] += "#" in page
        features["product"] += parts.path.startswith("/products/")
        features["plain"] += page == f"https://shop.example.com{parts.path}"
    assert all(features[name] > 100 for name in features), features


def test_extra_fields_are_added_to_some_good_events(clicks10k: list[Message]) -> None:
    required = set(STRING_FIELDS["views"] + INT_FIELDS["views"])
    new_events = [(m, doc) for m, doc in good(clicks10k) if m.kind != "duplicate"]
    extras = [set(doc) - required for _, doc in new_events if set(doc) != required]
    assert 0.035 < len(extras) / len(new_events) < 0.065  # extra_fields 0.05
    assert all(1 <= len(names) <= 2 for names in extras)
    assert {m.kind for m, doc in new_events if set(doc) != required} >= {"normal", "bot"}
    none = clickstream(GeneratorConfig(seed=1, events=2_000, extra_fields=0.0))
    assert all(set(doc) == required for _, doc in good(none))


def test_key_skew_makes_hot_keys() -> None:
    def top_share(skew: float) -> float:
        messages = clickstream(GeneratorConfig(seed=1, events=10_000, key_skew=skew, bot=0))
        users = Counter(m.key for m in messages if m.kind == "normal")
        return users.most_common(1)[0][1] / sum(users.values())

    assert top_share(0.0) < 0.01  # 500 users: 0.2 % each on average
    assert top_share(1.2) > 0.1


# Orders specifics ----------------------------------------------------------------------


def test_order_deltas_are_small_sales_and_some_restocks(orders10k: list[Message]) -> None:
    deltas = [doc["delta"] for m, doc in good(orders10k) if m.kind != "duplicate"]
    sales = [d for d in deltas if d < 0]
    restocks = [d for d in deltas if d > 0]
    assert len(sales) + len(restocks) == len(deltas)
    assert all(-5 <= d <= -1 for d in sales)
    assert all(10 <= d <= 100 for d in restocks)
    assert 0.05 < len(restocks) / len(deltas) < 0.15
    warehouses = {doc["warehouse"] for _, doc in good(orders10k)}
    assert warehouses == {f"wh{i}" for i in range(GeneratorConfig().warehouses)}


# Any config ----------------------------------------------------------------------------

_EXCLUSIVE = ("out_of_order", "late", "duplicate", "malformed", "bot")


@st.composite
def configs(draw: st.DrawFn) -> GeneratorConfig:
    # Six weights, the last for normal events, so the five exclusive shares sum to <= 1 and
    # sometimes to exactly 1 (no normal events at all).
    weights = draw(st.lists(st.floats(0, 1), min_size=6, max_size=6))
    total = sum(weights)
    shares = [w / total for w in weights] if total else [0.0] * 6
    return GeneratorConfig(
        seed=draw(st.integers(-(2**64), 2**64)),
        events=draw(st.integers(0, 300)),
        start_ts=draw(st.integers(0, 2_000_000_000_000)),
        mean_gap_ms=draw(st.integers(0, 10_000)),
        users=draw(st.integers(1, 50)),
        ads=draw(st.integers(1, 12)),
        campaigns=draw(st.integers(1, 5)),
        skus=draw(st.integers(1, 30)),
        warehouses=draw(st.integers(1, 4)),
        key_skew=draw(st.floats(0, 3)),
        click_ratio=draw(st.floats(0, 1)),
        max_out_of_order_ms=draw(st.integers(1, 4_999)),
        late_by_ms=draw(st.integers(10_001, 10**8)),
        extra_fields=draw(st.floats(0, 1)),
        **dict(zip(_EXCLUSIVE, shares, strict=False)),
    )


@settings(max_examples=150, deadline=None)
@given(configs())
def test_any_config_generates_valid_streams(config: GeneratorConfig) -> None:
    for profile in (clickstream, orders):
        messages = profile(config)
        assert len(messages) == config.events
        assert profile(config) == messages
        for message in messages:
            assert message.kind in KINDS
            assert valid(message.topic, message.value) is (message.kind != "malformed")
        check_event_time(config, messages)
    assert summary(messages)["total"] == config.events


# Config validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"events": -1}, "events"),
        ({"events": 1.5}, "events"),
        ({"start_ts": -1}, "start_ts"),
        ({"mean_gap_ms": -5}, "mean_gap_ms"),
        ({"users": 0}, "users"),
        ({"ads": 0}, "ads"),
        ({"campaigns": 0}, "campaigns"),
        ({"skus": 0}, "skus"),
        ({"warehouses": 0}, "warehouses"),
        ({"key_skew": -0.5}, "key_skew"),
        ({"key_skew": math.inf}, "key_skew"),
        ({"click_ratio": 1.01}, "click_ratio"),
        ({"click_ratio": math.nan}, "click_ratio"),
        ({"out_of_order": -0.1}, "out_of_order"),
        ({"late": 2.0}, "late"),
        ({"duplicate": -1.0}, "duplicate"),
        ({"malformed": 1.5}, "malformed"),
        ({"bot": 1.1}, "bot"),
        ({"extra_fields": -0.01}, "extra_fields"),
        ({"out_of_order": 0.5, "bot": 0.5, "late": 0.1}, "out_of_order"),
        ({"max_out_of_order_ms": 5_000}, "max_out_of_order_ms"),
        ({"max_out_of_order_ms": 0}, "max_out_of_order_ms"),
        ({"late_by_ms": 5_000}, "late_by_ms"),
    ],
)
def test_invalid_config_names_the_field(changes: dict[str, Any], field: str) -> None:
    # \b keeps "late" from matching "late_by_ms".
    with pytest.raises(ValueError, match=rf"^{re.escape(field)}\b"):
        GeneratorConfig(**changes)


def test_exclusive_fractions_summing_over_one_name_them_all() -> None:
    with pytest.raises(ValueError, match="out_of_order \\+ late \\+ duplicate") as info:
        GeneratorConfig(out_of_order=0.4, late=0.3, duplicate=0.2, malformed=0.1, bot=0.1)
    assert "bot" in str(info.value)


@pytest.mark.parametrize(
    "edge",
    [
        {"max_out_of_order_ms": 4_999, "click_ratio": 1.0, "extra_fields": 1.0, "key_skew": 0},
        {"out_of_order": 0.2, "late": 0.2, "duplicate": 0.2, "malformed": 0.2, "bot": 0.2},
        {"events": 0, "mean_gap_ms": 0, "users": 1, "ads": 1, "campaigns": 1, "skus": 1},
        {"events": 300, "mean_gap_ms": 0, "users": 1, "ads": 1, "campaigns": 1, "warehouses": 1},
    ],
    ids=["upper-bounds", "fractions-sum-to-one", "empty", "one-of-each"],
)
def test_edge_configs_are_accepted_and_generate_valid_streams(edge: dict[str, Any]) -> None:
    config = GeneratorConfig(**{"events": 2_000, **edge})
    assert {name: getattr(config, name) for name in edge} == edge  # kept as given
    for profile in (clickstream, orders):
        messages = profile(config)
        assert len(messages) == config.events
        for message in messages:
            assert valid(message.topic, message.value) is (message.kind != "malformed")
        check_event_time(config, messages)
        assert summary(messages)["total"] == config.events
