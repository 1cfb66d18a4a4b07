"""Data-level health (deploy/controller/decide/health.py): each rule driven through decide() by
sequences of observations, one sample every 5 s as the runtime takes them — conditions that flip
with their numbers in the message, one Warning Event going bad and one Normal Event recovering,
nothing repeated while a condition holds, per-job thresholds, and health turned off."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deploy.controller.decide import decide
from deploy.controller.decide import health as h
from deploy.controller.signals import Signals
from deploy.spec import Condition, Event, FlinkJob, HealthSpec
from tests.unit.builders import T0, change_spec, deployed, flinkjob, obs, running, with_status

STEP = 5_000  # the runtime's sampling interval


def signals(n: int, **series: Sequence[Any]) -> list[Signals]:
    """`n` samples STEP apart from T0; each keyword gives a field's values (shorter: repeats
    its last value)."""
    out = []
    for i in range(n):
        fields = {k: v[min(i, len(v) - 1)] for k, v in series.items()}
        out.append(Signals(time=T0 + i * STEP, **fields))
    return out


class Run:
    """A live job reconciled once per sample, its window growing as the runtime's does."""

    def __init__(self, job: FlinkJob | None = None) -> None:
        self.job = job or deployed(flinkjob())
        self.window: list[Signals] = []

    def feed(self, samples: Sequence[Signals]) -> Run:
        for s in samples:
            self.window.append(s)
            keep = h.milliseconds(self.job.spec.health.lag_window) + 10 * STEP
            self.window = [w for w in self.window if s.time - w.time <= keep]
            plan = decide(self.job, obs(now=s.time, job=running(), signals=tuple(self.window)))
            self.job = with_status(self.job, plan.status)
        return self

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.job.status.conditions if c.type == type_), None)

    def events(self, *reasons: str) -> list[Event]:
        return [e for e in self.job.status.events if e.reason in reasons]


def shifted(samples: Sequence[Signals], by: int) -> list[Signals]:
    return [Signals(**{**s.__dict__, "time": s.time + by}) for s in samples]


# -- lag ---------------------------------------------------------------------------------------


def test_lag_growth_is_measured_since_it_last_fell() -> None:
    assert h.lag_growing_ms(signals(5, lag=[10, 20, 30, 40, 50])) == 4 * STEP
    assert h.lag_growing_ms(signals(5, lag=[50, 10, 20, 30, 40])) == 3 * STEP
    assert h.lag_growing_ms(signals(5, lag=[7])) == 0  # flat: not growing
    assert h.lag_growing_ms(signals(5, lag=[10, 20, 5, 20, 5])) == 0  # the commits' sawtooth
    assert h.lag_growing_ms(signals(1, lag=[10])) == 0
    assert h.lag_growing_ms(signals(3, lag=[None, 10, 20])) == STEP  # unknown samples skipped


def test_commits_sawtooth_within_two_checkpoints_of_input_is_not_growth() -> None:
    # 20 records/s arrive (100 a sample), checkpoints every 1 s: 40 records may stay uncommitted.
    arrived = [100 * i for i in range(6)]
    healthy = signals(6, lag=[5, 30, 10, 35, 8, 32], arrived=arrived)
    assert h.lag_growing_ms(healthy, 1_000) == 0
    assert h.lag_growing_ms(healthy) == 5 * STEP  # without the slack, the low at 5 counts
    rising = signals(6, lag=[10, 60, 40, 90, 70, 120], arrived=arrived)
    assert h.lag_growing_ms(rising, 1_000) == 5 * STEP  # lows rise: the job falls behind


def test_a_sawtooth_lag_stays_healthy() -> None:
    run = Run().feed(signals(120, lag=[100, 400, 700, 50] * 30))
    c = run.condition(h.LAG)
    assert c is not None
    assert c.status == "True"
    assert c.reason == "LagSteady"
    assert run.events("LagGrowing", "LagRecovered") == []


