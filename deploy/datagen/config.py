"""What to generate: :class:`GeneratorConfig`, checked against the guarantees the contract
makes (out-of-order events stay within the jobs' bound, late events are beyond it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from deploy.datagen.contract import JOB_OUT_OF_ORDERNESS_MS

FRACTIONS: Final = (
    "click_ratio",
    "out_of_order",
    "late",
    "duplicate",
    "malformed",
    "bot",
    "extra_fields",
)
# Each message has exactly one kind, so these shares of `events` must fit in one.
EXCLUSIVE: Final = ("out_of_order", "late", "duplicate", "malformed", "bot")

_INTEGERS: Final = (
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
        self._check_counts()
        self._check_fractions()
        self._check_event_time()

    def _check_counts(self) -> None:
        for name in _INTEGERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        for name in ("events", "start_ts", "mean_gap_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("users", "ads", "campaigns", "skus", "warehouses"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def _check_fractions(self) -> None:
        if not (math.isfinite(self.key_skew) and self.key_skew >= 0):
            raise ValueError(f"key_skew must be a finite number >= 0, got {self.key_skew}")
        for name in FRACTIONS:
            value = getattr(self, name)
            # Written so that NaN fails too.
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")
        total = sum(getattr(self, name) for name in EXCLUSIVE)
        if total > 1.0 + 1e-9:
            raise ValueError(f"{' + '.join(EXCLUSIVE)} must be <= 1, got {total}")

    def _check_event_time(self) -> None:
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
