"""The data-health alert rules (helm/eddyline/files/alerts/eddyline-rules.yaml): valid for
Prometheus (`promtool check rules`), behaving as their unit tests say (`promtool test rules
tests/promtool/eddyline-rules-test.yaml`), one per health condition, and written over series the
controller really exports."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from deploy import paths
from deploy.controller.decide import health
from deploy.controller.metrics import ControllerMetrics

RULES = paths.PROJECT_ROOT / "helm" / "eddyline" / "files" / "alerts" / "eddyline-rules.yaml"
RULE_TESTS = paths.PROJECT_ROOT / "tests" / "promtool" / "eddyline-rules-test.yaml"
ALERTS = {
    "EddylineLagGrowing": health.LAG,
    "EddylineWatermarkStalled": health.WATERMARK,
    "EddylineDeadLettersHigh": health.DEAD_LETTERS,
    "EddylineCheckpointsFailing": health.CHECKPOINTS,
}


def promtool() -> Path:
    given = os.environ.get("EDDYLINE_PROMTOOL")
    tool = Path(given) if given else paths.PROJECT_ROOT / ".cache/prometheus/bin/promtool"
    assert tool.is_file(), (
        f"no promtool at {tool}: run scripts/ensure-prometheus.sh (`make test` does), "
        "or point EDDYLINE_PROMTOOL at one"
    )
    return tool


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool()), *args], capture_output=True, text=True, timeout=120, check=False
    )


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules_file() -> None:
    done = run_promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout


def test_the_rules_pass_their_promtool_unit_tests() -> None:
    done = run_promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_fails_a_rule_test_that_expects_the_wrong_alert(tmp_path: Path) -> None:
    """The unit tests can fail: the same cases expecting the dead-letter alert for the job whose
    own threshold tolerates its ratio are refused."""
    text = RULE_TESTS.read_text().replace("job_name: bad}", "job_name: tolerant}")
    text = text.replace("../../helm/", f"{paths.PROJECT_ROOT}/helm/")
    wrong = tmp_path / "wrong-test.yaml"
    wrong.write_text(text)
    done = run_promtool("test", "rules", str(wrong))
    assert done.returncode != 0
    assert "EddylineDeadLettersHigh" in done.stdout + done.stderr


def test_one_alert_per_health_condition_each_over_exported_series() -> None:
    assert {r["alert"] for r in rules()} == set(ALERTS)
    assert set(ALERTS.values()) == set(health.CONDITIONS)
    exported = {
        metric.name
        for metric in ControllerMetrics().registry.collect()
        if metric.name.startswith("eddyline_job_")
    }
    for rule in rules():
        names = set(re.findall(r"\beddyline_[a-z_]+", rule["expr"]))
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], names - exported)
        assert rule["labels"]["severity"] == "warning"
        assert rule["annotations"]["summary"].startswith("FlinkJob {{ $labels.job_name }}")
