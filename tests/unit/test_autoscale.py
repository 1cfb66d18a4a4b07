"""The autoscaler's decision tables: steady, step up, step down, noisy, skewed key, lagging,
partition-capped and bursty load."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from deploy.controller.autoscale import (
    Decision,
    History,
    Sample,
    VertexSample,
    align,
    decide,
)
from deploy.spec import AutoscalerSpec
from tests.unit.builders import T0

SPEC = AutoscalerSpec(
    enabled=True,
    min_parallelism=1,
    max_parallelism=8,
    target_utilization=0.6,
    utilization_band=0.2,
    catch_up="2m",
    metrics_window="1m",
    scale_down_delay="2m",
    cooldown="1m",
    stabilization="30s",
)
CAPACITY = 1000.0  # records/s one subtask of the busiest vertex can process


def samples(
    rate: float,
    parallelism: int,
    *,
    lag: int = 0,
    lag_step: int = 0,
    seconds: int = 60,
    every: int = 5,
    noise: float = 0.0,
    skew: float = 1.0,
    start: int = T0,
) -> list[Sample]:
    """Metrics of a job processing `rate` records/s (or all it can, when that is less)."""
    rng = random.Random(7)
    out = []
    backlog = lag
    for i in range(seconds // every + 1):
        r = rate * (1 + rng.uniform(-noise, noise))
        processed = min(r, CAPACITY * parallelism)
        if i:
            backlog += int((r - processed) * every) + lag_step
        # With a skewed key, the hottest subtask is `skew` times as busy as the average.
        busy = min(1.0, processed / (CAPACITY * parallelism) * skew)
        out.append(
            Sample(
                time=start + i * every * 1000,
                parallelism=parallelism,
                vertices=(
                    VertexSample(
                        "source",
                        0.05,
                        records_in_per_s=0.0,
                        records_out_per_s=processed,
                        is_source=True,
                    ),
                    VertexSample("process", busy=busy, records_in_per_s=processed),
                ),
                lag=backlog,
                input_rate=processed,
            )
        )
    return out


def run(data: list[Sample], history: History | None = None, partitions: int | None = 8) -> Decision:
    return decide(SPEC, data, history or History(), data[-1].time, partitions)


def test_steady_load_inside_the_band_changes_nothing() -> None:
    d = run(samples(1200, 2))  # 60 % busy at parallelism 2: the target
    assert not d.act
    assert d.parallelism == 2
    assert "within the band" in d.reason


def test_a_step_up_scales_to_what_the_load_needs_in_one_go() -> None:
    # 4x the load of the previous test: 4800/s needs 4800 / (1000 * 0.6) = 8 subtasks.
    d = run(samples(4800, 2, lag=0, lag_step=1000))
    assert d.act
    assert d.parallelism == 8
    assert d.reason.startswith("scale up 2 → 8")


def test_a_step_down_waits_for_the_delay_then_scales_down() -> None:
    data = samples(300, 4)  # 7.5 % busy at 4
    first = run(data)
    assert not first.act
    assert first.scale_down_wanted_since == data[-1].time
    assert "waiting 120 s more" in first.reason
    later = samples(300, 4, start=T0 + 120_000)
    d = run(later, History(scale_down_wanted_since=first.scale_down_wanted_since))
    assert d.act
    assert d.parallelism == 1


def test_noise_around_the_target_does_not_flap() -> None:
    for seed_rate in (1100, 1200, 1300):
        d = run(samples(seed_rate, 2, noise=0.25))
        assert not d.act, d.reason


def test_a_skewed_key_counts_the_hottest_subtask_once_records_wait() -> None:
    # Average 45 % busy, one subtask at 90 %: while it keeps up, a restart buys nothing.
    assert not run(samples(900, 2, skew=2.0)).act
    # With a backlog building behind the hot subtask, it does.
    d = run(samples(900, 2, skew=2.0, lag=20_000, lag_step=500))
    assert d.act
    assert d.parallelism > 2


def test_busy_without_waiting_records_is_not_overload() -> None:
    # PyFlink tasks count time spent waiting on their Python worker as busy: 95 % busy at a
    # trickle of input, with nothing pending, must not scale (seen on the real stack).
    data = [
        Sample(s.time, 1, (s.vertices[0], VertexSample("ledger", 0.95, 10.0)), 0, 10.0)
        for s in samples(10, 1)
    ]
    d = run(data)
    assert not d.act
    assert "within the band" in d.reason


def test_growing_lag_scales_up_even_inside_the_band() -> None:
    d = run(samples(1400, 2, lag=40_000, lag_step=2_000))
    assert d.act
    assert "lag is growing" in d.reason or "busy" in d.reason
    # The target includes draining 40k to 64k records within 2 minutes.
    assert d.inputs["target_rate"] > 1400


def test_parallelism_is_capped_by_the_partitions_and_aligned_to_key_groups() -> None:
    d = run(samples(4800, 2, lag_step=1000), partitions=3)
    assert d.act
    assert d.parallelism == 3  # capped by the partitions (3 does not divide 128: the cap wins)
    assert align(3, 8) == 4
    assert align(5, 8) == 8
    assert align(5, 6) == 5  # nothing in 5..6 divides 128: as close as it gets


def test_a_short_burst_is_averaged_over_the_window() -> None:
    data = samples(1200, 2)
    burst = [
        Sample(
            s.time, s.parallelism, (s.vertices[0], VertexSample("process", 1.0, 2000.0)), 0, 3000
        )
        for s in data[-1:]
    ]
    d = run([*data[:-1], *burst])
    assert not d.act, d.reason


@pytest.mark.parametrize(
    ("history", "reason"),
    [
        (History(job_started_at=T0 + 50_000), "stabilising"),
        (History(last_rescale_at=T0 + 30_000), "cooling down"),
    ],
)
def test_no_decision_right_after_a_restart_or_a_rescale(history: History, reason: str) -> None:
    d = run(samples(4800, 2, lag_step=1000), history)
    assert not d.act
    assert reason in d.reason


def test_too_few_metrics_mean_no_decision() -> None:
    assert not run(samples(4800, 2, seconds=10)).act
    assert decide(SPEC, [], History(), T0, 8).reason == "no metrics yet"


def test_bounds_are_respected() -> None:
    spec = SPEC.model_copy(update={"min_parallelism": 2, "max_parallelism": 4})
    data = samples(20_000, 2, lag_step=5000)
    assert decide(spec, data, History(), data[-1].time, 16).parallelism == 4


def test_a_job_warming_up_is_not_scaled_on_a_trickle() -> None:
    """Seen in bench.autoscaler on a loaded machine: right after the start the ledger's vertices
    read 95 % busy (Python workers starting) at a trickle of records while the backlog of the
    start-up waited; extrapolated, that 'needed' 6,495 subtasks and the job went 1 → 4."""
    data = []
    for i in range(13):
        warming = i < 8
        data.append(
            Sample(
                time=T0 + i * 5000,
                parallelism=1,
                vertices=(
                    VertexSample(
                        "source", 0.05, 0.0, records_out_per_s=0.0 if warming else 250.0,
                        is_source=True,
                    ),
                    VertexSample("process", busy=0.95, records_in_per_s=0.02 if warming else 250.0),
                ),
                lag=10_000 + (i * 1250 if warming else 0),
                input_rate=0.0 if warming else 250.0,
            )
        )  # fmt: skip
    # While nothing flows: no decision at all.
    d = run(data[:8])
    assert not d.act
    assert d.reason == "waiting for records to flow"
    # Once records flow, the metrics count from then: collecting, not scaling on the warm-up.
    d = run(data)
    assert not d.act
    assert d.reason == "collecting metrics"


def test_a_barely_fed_vertex_is_no_evidence_of_capacity() -> None:
    data = samples(1200, 2)
    trickle = [
        Sample(
            s.time,
            s.parallelism,
            (*s.vertices, VertexSample("slow-start", busy=0.95, records_in_per_s=0.5)),
            s.lag,
            s.input_rate,
        )
        for s in data
    ]
    d = run(trickle)
    assert not d.act
    assert d.inputs["needed"] <= 2


def test_an_idle_job_still_scales_down_after_the_delay() -> None:
    data = samples(0, 4, seconds=60)
    d = run(data, History(scale_down_wanted_since=T0 - 200_000))
    assert d.act
    assert d.parallelism == 1


def test_a_chained_source_vertex_is_evidence_of_capacity() -> None:
    """Seen with jobs.loadsim (source → Python map → sink chained into one task): the source
    vertex is the only one, 100 % busy at 183 records/s while 400/s arrive; it alone says what
    a subtask can do."""
    data = []
    for i in range(13):
        data.append(
            Sample(
                time=T0 + i * 5000,
                parallelism=1,
                vertices=(
                    VertexSample(
                        "Source: in -> cost -> out", 1.0, records_in_per_s=183.0,
                        records_out_per_s=183.0, is_source=True,
                    ),
                ),
                lag=10_000 + i * 1085,  # 217/s more arrive than are processed
                input_rate=183.0,
            )
        )  # fmt: skip
    d = run(data)
    assert d.act
    # Arrivals 400/s + the lag cleared in a minute, at 183/s x 0.6 a subtask: all 8 partitions.
    assert d.parallelism == 8
    assert d.reason == "scale up 1 → 8: busy 100%"


def test_a_lagging_job_scales_up_even_when_busy_reads_low() -> None:
    """Busy can under-read (time waiting on a Python worker); a lag that grows is evidence
    enough: `current` subtasks process what the sources emit, so the target needs more."""
    data = samples(600, 1)
    low = [
        Sample(
            s.time,
            s.parallelism,
            tuple(replace(v, busy=0.2) for v in s.vertices),
            10_000 + i * 2_000,
            s.input_rate,
        )
        for i, s in enumerate(data)
    ]
    d = run(low)
    assert d.act
    assert d.parallelism > 1
    assert d.reason.startswith("scale up 1 → ")
    assert "lag is growing" in d.reason
