"""Deterministic input events for Eddyline's streaming jobs: ad views, ad clicks, stock movements.

The generator is pure: no Kafka, no files, no clock, no uuid4. It returns the messages in the
order they should be produced and the caller produces them. The same :class:`GeneratorConfig`
always yields byte-identical output, because every random choice comes from one
``random.Random(config.seed)``.

Data contract (JSON, UTF-8, one event per message, event time ``ts`` in epoch milliseconds):

* ``views`` and ``clicks`` (key ``user_id``): event_id, user_id, ad_id, campaign_id, page,
  user_agent, ts.
* ``orders`` (key ``sku``): movement_id, sku, delta (negative = sale, positive = restock),
  warehouse, ts.

All string fields are JSON strings, ``ts`` and ``delta`` JSON integers. Unknown extra fields
may appear and must be accepted. A string field longer than :data:`MAX_STRING_CHARS` is
treated as broken (the generator's "huge field" messages are far beyond it).

Every message carries the :data:`Kind` it was generated as, so tests and demos can check what
the jobs did with each one:

* ``normal``: ``ts`` is the running event time, which never goes backwards.
* ``out_of_order``: ``ts`` is 1..max_out_of_order_ms behind the running event time, so never
  more than that behind the largest ``ts`` produced so far: the jobs' 5 s bound covers it.
* ``late``: about ``late_by_ms`` behind the largest ``ts`` produced so far (never less than
  half of it); otherwise a valid event.
* ``duplicate``: a byte copy (topic, key, value) of an earlier normal or out-of-order message
  of the same profile, picked among the recent ones so that it is not late itself.
* ``malformed``: not JSON, not an object, a field missing or of the wrong type, invalid
  UTF-8, a huge string field or deeply nested JSON.
* ``bot``: a valid clickstream event whose user agent contains a bot token.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from abc import ABC, abstractmethod
from bisect import bisect
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final, Literal, get_args

from jobs.sql import MAX_STRING_CHARS
from udfs.bots import BOT_TOKENS, is_bot

__all__ = [
    "BOT_TOKENS",
    "CLICKSTREAM_TOPICS",
    "JOB_OUT_OF_ORDERNESS_MS",
    "KINDS",
    "MAX_STRING_CHARS",
    "ORDERS_TOPIC",
    "SESSION_GAP_MS",
    "WINDOW_MS",
    "GeneratorConfig",
    "Kind",
    "Message",
    "clickstream",
    "is_bot",
    "orders",
    "summary",
]

Kind = Literal["normal", "out_of_order", "late", "duplicate", "malformed", "bot"]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)

# What the downstream jobs are configured with; the generator's guarantees are stated
# against these numbers.
JOB_OUT_OF_ORDERNESS_MS: Final = 5_000
WINDOW_MS: Final = 60_000
SESSION_GAP_MS: Final = 1_800_000


CLICKSTREAM_TOPICS: Final[tuple[str, str]] = ("views", "clicks")
ORDERS_TOPIC: Final = "orders"

_CLICK_STRINGS: Final = ("event_id", "user_id", "ad_id", "campaign_id", "page", "user_agent")
_ORDER_STRINGS: Final = ("movement_id", "sku", "warehouse")

_CLICK_DELAY_MS: Final = (500, 20_000)
# Duplicates are drawn from this many recent messages: enough to span the out-of-orderness
# bound at the default rate while keeping the per-duplicate scan cheap.
_DUPLICATE_HORIZON: Final = 256
_HUGE_CHARS: Final = 102_400


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka record to produce, with the kind it was generated as."""

    topic: str
    key: bytes | None
    value: bytes
    kind: Kind


