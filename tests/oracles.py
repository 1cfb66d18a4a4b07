"""Exact expected outputs of the three reference jobs, computed in plain Python.

This is a second, deliberately naive implementation of the data contract (attribution,
sessions, ledger), written from the contract text alone and never from the jobs or UDFs: a bug
shared by both would need to be made twice, independently. Nothing here knows about Flink,
watermarks or Kafka; the caller tells the oracle which messages are late and how far the final
watermark got, so every answer is a pure function of the input records.

Outputs are multisets (``Counter``) of :func:`canonical` JSON strings, so a job's output can be
compared with them regardless of order or partitioning. Dead letters are compared by where they
came from only (topic, partition, offset), because the jobs' error texts are free-form.
"""

from __future__ import annotations

import base64
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

__all__ = [
    "BOT_TOKENS",
    "COUNT_KEYS",
    "MAX_INT_DIGITS",
    "MAX_STRING_CHARS",
    "Expected",
    "InputRecord",
    "Origin",
    "Role",
    "attribution",
    "canonical",
    "dead_letter_record",
    "is_bot",
    "ledger",
    "ledger_by_sku",
    "normalise_page",
    "parse",
    "sessions",
]

Role = Literal["clickstream", "orders"]
# Where a message came from: (topic, partition, offset). Unique per Kafka record.
Origin = tuple[str, int, int]

BOT_TOKENS: Final[tuple[str, ...]] = ("bot", "crawler", "spider", "headless")
MAX_STRING_CHARS: Final = 65_536
# 18 decimal digits always fit in a signed 64-bit long (max 9_223_372_036_854_775_807), so the
# digit rule alone also enforces the long rule.
MAX_INT_DIGITS: Final = 18
COUNT_KEYS: Final[tuple[str, ...]] = ("in", "contributed", "late", "dead_lettered", "filtered")

# Required fields per role, in the order they are checked (so the reason names the first
# offending one). Every other field is unknown and ignored.
_STRING_FIELDS: Final[Mapping[Role, tuple[str, ...]]] = {
    "clickstream": ("event_id", "user_id", "ad_id", "campaign_id", "page", "user_agent"),
    "orders": ("movement_id", "sku", "warehouse"),
}
_INT_FIELDS: Final[Mapping[Role, tuple[str, ...]]] = {
    "clickstream": ("ts",),
    "orders": ("delta", "ts"),
}


@dataclass(frozen=True)
class InputRecord:
    """One message as it sits in Kafka: the oracle needs its position for dead letters,
    lateness and the ledger's partition order."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes

    @property
    def origin(self) -> Origin:
        return (self.topic, self.partition, self.offset)


@dataclass(frozen=True)
class Expected:
    """What one job should have produced for a given input."""

    output: Counter[str]
    late: Counter[str]
    dead: Counter[Origin]
    counts: dict[str, int]


def canonical(obj: Mapping[str, Any]) -> str:
    """One text per JSON value: key order and whitespace can't make equal records differ."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity/-Infinity, which RFC 8259 JSON does not have.
    raise ValueError(f"{name} is not a JSON value")


def parse(value: bytes, role: Role) -> tuple[dict[str, Any] | None, str | None]:
    """``(event, None)`` for a valid message, ``(None, reason)`` for a malformed one.

    The event is the whole decoded object, unknown fields included (late-event records carry
    them through).
    """
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, f"not UTF-8: {error.reason} at byte {error.start}"
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        # Deeply nested arrays can exhaust Python's stack; that is a broken message, not a bug.
        return None, "not JSON: nested too deeply"
    except ValueError as error:
        # JSONDecodeError is a ValueError, and so are NaN/Infinity and overlong digit strings.
        return None, f"not JSON: {error}"
    if not isinstance(doc, dict):
        return None, f"not a JSON object but {type(doc).__name__}"
    for name in _STRING_FIELDS[role]:
        if name not in doc:
            return None, f"missing field {name!r}"
        item = doc[name]
        if not isinstance(item, str):
            return None, f"field {name!r} is not a string"
        if len(item) > MAX_STRING_CHARS:
            return None, f"field {name!r} is longer than {MAX_STRING_CHARS} characters"
    for name in _INT_FIELDS[role]:
        if name not in doc:
            return None, f"missing field {name!r}"
        item = doc[name]
        # `type(...) is int` rather than isinstance: JSON true/false decode to bool, which is an
        # int subclass in Python but not a JSON integer. Floats (1.0, 1e3) are not integers.
        if type(item) is not int:
            return None, f"field {name!r} is not an integer"
        if abs(item) >= 10**MAX_INT_DIGITS:
            return None, f"field {name!r} has more than {MAX_INT_DIGITS} digits"
    return doc, None


