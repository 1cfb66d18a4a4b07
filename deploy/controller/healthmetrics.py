"""The data-health metrics of each job (from `status.health` and its health conditions, written by
deploy/controller/decide/health.py) and the job's own thresholds beside them.

The chart's alert rules (helm/eddyline/files/alerts/eddyline-rules.yaml) compare a measure with
its threshold series (`eddyline_job_lag_growing_seconds >= eddyline_job_health_lag_window_seconds`),
so an alert fires for exactly the jobs whose condition is False, whatever thresholds their specs
set. The raw series (lag, watermark, counters) are there for dashboards and ad-hoc rules.

Counters mirror counts kept elsewhere (Kafka offsets, Flink's checkpoint counts): each is
increased by how much its source grew; a source that went backwards (a new Flink job counts
from zero) counts as a reset, which `rate()` and `increase()` handle.
"""

from __future__ import annotations

import math
from contextlib import suppress

from prometheus_client import CollectorRegistry, Counter, Gauge

from deploy.spec import FlinkJob, Lifecycle, milliseconds

# Lifecycles in which a job runs (or Flink restarts it): its measures mean something. Otherwise
# they are withdrawn, so that no alert keeps firing on a suspended or failed job.
LIVE = frozenset({Lifecycle.DEPLOYING, Lifecycle.RUNNING, Lifecycle.STABLE})
CONDITIONS = ("LagHealthy", "WatermarkAdvancing", "DeadLettersLow", "CheckpointsHealthy")


class HealthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(name, doc, ["job_name", *labels], registry=r)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, ["job_name"], registry=r)

        self.gauges: dict[str, Gauge] = {
            "lag": gauge(
                "eddyline_job_consumer_lag_records",
                "Records the job's consumer group has not committed yet on its input topics",
            ),
            "lagGrowingSeconds": gauge(
                "eddyline_job_lag_growing_seconds",
                "How long the consumer lag has grown without falling (0: not growing)",
            ),
            "watermark": gauge(
                "eddyline_job_watermark_timestamp_seconds",
                "The smallest input watermark of the vertices the sources feed (epoch seconds)",
            ),
            "watermarkStalledSeconds": gauge(
                "eddyline_job_watermark_stalled_seconds",
                "How long the watermark has not moved while records kept arriving",
            ),
            "deadLetterRatio": gauge(
                "eddyline_job_dead_letter_ratio",
                "Dead letters per record consumed over the job's deadLetterWindow",
            ),
            "checkpointsFailedInARow": gauge(
                "eddyline_job_checkpoints_failed_in_a_row",
                "Checkpoints that failed since the newest completed one",
            ),
        }
        self.counters: dict[str, Counter] = {
            "consumed": counter(
                "eddyline_job_records_in",
                "Records the job consumed from its input topics (committed offsets)",
            ),
            "arrived": counter(
                "eddyline_job_records_arrived", "Records that arrived on the job's input topics"
            ),
            "deadLetters": counter(
                "eddyline_job_dead_letters",
                "Records written to the job's dead-letter topic (every writer's, if shared)",
            ),
            "checkpointsCompleted": counter(
                "eddyline_job_checkpoints_completed", "Checkpoints Flink completed for the job"
            ),
            "checkpointsFailed": counter(
                "eddyline_job_checkpoints_failed", "Checkpoints of the job that failed"
            ),
        }
        self.thresholds: dict[str, Gauge] = {
            "lag_window": gauge(
                "eddyline_job_health_lag_window_seconds", "The job's spec.health.lagWindow"
            ),
            "watermark_stall": gauge(
                "eddyline_job_health_watermark_stall_seconds",
                "The job's spec.health.watermarkStall",
            ),
            "dead_letter_ratio": gauge(
                "eddyline_job_health_dead_letter_ratio", "The job's spec.health.deadLetterRatio"
            ),
            "checkpoint_failures": gauge(
                "eddyline_job_health_checkpoint_failures",
                "The job's spec.health.checkpointFailures",
            ),
        }
        self.condition = gauge(
            "eddyline_job_health_condition",
            "1 while the job's health condition is True, 0 while False",
            "condition",
        )
        self._seen: dict[tuple[str, str], int] = {}

    def observe(self, job: FlinkJob) -> None:
        name, st, spec = job.name, job.status, job.spec.health
        if not spec.enabled or st.lifecycle not in LIVE:
            self._withdraw(name)
            return
        self.thresholds["lag_window"].labels(name).set(milliseconds(spec.lag_window) / 1000)
        self.thresholds["watermark_stall"].labels(name).set(
            milliseconds(spec.watermark_stall) / 1000
        )
        self.thresholds["dead_letter_ratio"].labels(name).set(spec.dead_letter_ratio)
        self.thresholds["checkpoint_failures"].labels(name).set(spec.checkpoint_failures)
        for key, metric in self.gauges.items():
            value = st.health.get(key)
            if key == "watermark" and value is not None:
                value = value / 1000
            if key == "deadLetterRatio" and value is None and key in st.health:
                value = math.inf  # dead letters while nothing was consumed
            if value is None:
                with suppress(KeyError):
                    metric.remove(name)
            else:
                metric.labels(name).set(float(value))
        for key, counter in self.counters.items():
            value = st.health.get(key)
            if isinstance(value, int):
                last = self._seen.get((name, key))
                grown = value if last is None or value < last else value - last
                counter.labels(name).inc(grown)
                self._seen[(name, key)] = value
        states = {c.type: c.status for c in st.conditions}
        for condition in CONDITIONS:
            if condition in states:
                self.condition.labels(name, condition).set(1 if states[condition] == "True" else 0)
            else:
                with suppress(KeyError):
                    self.condition.remove(name, condition)

    def _withdraw(self, name: str) -> None:
        """Remove the job's measures, thresholds and conditions (the counters stay: they only
        ever count up, and a gap in them reads as nothing happening)."""
        for metric in (*self.gauges.values(), *self.thresholds.values()):
            with suppress(KeyError):
                metric.remove(name)
        for condition in CONDITIONS:
            with suppress(KeyError):
                self.condition.remove(name, condition)

    def forget(self, name: str) -> None:
        self._withdraw(name)
        for key, counter in self.counters.items():
            with suppress(KeyError):
                counter.remove(name)
            self._seen.pop((name, key), None)
