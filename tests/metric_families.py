"""The Prometheus metric families Eddyline documents (README, "Monitoring"), by endpoint, and the
metric names a PromQL expression reads. Shared by the Grafana dashboard's unit test and the
integration test that scrapes a real stack."""

from __future__ import annotations

import re

# Flink's Prometheus reporter on the JobManager (cluster and per-job metrics).
JOBMANAGER = (
    "flink_jobmanager_numRegisteredTaskManagers",
    "flink_jobmanager_taskSlotsAvailable",
    "flink_jobmanager_numRunningJobs",
    "flink_jobmanager_job_uptime",
    "flink_jobmanager_job_numRestarts",
    "flink_jobmanager_job_numberOfCompletedCheckpoints",
    "flink_jobmanager_job_numberOfFailedCheckpoints",
    "flink_jobmanager_job_lastCheckpointDuration",
    "flink_jobmanager_job_lastCheckpointSize",
)
# ... on each TaskManager: JVM, per task (busy, backpressure) and per operator (records in and
# out, the Kafka sources' pendingRecords, the jobs' own counters).
TASKMANAGER = (
    "flink_taskmanager_Status_JVM_CPU_Load",
    "flink_taskmanager_Status_JVM_Memory_Heap_Used",
    "flink_taskmanager_job_task_busyTimeMsPerSecond",
    "flink_taskmanager_job_task_backPressuredTimeMsPerSecond",
    "flink_taskmanager_job_task_operator_numRecordsIn",
    "flink_taskmanager_job_task_operator_numRecordsOut",
    "flink_taskmanager_job_task_operator_pendingRecords",
)
# The reference jobs' own counters, by the job that has them.
JOB_COUNTERS = {
    "attribution": ("flink_taskmanager_job_task_operator_eddyline_bots_filtered",),
    "sessions": ("flink_taskmanager_job_task_operator_eddyline_bots_filtered",),
    "ledger": (
        "flink_taskmanager_job_task_operator_ledger_applied",
        "flink_taskmanager_job_task_operator_ledger_duplicates",
    ),
}
# The controller's /metrics (prometheus-client): sample names as exposed.
CONTROLLER = (
    "eddyline_controller_reconciles_total",
    "eddyline_controller_actions_total",
    "eddyline_controller_errors_total",
    "eddyline_job_lifecycle",
    "eddyline_job_parallelism",
    "eddyline_job_restarts",
    "eddyline_savepoint_duration_seconds_bucket",
    "eddyline_savepoint_duration_seconds_count",
    "eddyline_savepoint_duration_seconds_sum",
    "eddyline_last_savepoint_timestamp_seconds",
    "eddyline_last_savepoint_age_seconds",
    "eddyline_autoscaler_rescales",
    "eddyline_autoscaler_target_parallelism",
    "eddyline_autoscaler_utilisation",
    "eddyline_autoscaler_lag_records",
)
# The controller's data-level health of each running job (deploy/controller/healthmetrics.py):
# its measures, its spec.health thresholds and its health conditions.
HEALTH = (
    "eddyline_job_health_condition",
    "eddyline_job_health_lag_window_seconds",
    "eddyline_job_health_watermark_stall_seconds",
    "eddyline_job_health_dead_letter_ratio",
    "eddyline_job_health_checkpoint_failures",
    "eddyline_job_consumer_lag_records",
    "eddyline_job_lag_growing_seconds",
    "eddyline_job_watermark_stalled_seconds",
    "eddyline_job_dead_letter_ratio",
)
# Declared from the start, with samples only once something happened.
ONLY_AFTER_AN_EVENT = frozenset({"eddyline_controller_errors_total"})

DOCUMENTED = frozenset(
    JOBMANAGER
    + TASKMANAGER
    + CONTROLLER
    + HEALTH
    + tuple(m for ms in JOB_COUNTERS.values() for m in ms)
)

_FUNCTIONS_AND_KEYWORDS = frozenset(
    {
        "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "delta", "by",
        "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
        "histogram_quantile", "label_replace", "topk", "bottomk", "abs", "clamp_min", "offset",
        "bool", "time", "vector", "scalar",
    }
)  # fmt: skip
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIERS = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def promql_metrics(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers that are not functions, keywords,
    label names (in matchers and grouping clauses) or strings."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    return {
        name
        for name in _IDENTIFIERS.findall(text)
        if name not in _FUNCTIONS_AND_KEYWORDS and not name.startswith("$")
    }