def is_bot(user_agent: str) -> bool:
    lowered = user_agent.lower()
    return any(token in lowered for token in BOT_TOKENS)


def normalise_page(url: str) -> str:
    """scheme + "://" + host + path, so that case, query, fragment and a trailing slash don't
    make one page count twice."""
    parts = urlsplit(url)
    # Userinfo ends at the last '@' of the netloc; the port stays part of the host.
    host = parts.netloc.rpartition("@")[2].lower()
    return parts.scheme.lower() + "://" + host + (parts.path.rstrip("/") or "/")


def dead_letter_record(rec: InputRecord, error: str) -> dict[str, Any]:
    """The dead-letter record for ``rec``; the payload is base64 when it is not UTF-8 text,
    because JSON can only carry text."""
    record: dict[str, Any] = {
        "source_topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "error": error,
    }
    try:
        record["payload"] = rec.value.decode("utf-8")
    except UnicodeDecodeError:
        record["payload"] = base64.b64encode(rec.value).decode("ascii")
        record["payload_encoding"] = "base64"
    return record


def _late_record(event: Mapping[str, Any], topic: str) -> dict[str, Any]:
    # The added fields win over same-named fields of the event: they describe the routing.
    return {**event, "source_topic": topic, "reason": "late"}


@dataclass
class _Tally:
    """Mutable accumulator, frozen into an :class:`Expected` at the end."""

    output: Counter[str] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    dead: Counter[Origin] = field(default_factory=Counter)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))

    def freeze(self) -> Expected:
        parts = sum(self.counts[key] for key in COUNT_KEYS if key != "in")
        # Each message lands in exactly one bucket; if not, the oracle itself is wrong.
        assert self.counts["in"] == parts, self.counts
        return Expected(self.output, self.late, self.dead, dict(self.counts))


@dataclass(frozen=True)
class _Event:
    """A contributing clickstream event: valid, on time, not a bot."""

    is_view: bool
    body: Mapping[str, Any]

    @property
    def ts(self) -> int:
        ts: int = self.body["ts"]
        return ts


def _route_clickstream(
    views: Sequence[InputRecord],
    clicks: Sequence[InputRecord],
    late: AbstractSet[Origin],
    tally: _Tally,
) -> list[_Event]:
    """Send every message to dead letters, late events, the bot filter or the job proper.

    Malformed wins over late (a late message must still be parsed to be late-event JSON), and
    late wins over bot (a valid late message goes only to late events, whatever its agent).
    """
    kept: list[_Event] = []
    for is_view, records in ((True, views), (False, clicks)):
        for rec in records:
            tally.counts["in"] += 1
            event, _reason = parse(rec.value, "clickstream")
            if event is None:
                tally.dead[rec.origin] += 1
                tally.counts["dead_lettered"] += 1
            elif rec.origin in late:
                tally.late[canonical(_late_record(event, rec.topic))] += 1
                tally.counts["late"] += 1
            elif is_bot(event["user_agent"]):
                tally.counts["filtered"] += 1
            else:
                kept.append(_Event(is_view, event))
                tally.counts["contributed"] += 1
    return kept


def attribution(
    views: Sequence[InputRecord],
    clicks: Sequence[InputRecord],
    *,
    late: AbstractSet[Origin] = frozenset(),
    window_ms: int = 60_000,
) -> Expected:
    """Every (view, click) of one user and ad in one tumbling window with view.ts <= click.ts."""
    if window_ms <= 0:
        raise ValueError(f"window_ms must be > 0, got {window_ms}")
    tally = _Tally()
    events = _route_clickstream(views, clicks, late, tally)
    # Python's % is never negative for a positive divisor, so this aligns to the epoch for
    # negative timestamps too (floor, as Flink's window assigner does).
    groups: defaultdict[tuple[int, str, str], tuple[list[_Event], list[_Event]]] = defaultdict(
        lambda: ([], [])
    )
    for event in events:
        start = event.ts - event.ts % window_ms
        group_views, group_clicks = groups[(start, event.body["user_id"], event.body["ad_id"])]
        (group_views if event.is_view else group_clicks).append(event)
    for (start, user_id, ad_id), (group_views, group_clicks) in groups.items():
        # Quadratic on purpose: the oracle should be obviously right, not fast.
        for view in group_views:
            for click in group_clicks:
                if view.ts <= click.ts:
                    record = {
                        "window_start": start,
                        "window_end": start + window_ms,
                        "user_id": user_id,
                        "ad_id": ad_id,
                        "campaign_id": view.body["campaign_id"],
                        "view_id": view.body["event_id"],
                        "click_id": click.body["event_id"],
                        "view_ts": view.ts,
                        "click_ts": click.ts,
                    }
                    tally.output[canonical(record)] += 1
    return tally.freeze()


