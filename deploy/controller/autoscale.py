"""The autoscaler's decision: a pure function of the spec's autoscaler settings, the job's recent
metrics and its scaling history → the parallelism it should run at, and why.

The model (the one the Flink Kubernetes Operator's autoscaler uses, tuned to act in minutes):
a subtask that is busy a fraction `b` of the time while processing `r` records/s could process
`r / b` records/s (its true rate). The job must process its input rate plus the rate that clears
the accumulated lag within `catchUp`; at `targetUtilization` each subtask contributes
`true rate * target`, so the parallelism needed is the target rate over that. The busiest
vertex decides (the whole job shares one parallelism). The result is clamped to the spec's
bounds and to the source's partition count (more readers than partitions would idle), then
aligned up to a divisor of the key-group count so keys spread evenly.

Calm rather than eager: nothing happens while utilisation is inside the band around the target
(and no lag is building); a busy job scales up only when records are waiting as well; metrics
are averaged over `metricsWindow`; after a restart the job gets `stabilization` before its
metrics count, after a rescale `cooldown` before the next; a scale-down must have been wanted
continuously for `scaleDownDelay`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from deploy.spec import AutoscalerSpec, milliseconds, seconds

KEY_GROUPS = 128  # Flink's default max parallelism for parallelism ≤ 128
MIN_BACKLOG_S = 10  # a backlog of at least this many seconds of input…
MIN_BACKLOG_RECORDS = 1_000  # …and this many records makes a busy job short of capacity
# Below this many records/s in, a vertex says nothing about its capacity: a job warming up reads
# busy (its Python worker starting) at a trickle, which would extrapolate to absurd needs.
MIN_EVIDENCE_RATE = 1.0


@dataclass(frozen=True)
class VertexSample:
    """One vertex at one moment, averaged over its subtasks."""

    name: str
    busy: float  # busy fraction, 0..1 (busyTimeMsPerSecond / 1000)
    records_in_per_s: float  # the vertex's total input rate (sum over subtasks)
    records_out_per_s: float = 0.0
    backpressured: float = 0.0  # fraction of time back-pressured
    is_source: bool = False


@dataclass(frozen=True)
class Sample:
    time: int  # epoch ms
    parallelism: int
    vertices: tuple[VertexSample, ...]
    lag: int  # records behind the head of the input topics (consumer lag)
    input_rate: float  # records/s the sources read
    # Where `lag` comes from: the Kafka source's pendingRecords metric, or the group's committed
    # offsets against the high watermarks (coarser: it moves only at checkpoints) — when the
    # source does not report pendingRecords, or when the committed lag, less one checkpoint
    # interval of input, is the larger.
    lag_source: str = "pending"
    committed_lag: int | None = None  # the committed-offset lag, when Kafka answered


@dataclass(frozen=True)
class History:
    """What the autoscaler remembers between decisions (kept in the job's status)."""

    last_rescale_at: int | None = None
    job_started_at: int | None = None
    scale_down_wanted_since: int | None = None
    rescales: int = 0


@dataclass(frozen=True)
class Decision:
    parallelism: int  # what the job should run at (unchanged when no action)
    act: bool
    reason: str
    inputs: dict[str, float] = field(default_factory=dict)
    scale_down_wanted_since: int | None = None


def align(parallelism: int, upper: int, key_groups: int = KEY_GROUPS) -> int:
    """The smallest p ≥ parallelism, ≤ upper, that divides the key groups evenly (else upper)."""
    for p in range(parallelism, upper + 1):
        if key_groups % p == 0:
            return p
    return min(max(parallelism, 1), upper)


def _rate(v: VertexSample) -> float:
    """Records/s a vertex handles: its input, or for a source what it emits."""
    return v.records_out_per_s if v.is_source else v.records_in_per_s


def window(samples: list[Sample], now: int, spec: AutoscalerSpec) -> list[Sample]:
    horizon = now - milliseconds(spec.metrics_window)
    return [s for s in samples if s.time >= horizon]


def evidence(samples: list[Sample], now: int, spec: AutoscalerSpec) -> tuple[list[Sample], str]:
    """The samples a decision may rest on, or why there are none yet. They count from when
    records first flow — before that (a job still starting its Python workers) there is lag but
    no evidence of what the job can do — and must span half a window, so that one noisy sample
    cannot move the job."""
    recent = window(samples, now, spec)
    flowing = next((i for i, s in enumerate(recent) if s.input_rate >= MIN_EVIDENCE_RATE), None)
    if flowing is None and recent and recent[-1].lag >= MIN_BACKLOG_RECORDS:
        return [], "waiting for records to flow"  # records wait, none move: starting (or stuck)
    recent = recent[flowing or 0 :]  # nothing waiting either: an idle job, all of it counts
    span_ms = recent[-1].time - recent[0].time
    if len(recent) < 2 or span_ms < milliseconds(spec.metrics_window) / 2:
        return [], "collecting metrics"
    return recent, ""


@dataclass(frozen=True)
class Load:
    """What the job must process, from the samples of one window."""

    lag: int  # records waiting now
    lag_growth: float  # records/s the backlog grows by (negative: shrinks)
    input_rate: float  # records/s arriving: read by the sources plus the backlog's growth
    target_rate: float  # records/s to keep up and clear the backlog within `catchUp`
    source_out: float  # records/s the sources emit


@dataclass(frozen=True)
class Capacity:
    """What the busy metrics say: the parallelism the job needs (the most any vertex needs for its
    share of the target rate), and its busiest vertex."""

    needed: int
    utilisation: float  # the busiest vertex's busy fraction
    bottleneck: str  # that vertex's name ("" when none is busy at all)


def decide(
    spec: AutoscalerSpec,
    samples: list[Sample],
    history: History,
    now: int,
    partitions: int | None,
) -> Decision:
    """Whether and where to rescale. `samples` are the job's recent metrics, oldest first, all at
    the current parallelism; `partitions` is the smallest partition count of its input topics."""
    if not samples:
        return Decision(0, False, "no metrics yet")
    current = samples[-1].parallelism
    waiting = pause(spec, history, now)
    recent: list[Sample] = []
    if not waiting:
        recent, waiting = evidence(samples, now, spec)
    if waiting:
        return Decision(
            current, False, waiting, scale_down_wanted_since=history.scale_down_wanted_since
        )
    load = measure(recent, spec)
    capacity = assess(recent, current, load, spec)
    needed = capacity.needed
    if lagging(load, spec) and load.source_out >= MIN_EVIDENCE_RATE:
        # Falling behind whatever the busy metrics say (they can under-read, e.g. time spent
        # waiting on a Python worker): `current` subtasks process `source_out` records/s, so
        # the target rate needs at least proportionally more.
        needed = max(needed, math.ceil(current * load.target_rate / load.source_out))
    upper = spec.max_parallelism
    if partitions:
        upper = min(upper, max(partitions, spec.min_parallelism))
    wanted = align(max(spec.min_parallelism, min(needed, upper)), upper)
    inputs = _inputs(load, capacity, needed, recent[-1])
    return verdict(spec, history, now, current, wanted, load, capacity.utilisation, inputs)


def pause(spec: AutoscalerSpec, history: History, now: int) -> str:
    """Why the job's metrics do not count yet (just restarted, just rescaled), or ""."""
    if history.job_started_at and now - history.job_started_at < milliseconds(spec.stabilization):
        return "stabilising after a restart"
    if history.last_rescale_at and now - history.last_rescale_at < milliseconds(spec.cooldown):
        return "cooling down after a rescale"
    return ""


def measure(recent: list[Sample], spec: AutoscalerSpec) -> Load:
    span_ms = recent[-1].time - recent[0].time
    lag = recent[-1].lag
    lag_growth = (recent[-1].lag - recent[0].lag) / max(span_ms / 1000, 1e-3)
    # Records arrive as fast as the sources read them plus as fast as the backlog grows.
    input_rate = sum(s.input_rate for s in recent) / len(recent) + max(0.0, lag_growth)
    target_rate = input_rate + lag / seconds(spec.catch_up)
    # What the sources emit now; each vertex sees a fixed share of it (its selectivity), which
    # holds when the job is saturated too (then the sources are slowed down as well).
    source_out = sum(v.records_out_per_s for s in recent for v in s.vertices if v.is_source) / len(
        recent
    )
    return Load(lag, lag_growth, input_rate, target_rate, source_out)


def lagging(load: Load, spec: AutoscalerSpec) -> bool:
    """The backlog grows and already holds more than a quarter of `catchUp` of input."""
    return load.lag_growth > 0 and load.lag > load.input_rate * seconds(spec.catch_up) / 4


def assess(recent: list[Sample], current: int, load: Load, spec: AutoscalerSpec) -> Capacity:
    """The parallelism each vertex needs for its share of the target rate at the target
    utilisation; the job needs the largest."""
    needed = 1
    utilisation = 0.0
    bottleneck = ""
    # Sources count too: a source vertex often has the job's work chained into it (source →
    # Python map → sink is one task), and then it alone says what a subtask can do. It has no
    # input records; what it emits is its rate.
    for name in sorted({v.name for s in recent for v in s.vertices}):
        points = [v for s in recent for v in s.vertices if v.name == name]
        busy = sum(v.busy for v in points) / len(points)
        rate = sum(_rate(v) for v in points) / len(points)
        if busy > utilisation:
            utilisation, bottleneck = busy, name
        if busy <= 0.01 or rate < MIN_EVIDENCE_RATE:
            continue  # idle or barely fed: it says nothing about capacity
        true_rate_per_subtask = rate / current / busy
        share = rate / load.source_out if load.source_out > 0 else 1.0
        vertex_target = load.target_rate * share
        needed = max(
            needed, math.ceil(vertex_target / (true_rate_per_subtask * spec.target_utilization))
        )
    return Capacity(needed, utilisation, bottleneck)


def _inputs(load: Load, capacity: Capacity, needed: int, last: Sample) -> dict[str, float]:
    """The figures a decision rests on, kept with it in the job's status."""
    inputs = {
        "input_rate": round(load.input_rate, 1),
        "lag": float(load.lag),
        "lag_growth_per_s": round(load.lag_growth, 1),
        "target_rate": round(load.target_rate, 1),
        "utilisation": round(capacity.utilisation, 3),
        "needed": float(needed),
    }
    if capacity.bottleneck:
        inputs["bottleneck_busy"] = round(capacity.utilisation, 3)
    if last.committed_lag is not None:
        inputs["committed_lag"] = float(last.committed_lag)
    return inputs


def verdict(
    spec: AutoscalerSpec,
    history: History,
    now: int,
    current: int,
    wanted: int,
    load: Load,
    utilisation: float,
    inputs: dict[str, float],
) -> Decision:
    """Scale up when short of capacity, down once that has been wanted for `scaleDownDelay`,
    else stay: inside the band around the target nothing happens."""
    low = spec.target_utilization - spec.utilization_band
    high = spec.target_utilization + spec.utilization_band
    behind = lagging(load, spec)
    # Busy alone is no proof of overload for PyFlink: time a task waits on its Python worker
    # counts as busy, so a job can read 90 % busy at 10 events/s (measured, bench.autoscaler).
    # More subtasks are only worth a restart when records are waiting too.
    backlog = load.lag > max(load.input_rate * MIN_BACKLOG_S, MIN_BACKLOG_RECORDS)
    if wanted > current and (behind or (utilisation > high and backlog)):
        why = "lag is growing" if behind and utilisation <= high else f"busy {utilisation:.0%}"
        return Decision(wanted, True, f"scale up {current} → {wanted}: {why}", inputs)
    if wanted < current and utilisation < low and not behind:
        since = history.scale_down_wanted_since or now
        delay_ms = milliseconds(spec.scale_down_delay)
        if now - since >= delay_ms:
            return Decision(
                wanted, True, f"scale down {current} → {wanted}: busy {utilisation:.0%}", inputs
            )
        left = (delay_ms - (now - since)) / 1000
        return Decision(
            current,
            False,
            f"scale down to {wanted} wanted; waiting {left:.0f} s more",
            inputs,
            scale_down_wanted_since=since,
        )
    return Decision(current, False, f"within the band (busy {utilisation:.0%})", inputs)
