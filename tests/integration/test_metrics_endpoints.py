"""What Prometheus sees of running jobs: the stack's metrics endpoints (Flink's reporter on the
JobManager and TaskManager, the controller's /metrics), their ports in `eddyline status -o json`,
and every Grafana panel's query run by a real Prometheus scraping them.

Two reference jobs run on the session stack: attribution with its autoscaler evaluating (held at
parallelism 1, so it reports but never rescales), and the ledger with a savepoint taken.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy import paths
from deploy.local.store import SqliteStore
from deploy.spec import FlinkJob
from tests import metric_families as families
from tests.integration import monitored, prometheus
from tests.integration.cli import eddyline
from tests.integration.stacks import RunningStack

DASHBOARD = paths.PROJECT_ROOT / "helm" / "eddyline" / "dashboards" / "eddyline.json"
DEAD_LETTER_WINDOW_S = 20


@pytest.fixture(scope="module")
def jobs(
    stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, FlinkJob]]:
    folder = tmp_path_factory.mktemp("metrics-jobs")
    # deadLetterWindow shortened from its 5 minutes: the dead-letter ratio is measured only
    # once a whole window of signals is there, and the endpoints test requires it.
    with monitored.reference_jobs(
        stack,
        ("attribution", "ledger"),
        folder,
        autoscaler=("attribution",),
        health={"deadLetterWindow": f"{DEAD_LETTER_WINDOW_S}s"},
    ) as running:
        for job in running.values():
            assert job.status.job_id
            monitored.wait_for_checkpoint(stack.flink_url, job.status.job_id)
        state_dir = str(stack.settings.state_dir)
        done = eddyline("savepoint", running["ledger"].name, "--wait", "--state-dir", state_dir)
        assert done.returncode == 0, done.stderr
        store = SqliteStore(stack.settings.controller_db)
        deadline = time.monotonic() + 120
        while (
            not (j := store.get(running["attribution"].name)) or "last" not in j.status.autoscaler
        ):
            assert time.monotonic() < deadline, "the autoscaler never evaluated attribution"
            time.sleep(1)
        deadline = time.monotonic() + DEAD_LETTER_WINDOW_S + 120
        while missing := [job.name for job in running.values() if not _ratio_measured(store, job)]:
            assert time.monotonic() < deadline, f"no dead-letter ratio measured for {missing}"
            time.sleep(1)
        yield running


def _ratio_measured(store: SqliteStore, job: FlinkJob) -> bool:
    now = store.get(job.name)
    return now is not None and "deadLetterRatio" in now.status.health


class Exposition:
    """Endpoints' metrics: the sample names declared (by # TYPE, counters with their `_total`)
    and the label sets each sample name is exposed with."""

    def __init__(self, *texts: str) -> None:
        self.declared: set[str] = set()
        self.samples: dict[str, list[dict[str, str]]] = {}
        for family in (f for text in texts for f in text_string_to_metric_families(text)):
            self.declared.add(family.name + ("_total" if family.type == "counter" else ""))
            for sample in family.samples:
                self.declared.add(sample.name)
                self.samples.setdefault(sample.name, []).append(dict(sample.labels))

    def jobs(self, name: str, label: str = "job_name") -> set[str]:
        """The jobs a sample name is exposed for."""
        return {s[label] for s in self.samples.get(name, []) if label in s}


def _scrape(*ports: int) -> Exposition:
    return Exposition(*(monitored.scrape(port) for port in ports))


def _endpoints(stack: RunningStack) -> dict[str, int]:
    done = eddyline("status", "-o", "json", "--state-dir", str(stack.settings.state_dir))
    assert done.returncode == 0, done.stderr
    comps = json.loads(done.stdout)["components"]
    return {c["name"]: c["metrics_port"] for c in comps if c["metrics_port"] is not None}


def _taskmanagers(ports: dict[str, int]) -> dict[str, int]:
    return {name: port for name, port in ports.items() if name.startswith("taskmanager-")}


def test_status_json_names_each_metrics_port_and_each_serves_its_metrics(
    stack: RunningStack,
) -> None:
    ports = _endpoints(stack)
    assert ports["jobmanager"] == stack.settings.metrics_port
    assert ports["controller"] == stack.settings.controller_port
    taskmanagers = _taskmanagers(ports)
    assert "taskmanager-1" in taskmanagers  # more when the stack adds TaskManagers for slots
    for name, port in taskmanagers.items():
        assert port == stack.settings.metrics_port + int(name.removeprefix("taskmanager-"))
    assert set(ports) == {"jobmanager", "controller", *taskmanagers}
    for name, port in ports.items():
        prefix = "eddyline_" if name == "controller" else f"flink_{name.split('-')[0]}_"
        assert any(n.startswith(prefix) for n in _scrape(port).declared), name


def test_the_endpoints_expose_every_documented_family_for_the_running_jobs(
    stack: RunningStack, jobs: dict[str, FlinkJob]
) -> None:
    ports = _endpoints(stack)
    flink = {"flink_jobmanager_": _scrape(ports["jobmanager"]),
             "flink_taskmanager_": _scrape(*_taskmanagers(ports).values())}  # fmt: skip
    ctl = _scrape(ports["controller"])
    for name in (*families.JOBMANAGER, *families.TASKMANAGER):
        where = flink["flink_jobmanager_" if name.startswith("flink_jobmanager_") else
                      "flink_taskmanager_"]  # fmt: skip
        assert where.samples.get(name), f"{name} not exposed"
        if "_job_" in name:  # job-scoped: there for each of our jobs
            assert {j.name for j in jobs.values()} <= where.jobs(name), name
    for ref, job in jobs.items():
        for name in families.JOB_COUNTERS[ref]:
            assert job.name in flink["flink_taskmanager_"].jobs(name), (name, ref)
    for name in families.CONTROLLER:
        assert name in ctl.declared, f"{name} not declared by the controller"
        if name not in families.ONLY_AFTER_AN_EVENT:
            assert ctl.samples.get(name), f"{name} has no samples"
    assert {j.name for j in jobs.values()} <= ctl.jobs("eddyline_job_parallelism")
    assert jobs["attribution"].name in ctl.jobs("eddyline_autoscaler_target_parallelism")
    assert jobs["ledger"].name in ctl.jobs("eddyline_last_savepoint_age_seconds")
    assert jobs["ledger"].name in ctl.jobs("eddyline_savepoint_duration_seconds_bucket")
    for name in families.HEALTH:
        assert name in ctl.declared, f"{name} not declared by the controller"
        assert ctl.samples.get(name), f"{name} has no samples"
    # Every running job with health on (the default) has its thresholds, its lag growth and
    # its conditions; a watermark or a dead-letter ratio only where the job has one.
    for name in (
        "eddyline_job_health_lag_window_seconds",
        "eddyline_job_lag_growing_seconds",
        "eddyline_job_health_condition",
    ):
        assert {j.name for j in jobs.values()} <= ctl.jobs(name), name


def _panel_queries() -> list[tuple[str, str]]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [
        (p["title"], t["expr"])
        for p in dashboard["panels"]
        if p["type"] != "row"
        for t in p["targets"]
    ]


def test_every_grafana_panel_query_reads_exposed_metrics_and_returns_data(
    stack: RunningStack, jobs: dict[str, FlinkJob], tmp_path: Path
) -> None:
    """A real Prometheus scrapes the stack with a plain scrape configuration and runs each query
    as Grafana would, for these jobs; each must name only metrics the endpoints expose and return
    series (the `$job` filter selects Flink's and the controller's series alike)."""
    ports = _endpoints(stack)
    exposed: set[str] = set()
    for port in ports.values():
        exposed |= set(_scrape(port).samples)
    targets = {
        "flink-jobmanager": [f"localhost:{ports['jobmanager']}"],
        "flink-taskmanager": [f"localhost:{p}" for p in _taskmanagers(ports).values()],
        "eddyline-controller": [f"localhost:{ports['controller']}"],
    }
    selected = "|".join(j.name for j in jobs.values())
    with prometheus.running(targets, tmp_path / "prometheus") as prom:
        deadline = time.monotonic() + 60
        while not (up := prom.targets_up()) or not all(up.values()):
            assert time.monotonic() < deadline, f"targets not up: {up}"
            time.sleep(1)
        time.sleep(6 * prometheus.SCRAPE_INTERVAL_S)  # rate() needs a few samples
        empty = []
        for title, expr in _panel_queries():
            names = families.promql_metrics(expr)
            missing = names - exposed - families.ONLY_AFTER_AN_EVENT
            assert not missing, f"{title}: {sorted(missing)} not exposed"
            query = (
                expr.replace("$__rate_interval", "1m")
                .replace("$__range", "5m")
                .replace("$job", selected)
            )
            result = prom.query(query)
            if not result and not names & families.ONLY_AFTER_AN_EVENT:
                empty.append(title)
        assert not empty, f"panels with no data: {empty}"
        # The panel counts a topic once even when a job reads it with two sources (the ledger
        # did, before its routes came to share one); the ledger has one source now.
        at = time.time()
        records_in = next(e for t, e in _panel_queries() if t == "Records in / s")
        ledger = jobs["ledger"].name
        (panel,) = prom.query(
            records_in.replace("$__rate_interval", "1m").replace("$job", ledger), at
        )
        sources = prom.query(
            "sum by (operator_name) (rate(flink_taskmanager_job_task_operator_numRecordsOut"
            f'{{job_name="{ledger}", operator_name=~"Source:_.+"}}[1m]))',
            at,
        )
        rates = [float(r["value"][1]) for r in sources]
        assert len(rates) == 1, sources
        assert float(panel["value"][1]) == pytest.approx(rates[0])
        assert rates[0] > 0
