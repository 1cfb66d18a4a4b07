"""Data-level health of a live job: a pure judgement of its recent signals (a window kept by the
runtime, oldest first) against the spec's `health` thresholds, written as four conditions:

| condition            | False when (reason)                                                     |
|----------------------|-------------------------------------------------------------------------|
| `LagHealthy`         | the consumer lag has not fallen for `lagWindow` and rose (LagGrowing)   |
| `WatermarkAdvancing` | the watermark has not moved for `watermarkStall` while records kept     |
|                      | arriving on the inputs (WatermarkStalled); absent for a job without one |
| `DeadLettersLow`     | over `deadLetterWindow`, more dead letters than `deadLetterRatio` times |
|                      | the records consumed (DeadLettersHigh)                                  |
| `CheckpointsHealthy` | the newest `checkpointFailures` checkpoints all failed                  |
|                      | (CheckpointsFailing)                                                    |

Each turn to False is one Warning Event (its reason as above), each turn back one Normal Event
(`…Recovered`); while a condition stays as it is, only its message (the numbers) changes.

The same measures go into `status.health`, which the controller exports as metrics with the
job's thresholds beside them (deploy/controller/metrics.py): the chart's alert rules compare
the two, so an alert and its condition agree for every job whatever its thresholds.

Lag is Kafka's committed lag, which a job that keeps up shows as a sawtooth (it falls at each
checkpoint): "not fallen for the whole window" separates a job falling behind (or stuck) from
one that merely has input waiting between two commits.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deploy.controller.decide.conditions import drop_condition, find_condition, set_condition
from deploy.controller.decide.decision import Decision
from deploy.controller.signals import Signals
from deploy.spec import HealthSpec, milliseconds

LAG, WATERMARK, DEAD_LETTERS, CHECKPOINTS = (
    "LagHealthy",
    "WatermarkAdvancing",
    "DeadLettersLow",
    "CheckpointsHealthy",
)
CONDITIONS = (LAG, WATERMARK, DEAD_LETTERS, CHECKPOINTS)


@dataclass(frozen=True)
class Verdict:
    condition: str
    ok: bool
    reason: str  # the condition's reason; when not ok, also the Warning Event's
    message: str
    recovered: str  # the Normal Event's reason when it turns ok again


@dataclass(frozen=True)
class Assessment:
    verdicts: tuple[Verdict, ...]
    measures: dict[str, Any]  # what status.health shows and the metrics export


def _secs(ms: int) -> str:
    return f"{ms / 1000:.0f} s"


def lag_growing_ms(window: Sequence[Signals], checkpoint_interval_ms: int = 0) -> int:
    """How long the lag has been growing, up to the newest sample: the longest span from a
    sample whose lag every later sample exceeds, to the newest, over which the lag rose by more
    than the slack. The slack is what a job that keeps up still has uncommitted: the input of
    two checkpoint intervals (offsets are committed when a checkpoint completes), so a
    sawtooth of commits is not growth, while a rising one (lows higher each time) is."""
    seen = [s for s in window if s.lag is not None]
    if len(seen) < 2:
        return 0
    first, last = seen[0], seen[-1]
    slack = 0.0
    if first.arrived is not None and last.arrived is not None and last.time > first.time:
        rate = max(0, last.arrived - first.arrived) / (last.time - first.time)  # per ms
        slack = rate * 2 * checkpoint_interval_ms
    newest = last.lag or 0
    longest = 0
    later_min = newest  # the smallest lag of the samples after the one looked at
    for s in reversed(seen[:-1]):
        lag = s.lag or 0
        if lag < later_min and newest - lag > slack:
            longest = last.time - s.time
        later_min = min(later_min, lag)
    return longest


def watermark_stalled_ms(window: Sequence[Signals]) -> int | None:
    """How long the watermark has not moved while records kept arriving (0 while it moves or
    nothing arrives); None when the job has no watermark now."""
    seen = [s for s in window if s.watermark is not None]
    if not seen or window[-1].watermark is None:
        return None
    since = seen[0]
    for before, after in itertools.pairwise(seen):
        if (after.watermark or 0) > (before.watermark or 0):
            since = after
    last = seen[-1]
    flowed = (last.arrived or 0) > (since.arrived or 0) and since.arrived is not None
    return last.time - since.time if flowed else 0


def dead_letters_in(window: Sequence[Signals], span_ms: int) -> tuple[int, int, int] | None:
    """(dead letters, records consumed, ms covered) over at least the newest `span_ms`; None
    until the window reaches back that far. Never less: dead letters are written as they are
    met, while the records consumed move at checkpoints, so over a short span (a job that just
    started) a few bad records could read as nothing but dead letters."""
    seen = [s for s in window if s.dead_letters is not None and s.consumed is not None]
    if not seen:
        return None
    last = seen[-1]
    old_enough = [s for s in seen if last.time - s.time >= span_ms]
    if not old_enough:
        return None
    first = old_enough[-1]
    dead = max(0, (last.dead_letters or 0) - (first.dead_letters or 0))
    consumed = max(0, (last.consumed or 0) - (first.consumed or 0))
    return dead, consumed, last.time - first.time


def assess(
    spec: HealthSpec, window: Sequence[Signals], checkpoint_interval_ms: int = 0
) -> Assessment:
    """The verdicts and measures of a non-empty window (the job checkpointing every
    `checkpoint_interval_ms`)."""
    last = window[-1]
    measures: dict[str, Any] = {"sampledAt": last.time}
    for name, value in (
        ("arrived", last.arrived),
        ("consumed", last.consumed),
        ("deadLetters", last.dead_letters),
    ):
        if value is not None:
            measures[name] = value
    judged = (
        _lag(spec, window, checkpoint_interval_ms, measures),
        _watermark(spec, window, measures),
        _dead_letters(spec, window, measures),
        _checkpoints(spec, last, measures),
    )
    return Assessment(tuple(v for v in judged if v is not None), measures)


def _lag(
    spec: HealthSpec, window: Sequence[Signals], interval_ms: int, measures: dict[str, Any]
) -> Verdict | None:
    lag = window[-1].lag
    if lag is None:
        return None
    growing = lag_growing_ms(window, interval_ms)
    measures.update(lag=lag, lagGrowingSeconds=growing / 1000)
    if growing >= milliseconds(spec.lag_window):
        message = (
            f"consumer lag {lag} records, growing for {_secs(growing)} "
            f"(lagWindow {spec.lag_window})"
        )
        return Verdict(LAG, False, "LagGrowing", message, "LagRecovered")
    message = f"consumer lag {lag} records, not growing for lagWindow {spec.lag_window}"
    return Verdict(LAG, True, "LagSteady", message, "LagRecovered")


def _watermark(
    spec: HealthSpec, window: Sequence[Signals], measures: dict[str, Any]
) -> Verdict | None:
    stalled, watermark = watermark_stalled_ms(window), window[-1].watermark
    if stalled is None or watermark is None:
        return None
    measures.update(watermark=watermark, watermarkStalledSeconds=stalled / 1000)
    if stalled >= milliseconds(spec.watermark_stall):
        message = (
            f"watermark {watermark} has not advanced for {_secs(stalled)} while records kept "
            f"arriving (watermarkStall {spec.watermark_stall})"
        )
        return Verdict(WATERMARK, False, "WatermarkStalled", message, "WatermarkRecovered")
    return Verdict(
        WATERMARK, True, "Advancing", f"watermark {watermark} advancing", "WatermarkRecovered"
    )


def _dead_letters(
    spec: HealthSpec, window: Sequence[Signals], measures: dict[str, Any]
) -> Verdict | None:
    counted = dead_letters_in(window, milliseconds(spec.dead_letter_window))
    if counted is None:
        return None
    dead, consumed, span = counted
    ratio = dead / consumed if consumed else (math.inf if dead else 0.0)
    # JSON has no infinity: dead letters with nothing consumed read as None (and +Inf as a metric).
    measures["deadLetterRatio"] = None if math.isinf(ratio) else round(ratio, 6)
    said = f"{dead} dead letters for {consumed} records consumed in {_secs(span)}"
    if dead > 0 and ratio > spec.dead_letter_ratio:
        message = f"{said} (above deadLetterRatio {spec.dead_letter_ratio})"
        return Verdict(DEAD_LETTERS, False, "DeadLettersHigh", message, "DeadLettersRecovered")
    message = f"{said} (deadLetterRatio {spec.dead_letter_ratio})"
    return Verdict(DEAD_LETTERS, True, "DeadLettersLow", message, "DeadLettersRecovered")


def _checkpoints(spec: HealthSpec, last: Signals, measures: dict[str, Any]) -> Verdict | None:
    in_a_row = last.checkpoints_failed_in_a_row
    if in_a_row is None:
        return None
    measures.update(
        checkpointsCompleted=last.checkpoints_completed,
        checkpointsFailed=last.checkpoints_failed,
        checkpointsFailedInARow=in_a_row,
    )
    if in_a_row >= spec.checkpoint_failures:
        message = (
            f"the last {in_a_row} checkpoints failed "
            f"(checkpointFailures {spec.checkpoint_failures})"
        )
        return Verdict(CHECKPOINTS, False, "CheckpointsFailing", message, "CheckpointsRecovered")
    message = (
        f"{in_a_row} failed since the last completed checkpoint "
        f"({last.checkpoints_completed} completed, {last.checkpoints_failed} failed)"
    )
    return Verdict(CHECKPOINTS, True, "Completing", message, "CheckpointsRecovered")


def track_health(d: Decision) -> None:
    """Judge the observation's window into the status: conditions, transition Events and the
    measures. With health disabled, its conditions and measures are removed."""
    st, spec = d.st, d.spec.health
    if not spec.enabled:
        for condition in CONDITIONS:
            drop_condition(st, condition)
        st.health = {}
        return
    if not d.obs.signals:
        return
    assessment = assess(spec, d.obs.signals, milliseconds(d.spec.checkpointing.interval))
    for v in assessment.verdicts:
        was = find_condition(st, v.condition)
        if not v.ok and (was is None or was.status != "False"):
            d.note(v.reason, v.message, warning=True)
        elif v.ok and was is not None and was.status == "False":
            d.note(v.recovered, v.message)
        set_condition(st, d.now, v.condition, v.ok, v.reason, v.message)
    st.health = assessment.measures
