"""The chart's optional PrometheusRule (metrics.prometheusRule): rendered only when enabled,
carrying exactly the rules of helm/eddyline/files/alerts/eddyline-rules.yaml (the file a local
Prometheus loads and tests/promtool tests), with the chart's labels and the extra ones asked for."""

from __future__ import annotations

import pytest
import yaml

from tests.k8s.chart import CHART, NAMESPACE, RELEASE, ci_values, helm, render, template_args

RULES = CHART / "files" / "alerts" / "eddyline-rules.yaml"


def _rules(*sets: str) -> list[dict[str, object]]:
    docs = render(ci_values("minimal"), *sets)
    return [d for d in docs if d["kind"] == "PrometheusRule"]


def test_no_prometheus_rule_by_default() -> None:
    assert _rules() == []
    assert _rules("metrics.prometheusRule.enabled=false") == []


def test_the_prometheus_rule_carries_the_rules_file_unchanged() -> None:
    (rule,) = _rules(
        "metrics.prometheusRule.enabled=true", "metrics.prometheusRule.labels.release=kps"
    )
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    meta = rule["metadata"]
    assert isinstance(meta, dict)
    assert meta["name"] == f"{RELEASE}-alerts"
    assert meta["namespace"] == NAMESPACE
    assert meta["labels"]["release"] == "kps"
    assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    spec = rule["spec"]
    assert isinstance(spec, dict)
    alerts = {r["alert"] for g in spec["groups"] for r in g["rules"]}
    assert alerts == {
        "EddylineLagGrowing",
        "EddylineWatermarkStalled",
        "EddylineDeadLettersHigh",
        "EddylineCheckpointsFailing",
    }
    # Prometheus's own templates reach the cluster as they are (Helm does not expand them).
    text = yaml.safe_dump(rule)
    assert "{{ $labels.job_name }}" in text


@pytest.mark.parametrize(
    "setting", ["metrics.prometheusRule.enabled=yes", "metrics.prometheusRule.extra=1"]
)
def test_bad_prometheus_rule_values_are_refused(setting: str) -> None:
    result = helm(*template_args(ci_values("minimal"), setting), check=False)
    assert result.returncode != 0, f"{setting} was accepted"
    assert "prometheusRule" in result.stderr, result.stderr
