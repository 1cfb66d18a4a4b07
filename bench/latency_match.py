"""What bench.latency measures against: the clicks the contract attributes (computed from what
was sent), their windows and the event-time wait before a window may fire, and each measured
click paired with the first record of it that became visible. Pure (tests/unit/test_latency.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Kinds of generated messages the job attributes: valid, human, on time (see generator).
VALID = frozenset({"normal", "out_of_order", "duplicate"})
# A window counts only if the newest event time produced is this far past what closes it: the
# watermark is the minimum over the four input partitions, each a few ms behind the newest.
CLOSE_MARGIN_MS = 1_000


@dataclass(frozen=True)
class Event:
    """A valid, human, on-time view or click as sent: what the job attributes."""

    event_id: str
    user_id: str
    ad_id: str
    ts: int
    produced_ms: int


def window_end(ts: int, window_ms: int) -> int:
    """The end of the tumbling window holding `ts` (floor, as Flink's assigner)."""
    return ts - ts % window_ms + window_ms


def event_time_wait_ms(produced_ms: float, click_ts: int, window_ms: int, ooo_ms: int) -> float:
    """From a click's produce time to when its window may fire: its end plus the
    out-of-orderness, the event time the watermark (newest ts - out-of-orderness) must pass."""
    return window_end(click_ts, window_ms) + ooo_ms - produced_ms


def closes(click_ts: int, window_ms: int, ooo_ms: int, final_ts: int) -> bool:
    """Could the click's window fire, the newest event time produced being `final_ts`?"""
    return window_end(click_ts, window_ms) + ooo_ms + CLOSE_MARGIN_MS <= final_ts


def attributable(
    views: Iterable[Event], clicks: Iterable[Event], window_ms: int
) -> dict[str, Event]:
    """Every click (by event id, its first send) the contract attributes: a view of the same
    user and ad in the same window at or before it."""
    earliest: dict[tuple[str, str, int], int] = {}
    for v in views:
        k = (v.user_id, v.ad_id, window_end(v.ts, window_ms))
        earliest[k] = min(v.ts, earliest.get(k, v.ts))
    out: dict[str, Event] = {}
    for c in clicks:
        first = earliest.get((c.user_id, c.ad_id, window_end(c.ts, window_ms)))
        if first is None or first > c.ts:
            continue
        seen = out.get(c.event_id)
        if seen is None or c.produced_ms < seen.produced_ms:
            out[c.event_id] = c
    return out


def first_visible(records: Iterable[tuple[str, float]]) -> dict[str, float]:
    """click id → when its first attributed record became visible."""
    out: dict[str, float] = {}
    for click_id, visible in records:
        if click_id not in out or visible < out[click_id]:
            out[click_id] = visible
    return out


@dataclass(frozen=True)
class Sample:
    """One attributed click: when it was produced, when its record was visible, and the wait
    its window and the out-of-orderness impose (ms)."""

    click_id: str
    produced_ms: float
    visible_ms: float
    wait_ms: float
    window_end: int

    @property
    def latency_ms(self) -> float:
        return self.visible_ms - self.produced_ms

    @property
    def net_ms(self) -> float:
        return self.latency_ms - self.wait_ms


@dataclass
class Matched:
    samples: list[Sample] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # expected, never visible
    not_closed: int = 0  # attributable, but the load stopped before their window could close
    warmup: int = 0  # attributable, produced during the warm-up


def match(
    expected: Mapping[str, Event],
    visible: Mapping[str, float],
    since_ms: float,
    window_ms: int,
    ooo_ms: int,
    final_ts: int,
) -> Matched:
    """Pair each attributable click produced at or after `since_ms` whose window could close
    with the first visible record of it."""
    out = Matched()
    for click_id, click in expected.items():
        if click.produced_ms < since_ms:
            out.warmup += 1
        elif not closes(click.ts, window_ms, ooo_ms, final_ts):
            out.not_closed += 1
        elif click_id not in visible:
            out.unmatched.append(click_id)
        else:
            wait = event_time_wait_ms(click.produced_ms, click.ts, window_ms, ooo_ms)
            end = window_end(click.ts, window_ms)
            out.samples.append(Sample(click_id, click.produced_ms, visible[click_id], wait, end))
    out.samples.sort(key=lambda s: s.produced_ms)
    return out