def test_lag_growing_for_the_whole_window_warns_once_then_recovers_once() -> None:
    window_ms = 300_000  # the default lagWindow, 5m
    n = window_ms // STEP
    run = Run().feed(signals(n, lag=[i * 100 for i in range(n)]))
    c = run.condition(h.LAG)
    assert c is not None
    assert c.status == "True", "not yet for the whole window"
    run.feed(shifted(signals(1, lag=[n * 100]), n * STEP))
    c = run.condition(h.LAG)
    assert c is not None
    assert c.status == "False"
    assert c.reason == "LagGrowing"
    assert c.message == f"consumer lag {n * 100} records, growing for 300 s (lagWindow 5m)"
    flipped = c.last_transition_time
    run.feed(shifted(signals(10, lag=[(n + 1 + i) * 100 for i in range(10)]), (n + 1) * STEP))
    c = run.condition(h.LAG)
    assert c is not None
    assert c.status == "False"
    assert c.last_transition_time == flipped
    assert "growing for 350 s" in c.message  # the numbers follow, the transition does not
    (warning,) = run.events("LagGrowing")
    assert warning.type == "Warning"
    assert warning.message.startswith("consumer lag 6000 records")
    run.feed(shifted(signals(3, lag=[0]), (n + 11) * STEP))  # caught up
    c = run.condition(h.LAG)
    assert c is not None
    assert c.status == "True"
    (recovered,) = run.events("LagRecovered")
    assert recovered.type == "Normal"
    assert run.job.status.health["lag"] == 0
    assert run.job.status.health["lagGrowingSeconds"] == 0


def test_a_jobs_own_lag_window_applies() -> None:
    job = deployed(flinkjob(health={"lagWindow": "20s"}))
    run = Run(job).feed(signals(5, lag=[1, 2, 3, 4, 5]))
    c = run.condition(h.LAG)
    assert c is not None
    assert c.status == "False"
    assert c.message.endswith("growing for 20 s (lagWindow 20s)")


# -- watermark ---------------------------------------------------------------------------------


def test_a_watermark_stalled_while_records_arrive_warns_then_recovers() -> None:
    job = deployed(flinkjob(health={"watermarkStall": "30s"}))
    moving = signals(4, watermark=[1000, 2000, 3000, 4000], arrived=[10, 20, 30, 40])
    run = Run(job).feed(moving)
    c = run.condition(h.WATERMARK)
    assert c is not None
    assert c.status == "True"
    assert c.reason == "Advancing"
    stuck = shifted(signals(6, watermark=[4000], arrived=[50 + 10 * i for i in range(6)]), 4 * STEP)
    run.feed(stuck)
    c = run.condition(h.WATERMARK)
    assert c is not None
    assert c.status == "False"
    assert c.reason == "WatermarkStalled"
    assert "watermark 4000 has not advanced for 30 s" in c.message
    assert run.job.status.health["watermarkStalledSeconds"] == 30
    assert len(run.events("WatermarkStalled")) == 1
    run.feed(shifted(signals(1, watermark=[9000], arrived=[200]), 10 * STEP))
    c = run.condition(h.WATERMARK)
    assert c is not None
    assert c.status == "True"
    assert len(run.events("WatermarkRecovered")) == 1


def test_a_watermark_standing_still_without_input_is_no_stall() -> None:
    job = deployed(flinkjob(health={"watermarkStall": "10s"}))
    run = Run(job).feed(signals(20, watermark=[4000], arrived=[100]))
    c = run.condition(h.WATERMARK)
    assert c is not None
    assert c.status == "True"
    assert run.job.status.health["watermarkStalledSeconds"] == 0


def test_a_job_without_watermarks_has_no_watermark_condition() -> None:
    run = Run().feed(signals(20, watermark=[None], arrived=[i for i in range(20)], lag=[0]))
    assert run.condition(h.WATERMARK) is None
    assert "watermark" not in run.job.status.health
    assert run.condition(h.LAG) is not None


# -- dead letters ------------------------------------------------------------------------------


def test_dead_letters_above_the_ratio_warn_then_recover() -> None:
    job = deployed(flinkjob(health={"deadLetterRatio": 0.1, "deadLetterWindow": "20s"}))
    # 2 dead letters per 100 consumed: 2 %.
    run = Run(job).feed(signals(6, consumed=[i * 100 for i in range(6)], dead_letters=[0, 2, 4]))
    c = run.condition(h.DEAD_LETTERS)
    assert c is not None
    assert c.status == "True"
    assert c.reason == "DeadLettersLow"
    # Then 30 per 100: 30 % over the 20 s window.
    bad = signals(
        5, consumed=[600 + i * 100 for i in range(5)], dead_letters=[34 + 30 * i for i in range(5)]
    )
    run.feed(shifted(bad, 6 * STEP))
    c = run.condition(h.DEAD_LETTERS)
    assert c is not None
    assert c.status == "False"
    assert c.reason == "DeadLettersHigh"
    assert c.message == (
        "120 dead letters for 400 records consumed in 20 s (above deadLetterRatio 0.1)"
    )
    assert run.job.status.health["deadLetterRatio"] == 0.3
    assert len(run.events("DeadLettersHigh")) == 1
    clean = signals(6, consumed=[1100 + 100 * i for i in range(6)], dead_letters=[154])
    run.feed(shifted(clean, 11 * STEP))
    c = run.condition(h.DEAD_LETTERS)
    assert c is not None
    assert c.status == "True"
    assert len(run.events("DeadLettersRecovered")) == 1