def _split_sessions(events: Iterable[_Event], gap_ms: int) -> list[list[_Event]]:
    """One user's events, in ts order, cut wherever the step to the next is > gap_ms.

    Events exactly `gap_ms` apart stay together: Flink merges session windows that touch
    ([a, a+gap) and [a+gap, ...)), and the README documents that as Eddyline's rule.
    """
    runs: list[list[_Event]] = []
    previous: int | None = None
    for event in sorted(events, key=lambda e: e.ts):
        if previous is None or event.ts - previous > gap_ms:
            runs.append([])
        runs[-1].append(event)
        previous = event.ts
    return runs


def sessions(
    views: Sequence[InputRecord],
    clicks: Sequence[InputRecord],
    *,
    late: AbstractSet[Origin] = frozenset(),
    gap_ms: int = 1_800_000,
    final_watermark: int | None = None,
) -> Expected:
    """Per-user sessions over views and clicks; only closed ones (see module contract)."""
    if gap_ms <= 0:
        raise ValueError(f"gap_ms must be > 0, got {gap_ms}")
    tally = _Tally()
    per_user: defaultdict[str, list[_Event]] = defaultdict(list)
    for event in _route_clickstream(views, clicks, late, tally):
        per_user[event.body["user_id"]].append(event)
    for user_id, events in per_user.items():
        for run in _split_sessions(events, gap_ms):
            end = run[-1].ts + gap_ms
            # A session window [start, end) fires once the watermark reaches end - 1.
            if final_watermark is not None and end - 1 > final_watermark:
                continue
            views_in_run = sum(1 for e in run if e.is_view)
            record = {
                "user_id": user_id,
                "session_start": run[0].ts,
                "session_end": end,
                "events": len(run),
                "views": views_in_run,
                "clicks": len(run) - views_in_run,
                "pages": len({normalise_page(e.body["page"]) for e in run}),
            }
            tally.output[canonical(record)] += 1
    return tally.freeze()


def _ledger_run(orders: Sequence[InputRecord]) -> tuple[dict[str, list[dict[str, Any]]], _Tally]:
    tally = _Tally()
    by_sku: dict[str, list[dict[str, Any]]] = {}
    levels: dict[str, int] = {}
    seen: defaultdict[str, set[str]] = defaultdict(set)
    # A SKU's movements are keyed by SKU, so they share one partition and its offsets give
    # their order. Sorting by the whole origin keeps the result independent of input order.
    for rec in sorted(orders, key=lambda r: r.origin):
        tally.counts["in"] += 1
        event, _reason = parse(rec.value, "orders")
        if event is None:
            tally.dead[rec.origin] += 1
            tally.counts["dead_lettered"] += 1
            continue
        sku: str = event["sku"]
        movement_id: str = event["movement_id"]
        if movement_id in seen[sku]:
            # A redelivery: applying it again would double-count stock.
            tally.counts["filtered"] += 1
            continue
        seen[sku].add(movement_id)
        level = levels.get(sku, 0) + event["delta"]
        levels[sku] = level
        applied = {
            "movement_id": movement_id,
            "sku": sku,
            "delta": event["delta"],
            "level": level,
            "ts": event["ts"],
        }
        by_sku.setdefault(sku, []).append(applied)
        tally.output[canonical(applied)] += 1
        tally.counts["contributed"] += 1
    return by_sku, tally


def ledger(orders: Sequence[InputRecord]) -> Expected:
    """Applied stock movements with running levels; lateness plays no part here."""
    return _ledger_run(orders)[1].freeze()


def ledger_by_sku(orders: Sequence[InputRecord]) -> dict[str, list[dict[str, Any]]]:
    """The applied movements of each SKU in the order they must be emitted."""
    return _ledger_run(orders)[0]
