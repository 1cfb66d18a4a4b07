"""The controller's Prometheus metrics (prometheus-client), served on its own port.

Each series names its FlinkJob in `job_name`, the label Flink's own metrics name the job in (the
controller runs each job under its FlinkJob's name), so one dashboard variable selects both and
nothing clashes with the `job` label Prometheus gives every scraped series."""

from __future__ import annotations

import time
from contextlib import suppress

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from deploy.controller.healthmetrics import HealthMetrics
from deploy.spec import FlinkJob, Lifecycle


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reconciles = Counter(
            "eddyline_controller_reconciles", "Reconciles of one job", ["job_name"], registry=r
        )
        self.actions = Counter(
            "eddyline_controller_actions",
            "Actions taken on Flink, by kind and result",
            ["job_name", "kind", "result"],
            registry=r,
        )
        self.errors = Counter(
            "eddyline_controller_errors",
            "Reconciles that hit an error (Flink/Kafka unreachable, a refused action)",
            ["job_name", "kind"],
            registry=r,
        )
        self.lifecycle = Gauge(
            "eddyline_job_lifecycle",
            "1 for the job's current lifecycle state, 0 for the others",
            ["job_name", "lifecycle"],
            registry=r,
        )
        self.parallelism = Gauge(
            "eddyline_job_parallelism", "Parallelism of the running job", ["job_name"], registry=r
        )
        self.restarts = Gauge(
            "eddyline_job_restarts",
            "Controller restarts since the job was stable",
            ["job_name"],
            registry=r,
        )
        self.savepoint_duration = Histogram(
            "eddyline_savepoint_duration_seconds",
            "From a savepoint's trigger to its completion",
            ["job_name", "trigger"],
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.last_savepoint = Gauge(
            "eddyline_last_savepoint_timestamp_seconds",
            "When the job's newest savepoint completed (age = time() - this)",
            ["job_name"],
            registry=r,
        )
        self.last_savepoint_age = Gauge(
            "eddyline_last_savepoint_age_seconds",
            "Seconds since the job's newest savepoint completed",
            ["job_name"],
            registry=r,
        )

        self.autoscaler_rescales = Gauge(
            "eddyline_autoscaler_rescales",
            "Rescales the autoscaler has decided for the job",
            ["job_name"],
            registry=r,
        )
        self.autoscaler_target = Gauge(
            "eddyline_autoscaler_target_parallelism",
            "The parallelism the autoscaler's last evaluation chose",
            ["job_name"],
            registry=r,
        )
        self.autoscaler_utilisation = Gauge(
            "eddyline_autoscaler_utilisation",
            "Busy fraction of the job's busiest vertex in the autoscaler's window",
            ["job_name"],
            registry=r,
        )
        self.autoscaler_lag = Gauge(
            "eddyline_autoscaler_lag_records",
            "Records behind the head of the job's input topics (the sources' pendingRecords)",
            ["job_name"],
            registry=r,
        )

        self.health = HealthMetrics(r)

    def observe_job(self, job: FlinkJob) -> None:
        st = job.status
        self.health.observe(job)
        last = st.autoscaler.get("last")
        if last:
            inputs = last.get("inputs", {})
            self.autoscaler_rescales.labels(job.name).set(st.autoscaler.get("rescales", 0))
            self.autoscaler_target.labels(job.name).set(last.get("parallelism", 0))
            self.autoscaler_utilisation.labels(job.name).set(inputs.get("utilisation", 0))
            self.autoscaler_lag.labels(job.name).set(inputs.get("lag", 0))
        for state in Lifecycle:
            self.lifecycle.labels(job.name, state.value).set(1 if st.lifecycle == state else 0)
        self.parallelism.labels(job.name).set(st.parallelism or 0)
        self.restarts.labels(job.name).set(st.restarts)
        if st.savepoints:
            newest = max(s.time for s in st.savepoints) / 1000
            self.last_savepoint.labels(job.name).set(newest)
            self.last_savepoint_age.labels(job.name).set(max(0.0, time.time() - newest))

    def forget(self, name: str) -> None:
        for metric in (
            self.parallelism,
            self.restarts,
            self.last_savepoint,
            self.last_savepoint_age,
            self.autoscaler_rescales,
            self.autoscaler_target,
            self.autoscaler_utilisation,
            self.autoscaler_lag,
        ):
            with suppress(KeyError):
                metric.remove(name)
        for state in Lifecycle:
            with suppress(KeyError):
                self.lifecycle.remove(name, state.value)
        self.health.forget(name)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
