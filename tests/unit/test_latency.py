"""bench.latency's pure parts (bench/latency_*.py): event time on the wall clock, what the
contract attributes, matching records to clicks, the event-time wait, percentiles and the
exactly-once estimate."""

from __future__ import annotations

import json

import pytest

from bench import latency_clock, latency_figures, latency_job, latency_match
from bench.latency_clock import Restamper
from bench.latency_match import Event
from deploy.datagen.generator import Message


def _msg(ts: int | str, kind: str = "normal", event_id: str = "v-1") -> Message:
    value = json.dumps({"event_id": event_id, "user_id": "u1", "ts": ts}, separators=(",", ":"))
    return Message("views", b"u1", value.encode(), kind)  # type: ignore[arg-type]


def _ts(value: bytes) -> int:
    ts: int = json.loads(value)["ts"]
    return ts


def test_restamped_event_time_is_the_send_time_less_how_far_behind_it_was_generated() -> None:
    r = Restamper(scale=0.5)
    assert _ts(r.stamp(_msg(1_000), now_ms=50_000)) == 50_000
    assert _ts(r.stamp(_msg(1_010), now_ms=50_004)) == 50_004  # newest so far: the send time
    # 2 s behind the newest generated ts: 1 s behind the send time at half the pace's scale.
    assert _ts(r.stamp(_msg(-990, "out_of_order"), now_ms=50_005)) == 49_005
    assert r.high == 1_010


def test_a_duplicate_goes_as_the_same_bytes_as_its_original() -> None:
    r = Restamper()
    original = _msg(1_000, event_id="c-7")
    sent = r.stamp(original, now_ms=10_000)
    r.stamp(_msg(2_000, event_id="v-8"), now_ms=10_500)
    copy = Message(original.topic, original.key, original.value, "duplicate")
    assert r.stamp(copy, now_ms=11_000) == sent


def test_messages_without_an_integer_ts_go_as_they_are() -> None:
    r = Restamper()
    for value in (b"not json", b'{"ts":"12"}', b'{"ts":1.5e1}', b'{"event_id":"x"}'):
        assert r.stamp(Message("views", None, value, "malformed"), now_ms=5) == value
    assert r.high is None
    # A malformed one with an integer ts still gets the wall clock (it feeds the watermark).
    broken = Message("views", None, b'{"event_id":"x","ts":100}', "malformed")
    assert r.stamp(broken, now_ms=7) == b'{"event_id":"x","ts":7}'


def test_unknown_fields_after_ts_are_kept() -> None:
    value = b'{"event_id":"v","ts":100,"x_debug":{"path":[1,2]}}'
    stamped = Restamper().stamp(Message("views", b"u", value, "normal"), now_ms=9)
    assert stamped == b'{"event_id":"v","ts":9,"x_debug":{"path":[1,2]}}'


@pytest.mark.parametrize(
    ("rate", "gap", "scale"), [(2_000, 1, 0.5), (1_000, 1, 1.0), (500, 2, 1.0), (300, 3, 10 / 9)]
)
def test_the_generator_is_paced_to_run_its_event_time_with_the_clock(
    rate: float, gap: int, scale: float
) -> None:
    assert latency_clock.pace(rate) == (gap, pytest.approx(scale))


def test_the_event_time_wait_is_to_the_window_end_plus_the_out_of_orderness() -> None:
    assert latency_match.window_end(12_345, 10_000) == 20_000
    assert latency_match.window_end(20_000, 10_000) == 30_000  # the end belongs to the next window
    assert latency_match.window_end(-1, 10_000) == 0
    # A click produced (and stamped) at 12.345 s waits until 20 s + 5 s.
    assert latency_match.event_time_wait_ms(12_345, 12_345, 10_000, 5_000) == 12_655
    # Out of order: stamped 1 s before it was produced, it waits 1 s less.
    assert latency_match.event_time_wait_ms(13_345, 12_345, 10_000, 5_000) == 11_655


def test_a_window_closes_only_when_event_time_went_past_it_and_the_out_of_orderness() -> None:
    margin = latency_match.CLOSE_MARGIN_MS
    assert latency_match.closes(12_345, 10_000, 5_000, final_ts=25_000 + margin)
    assert not latency_match.closes(12_345, 10_000, 5_000, final_ts=25_000 + margin - 1)


def _ev(event_id: str, ts: int, produced: int | None = None, user: str = "u1") -> Event:
    return Event(event_id, user, "ad1", ts, ts if produced is None else produced)


def test_attributable_clicks_have_a_view_of_the_same_user_and_ad_window_not_after_them() -> None:
    views = [_ev("v1", 1_000), _ev("v2", 15_000), _ev("v3", 3_000, user="u2")]
    clicks = [
        _ev("c1", 2_000),  # v1 before it, same window
        _ev("c2", 500),  # before every view of its window
        _ev("c3", 12_000),  # next window: v2 comes after it
        _ev("c4", 16_000),  # v2 before it
        _ev("c5", 9_999, user="u3"),  # nobody's view
        _ev("c6", 3_000, user="u2"),  # a view at the same ts counts
        _ev("c1", 2_000, produced=2_500),  # a duplicate: the first send counts
    ]
    found = latency_match.attributable(views, clicks, 10_000)
    assert sorted(found) == ["c1", "c4", "c6"]
    assert found["c1"].produced_ms == 2_000


def test_first_visible_takes_each_clicks_earliest_record() -> None:
    seen = latency_match.first_visible([("c1", 30.0), ("c2", 31.0), ("c1", 29.0)])
    assert seen == {"c1": 29.0, "c2": 31.0}


