"""bench/results: merging figures, the Markdown table with its target marks, and the autoscaler
benchmark's convergence measure."""

from __future__ import annotations

import json
from pathlib import Path

from bench import results_file
from bench.autoscaler import HOLD_S, Point, convergence


def test_merge_keeps_other_figures_and_marks_targets(tmp_path: Path) -> None:
    results_file.merge({"spec_change_to_action_s": 0.7}, tmp_path)
    merged = results_file.merge(
        {"savepoint_upgrade_downtime_s": 20.0, "autoscaler_convergence_s": None}, tmp_path
    )
    assert merged["spec_change_to_action_s"] == 0.7
    assert json.loads((tmp_path / "latest.json").read_text())["savepoint_upgrade_downtime_s"] == 20
    table = (tmp_path / "latest.md").read_text()
    assert "| spec_change_to_action_s | 0.70 ✓ | ≤ 2.0 |" in table
    assert "| savepoint_upgrade_downtime_s | 20.00 ✗ | ≤ 15.0 |" in table
    assert "| autoscaler_convergence_s | not reached ✗ | ≤ 180.0 |" in table


def _points(lags: list[int], every: float = 2.0) -> list[Point]:
    return [Point(i * every, 1, 100.0, lag) for i, lag in enumerate(lags)]


def test_convergence_is_when_the_lag_stays_bounded_for_the_hold() -> None:
    hold = int(HOLD_S / 2) + 1
    points = _points([0] * 5 + [900, 1200, 800, 50] + [10] * hold)
    # The step at t=10 s; bounded (≤ 100) from t=16 s on.
    assert convergence(points, 10.0, 100) == 6.0
    assert convergence(_points([0] * 5 + [900] * 30), 10.0, 100) is None
    # Bounded for a while, then not again: not converged.
    relapse = _points([0] * 5 + [900, 50] + [10] * hold + [900, 900])
    assert convergence(relapse, 10.0, 100) is None
