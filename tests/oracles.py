"""Independent reference results of the three jobs, computed in plain Python from the contract.

Nothing here imports the jobs or the UDFs: the point is a second, simple implementation of the
rules in ARCHITECTURE.md ("Topics and events") to compare the jobs' output against, record by
record. Outputs are compared as multisets of canonical JSON strings.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

BOT_WORDS = ("bot", "crawler", "spider", "headless")
LONGEST_STRING = 65_536
CLICK_FIELDS = {
    "event_id": str, "user_id": str, "ad_id": str, "campaign_id": str, "page": str,
    "user_agent": str, "ts": int,
}  # fmt: skip
ORDER_FIELDS = {"movement_id": str, "sku": str, "delta": int, "warehouse": str, "ts": int}
Origin = tuple[str, int, int]


@dataclass(frozen=True)
class InputRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes

    @property
    def origin(self) -> Origin:
        return (self.topic, self.partition, self.offset)


@dataclass
class Expected:
    output: Counter[str] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    dead: Counter[Origin] = field(default_factory=Counter)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("in", "contributed", "late", "dead_lettered", "filtered"), 0
        )
    )


def canonical(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse(
    value: bytes, role: Literal["clickstream", "orders"]
) -> tuple[dict[str, Any] | None, str | None]:
    """(event, None) for a valid message, (None, why) for a malformed one."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8"
    try:
        doc = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):
        return None, "not JSON"
    if not isinstance(doc, dict):
        return None, "not an object"
    for name, kind in (CLICK_FIELDS if role == "clickstream" else ORDER_FIELDS).items():
        v = doc.get(name)
        if kind is int:
            # bool is an int in Python but not in JSON; 18 digits keeps it inside a long.
            if type(v) is not int or len(str(abs(v))) > 18:
                return None, f"{name}: not an integer"
        elif not isinstance(v, str):
            return None, f"{name}: not a string"
        elif len(v) > LONGEST_STRING:
            return None, f"{name}: too long"
    return doc, None


def _not_json(name: str) -> float:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def is_bot(user_agent: str) -> bool:
    lower = user_agent.lower()
    return any(word in lower for word in BOT_WORDS)


def page(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1].lower()
    return parts.scheme.lower() + "://" + host + (parts.path.rstrip("/") or "/")


def dead_letter_record(rec: InputRecord, error: str) -> dict[str, Any]:
    try:
        payload: dict[str, Any] = {"payload": rec.value.decode("utf-8")}
    except UnicodeDecodeError:
        payload = {"payload": base64.b64encode(rec.value).decode(), "payload_encoding": "base64"}
    return {"source_topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
            "error": error, **payload}  # fmt: skip


def _clickstream_inputs(
    streams: Mapping[str, Sequence[InputRecord]], late: Set[Origin], expected: Expected
) -> dict[str, list[dict[str, Any]]]:
    """Route every message; returns the contributing events per stream."""
    good: dict[str, list[dict[str, Any]]] = {name: [] for name in streams}
    for name, records in streams.items():
        for rec in records:
            expected.counts["in"] += 1
            event, _error = parse(rec.value, "clickstream")
            if event is None:
                expected.dead[rec.origin] += 1
                expected.counts["dead_lettered"] += 1
            elif rec.origin in late:
                expected.late[canonical({**event, "source_topic": rec.topic,
                                         "reason": "late"})] += 1  # fmt: skip
                expected.counts["late"] += 1
            elif is_bot(event["user_agent"]):
                expected.counts["filtered"] += 1
            else:
                good[name].append(event)
                expected.counts["contributed"] += 1
    return good


