"""The oracles on small hand-worked cases: every job test trusts them, so they get checked first.

Expected values here are written out by hand from the contract, not computed by a second
implementation, so a wrong oracle shows up as a plain mismatch.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import oracles
from tests.oracles import InputRecord

HUMAN = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"
GAP = 1_000


def _event(
    event_id: str,
    ts: int,
    *,
    user: str = "u1",
    ad: str = "ad1",
    campaign: str = "c1",
    page: str = "https://shop.example/p",
    agent: str = HUMAN,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": user,
        "ad_id": ad,
        "campaign_id": campaign,
        "page": page,
        "user_agent": agent,
        "ts": ts,
        **extra,
    }


def _bytes(obj: object) -> bytes:
    return json.dumps(obj).encode()


def _records(topic: str, values: list[bytes], partition: int = 0) -> list[InputRecord]:
    """Consecutive offsets from 0 in one partition, keyed as the producer would not care."""
    return [InputRecord(topic, partition, offset, None, v) for offset, v in enumerate(values)]


def _order(movement_id: str, sku: str, delta: int, ts: int = 1_000) -> dict[str, Any]:
    return {"movement_id": movement_id, "sku": sku, "delta": delta, "warehouse": "wh0", "ts": ts}


def _pairs(expected: oracles.Expected) -> Counter[tuple[str, str]]:
    return Counter(
        {
            (json.loads(k)["view_id"], json.loads(k)["click_id"]): n
            for k, n in expected.output.items()
        }
    )


def _assert_counts_add_up(counts: dict[str, int]) -> None:
    assert set(counts) == {"in", "contributed", "late", "dead_lettered", "filtered"}
    assert counts["in"] == (
        counts["contributed"] + counts["late"] + counts["dead_lettered"] + counts["filtered"]
    )


# --- canonical -------------------------------------------------------------------------------


def test_canonical_sorts_keys_and_keeps_non_ascii() -> None:
    assert oracles.canonical({"b": 1, "a": "café"}) == '{"a":"café","b":1}'


# --- attribution -----------------------------------------------------------------------------


def test_attribution_record_is_built_from_view_and_click() -> None:
    views = _records("views-ab12", [_bytes(_event("v1", 120_010, campaign="camp-view"))])
    clicks = _records("clicks-ab12", [_bytes(_event("k1", 120_500, campaign="camp-click"))])
    expected = oracles.attribution(views, clicks)
    record = {
        "window_start": 120_000,
        "window_end": 180_000,
        "user_id": "u1",
        "ad_id": "ad1",
        "campaign_id": "camp-view",  # the view's, not the click's
        "view_id": "v1",
        "click_id": "k1",
        "view_ts": 120_010,
        "click_ts": 120_500,
    }
    assert expected.output == Counter({oracles.canonical(record): 1})
    assert expected.counts == {
        "in": 2,
        "contributed": 2,
        "late": 0,
        "dead_lettered": 0,
        "filtered": 0,
    }


def test_attribution_pairs_only_same_user_same_ad_view_not_after_click() -> None:
    views = _records(
        "views-ab12",
        [
            _bytes(_event("v-equal", 1_000)),  # same ts as k1: pairs
            _bytes(_event("v-after", 2_001)),  # after k1 (2_000 > 1_000) and after k2: no pair
            _bytes(_event("v-other-ad", 500, ad="ad2")),  # no click on ad2
            _bytes(_event("v-other-user", 500, user="u2")),  # no click by u2
        ],
    )
    clicks = _records("clicks-ab12", [_bytes(_event("k1", 1_000)), _bytes(_event("k2", 2_000))])
    # v-equal pairs with k1 (equal ts) and with k2 (later); v-after pairs with nothing.
    assert _pairs(oracles.attribution(views, clicks)) == Counter(
        {("v-equal", "k1"): 1, ("v-equal", "k2"): 1}
    )


def test_attribution_window_edges() -> None:
    views = _records("v", [_bytes(_event("v-last", 59_999)), _bytes(_event("v-next", 60_000))])
    clicks = _records("c", [_bytes(_event("k-last", 59_999)), _bytes(_event("k-next", 60_000))])
    got = oracles.attribution(views, clicks)
    # 59_999 is the last ms of [0, 60_000); 60_000 opens [60_000, 120_000). v-last/k-next would
    # satisfy view.ts <= click.ts but straddle the edge, so they don't pair.
    assert _pairs(got) == Counter({("v-last", "k-last"): 1, ("v-next", "k-next"): 1})
    windows = sorted(
        (json.loads(k)["window_start"], json.loads(k)["window_end"]) for k in got.output
    )
    assert windows == [(0, 60_000), (60_000, 120_000)]


def test_attribution_custom_window_and_negative_ts() -> None:
    views = _records("v", [_bytes(_event("v1", -1))])
    clicks = _records("c", [_bytes(_event("k1", -1))])
    (record,) = oracles.attribution(views, clicks, window_ms=10).output
    # Windows are aligned to the epoch: -1 lies in [-10, 0).
    assert (json.loads(record)["window_start"], json.loads(record)["window_end"]) == (-10, 0)


def test_attribution_duplicated_messages_pair_again() -> None:
    view = _bytes(_event("v1", 10))
    views = _records("v", [view, view])  # same bytes at two offsets: two events
    clicks = _records("c", [_bytes(_event("k1", 20))])
    assert _pairs(oracles.attribution(views, clicks)) == Counter({("v1", "k1"): 2})


def test_views_and_clicks_are_told_apart_by_argument_not_topic() -> None:
    # Both on a topic called "clicks": the argument position is what counts.
    views = _records("clicks", [_bytes(_event("v1", 10))])
    clicks = _records("clicks", [_bytes(_event("k1", 20))], partition=1)
    assert _pairs(oracles.attribution(views, clicks)) == Counter({("v1", "k1"): 1})
    assert _pairs(oracles.attribution(clicks, views)) == Counter()


# --- bots ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1)",
        "Mozilla/5.0 (compatible; GoogleBOT/2.1)",
        "Ahrefs CRAWLER/7.0",
        "Baidu Spider",
        "HeadlessChrome/131.0",
    ],
)
def test_bots_are_dropped_and_counted_as_filtered(agent: str) -> None:
    views = _records("v", [_bytes(_event("v1", 10, agent=agent))])
    clicks = _records("c", [_bytes(_event("k1", 20)), _bytes(_event("k2", 30, agent=agent))])
    for expected in (
        oracles.attribution(views, clicks),
        oracles.sessions(views, clicks, gap_ms=GAP),
    ):
        assert expected.counts["filtered"] == 2
        assert expected.counts["contributed"] == 1
        assert not expected.late
        assert not expected.dead
        _assert_counts_add_up(expected.counts)
    assert not oracles.attribution(views, clicks).output
    # Only k1 is left for sessions: one session of one click.
    (session,) = oracles.sessions(views, clicks, gap_ms=GAP).output
    assert json.loads(session)["events"] == 1
    assert json.loads(session)["clicks"] == 1


def test_human_agents_are_not_bots() -> None:
    assert not oracles.is_bot(HUMAN)
    assert not oracles.is_bot("")
    assert oracles.is_bot("robot")  # a substring match, as the contract says


# --- malformed messages ----------------------------------------------------------------------

GOOD_CLICK = _event("e1", 1_000)
GOOD_ORDER = _order("m1", "sku-1", -2)


def _without(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != name}


MALFORMED_CLICKS: dict[str, bytes] = {
    "non-utf8": b'{"event_id":"caf\xe9"}',
    "utf16-bom": b"\xff\xfe" + json.dumps(GOOD_CLICK).encode("utf-16-le"),
    "utf8-bom": b"\xef\xbb\xbf" + _bytes(GOOD_CLICK),
    "empty": b"",
    "not-json": b"not json",
    "truncated": _bytes(GOOD_CLICK)[:-1],
    "trailing": _bytes(GOOD_CLICK) + b"}",
    "nan": _bytes({**GOOD_CLICK, "extra": float("nan")}),  # json.dumps writes NaN; not JSON
    "array": b"[1,2]",
    "wrapped-in-array": b"[" + _bytes(GOOD_CLICK) + b"]",
    "string": _bytes(json.dumps(GOOD_CLICK)),  # an event encoded twice
    "null": b"null",
    "number": b"42",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "missing-page": _bytes(_without(GOOD_CLICK, "page")),
    "missing-ts": _bytes(_without(GOOD_CLICK, "ts")),
    "ts-string": _bytes({**GOOD_CLICK, "ts": "1000"}),
    "ts-float": _bytes({**GOOD_CLICK, "ts": 1000.0}),
    "ts-exponent": _bytes(GOOD_CLICK).replace(b'"ts": 1000', b'"ts": 1e3'),
    "ts-bool": _bytes({**GOOD_CLICK, "ts": True}),
    "ts-null": _bytes({**GOOD_CLICK, "ts": None}),
    "ts-19-digits": _bytes({**GOOD_CLICK, "ts": 10**18}),
    "ts-beyond-long": _bytes({**GOOD_CLICK, "ts": -(2**63) - 1}),
    "user-id-number": _bytes({**GOOD_CLICK, "user_id": 7}),
    "user-id-null": _bytes({**GOOD_CLICK, "user_id": None}),
    "user-agent-list": _bytes({**GOOD_CLICK, "user_agent": ["x"]}),
    "page-65537-chars": _bytes({**GOOD_CLICK, "page": "x" * 65_537}),
}


@pytest.mark.parametrize("value", MALFORMED_CLICKS.values(), ids=MALFORMED_CLICKS.keys())
def test_malformed_clickstream_messages(value: bytes) -> None:
    event, reason = oracles.parse(value, "clickstream")
    assert event is None
    assert reason


MALFORMED_ORDERS: dict[str, bytes] = {
    "delta-float": _bytes({**GOOD_ORDER, "delta": -2.0}),
    "delta-fraction": _bytes({**GOOD_ORDER, "delta": 1.5}),
    "delta-string": _bytes({**GOOD_ORDER, "delta": "-2"}),
    "delta-bool": _bytes({**GOOD_ORDER, "delta": False}),
    "delta-list": _bytes({**GOOD_ORDER, "delta": [-2]}),
    "missing-warehouse": _bytes(_without(GOOD_ORDER, "warehouse")),
    "sku-number": _bytes({**GOOD_ORDER, "sku": 1}),
    "sku-65537-chars": _bytes({**GOOD_ORDER, "sku": "s" * 65_537}),
    # An order is not a click: the clickstream fields don't make it one.
    "a-click": _bytes(GOOD_CLICK),
}


@pytest.mark.parametrize("value", MALFORMED_ORDERS.values(), ids=MALFORMED_ORDERS.keys())
def test_malformed_orders(value: bytes) -> None:
    assert oracles.parse(value, "orders")[0] is None


VALID_CLICKS: dict[str, bytes] = {
    "plain": _bytes(GOOD_CLICK),
    "extra-fields": _bytes({**GOOD_CLICK, "x_debug": {"a": [1, None]}, "v": 0.5}),
    "65536-chars": _bytes({**GOOD_CLICK, "user_agent": "x" * 65_536}),
    "long-extra-field": _bytes({**GOOD_CLICK, "x_blob": "x" * 70_000}),
    "empty-strings": _bytes({**GOOD_CLICK, "page": "", "user_agent": ""}),
    "ts-18-digits": _bytes({**GOOD_CLICK, "ts": 999_999_999_999_999_999}),
    "ts-negative-18-digits": _bytes({**GOOD_CLICK, "ts": -999_999_999_999_999_999}),
    "whitespace": b"  \n" + _bytes(GOOD_CLICK) + b"\n",
    "non-ascii": json.dumps({**GOOD_CLICK, "page": "https://ü.example/ä"}).encode(),
}


@pytest.mark.parametrize("value", VALID_CLICKS.values(), ids=VALID_CLICKS.keys())
def test_valid_clickstream_messages(value: bytes) -> None:
    event, reason = oracles.parse(value, "clickstream")
    assert reason is None
    assert event == json.loads(value)


def test_valid_order_keeps_negative_delta() -> None:
    assert oracles.parse(_bytes(GOOD_ORDER), "orders") == (GOOD_ORDER, None)


def test_malformed_messages_are_dead_lettered_by_origin() -> None:
    bad = list(MALFORMED_CLICKS.values())
    views = _records("views-ab12", bad)
    clicks = _records("clicks-ab12", [_bytes(_event("k1", 5)), b"{}"], partition=3)
    for expected in (
        oracles.attribution(views, clicks),
        oracles.sessions(views, clicks),
    ):
        assert expected.dead == Counter(
            {("views-ab12", 0, i): 1 for i in range(len(bad))} | {("clicks-ab12", 3, 1): 1}
        )
        assert expected.counts == {
            "in": len(bad) + 2,
            "contributed": 1,
            "late": 0,
            "dead_lettered": len(bad) + 1,
            "filtered": 0,
        }


def test_dead_letter_record_base64_for_non_utf8() -> None:
    rec = InputRecord("views-ab12", 2, 41, b"u1", b"\xff\xfe{}")
    assert oracles.dead_letter_record(rec, "not UTF-8") == {
        "source_topic": "views-ab12",
        "partition": 2,
        "offset": 41,
        "error": "not UTF-8",
        "payload": "//57fQ==",  # base64 of ff fe 7b 7d
        "payload_encoding": "base64",
    }


def test_dead_letter_record_raw_text_for_utf8() -> None:
    rec = InputRecord("orders-ab12", 0, 7, None, '[1, "é"]'.encode())
    assert oracles.dead_letter_record(rec, "not an object") == {
        "source_topic": "orders-ab12",
        "partition": 0,
        "offset": 7,
        "error": "not an object",
        "payload": '[1, "é"]',
    }


# --- late events -----------------------------------------------------------------------------


def test_late_events_go_only_to_late_with_their_fields() -> None:
    late_view = _event("v1", 10, session_hint="s-1", x_debug={"nested": [1, 2]})
    views = _records("views-ab12", [_bytes(late_view), b"not json"])
    clicks = _records("clicks-ab12", [_bytes(_event("k1", 20))])
    # The malformed message is late too, but malformed wins: it goes to dead letters.
    late = {("views-ab12", 0, 0), ("views-ab12", 0, 1)}
    expected_late = Counter(
        {
            oracles.canonical(
                {
                    "event_id": "v1",
                    "user_id": "u1",
                    "ad_id": "ad1",
                    "campaign_id": "c1",
                    "page": "https://shop.example/p",
                    "user_agent": HUMAN,
                    "ts": 10,
                    "session_hint": "s-1",
                    "x_debug": {"nested": [1, 2]},
                    "source_topic": "views-ab12",
                    "reason": "late",
                }
            ): 1
        }
    )
    attr = oracles.attribution(views, clicks, late=late)
    assert not attr.output  # without the late view, k1 has nothing to pair with
    assert attr.late == expected_late
    assert attr.dead == Counter({("views-ab12", 0, 1): 1})
    assert attr.counts == {"in": 3, "contributed": 1, "late": 1, "dead_lettered": 1, "filtered": 0}

    sess = oracles.sessions(views, clicks, late=late, gap_ms=GAP)
    assert sess.late == expected_late
    # Only k1 is in a session; the late view does not count in it.
    (session,) = sess.output
    assert json.loads(session)["views"] == 0
    assert sess.counts == attr.counts


def test_late_bots_go_to_late_events() -> None:
    # "A late message that is valid goes only to late events": being a bot does not change it.
    views = _records("v", [_bytes(_event("v1", 10, agent="Googlebot"))])
    expected = oracles.sessions(views, [], late={("v", 0, 0)})
    assert expected.counts["late"] == 1
    assert expected.counts["filtered"] == 0


def test_late_set_matches_partition_and_topic_exactly() -> None:
    views = _records("v", [_bytes(_event("v1", 10))], partition=1)
    expected = oracles.attribution(views, [], late={("v", 0, 0), ("c", 1, 0)})
    assert expected.counts["late"] == 0
    assert expected.counts["contributed"] == 1


# --- sessions --------------------------------------------------------------------------------


def _sessions(expected: oracles.Expected) -> list[dict[str, Any]]:
    return sorted(
        (json.loads(k) for k in expected.output.elements()),
        key=lambda s: (s["user_id"], s["session_start"]),
    )


def test_sessions_split_only_beyond_the_gap() -> None:
    views = _records(
        "v",
        [
            _bytes(_event("v1", 0)),
            _bytes(_event("v2", GAP)),  # diff exactly gap: the same session (windows touch)
            _bytes(_event("v3", 2 * GAP + 1)),  # diff gap + 1: a new session
        ],
    )
    clicks = _records("c", [_bytes(_event("k1", 2 * GAP + 1))])  # diff 0 to v3
    got = _sessions(oracles.sessions(views, clicks, gap_ms=GAP))
    assert got == [
        {
            "user_id": "u1",
            "session_start": 0,
            "session_end": 2 * GAP,
            "events": 2,
            "views": 2,
            "clicks": 0,
            "pages": 1,
        },
        {
            "user_id": "u1",
            "session_start": 2 * GAP + 1,
            "session_end": 3 * GAP + 1,
            "events": 2,
            "views": 1,
            "clicks": 1,
            "pages": 1,
        },
    ]


def test_sessions_are_per_user_and_sorted_by_ts_not_offset() -> None:
    views = _records(
        "v",
        [
            _bytes(_event("v1", 900, user="a")),
            _bytes(_event("v2", 0, user="a")),
            _bytes(_event("v3", 450, user="b")),
        ],
    )
    got = _sessions(oracles.sessions(views, [], gap_ms=GAP))
    assert [(s["user_id"], s["session_start"], s["session_end"], s["events"]) for s in got] == [
        ("a", 0, 900 + GAP, 2),
        ("b", 450, 450 + GAP, 1),
    ]


def test_sessions_close_by_final_watermark() -> None:
    views = _records("v", [_bytes(_event("v1", 0)), _bytes(_event("v2", 5 * GAP))])
    # Sessions end at GAP and 6 * GAP; each is closed once the watermark reaches end - 1.
    assert len(oracles.sessions(views, [], gap_ms=GAP).output) == 2
    starts = {
        wm: sorted(
            s["session_start"]
            for s in _sessions(oracles.sessions(views, [], gap_ms=GAP, final_watermark=wm))
        )
        for wm in (GAP - 2, GAP - 1, 6 * GAP - 2, 6 * GAP - 1)
    }
    assert starts == {
        GAP - 2: [],
        GAP - 1: [0],
        6 * GAP - 2: [0],
        6 * GAP - 1: [0, 5 * GAP],
    }
    # Unclosed sessions still contributed their events.
    counts = oracles.sessions(views, [], gap_ms=GAP, final_watermark=GAP - 2).counts
    assert counts["contributed"] == 2


@pytest.mark.parametrize(
    ("url", "page"),
    [
        ("HTTPS://A.com/x/?q=1", "https://a.com/x"),
        ("https://a.com/x#f", "https://a.com/x"),
        ("https://a.com", "https://a.com/"),
        ("https://a.com/", "https://a.com/"),
        ("https://a.com///", "https://a.com/"),
        ("https://a.com/X/Y/", "https://a.com/X/Y"),  # path case is significant
        ("https://User:Pw@A.com:8443/p", "https://a.com:8443/p"),
        ("https://a@b@Host.COM/p", "https://host.com/p"),  # userinfo ends at the last '@'
        ("HTTP://a.com/?", "http://a.com/"),
        ("/relative/", ":///relative"),  # no scheme or host: the formula still applies
    ],
)
def test_page_normalisation(url: str, page: str) -> None:
    assert oracles.normalise_page(url) == page


def test_session_pages_are_distinct_after_normalisation() -> None:
    views = _records(
        "v",
        [
            _bytes(_event("v1", 0, page="HTTPS://A.com/x/?q=1")),
            _bytes(_event("v2", 1, page="https://a.com/x/y")),
        ],
    )
    clicks = _records(
        "c",
        [
            _bytes(_event("k1", 2, page="https://a.com/x#f")),
            _bytes(_event("k2", 3, page="https://a.com/X")),  # path case differs: another page
        ],
    )
    (session,) = _sessions(oracles.sessions(views, clicks, gap_ms=GAP))
    # a.com/x (three spellings), a.com/x/y, a.com/X.
    assert (session["events"], session["views"], session["clicks"], session["pages"]) == (
        4,
        2,
        2,
        3,
    )


# --- ledger ----------------------------------------------------------------------------------


def test_ledger_running_sums_per_sku_in_offset_order_skipping_duplicates() -> None:
    orders = [
        # Handed over out of offset order: the oracle must sort by (partition, offset).
        InputRecord("orders-ab12", 1, 2, b"s", _bytes(_order("m2", "s", -3, ts=20))),
        InputRecord("orders-ab12", 1, 0, b"s", _bytes(_order("m1", "s", 10, ts=30))),
        InputRecord("orders-ab12", 1, 3, b"s", _bytes(_order("m1", "s", 10, ts=30))),  # redelivery
        InputRecord("orders-ab12", 1, 1, b"t", _bytes(_order("m3", "t", 5))),
        InputRecord("orders-ab12", 1, 4, b"s", _bytes(_order("m4", "s", -1, ts=40))),
        InputRecord("orders-ab12", 0, 0, b"u", _bytes(_order("m1", "u", 2))),  # same id, other sku
        InputRecord("orders-ab12", 0, 1, b"u", _bytes({**_order("m5", "u", 1), "delta": 1.5})),
        InputRecord("orders-ab12", 0, 2, None, b"\xc3\x28"),
    ]
    by_sku = oracles.ledger_by_sku(orders)
    assert by_sku == {
        "s": [
            {"movement_id": "m1", "sku": "s", "delta": 10, "level": 10, "ts": 30},
            {"movement_id": "m2", "sku": "s", "delta": -3, "level": 7, "ts": 20},
            {"movement_id": "m4", "sku": "s", "delta": -1, "level": 6, "ts": 40},
        ],
        "t": [{"movement_id": "m3", "sku": "t", "delta": 5, "level": 5, "ts": 1_000}],
        "u": [{"movement_id": "m1", "sku": "u", "delta": 2, "level": 2, "ts": 1_000}],
    }
    expected = oracles.ledger(orders)
    assert expected.output == Counter(
        oracles.canonical(record) for records in by_sku.values() for record in records
    )
    assert expected.dead == Counter({("orders-ab12", 0, 1): 1, ("orders-ab12", 0, 2): 1})
    assert not expected.late
    assert expected.counts == {
        "in": 8,
        "contributed": 5,
        "late": 0,
        "dead_lettered": 2,
        "filtered": 1,
    }


def test_ledger_duplicate_with_other_delta_is_still_skipped() -> None:
    orders = _records("o", [_bytes(_order("m1", "s", 4)), _bytes(_order("m1", "s", 100))])
    assert [r["level"] for r in oracles.ledger_by_sku(orders)["s"]] == [4]


def test_ledger_identical_records_are_separate_outputs_only_if_not_duplicates() -> None:
    # Two different movements with the same delta and ts give two equal-looking records except
    # for movement_id and level, so the Counter sees both.
    orders = _records("o", [_bytes(_order("m1", "s", 0)), _bytes(_order("m2", "s", 0))])
    assert sum(oracles.ledger(orders).output.values()) == 2


# --- accounting, for any input ---------------------------------------------------------------

_USERS = st.sampled_from(["u1", "u2"])
_ADS = st.sampled_from(["ad1", "ad2"])
_AGENTS = st.sampled_from([HUMAN, "Googlebot/2.1", "HeadlessChrome"])
_PAGES = st.sampled_from(["https://a.com/x", "HTTPS://A.COM/x/?q", "https://a.com/y"])


@st.composite
def _click_values(draw: st.DrawFn) -> bytes:
    valid = _bytes(
        _event(
            draw(st.text(max_size=3)),
            draw(st.integers(min_value=-5_000, max_value=5_000)),
            user=draw(_USERS),
            ad=draw(_ADS),
            page=draw(_PAGES),
            agent=draw(_AGENTS),
        )
    )
    invalid = st.sampled_from(list(MALFORMED_CLICKS.values())[:-1])  # skip the 65 kB one
    return draw(st.one_of(st.just(valid), invalid, st.binary(max_size=8)))


@st.composite
def _order_values(draw: st.DrawFn) -> bytes:
    valid = _bytes(
        _order(
            draw(st.sampled_from(["m1", "m2", "m3"])),
            draw(st.sampled_from(["s1", "s2"])),
            draw(st.integers(min_value=-5, max_value=5)),
        )
    )
    invalid = st.sampled_from(list(MALFORMED_ORDERS.values()))
    return draw(st.one_of(st.just(valid), invalid, st.binary(max_size=8)))


def _as_records(topic: str, values: list[bytes], partitions: list[int]) -> list[InputRecord]:
    return [
        InputRecord(topic, partitions[i % len(partitions)], i, None, v)
        for i, v in enumerate(values)
    ]


@settings(max_examples=150, deadline=None)
@given(
    views=st.lists(_click_values(), max_size=12),
    clicks=st.lists(_click_values(), max_size=12),
    partitions=st.lists(st.integers(0, 2), min_size=1, max_size=3),
    late_offsets=st.sets(st.integers(0, 11), max_size=6),
    watermark=st.one_of(st.none(), st.integers(-5_000, 10_000)),
)
def test_clickstream_accounting_adds_up(
    views: list[bytes],
    clicks: list[bytes],
    partitions: list[int],
    late_offsets: set[int],
    watermark: int | None,
) -> None:
    view_records = _as_records("views-x", views, partitions)
    click_records = _as_records("clicks-x", clicks, partitions)
    late = {r.origin for r in view_records + click_records if r.offset in late_offsets}
    attr = oracles.attribution(view_records, click_records, late=late)
    sess = oracles.sessions(
        view_records, click_records, late=late, gap_ms=GAP, final_watermark=watermark
    )
    for expected in (attr, sess):
        _assert_counts_add_up(expected.counts)
        assert expected.counts["in"] == len(views) + len(clicks)
        assert expected.counts["dead_lettered"] == sum(expected.dead.values())
        assert expected.counts["late"] == sum(expected.late.values())
    # Both jobs read the same inputs the same way; only their outputs differ.
    assert attr.counts == sess.counts
    assert attr.dead == sess.dead
    assert attr.late == sess.late
    # With everything closed, every contributing event is in exactly one session.
    everything = oracles.sessions(view_records, click_records, late=late, gap_ms=GAP)
    totals = _sessions(everything)
    assert sum(s["events"] for s in totals) == everything.counts["contributed"]
    assert all(s["views"] + s["clicks"] == s["events"] >= s["pages"] >= 1 for s in totals)
    assert sum(sess.output.values()) <= sum(everything.output.values())


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(_order_values(), max_size=20),
    partitions=st.lists(st.integers(0, 2), min_size=1, max_size=3),
)
def test_ledger_accounting_adds_up(values: list[bytes], partitions: list[int]) -> None:
    orders = _as_records("orders-x", values, partitions)
    expected = oracles.ledger(orders)
    _assert_counts_add_up(expected.counts)
    assert expected.counts["in"] == len(values)
    assert expected.counts["late"] == 0
    assert expected.counts["contributed"] == sum(expected.output.values())
    by_sku = oracles.ledger_by_sku(orders)
    for sku, applied in by_sku.items():
        # Each movement at most once per SKU, and the last level is the sum of what was applied.
        assert len({r["movement_id"] for r in applied}) == len(applied)
        assert applied[-1]["level"] == sum(r["delta"] for r in applied)
        assert all(r["sku"] == sku for r in applied)
