"""bench.latency's figures and its printed summary: nearest-rank percentiles, the exactly-once
estimate, each window's worst net latency and its trend, the attribution_latency_* figures and the
report. Pure (tests/unit/test_latency.py)."""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.latency_job import JobShape
from bench.latency_match import Matched, Sample

PREFIX = "attribution_latency_"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 < q ≤ 1), nearest rank: the smallest value at least q of them are at
    or below. (bench.state_storage's `percentile` takes the rank above at p95 of 100 values.)"""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered) - 1e-9) - 1)]


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 (nearest rank) and max."""
    return {
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


def eos_visible(emitted_ms: float, checkpoints: Sequence[tuple[float, float]]) -> float | None:
    """When a record the sink wrote at `emitted_ms` would be visible to read_committed readers
    were the sink exactly-once: at the completion of the first checkpoint triggered after it
    (its transaction commits then; `checkpoints` = (trigger, completion) sorted by trigger).
    Slightly late: a record written between a trigger and its barrier's arrival goes in that
    checkpoint. None when no such checkpoint completed."""
    at = bisect.bisect_left(checkpoints, (emitted_ms, float("-inf")))
    return checkpoints[at][1] if at < len(checkpoints) else None


def by_window(samples: Iterable[Sample]) -> dict[int, list[Sample]]:
    """The samples of each window (by its end), in window order."""
    out: dict[int, list[Sample]] = {}
    for sample in sorted(samples, key=lambda x: x.window_end):
        out.setdefault(sample.window_end, []).append(sample)
    return out


def trend(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of y over x; None with fewer than three points. Of each window's
    worst net latency over its end: near 0 when the job keeps up, the rate at which it falls
    behind when it does not."""
    if len(points) < 3:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else None


def _s(ms: float) -> float:
    return round(ms / 1000, 3)


def figures(matched: Matched, eos: Sequence[float | None], seconds: float) -> dict[str, Any]:
    """The attribution_latency_* figures of a run (seconds): raw, net of the event-time wait,
    the wait itself and the exactly-once estimate, with the counts."""
    out: dict[str, Any] = {}
    samples = matched.samples
    out[f"{PREFIX}clicks_matched"] = len(samples)
    out[f"{PREFIX}clicks_unmatched"] = len(matched.unmatched)
    out[f"{PREFIX}clicks_window_not_closed"] = matched.not_closed
    out[f"{PREFIX}clicks_warmup"] = matched.warmup
    if not samples:
        return out
    out[f"{PREFIX}clicks_per_s"] = round(len(samples) / seconds, 1)
    for name, values in (
        ("", [s.latency_ms for s in samples]),
        ("net_", [s.net_ms for s in samples]),
        ("event_time_wait_", [s.wait_ms for s in samples]),
    ):
        for stat, value in summary(values).items():
            out[f"{PREFIX}{name}{stat}_s"] = _s(value)
    windows = by_window(samples)
    worst = [(end / 60_000, max(x.net_ms for x in w) / 1000) for end, w in windows.items()]
    slope = trend(worst)
    out[f"{PREFIX}windows"] = len(windows)
    out[f"{PREFIX}window_net_max_s"] = [round(y, 2) for _, y in worst]
    out[f"{PREFIX}net_trend_s_per_min"] = round(slope, 2) if slope is not None else None
    pairs = [(s, e) for s, e in zip(samples, eos, strict=True) if e is not None]
    if pairs:
        for name, values in (
            ("eos_estimate_", [e - s.produced_ms for s, e in pairs]),
            ("eos_estimate_net_", [e - s.produced_ms - s.wait_ms for s, e in pairs]),
            ("eos_checkpoint_adds_", [e - s.visible_ms for s, e in pairs]),
        ):
            for stat, value in summary(values).items():
                out[f"{PREFIX}{name}{stat}_s"] = _s(value)
    return out


@dataclass
class Run:
    """What a run found: its figures, the measured clicks, their exactly-once estimates (in the
    order of the samples), when each window's first record was visible and the job's shape."""

    figures: dict[str, Any]
    matched: Matched
    eos: list[float | None]
    windows: dict[int, float]  # window end → its first record's visible time
    shape: JobShape


def report(run: Run) -> list[str]:
    """The readable summary: the figures and one line per window."""
    f = run.figures
    p = PREFIX
    lines = [
        f"attribution latency: {f[f'{p}rate_events_per_s']:,.0f} messages/s "
        f"(sent {f[f'{p}sent_events_per_s']:,}/s), {f[f'{p}seconds']:.0f} s measured after "
        f"{f[f'{p}warmup_s']:.0f} s of warm-up; window {f[f'{p}window_s']:g} s, "
        f"out-of-orderness {f[f'{p}out_of_orderness_s']:g} s, checkpoints every "
        f"{f[f'{p}checkpoint_interval_s']:g} s, sink {f[f'{p}sink']}",
        f"clicks: {f[f'{p}clicks_matched']:,} matched, {f[f'{p}clicks_unmatched']:,} "
        f"unmatched, {f[f'{p}clicks_window_not_closed']:,} in windows still open at the end, "
        f"{f[f'{p}clicks_warmup']:,} in the warm-up; {f[f'{p}records']:,} records, "
        f"{f[f'{p}records_of_unattributable_clicks']:,} of clicks the contract does not "
        "attribute",
    ]
    if f.get(f"{p}p50_s") is not None:
        lines += _latency_table(f)
    lines.append(
        f"produce → ack p50 {f[f'{p}produce_to_ack_p50_ms']} ms, producer behind its pace at "
        f"most {f[f'{p}producer_behind_max_ms']} ms; {f[f'{p}checkpoints']} checkpoints "
        f"({f[f'{p}checkpoints_failed']} failed), p50 {f[f'{p}checkpoint_duration_p50_ms']} ms; "
        f"back-pressured max {f[f'{p}backpressured_max']}; "
        f"TaskManager cores {f[f'{p}taskmanager_cores']}"
    )
    lines.append(
        f"load average (1/5/15 min): {f[f'{p}load_average_before']} before, "
        f"{f[f'{p}load_average']} when the load stopped (2 cores, shared)"
    )
    return lines + _window_lines(run)


def _latency_table(f: dict[str, Any]) -> list[str]:
    """The latencies (p50, p95, p99, max), the goal and the per-window trend."""
    p = PREFIX
    lines = ["seconds                     p50      p95      p99      max"]
    rows = [
        ("produce → visible", ""),
        ("event-time wait", "event_time_wait_"),
        ("net of the wait", "net_"),
        ("exactly-once estimate", "eos_estimate_"),
        ("  net of the wait", "eos_estimate_net_"),
        ("  checkpoint adds", "eos_checkpoint_adds_"),
    ]
    for label, key in rows:
        if f.get(f"{p}{key}p50_s") is None:
            continue
        values = [f[f"{p}{key}{s}_s"] for s in ("p50", "p95", "p99", "max")]
        lines.append(f"{label:<24}" + "".join(f"{v:9.3f}" for v in values))
    net = f[f"{p}net_p99_s"]
    lines.append(f"goal (net p99 ≤ 2 s): {'met' if net <= 2 else 'NOT met'} ({net:.3f} s)")
    lines.append(
        f"worst net per window: {f[f'{p}window_net_max_s']} s; trend "
        f"{f[f'{p}net_trend_s_per_min']} s per minute (about 0: the job keeps up)"
    )
    return lines


def _window_lines(run: Run) -> list[str]:
    """One line per measured window: its clicks, their net latency and its first record."""
    lines = ["per window (end, UTC): clicks, net of the wait p50/max s, first record at"]
    ooo_ms = run.shape.ooo_ms
    for end, samples in by_window(run.matched.samples).items():
        nets = sorted(x.net_ms / 1000 for x in samples)
        first = run.windows.get(end)
        shown = f"+{(first - end - ooo_ms) / 1000:.3f} s" if first is not None else "-"
        clock = dt.datetime.fromtimestamp(end / 1000, dt.UTC).strftime("%H:%M:%S")
        lines.append(
            f"  {clock}: {len(samples):5,}  {nets[len(nets) // 2]:7.3f} {nets[-1]:7.3f}  {shown}"
        )
    return lines
