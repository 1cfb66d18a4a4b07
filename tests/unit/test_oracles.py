"""The oracles on hand-worked cases: if these are wrong, every oracle test is."""

from __future__ import annotations

import json
from typing import Any

from tests import oracles
from tests.oracles import InputRecord

T0 = 1_767_225_600_000  # a window start


def _click(i: int, user: str, ad: str, ts: int, ua: str = "Mozilla/5.0", **extra: Any) -> bytes:
    event = {"event_id": f"e{i}", "user_id": user, "ad_id": ad, "campaign_id": "c1",
             "page": "https://a.com/x", "user_agent": ua, "ts": ts}  # fmt: skip
    event.update(extra)
    return json.dumps(event).encode()


def _records(topic: str, values: list[bytes]) -> list[InputRecord]:
    return [InputRecord(topic, 0, i, None, v) for i, v in enumerate(values)]


def test_pairs_within_one_window_with_view_not_after_click() -> None:
    views = _records(
        "v",
        [
            _click(1, "u", "a", T0 + 10),
            _click(2, "u", "a", T0 + 50),
            _click(3, "u", "b", T0 + 10),
            _click(4, "u", "a", T0 + 59_999),
        ],
    )
    clicks = _records("c", [_click(5, "u", "a", T0 + 10), _click(6, "u", "a", T0 + 60_000)])
    got = oracles.attribution(views, clicks).output
    pairs = {(json.loads(k)["view_id"], json.loads(k)["click_id"]) for k in got}
    # e1-e5 (equal ts pairs); e2 is after e5; e3 is another ad; e4/e6 straddle the window edge.
    assert pairs == {("e1", "e5")}
    (record,) = got
    assert json.loads(record)["window_start"] == T0
    assert json.loads(record)["window_end"] == T0 + 60_000


def test_bots_are_filtered_and_counted() -> None:
    views = _records("v", [_click(1, "u", "a", T0, ua="Mozilla (compatible; GoogleBot)")])
    clicks = _records("c", [_click(2, "u", "a", T0 + 1, ua="HeadlessChrome")])
    expected = oracles.attribution(views, clicks)
    assert not expected.output
    assert expected.counts["filtered"] == 2


def test_malformed_kinds_are_dead_lettered() -> None:
    good = json.loads(_click(1, "u", "a", T0))
    bad = [
        b"\xff\xfe{}",
        b"not json",
        b"[1]",
        json.dumps({**good, "ts": str(T0)}).encode(),
        json.dumps({**good, "ts": 1.5}).encode(),
        json.dumps({**good, "ts": True}).encode(),
        json.dumps({**good, "user_id": 7}).encode(),
        json.dumps({k: v for k, v in good.items() if k != "page"}).encode(),
        json.dumps({**good, "page": "x" * 65_537}).encode(),
    ]
    views = _records("v", bad)
    expected = oracles.attribution(views, [])
    assert expected.counts["dead_lettered"] == len(bad)
    assert set(expected.dead) == {("v", 0, i) for i in range(len(bad))}
    letter = oracles.dead_letter_record(views[0], "x")
    assert letter["payload_encoding"] == "base64"
    assert letter["payload"] == "//57fQ=="


def test_late_events_keep_their_fields_and_go_nowhere_else() -> None:
    views = _records("v", [_click(1, "u", "a", T0, extra_field=3)])
    clicks = _records("c", [_click(2, "u", "a", T0 + 5)])
    expected = oracles.attribution(views, clicks, late={("v", 0, 0)})
    assert not expected.output
    (late,) = expected.late
    assert json.loads(late)["extra_field"] == 3
    assert json.loads(late)["source_topic"] == "v"
    assert json.loads(late)["reason"] == "late"


def test_sessions_split_only_beyond_the_gap_and_close_by_watermark() -> None:
    gap = 1_000
    views = _records("v", [
        _click(1, "u", "a", T0, page="HTTPS://A.com/x/?q=1"),
        _click(2, "u", "a", T0 + gap, page="https://a.com/x#f"),  # exactly gap: same session
        _click(3, "u", "a", T0 + 2 * gap + 1, page="https://a.com/y"),  # gap + 1: new session
    ])  # fmt: skip
    got = [json.loads(k) for k in oracles.sessions(views, [], gap_ms=gap).output]
    assert sorted((s["session_start"], s["events"], s["pages"]) for s in got) == [
        (T0, 2, 1),
        (T0 + 2 * gap + 1, 1, 1),
    ]
    # The second session ends at its last ts + gap: closed only once the watermark is there.
    end = T0 + 3 * gap + 1
    assert len(oracles.sessions(views, [], gap_ms=gap, final_watermark=end - 2).output) == 1
    assert len(oracles.sessions(views, [], gap_ms=gap, final_watermark=end - 1).output) == 2


def _order(mid: str, sku: str, delta: int) -> bytes:
    return json.dumps({"movement_id": mid, "sku": sku, "delta": delta, "warehouse": "w",
                       "ts": T0}).encode()  # fmt: skip


def test_ledger_sums_in_partition_order_and_skips_redeliveries() -> None:
    orders = [
        InputRecord("o", 1, 1, b"s", _order("m2", "s", -3)),
        InputRecord("o", 1, 0, b"s", _order("m1", "s", 10)),
        InputRecord("o", 1, 2, b"s", _order("m1", "s", 10)),  # a redelivery
        InputRecord("o", 0, 0, b"t", _order("m3", "t", 5)),
        InputRecord("o", 0, 1, b"t", b'{"movement_id":"m4","sku":"t","delta":1.5}'),
    ]
    by_sku = oracles.ledger_by_sku(orders)
    assert [(r["movement_id"], r["level"]) for r in by_sku["s"]] == [("m1", 10), ("m2", 7)]
    assert [(r["movement_id"], r["level"]) for r in by_sku["t"]] == [("m3", 5)]
    counts = oracles.ledger(orders).counts
    assert counts == {"in": 5, "contributed": 3, "late": 0, "dead_lettered": 1, "filtered": 1}