_FRACTIONS: Final = (
    "click_ratio",
    "out_of_order",
    "late",
    "duplicate",
    "malformed",
    "bot",
    "extra_fields",
)
# Each message has exactly one kind, so these shares of `events` must fit in one.
_EXCLUSIVE: Final = ("out_of_order", "late", "duplicate", "malformed", "bot")


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. Fractions are shares of the returned messages unless noted."""

    seed: int = 0
    events: int = 10_000  # messages returned, every kind included
    start_ts: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    mean_gap_ms: int = 50  # mean event-time step per message
    users: int = 500  # human users; bots get ids of their own on top (users // 20, at least 1)
    ads: int = 40
    campaigns: int = 8
    skus: int = 200
    warehouses: int = 4
    key_skew: float = 1.2  # Zipf-like exponent for users and skus, 0 = uniform
    click_ratio: float = 0.35  # share of views that get a click 0.5-20 s later
    out_of_order: float = 0.10
    max_out_of_order_ms: int = 3_000  # < JOB_OUT_OF_ORDERNESS_MS
    late: float = 0.01
    late_by_ms: int = 3_600_000
    duplicate: float = 0.01
    malformed: float = 0.01
    bot: float = 0.05  # clickstream only
    extra_fields: float = 0.05  # share of valid new events that carry unknown fields

    def __post_init__(self) -> None:
        ints = (
            "seed",
            "events",
            "start_ts",
            "mean_gap_ms",
            "users",
            "ads",
            "campaigns",
            "skus",
            "warehouses",
            "max_out_of_order_ms",
            "late_by_ms",
        )
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        for name in ("events", "start_ts", "mean_gap_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("users", "ads", "campaigns", "skus", "warehouses"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.key_skew) and self.key_skew >= 0):
            raise ValueError(f"key_skew must be a finite number >= 0, got {self.key_skew}")
        for name in _FRACTIONS:
            value = getattr(self, name)
            # Written so that NaN fails too.
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")
        total = sum(getattr(self, name) for name in _EXCLUSIVE)
        if total > 1.0 + 1e-9:
            raise ValueError(f"{' + '.join(_EXCLUSIVE)} must be <= 1, got {total}")
        if not 1 <= self.max_out_of_order_ms < JOB_OUT_OF_ORDERNESS_MS:
            raise ValueError(
                f"max_out_of_order_ms must be in [1, {JOB_OUT_OF_ORDERNESS_MS}) so the jobs' "
                f"out-of-orderness bound covers it, got {self.max_out_of_order_ms}"
            )
        # Late events are at least half of late_by_ms behind; that must be beyond the bound,
        # or "late" events would be on time downstream.
        if self.late_by_ms <= 2 * JOB_OUT_OF_ORDERNESS_MS:
            raise ValueError(
                f"late_by_ms must be > {2 * JOB_OUT_OF_ORDERNESS_MS}, got {self.late_by_ms}"
            )


def clickstream(config: GeneratorConfig) -> list[Message]:
    """Ad views and clicks, topics ``views`` and ``clicks``, in production order."""
    return _Clickstream(config).run(with_bots=True)


def orders(config: GeneratorConfig) -> list[Message]:
    """Stock movements, topic ``orders``, in production order. ``config.bot`` is ignored."""
    return _Orders(config).run(with_bots=False)


def summary(messages: Iterable[Message]) -> dict[str, int]:
    """Count messages in total, per topic and per kind (``kind.<kind>``, zeros included)."""
    topics: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for message in messages:
        topics[message.topic] += 1
        kinds[message.kind] += 1
    result = {"total": sum(topics.values())}
    result.update(sorted(topics.items()))
    result.update((f"kind.{kind}", kinds[kind]) for kind in KINDS)
    return result


def _dumps(record: object) -> bytes:
    # ensure_ascii=False so non-ASCII extra fields reach Kafka as real UTF-8, not \u escapes.
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def _schedule(config: GeneratorConfig, rng: random.Random, *, with_bots: bool) -> list[Kind]:
    """The kind of every message slot: exact counts, shuffled."""
    n = config.events
    wanted: dict[Kind, int] = {
        "out_of_order": round(config.out_of_order * n),
        "late": round(config.late * n),
        "duplicate": round(config.duplicate * n),
        "malformed": round(config.malformed * n),
        "bot": round(config.bot * n) if with_bots else 0,
    }
    # Rounding several shares up can overshoot n when they sum to (nearly) one.
    while sum(wanted.values()) > n:
        biggest = max(wanted, key=wanted.__getitem__)
        wanted[biggest] -= 1
    kinds: list[Kind] = ["normal"] * (n - sum(wanted.values()))
    for kind, count in wanted.items():
        kinds.extend([kind] * count)
    rng.shuffle(kinds)
    # Out-of-order, late and duplicate are only meaningful relative to earlier events.
    if kinds and kinds[0] != "normal" and "normal" in kinds:
        first = kinds.index("normal")
        kinds[0], kinds[first] = kinds[first], kinds[0]
    return kinds


def _picker(n: int, skew: float) -> Callable[[random.Random], int]:
    """Choose an index in range(n) with probability proportional to 1 / (index + 1) ** skew."""
    if skew == 0:
        return lambda rng: min(int(rng.random() * n), n - 1)
    cumulative = list(accumulate(1.0 / (rank + 1) ** skew for rank in range(n)))
    total = cumulative[-1]
    return lambda rng: min(bisect(cumulative, rng.random() * total), n - 1)


def _random_case(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in text)


class _Engine(ABC):
    """Event time, kinds and the message list shared by both profiles."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.cfg = config
        # Not for security: a seeded PRNG is the point, it makes the output reproducible.
        self.rng = random.Random(config.seed)  # noqa: S311
        self.now = config.start_ts
        self.high: int | None = None  # largest ts produced so far, what watermarks follow
        self.out: list[Message] = []
        self._recent: deque[tuple[int, Message]] = deque(maxlen=_DUPLICATE_HORIZON)
        self._serial = 0
        self._rate = 1.0 / config.mean_gap_ms if config.mean_gap_ms > 0 else 0.0
        jitter = min(config.late_by_ms // 10, WINDOW_MS)
        self._late_range = (config.late_by_ms - jitter, config.late_by_ms + jitter)

    # The profile-specific part.
    @abstractmethod
    def normal(self) -> None: ...

    @abstractmethod
    def bot(self) -> None: ...

    @abstractmethod
    def out_of_order(self, ts: int) -> None: ...

    @abstractmethod
    def late(self, ts: int) -> None: ...

    @abstractmethod
    def malformed(self) -> None: ...

    def run(self, *, with_bots: bool) -> list[Message]:
        rng, cfg = self.rng, self.cfg
        for kind in _schedule(cfg, rng, with_bots=with_bots):
            if kind == "normal":
                self.normal()
            elif kind == "out_of_order":
                self.now = self.next_time()
                self.out_of_order(self.now - rng.randint(1, cfg.max_out_of_order_ms))
            elif kind == "late":
                self.now = self.next_time()
                # Measured from the largest ts so far, not the running time, because that is
                # what the jobs' watermarks follow.
                base = self.now if self.high is None else self.high
                self.late(base - rng.randint(*self._late_range))
            elif kind == "duplicate":
                self.duplicate()
            elif kind == "malformed":
                self.now = self.next_time()
                self.malformed()
            else:
                self.bot()
        return self.out

    def next_time(self) -> int:
        """The running event time after one more step (exponential gaps: bursts and lulls)."""
        if not self._rate:
            return self.now
        return self.now + round(self.rng.expovariate(self._rate))

    def new_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{self._serial:08d}-{self.rng.getrandbits(32):08x}"

    def wants_extras(self) -> bool:
        return self.rng.random() < self.cfg.extra_fields

    def with_extras(self, record: dict[str, Any]) -> bytes:
        """Add unknown fields, which the jobs must ignore rather than reject."""
        rng = self.rng
        for name in rng.sample(_EXTRA_FIELD_NAMES, rng.randint(1, 2)):
            record[name] = _extra_value(rng, name)
        return _dumps(record)

    def emit(self, topic: str, key: bytes, value: bytes, ts: int, kind: Kind) -> None:
        message = Message(topic, key, value, kind)
        self.out.append(message)
        if self.high is None or ts > self.high:
            self.high = ts
        if kind in {"normal", "out_of_order"}:
            self._recent.append((ts, message))

    def emit_broken(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.out.append(Message(topic, key, value, "malformed"))

    def duplicate(self) -> None:
        recent = self._recent
        if not recent:
            # Nothing to copy yet (only when the config leaves no normal slots up front).
            self.normal()
            return
        self.now = self.next_time()
        high = self.now if self.high is None else self.high
        # A copy older than the bound would just be dropped as late and never test the
        # jobs' deduplication, so prefer copies that are still on time.
        floor = high - self.cfg.max_out_of_order_ms
        fresh = [message for ts, message in recent if ts >= floor]
        original = self.rng.choice(fresh) if fresh else recent[-1][1]
        self.out.append(Message(original.topic, original.key, original.value, "duplicate"))


_HUMAN_AGENTS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
# "{}" is where the bot token goes, in random letter case.
_BOT_AGENTS: Final = (
    ("Mozilla/5.0 (compatible; Google{}/2.1)", "bot"),
    ("Mozilla/5.0 (compatible; bing{}/2.0)", "bot"),
    ("Mozilla/5.0 (compatible; Yandex{}/3.0)", "bot"),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "{}Chrome/131.0.0.0 Safari/537.36",
        "headless",
    ),
    ("Ahrefs{}/7.0", "crawler"),
    ("python-{}/0.4", "crawler"),
    ("Mozilla/5.0 (compatible; Baidu{}/2.0)", "spider"),
    ("Screaming Frog SEO {}/19.4", "spider"),
)
# Only scheme and host case vary: path case is significant and must survive normalisation.
_ORIGINS: Final = (
    "https://shop.example.com",
    "https://shop.example.com",
    "https://shop.example.com",
    "HTTPS://SHOP.EXAMPLE.COM",
    "https://Shop.Example.com",
    "Https://shop.EXAMPLE.com",
)
_PATHS: Final = ("/", "/cart", "/checkout", "/category/shoes", "/category/bags", "/search")
_QUERIES: Final = ("", "", "", "?ref=x", "?utm_source=newsletter&utm_medium=email", "?", "?p=2")
_FRAGMENTS: Final = ("", "", "", "", "#top", "#reviews", "#")
# Query and fragment combined up front: one draw instead of two per page.
_TAILS: Final = tuple(query + fragment for query in _QUERIES for fragment in _FRAGMENTS)
_PRODUCTS: Final = 300

_EXTRA_FIELD_NAMES: Final = ("session_hint", "x_debug", "client_version", "x_trace")


def _extra_value(rng: random.Random, name: str) -> object:
    if name == "session_hint":
        return f"s-{rng.getrandbits(24):06x}"
    if name == "x_debug":
        return rng.choice([{"sampled": True, "path": [1, 2, 3]}, None, "naïve café ☕", 0.5])
    if name == "client_version":
        return rng.choice(["3.14.1", "3.15.0-beta", 3])
    return [rng.getrandbits(16), "span"]


def _json_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class _User:
    user_id: str
    key: bytes
    agent: str
    # JSON string literals, escaped once instead of once per event.
    id_json: str
    agent_json: str

    @classmethod
    def of(cls, user_id: str, agent: str) -> _User:
        return cls(user_id, user_id.encode(), agent, _json_str(user_id), _json_str(agent))


# (due ts, tiebreak, user, ad index, page, view ts): a click waiting for its time.
_Pending = tuple[int, int, _User, int, str, int]


class _Clickstream(_Engine):
    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__(config)
        rng = self.rng
        self.ad_ids = [f"ad{i:02d}" for i in range(config.ads)]
        # Fixed per seed: an ad always belongs to the same campaign.
        self.ad_campaigns = [f"c{rng.randrange(config.campaigns)}" for _ in range(config.ads)]
        self.ad_json = [
            f'"ad_id":{_json_str(ad)},"campaign_id":{_json_str(campaign)}'
            for ad, campaign in zip(self.ad_ids, self.ad_campaigns, strict=True)
        ]
        user_ids = [f"u{i:04d}" for i in range(config.users)]
        # Shuffled so that the hottest users under key_skew are not simply the lowest ids.
        rng.shuffle(user_ids)
        self.humans = [_User.of(uid, rng.choice(_HUMAN_AGENTS)) for uid in user_ids]
        self.bots: list[_User] = []
        for i in range(max(1, config.users // 20)):
            template, token = rng.choice(_BOT_AGENTS)
            agent = template.format(_random_case(rng, token))
            self.bots.append(_User.of(f"u{config.users + i:04d}", agent))
        self.pick_human = _picker(len(self.humans), config.key_skew)
        self.human_clicks: list[_Pending] = []
        self.bot_clicks: list[_Pending] = []
        self._tiebreak = 0

    def page(self) -> str:
        # random() * len indexing rather than rng.choice: this runs for every event.
        r = self.rng.random
        if r() < 0.7:
            path = f"/products/{int(r() * _PRODUCTS) + 1}"
        else:
            path = _PATHS[int(r() * len(_PATHS))]
        if path != "/" and r() < 0.25:
            path += "/"
        return _ORIGINS[int(r() * len(_ORIGINS))] + path + _TAILS[int(r() * len(_TAILS))]

    def record(self, prefix: str, user: _User, ad: int, page: str, ts: int) -> dict[str, Any]:
        return {
            "event_id": self.new_id(prefix),
            "user_id": user.user_id,
            "ad_id": self.ad_ids[ad],
            "campaign_id": self.ad_campaigns[ad],
            "page": page,
            "user_agent": user.agent,
            "ts": ts,
        }

    def event(self, topic: str, user: _User, ad: int, page: str, ts: int, kind: Kind) -> None:
        prefix = "v" if topic == "views" else "c"
        if self.wants_extras():
            value = self.with_extras(self.record(prefix, user, ad, page, ts))
        else:
            # Formatting the JSON directly is about 3x faster than json.dumps, which matters
            # at a million events. It is exact because every piece is either escaped above or
            # built from characters JSON never escapes (ids, digits, the URL parts).
            value = (
                f'{{"event_id":"{self.new_id(prefix)}","user_id":{user.id_json},'
                f'{self.ad_json[ad]},"page":"{page}","user_agent":{user.agent_json},"ts":{ts}}}'
            ).encode()
        self.emit(topic, user.key, value, ts, kind)

    def view(self, user: _User, ts: int, kind: Kind, clicks: list[_Pending] | None) -> None:
        rng = self.rng
        ad = int(rng.random() * len(self.ad_ids))
        page = self.page()
        self.event("views", user, ad, page, ts, kind)
        if clicks is not None and rng.random() < self.cfg.click_ratio:
            self._tiebreak += 1
            due = ts + rng.randint(*_CLICK_DELAY_MS)
            heapq.heappush(clicks, (due, self._tiebreak, user, ad, page, ts))

    def click(self, pending: _Pending, ts: int, kind: Kind) -> None:
        _, _, user, ad, page, _ = pending
        self.event("clicks", user, ad, page, ts, kind)

    def _on_time(self, clicks: list[_Pending], kind: Kind) -> None:
        previous, target = self.now, self.next_time()
        if clicks and clicks[0][0] <= target:
            pending = heapq.heappop(clicks)
            # Stop the clock at the click's due time so its delay is the one drawn; it is
            # only later when other kinds of slot already moved the clock past it.
            self.now = max(previous, pending[0])
            self.click(pending, self.now, kind)
            return
        self.now = target
        if kind == "bot":
            user = self.bots[int(self.rng.random() * len(self.bots))]
        else:
            user = self.humans[self.pick_human(self.rng)]
        self.view(user, self.now, kind, clicks)

    def normal(self) -> None:
        self._on_time(self.human_clicks, "normal")

    def bot(self) -> None:
        self._on_time(self.bot_clicks, "bot")

    def out_of_order(self, ts: int) -> None:
        clicks = self.human_clicks
        if clicks and clicks[0][0] <= self.now:
            pending = heapq.heappop(clicks)
            # Never before its view, so the pair still joins.
            self.click(pending, max(ts, pending[5]), "out_of_order")
        else:
            self.view(self.humans[self.pick_human(self.rng)], ts, "out_of_order", clicks)

    def late(self, ts: int) -> None:
        rng, ratio = self.rng, self.cfg.click_ratio
        user = self.humans[self.pick_human(rng)]
        if rng.random() < ratio / (1 + ratio):
            # A click with no view behind it.
            ad = int(rng.random() * len(self.ad_ids))
            self.event("clicks", user, ad, self.page(), ts, "late")
        else:
            # No click follows: it would be due long before the running time.
            self.view(user, ts, "late", None)

    def malformed(self) -> None:
        rng = self.rng
        topic = rng.choice(CLICKSTREAM_TOPICS)
        user = self.humans[self.pick_human(rng)]
        ad = int(rng.random() * len(self.ad_ids))
        record = self.record("v" if topic == "views" else "c", user, ad, self.page(), self.now)
        key = None if rng.random() < 0.25 else user.key
        self.emit_broken(topic, key, _break(rng, record, _CLICK_STRINGS, ("ts",)))


# Mostly single items.
_SALES: Final = (-1, -1, -1, -1, -2, -2, -2, -3, -4, -5)


class _Orders(_Engine):
    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__(config)
        rng = self.rng
        skus = [f"sku-{i:04d}" for i in range(config.skus)]
        rng.shuffle(skus)
        self.skus = [(sku, sku.encode()) for sku in skus]
        self.warehouses = [f"wh{i}" for i in range(config.warehouses)]
        self.pick_sku = _picker(len(self.skus), config.key_skew)

    def movement(self, ts: int) -> tuple[bytes, dict[str, Any]]:
        r = self.rng.random
        sku, key = self.skus[self.pick_sku(self.rng)]
        restock = r() < 0.1
        delta = int(r() * 91) + 10 if restock else _SALES[int(r() * len(_SALES))]
        record = {
            "movement_id": self.new_id("m"),
            "sku": sku,
            "delta": delta,
            "warehouse": self.warehouses[int(r() * len(self.warehouses))],
            "ts": ts,
        }
        return key, record

    def _send(self, ts: int, kind: Kind) -> None:
        key, record = self.movement(ts)
        if self.wants_extras():
            value = self.with_extras(record)
        else:
            # Same shortcut as for clickstream events: sku and warehouse ids need no escaping.
            value = (
                f'{{"movement_id":"{record["movement_id"]}","sku":"{record["sku"]}",'
                f'"delta":{record["delta"]},"warehouse":"{record["warehouse"]}","ts":{ts}}}'
            ).encode()
        self.emit(ORDERS_TOPIC, key, value, ts, kind)

    def normal(self) -> None:
        self.now = self.next_time()
        self._send(self.now, "normal")

    def bot(self) -> None:
        self.normal()

    def out_of_order(self, ts: int) -> None:
        self._send(ts, "out_of_order")

    def late(self, ts: int) -> None:
        self._send(ts, "late")

    def malformed(self) -> None:
        sku, record = self.movement(self.now)
        key = None if self.rng.random() < 0.25 else sku
        self.emit_broken(
            ORDERS_TOPIC, key, _break(self.rng, record, _ORDER_STRINGS, ("delta", "ts"))
        )


_MARK: Final = "@@eddyline-mark@@"


class _Breaker:
    """The ways to turn a valid record into a message that breaks the contract."""

    def __init__(
        self,
        rng: random.Random,
        record: dict[str, Any],
        strings: tuple[str, ...],
        ints: tuple[str, ...],
    ) -> None:
        self.rng = rng
        self.record = record
        self.strings = strings
        self.fields = strings + ints
        self.ints = ints

    def not_json(self) -> bytes:
        good = _dumps(self.record)
        return self.rng.choice(
            [
                b"",
                b"not json",
                b"{event_id: 1}",
                b"{'ts': 1}",
                good[: self.rng.randrange(1, len(good))],  # a prefix of an object never closes
                good + b"}",
            ]
        )

    def not_object(self) -> bytes:
        good = _dumps(self.record)
        # The last two are real bugs: an event wrapped in a list, and one encoded twice.
        return self.rng.choice(
            [b"[1,2]", b'"x"', b"42", b"null", b"[" + good + b"]", _dumps(good.decode())]
        )

    def missing_field(self) -> bytes:
        del self.record[self.rng.choice(self.fields)]
        return _dumps(self.record)

    def wrong_type(self) -> bytes:
        rng, record = self.rng, self.record
        field = rng.choice(self.fields)
        value = record[field]
        options: list[object]
        if field in self.ints:
            options = [str(value), float(value), None, True, [value]]
            if field == "ts":
                options.append(math.nan)  # json.dumps writes NaN, which is not JSON
        else:
            digits = "".join(c for c in value if c.isdigit()) or "0"
            options = [int(digits), None, [value], {"value": value}, False]
        record[field] = rng.choice(options)
        return _dumps(record)

    def bad_utf8(self) -> bytes:
        rng, record = self.rng, self.record
        if rng.random() < 0.25:
            # UTF-16 with a byte-order mark, as some Windows tools write JSON.
            return b"\xff\xfe" + _dumps(record).decode().encode("utf-16-le")
        record[rng.choice(self.strings)] = _MARK
        bad = rng.choice([b"caf\xe9", b"\xc3\x28", b"\xed\xa0\x80", b"\xff\xfe"])
        return _dumps(record).replace(_MARK.encode(), bad)

    def huge_field(self) -> bytes:
        self.record[self.rng.choice(self.strings)] += "x" * (
            _HUGE_CHARS + self.rng.randrange(4_096)
        )
        return _dumps(self.record)

    def deep(self) -> bytes:
        rng, record = self.rng, self.record
        depth = rng.randint(200, 400)
        shape = rng.randrange(3)
        if shape == 0:
            return b"[" * depth + b"]" * depth
        if shape == 1:
            return b'{"a":' * depth + b"1" + b"}" * depth
        record["ts"] = _MARK
        nested = b"[" * depth + str(rng.getrandbits(40)).encode() + b"]" * depth
        return _dumps(record).replace(f'"{_MARK}"'.encode(), nested)


# Relative weights; huge fields are rarer because each one costs 100 kB of memory.
_BREAKS: Final[tuple[tuple[Callable[[_Breaker], bytes], int], ...]] = (
    (_Breaker.not_json, 3),
    (_Breaker.not_object, 3),
    (_Breaker.missing_field, 3),
    (_Breaker.wrong_type, 4),
    (_Breaker.bad_utf8, 2),
    (_Breaker.huge_field, 1),
    (_Breaker.deep, 2),
)
_BREAK_CUMULATIVE: Final = tuple(accumulate(weight for _, weight in _BREAKS))


def _break(
    rng: random.Random, record: dict[str, Any], strings: tuple[str, ...], ints: tuple[str, ...]
) -> bytes:
    """Turn a valid record into one that breaks the contract in one of several ways."""
    way = _BREAKS[bisect(_BREAK_CUMULATIVE, rng.random() * _BREAK_CUMULATIVE[-1])][0]
    return way(_Breaker(rng, record, strings, ints))