def test_match_pairs_measured_clicks_and_counts_the_rest() -> None:
    expected = {
        "warm": _ev("warm", 1_000),
        "ok": _ev("ok", 12_000, produced=12_100),
        "lost": _ev("lost", 13_000),
        "open": _ev("open", 21_000),
    }
    visible = {"warm": 16_000.0, "ok": 25_600.0, "open": 40_000.0}
    m = latency_match.match(expected, visible, 5_000, 10_000, 5_000, final_ts=30_000)
    assert (m.warmup, m.not_closed, m.unmatched) == (1, 1, ["lost"])
    [s] = m.samples
    assert (s.click_id, s.window_end) == ("ok", 20_000)
    assert s.latency_ms == 13_500
    assert s.wait_ms == 12_900  # to 20 s + 5 s
    assert s.net_ms == 600  # after the window could close


def test_summary_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert latency_figures.summary(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert latency_figures.summary([3.0]) == {"p50": 3.0, "p95": 3.0, "p99": 3.0, "max": 3.0}


def test_exactly_once_records_show_when_the_next_checkpoint_completes() -> None:
    checkpoints = [(10_000.0, 10_300.0), (20_000.0, 20_250.0)]
    assert latency_figures.eos_visible(9_000, checkpoints) == 10_300
    assert latency_figures.eos_visible(10_000, checkpoints) == 10_300
    assert latency_figures.eos_visible(10_001, checkpoints) == 20_250
    assert latency_figures.eos_visible(20_001, checkpoints) is None


def test_the_sink_guarantee_is_read_from_the_jobs_ddl() -> None:
    ddl = [
        "CREATE TEMPORARY TABLE `other` (...) WITH ('sink.delivery-guarantee' = 'none')",
        "CREATE TEMPORARY TABLE `attributed` (\n  `k` STRING\n) WITH (\n  'connector' = "
        "'kafka',\n  'sink.delivery-guarantee' = 'exactly-once'\n)",
    ]
    assert latency_job.sink_guarantee(ddl, "attributed") == "exactly-once"
    assert (
        latency_job.sink_guarantee(["CREATE TEMPORARY TABLE `t` (a INT)"], "t") == "at-least-once"
    )
    with pytest.raises(ValueError, match="no table"):
        latency_job.sink_guarantee(ddl, "missing")


def test_the_shipped_job_shape() -> None:
    shape = latency_job.job_shape(latency_job.job_flags("10s", []))
    assert (shape.window_ms, shape.ooo_ms, shape.checkpoint_ms) == (10_000, 5_000, 10_000)
    assert shape.sink == "at-least-once"  # attribution as shipped: no transactions


def test_figures_in_seconds_with_the_estimate() -> None:
    m = latency_match.Matched(
        samples=[
            latency_match.Sample("a", 1_000.0, 15_500.0, 14_000.0, 10_000),
            latency_match.Sample("b", 9_000.0, 15_600.0, 6_000.0, 10_000),
        ],
        unmatched=["c"],
        not_closed=2,
        warmup=3,
    )
    out = latency_figures.figures(m, [20_100.0, None], seconds=10)
    p = latency_figures.PREFIX
    assert out[f"{p}clicks_matched"] == 2
    assert out[f"{p}clicks_unmatched"] == 1
    assert out[f"{p}p50_s"] == 6.6  # nearest rank: the smaller of two
    assert out[f"{p}max_s"] == 14.5
    assert out[f"{p}net_max_s"] == 0.6
    assert out[f"{p}event_time_wait_p50_s"] == 6.0
    assert out[f"{p}eos_estimate_max_s"] == 19.1  # only "a" has a checkpoint after it
    assert out[f"{p}eos_checkpoint_adds_p50_s"] == 4.6
    assert latency_figures.figures(latency_match.Matched(), [], 10)[f"{p}clicks_matched"] == 0


def test_the_joins_watermark_is_measured_against_the_clock() -> None:
    marks = [
        {"id": "0.currentInputWatermark", "value": "95000"},
        {"id": "1.currentInputWatermark", "value": "93500"},
    ]
    assert latency_job.watermark_behind_s(marks, now_ms=100_000) == 6.5  # the least subtask's
    none_yet = [{"id": "0.currentInputWatermark", "value": "-9223372036854775808"}]
    assert latency_job.watermark_behind_s(none_yet, now_ms=100_000) is None
    assert latency_job.watermark_behind_s([], now_ms=100_000) is None


def test_percentile_is_the_smallest_value_with_q_of_them_at_or_below() -> None:
    values = [float(v) for v in range(1, 11)]
    assert latency_figures.percentile(values, 0.95) == 10.0
    assert latency_figures.percentile(values, 0.5) == 5.0
    assert latency_figures.percentile(values, 0.1) == 1.0


def test_windows_and_the_trend_of_their_worst_latency() -> None:
    samples = [
        latency_match.Sample("b", 12_000.0, 26_000.0, 13_000.0, 20_000),
        latency_match.Sample("a", 1_000.0, 16_000.0, 14_000.0, 10_000),
        latency_match.Sample("c", 13_000.0, 27_000.0, 12_000.0, 20_000),
    ]
    windows = latency_figures.by_window(samples)
    assert list(windows) == [10_000, 20_000]
    assert [s.click_id for s in windows[20_000]] == ["b", "c"]
    assert latency_figures.trend([(0.0, 1.0), (1.0, 1.0), (2.0, 1.0)]) == 0.0
    assert latency_figures.trend([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == 2.0  # falling behind
    assert latency_figures.trend([(0.0, 1.0), (1.0, 3.0)]) is None
