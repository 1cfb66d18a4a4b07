"""The Grafana dashboard shipped in the chart: valid JSON Grafana can load, a panel for each
thing the monitoring issue asks for, and queries that read only documented metrics.

That each query also returns data from a real stack is checked in
tests/integration/test_metrics_endpoints.py, by a real Prometheus.
"""

from __future__ import annotations

import json
import re
from itertools import combinations
from typing import Any

import pytest

from deploy import paths
from tests.metric_families import DOCUMENTED, promql_metrics

CHART = paths.PROJECT_ROOT / "helm" / "eddyline"
DASHBOARD = CHART / "dashboards" / "eddyline.json"
TEMPLATE = CHART / "templates" / "monitoring" / "grafana-dashboard.yaml"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels(dashboard) for t in p["targets"]]


def test_it_is_a_grafana_dashboard_with_a_stable_uid(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "eddyline-jobs"
    assert dashboard["title"] == "Eddyline jobs"
    assert isinstance(dashboard["schemaVersion"], int)
    assert "id" not in dashboard or dashboard["id"] is None  # Grafana assigns its own


def test_the_datasource_and_job_are_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    job = variables["job"]
    assert job["includeAll"]
    assert job["multi"]
    assert job["query"]["query"] == "label_values(flink_jobmanager_job_uptime, job_name)"
    for p in panels(dashboard):
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"


def test_every_panel_has_a_unique_id_and_a_query(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in panels(dashboard):
        assert p["targets"], p["title"]
        assert p["description"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]


def test_panels_fit_the_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    boxes = [(p["title"], p["gridPos"]) for p in dashboard["panels"]]
    for title, g in boxes:
        assert g["x"] >= 0, title
        assert g["x"] + g["w"] <= 24, title
    for (a, ga), (b, gb) in combinations(boxes, 2):
        apart = (
            ga["x"] + ga["w"] <= gb["x"]
            or gb["x"] + gb["w"] <= ga["x"]
            or ga["y"] + ga["h"] <= gb["y"]
            or gb["y"] + gb["h"] <= ga["y"]
        )
        assert apart, f"{a} overlaps {b}"


def test_queries_are_balanced_and_filter_by_the_job_variable(dashboard: dict[str, Any]) -> None:
    for title, expr in queries(dashboard):
        for open_, close in ("()", "{}", "[]"):
            assert expr.count(open_) == expr.count(close), title
        assert re.search(r'\bjob_name=~"\$job"', expr), f"{title}: not filtered by $job"
        # `job` is the label Prometheus gives each scrape target: never the job's name here.
        assert not re.search(r"[{,(]\s*job\b(?!_)", expr), f"{title}: uses the `job` label"


def test_every_query_reads_only_documented_metrics(dashboard: dict[str, Any]) -> None:
    for title, expr in queries(dashboard):
        names = promql_metrics(expr)
        assert names, f"{title}: names no metric"
        assert names <= DOCUMENTED, f"{title}: undocumented {sorted(names - DOCUMENTED)}"


@pytest.mark.parametrize(
    ("asked_for", "metric"),
    [
        ("throughput in", "flink_taskmanager_job_task_operator_numRecordsOut"),
        ("throughput out", "flink_taskmanager_job_task_operator_numRecordsIn"),
        ("Kafka lag", "flink_taskmanager_job_task_operator_pendingRecords"),
        ("checkpoint duration", "flink_jobmanager_job_lastCheckpointDuration"),
        ("checkpoint size", "flink_jobmanager_job_lastCheckpointSize"),
        ("backpressure", "flink_taskmanager_job_task_backPressuredTimeMsPerSecond"),
        ("parallelism", "eddyline_job_parallelism"),
        ("autoscaler decisions", "eddyline_autoscaler_target_parallelism"),
        ("autoscaler decisions", "eddyline_autoscaler_rescales"),
        ("savepoint age", "eddyline_last_savepoint_age_seconds"),
        ("data-level health", "eddyline_job_health_condition"),
    ],
)
def test_each_asked_for_view_has_a_panel(
    dashboard: dict[str, Any], asked_for: str, metric: str
) -> None:
    assert any(metric in promql_metrics(expr) for _, expr in queries(dashboard)), asked_for


@pytest.mark.parametrize(
    ("title", "sink"), [("Dead-lettered / s", "dead_letter"), ("Late events / s", "late_events")]
)
def test_dead_letter_and_late_rates_read_their_sink_writers(
    dashboard: dict[str, Any], title: str, sink: str
) -> None:
    (expr,) = [e for t, e in queries(dashboard) if t == title]
    assert expr.startswith(
        "sum by (job_name) (rate(flink_taskmanager_job_task_operator_numRecordsIn"
    )
    assert f'operator_name=~"{sink}_[0-9]+_:_Writer"' in expr


def test_the_output_rate_leaves_out_dead_letters_and_late_events(dashboard: dict[str, Any]) -> None:
    (expr,) = [e for t, e in queries(dashboard) if t == "Records out / s"]
    assert 'operator_name!~"(dead_letter|late_events)_[0-9]+_:_Writer"' in expr


@pytest.mark.parametrize(
    ("title", "measure", "threshold"),
    [
        ("Lag growing vs lagWindow", "lag_growing_seconds", "health_lag_window_seconds"),
        (
            "Watermark stalled vs watermarkStall",
            "watermark_stalled_seconds",
            "health_watermark_stall_seconds",
        ),
        ("Dead-letter ratio vs deadLetterRatio", "dead_letter_ratio", "health_dead_letter_ratio"),
    ],
)
def test_each_health_measure_is_drawn_against_the_jobs_own_threshold(
    dashboard: dict[str, Any], title: str, measure: str, threshold: str
) -> None:
    """The alert rules compare the same two series, so where the lines cross is where the
    condition turns False and the alert fires."""
    drawn = [promql_metrics(e) for t, e in queries(dashboard) if t == title]
    assert drawn == [{f"eddyline_job_{measure}"}, {f"eddyline_job_{threshold}"}], title


def test_the_chart_ships_it_in_a_configmap_for_grafanas_sidecar() -> None:
    text = TEMPLATE.read_text()
    assert "{{- if .Values.grafanaDashboard.enabled }}" in text
    assert 'grafana_dashboard: "1"' in text
    assert '.Files.Get "dashboards/eddyline.json"' in text
    assert DASHBOARD.relative_to(CHART).as_posix() == "dashboards/eddyline.json"
