"""jobs.loadsim's cost: records pass unchanged, each costing at least its time on average."""

from __future__ import annotations

import time

import pytest

from jobs import loadsim


def test_records_pass_unchanged_after_their_cost() -> None:
    cost = loadsim.Cost(2)
    started = time.perf_counter()
    out = [cost(f"r{i}") for i in range(100)]
    took = time.perf_counter() - started
    assert out == [f"r{i}" for i in range(100)]
    assert took >= 100 * 0.002 * 0.95  # owed time is slept, not skipped


def test_costs_below_a_millisecond_add_up() -> None:
    cost = loadsim.Cost(0)
    assert cost("x") == "x"
    cost.cost_s = 0.0002  # 0.2 ms: slept once every five records
    started = time.perf_counter()
    for _ in range(50):
        cost("x")
    took = time.perf_counter() - started
    # Exact accounting: whatever was not slept yet is still owed, and never a millisecond or more.
    assert cost._owed < 0.001
    assert took + cost._owed >= 50 * 0.0002 - 1e-9


def test_the_cost_flag_is_a_duration() -> None:
    assert loadsim.parse_args(["--record-cost", "5ms"]).record_cost == 5
    with pytest.raises(SystemExit):
        loadsim.parse_args(["--record-cost", "fast"])
