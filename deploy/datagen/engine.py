"""The deterministic part both profiles share: which kind every message slot gets, the running
event time (exponential gaps, out-of-order and late offsets), ids, unknown extra fields,
duplicates, and the list of messages in production order.

Every random choice comes from one ``random.Random(config.seed)``, in a fixed order, so the same
config always yields byte-identical output: reordering any draw here changes every message after
it.
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from bisect import bisect
from collections import deque
from collections.abc import Callable
from itertools import accumulate
from typing import Any, Final

from deploy.datagen.config import GeneratorConfig
from deploy.datagen.contract import WINDOW_MS, Kind, Message

# Duplicates are drawn from this many recent messages: enough to span the out-of-orderness
# bound at the default rate while keeping the per-duplicate scan cheap.
_DUPLICATE_HORIZON: Final = 256

_EXTRA_FIELD_NAMES: Final = ("session_hint", "x_debug", "client_version", "x_trace")


def dumps(record: object) -> bytes:
    # ensure_ascii=False so non-ASCII extra fields reach Kafka as real UTF-8, not \u escapes.
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def schedule(config: GeneratorConfig, rng: random.Random, *, with_bots: bool) -> list[Kind]:
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


def picker(n: int, skew: float) -> Callable[[random.Random], int]:
    """Choose an index in range(n) with probability proportional to 1 / (index + 1) ** skew."""
    if skew == 0:
        return lambda rng: min(int(rng.random() * n), n - 1)
    cumulative = list(accumulate(1.0 / (rank + 1) ** skew for rank in range(n)))
    total = cumulative[-1]
    return lambda rng: min(bisect(cumulative, rng.random() * total), n - 1)


def _extra_value(rng: random.Random, name: str) -> object:
    if name == "session_hint":
        return f"s-{rng.getrandbits(24):06x}"
    if name == "x_debug":
        return rng.choice([{"sampled": True, "path": [1, 2, 3]}, None, "naïve café ☕", 0.5])
    if name == "client_version":
        return rng.choice(["3.14.1", "3.15.0-beta", 3])
    return [rng.getrandbits(16), "span"]


class Engine(ABC):
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
        for kind in schedule(cfg, rng, with_bots=with_bots):
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
        return dumps(record)

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