def test_dead_letters_are_judged_only_over_a_whole_window() -> None:
    # A job that just started: dead letters written, nothing committed yet.
    job = deployed(flinkjob(health={"deadLetterWindow": "20s"}))
    run = Run(job).feed(signals(4, consumed=[0], dead_letters=[0, 5, 10, 15]))
    assert run.condition(h.DEAD_LETTERS) is None
    assert "deadLetterRatio" not in run.job.status.health
    run.feed(shifted(signals(1, consumed=[400], dead_letters=[16]), 4 * STEP))
    c = run.condition(h.DEAD_LETTERS)
    assert c is not None
    assert c.status == "True"
    assert c.message.startswith("16 dead letters for 400 records consumed in 20 s")


def test_dead_letters_while_nothing_is_consumed_are_too_many() -> None:
    job = deployed(flinkjob(health={"deadLetterWindow": "15s"}))
    run = Run(job).feed(signals(4, consumed=[500], dead_letters=[0, 5, 10, 15]))
    c = run.condition(h.DEAD_LETTERS)
    assert c is not None
    assert c.status == "False"
    assert run.job.status.health["deadLetterRatio"] is None  # infinite: JSON has no such number


def test_no_dead_letters_is_healthy_even_with_no_input() -> None:
    job = deployed(flinkjob(health={"deadLetterWindow": "15s"}))
    run = Run(job).feed(signals(4, consumed=[500], dead_letters=[3]))
    c = run.condition(h.DEAD_LETTERS)
    assert c is not None
    assert c.status == "True"
    assert run.job.status.health["deadLetterRatio"] == 0


# -- checkpoints -------------------------------------------------------------------------------


def test_checkpoints_failing_in_a_row_warn_at_the_threshold_then_recover() -> None:
    run = Run()
    for in_a_row in (0, 1, 2):
        run.feed(shifted(signals(1, checkpoints_failed_in_a_row=[in_a_row]), in_a_row * STEP))
        c = run.condition(h.CHECKPOINTS)
        assert c is not None
        assert c.status == "True"
    run.feed(shifted(signals(2, checkpoints_failed_in_a_row=[3, 4]), 3 * STEP))
    c = run.condition(h.CHECKPOINTS)
    assert c is not None
    assert c.status == "False"
    assert c.reason == "CheckpointsFailing"
    assert c.message == "the last 4 checkpoints failed (checkpointFailures 3)"
    assert len(run.events("CheckpointsFailing")) == 1
    run.feed(shifted(signals(1, checkpoints_failed_in_a_row=[0]), 5 * STEP))
    c = run.condition(h.CHECKPOINTS)
    assert c is not None
    assert c.status == "True"
    assert len(run.events("CheckpointsRecovered")) == 1


# -- settings ----------------------------------------------------------------------------------


def test_health_off_removes_its_conditions_and_measures() -> None:
    run = Run().feed(signals(3, lag=[5], checkpoints_failed_in_a_row=[0]))
    assert run.condition(h.LAG) is not None
    run.job = change_spec(run.job, health=HealthSpec(enabled=False))
    run.feed(shifted(signals(1, lag=[5]), 3 * STEP))
    assert all(c.type not in h.CONDITIONS for c in run.job.status.conditions)
    assert run.job.status.health == {}


def test_changing_thresholds_restarts_nothing() -> None:
    job = deployed(flinkjob())
    changed = change_spec(job, health=HealthSpec(lagWindow="1m", checkpointFailures=5))
    plan = decide(changed, obs(job=running(), signals=tuple(signals(1, lag=[0]))))
    assert plan.actions == []
    assert plan.status.observed_generation == changed.metadata.generation


def test_no_window_leaves_the_status_as_it_was() -> None:
    job = deployed(flinkjob())
    plan = decide(job, obs(job=running()))
    assert plan.status.health == {}
    assert all(c.type not in h.CONDITIONS for c in plan.status.conditions)


def test_the_defaults_are_the_documented_ones() -> None:
    spec = flinkjob().spec.health
    assert spec.enabled
    assert (spec.lag_window, spec.watermark_stall, spec.dead_letter_window) == ("5m", "2m", "5m")
    assert (spec.dead_letter_ratio, spec.checkpoint_failures) == (0.05, 3)