def attribution(
    views: Sequence[InputRecord],
    clicks: Sequence[InputRecord],
    *,
    late: Set[Origin] = frozenset(),
    window_ms: int = 60_000,
) -> Expected:
    expected = Expected()
    good = _clickstream_inputs({"views": views, "clicks": clicks}, late, expected)
    by_key: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for c in good["clicks"]:
        by_key.setdefault((c["user_id"], c["ad_id"], c["ts"] // window_ms), []).append(c)
    for v in good["views"]:
        start = v["ts"] // window_ms * window_ms
        for c in by_key.get((v["user_id"], v["ad_id"], v["ts"] // window_ms), []):
            if v["ts"] <= c["ts"]:
                expected.output[canonical({
                    "window_start": start, "window_end": start + window_ms,
                    "user_id": v["user_id"], "ad_id": v["ad_id"],
                    "campaign_id": v["campaign_id"], "view_id": v["event_id"],
                    "click_id": c["event_id"], "view_ts": v["ts"], "click_ts": c["ts"],
                })] += 1  # fmt: skip
    return expected


def sessions(
    views: Sequence[InputRecord],
    clicks: Sequence[InputRecord],
    *,
    late: Set[Origin] = frozenset(),
    gap_ms: int = 1_800_000,
    final_watermark: int | None = None,
) -> Expected:
    """Events of a user stay in one session while they are at most `gap_ms` apart (Flink
    merges session windows that touch); a session closes once the watermark reaches its
    last ts + gap - 1."""
    expected = Expected()
    good = _clickstream_inputs({"views": views, "clicks": clicks}, late, expected)
    per_user: dict[str, list[tuple[int, str, str]]] = {}
    for kind in ("views", "clicks"):
        for e in good[kind]:
            per_user.setdefault(e["user_id"], []).append((e["ts"], kind, page(e["page"])))
    for user, events in per_user.items():
        events.sort()
        runs: list[list[tuple[int, str, str]]] = [[events[0]]]
        for ev in events[1:]:
            if ev[0] - runs[-1][-1][0] > gap_ms:
                runs.append([ev])
            else:
                runs[-1].append(ev)
        for run in runs:
            end = run[-1][0] + gap_ms
            if final_watermark is not None and end - 1 > final_watermark:
                continue
            expected.output[canonical({
                "user_id": user, "session_start": run[0][0], "session_end": end,
                "events": len(run), "views": sum(1 for e in run if e[1] == "views"),
                "clicks": sum(1 for e in run if e[1] == "clicks"),
                "pages": len({e[2] for e in run}),
            })] += 1  # fmt: skip
    return expected


def ledger_by_sku(orders: Sequence[InputRecord]) -> dict[str, list[dict[str, Any]]]:
    """Applied movements per SKU in partition order, each with the running level."""
    out: dict[str, list[dict[str, Any]]] = {}
    seen: dict[str, set[str]] = {}
    level: dict[str, int] = {}
    for rec in sorted(orders, key=lambda r: (r.partition, r.offset)):
        event, _ = parse(rec.value, "orders")
        if event is None:
            continue
        sku, movement = event["sku"], event["movement_id"]
        if movement in seen.setdefault(sku, set()):
            continue
        seen[sku].add(movement)
        level[sku] = level.get(sku, 0) + event["delta"]
        out.setdefault(sku, []).append({
            "movement_id": movement, "sku": sku, "delta": event["delta"],
            "level": level[sku], "ts": event["ts"],
        })  # fmt: skip
    return out


def ledger(orders: Sequence[InputRecord]) -> Expected:
    expected = Expected()
    for rec in orders:
        expected.counts["in"] += 1
        if parse(rec.value, "orders")[0] is None:
            expected.dead[rec.origin] += 1
            expected.counts["dead_lettered"] += 1
    for applied in ledger_by_sku(orders).values():
        for record in applied:
            expected.output[canonical(record)] += 1
            expected.counts["contributed"] += 1
    # Redeliveries are the rest: valid messages whose movement was already applied.
    expected.counts["filtered"] = (
        expected.counts["in"] - expected.counts["dead_lettered"] - expected.counts["contributed"]
    )
    return expected
