"""The running local stack as users and scripts see it (the session's shared stack)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import yaml

from deploy import kafka_io
from deploy.flink.rest import FlinkClient
from deploy.local.stack import control
from tests.integration.cli import eddyline
from tests.integration.stacks import RunningStack


def test_status_json_reports_each_component_healthy(stack: RunningStack) -> None:
    done = eddyline("status", "-o", "json", "--state-dir", str(stack.settings.state_dir))
    assert done.returncode == 0, done.stderr
    comps = json.loads(done.stdout)["components"]
    assert [c["name"] for c in comps] == ["kafka", "jobmanager", "taskmanager-1", "controller"]
    for c in comps:
        assert set(c) == {"name", "pid", "port", "metrics_port", "version", "healthy"}
        assert c["healthy"] is True
        assert isinstance(c["pid"], int)
    by_name = {c["name"]: c for c in comps}
    assert by_name["kafka"]["port"] == stack.settings.kafka_port
    assert by_name["kafka"]["metrics_port"] is None
    assert by_name["jobmanager"]["port"] == stack.settings.flink_port
    assert by_name["jobmanager"]["metrics_port"] == stack.settings.metrics_port
    assert by_name["taskmanager-1"]["metrics_port"] == stack.settings.metrics_port + 1
    assert by_name["jobmanager"]["version"] == "2.2.1"
    assert by_name["controller"]["metrics_port"] == stack.settings.controller_port


def test_flink_dashboard_and_rest_answer(stack: RunningStack) -> None:
    overview = httpx.get(f"{stack.flink_url}/overview", timeout=10).json()
    assert overview["taskmanagers"] >= 1
    assert overview["slots-total"] == stack.settings.slots * stack.settings.taskmanagers
    page = httpx.get(f"{stack.flink_url}/", timeout=10)
    assert page.status_code == 200
    assert "<title>Apache Flink Web Dashboard</title>" in page.text


def test_prometheus_endpoints_expose_flink_metrics(stack: RunningStack) -> None:
    jm = httpx.get(f"http://localhost:{stack.settings.metrics_port}/metrics", timeout=10).text
    tm = httpx.get(f"http://localhost:{stack.settings.metrics_port + 1}/metrics", timeout=10).text
    assert "flink_jobmanager_numRegisteredTaskManagers" in jm
    assert "flink_taskmanager_Status_JVM_CPU_Load" in tm


def test_a_second_up_is_a_noop_that_says_so(stack: RunningStack) -> None:
    before = {c.name: c.pid for c in control.status(stack.settings.state_dir)}
    result = control.up(stack.settings)
    assert result.already_running
    after = {c.name: c.pid for c in control.status(stack.settings.state_dir)}
    assert after == before
    done = eddyline("up", "--state-dir", str(stack.settings.state_dir))
    assert done.returncode == 0
    assert "already running" in done.stdout


def test_the_stacks_controller_runs_a_submitted_job_and_deletes_it_with_a_savepoint(
    stack: RunningStack, tmp_path: Path
) -> None:
    """`eddyline up` started a controller: a spec submitted to the stack's store runs."""
    state_dir = str(stack.settings.state_dir)
    run = uuid.uuid4().hex[:8]
    kafka_io.create_topics(stack.bootstrap_servers, {f"in-{run}": 1, f"out-{run}": 1})
    spec = tmp_path / "smoke.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "eddyline.dev/v1alpha1",
                "kind": "FlinkJob",
                "metadata": {"name": f"smoke-{run}"},
                "spec": {
                    "job": {
                        "entry": "jobs.smoke",
                        "args": ["--input-topic", f"in-{run}", "--output-topic", f"out-{run}"],
                    },
                    "kafka": {"inputTopics": [f"in-{run}"]},
                },
            }
        )
    )
    done = eddyline("submit", str(spec), "--wait", "-o", "json", "--state-dir", state_dir)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"]["lifecycle"] in ("RUNNING", "STABLE")
    job_id = job["status"]["jobId"]
    with FlinkClient(stack.flink_url) as flink:
        assert flink.job(job_id)["state"] == "RUNNING"
        listed = eddyline("list", "-o", "json", "--state-dir", state_dir)
        assert f"smoke-{run}" in [j["metadata"]["name"] for j in json.loads(listed.stdout)["items"]]
        done = eddyline("delete", f"smoke-{run}", "--savepoint", "--wait", "--state-dir", state_dir)
        assert done.returncode == 0, done.stderr
        assert flink.job(job_id)["state"] == "FINISHED"  # stopped with a savepoint, not cancelled
        # Flink caches checkpoint statistics per job (rest.cache.checkpoint-statistics.timeout,
        # a few seconds): a read by the controller while the savepoint ran can hide it briefly.
        deadline = time.monotonic() + 30
        while not (flink.checkpoints(job_id)["latest"]["savepoint"] or {}).get("external_path"):
            assert time.monotonic() < deadline, flink.checkpoints(job_id)["latest"]
            time.sleep(1)
    gone = eddyline("describe", f"smoke-{run}", "--state-dir", state_dir)
    assert gone.returncode == 1
    assert "no job named" in gone.stderr
    metrics = httpx.get(f"http://localhost:{stack.settings.controller_port}/metrics").text
    assert 'eddyline_controller_actions_total{job_name="smoke-' in metrics
