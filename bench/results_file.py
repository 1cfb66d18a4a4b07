"""bench/results: each benchmark adds its figures to one flat latest.json (and <date>.json), and
latest.md is rendered from all of them, so one table shows the newest figure of every kind."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

# Targets from ARCHITECTURE.md: (key, bound, "min" = at least / "max" = at most).
TARGETS: dict[str, tuple[float, str]] = {
    "attribution_vs_sql_ratio": (0.8, "min"),
    "sessions_vs_sql_ratio": (0.8, "min"),
    "udf_vs_builtin_ratio": (0.6, "min"),
    "ledger_eos_vs_alo_ratio": (0.9, "min"),
    # Issue 17: a click's produce → its attributed record visible, net of the window and
    # out-of-orderness it must wait for.
    "attribution_latency_net_p99_s": (2.0, "max"),
    "spec_change_to_action_s": (2.0, "max"),
    "savepoint_upgrade_downtime_s": (15.0, "max"),
    "autoscaler_convergence_s": (180.0, "max"),
    "autoscaler_actions_step": (2, "max"),
    "autoscaler_actions_steady": (0, "max"),
}
# What a figure without a target compares with: shown in the target column, without a mark.
_CEILING = "1.0 = a bare Kafka consumer of the same topics"
_NEXMARK = "1.0 = published Nexmark per core (Flink 1.13, see bench/throughput.py)"
_LOCAL_DISK = "1.0 = the same ledger checkpointing to local disk, same run"
REFERENCES: dict[str, str] = {
    "attribution_vs_ceiling_ratio": _CEILING,
    "sessions_vs_ceiling_ratio": _CEILING,
    "ledger_vs_ceiling_ratio": _CEILING,
    "nexmark_q8_per_core_vs_published_ratio": _NEXMARK,
    "nexmark_q11_per_core_vs_published_ratio": _NEXMARK,
    "state_storage_s3_vs_local_median_ratio": _LOCAL_DISK,
    "state_storage_s3_vs_local_p95_ratio": _LOCAL_DISK,
}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version()}


def merge(figures: dict[str, Any], results: Path = RESULTS) -> dict[str, Any]:
    """Add `figures` to latest.json (keeping the other benchmarks' figures) and rewrite
    <date>.json, latest.json and latest.md. Returns the merged object."""
    results.mkdir(parents=True, exist_ok=True)
    latest = results / "latest.json"
    merged: dict[str, Any] = json.loads(latest.read_text()) if latest.exists() else {}
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    merged.update(figures)
    merged["date"] = now
    merged["machine"] = machine()
    text = json.dumps(merged, indent=2) + "\n"
    (results / f"{now[:10]}.json").write_text(text)
    latest.write_text(text)
    (results / "latest.md").write_text(markdown(merged))
    return merged


def _mark(key: str, value: float) -> tuple[str, str]:
    if key not in TARGETS:
        return "", REFERENCES.get(key, "")
    bound, kind = TARGETS[key]
    ok = value >= bound if kind == "min" else value <= bound
    return (" ✓" if ok else " ✗"), (f"≥ {bound}" if kind == "min" else f"≤ {bound}")


def markdown(result: dict[str, Any]) -> str:
    m = result.get("machine", {})
    lines = [
        f"# Benchmarks — {result.get('date', '')}",
        "",
        f"Machine: {m.get('cpus')} CPUs, {m.get('cpu')}, Python {m.get('python')}. Each figure "
        "is the newest from its benchmark (`make bench`); ratios compare variants measured side "
        "by side in one run.",
        "",
        "| figure | measured | target |",
        "|---|---|---|",
    ]
    for key, value in result.items():
        if value is None and key in TARGETS:  # measured, but never reached (e.g. no convergence)
            lines.append(f"| {key} | not reached ✗ | {_mark(key, 0.0)[1]} |")
            continue
        if key in ("date", "machine") or not isinstance(value, int | float):
            continue
        mark, target = _mark(key, float(value))
        shown = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
        lines.append(f"| {key} | {shown}{mark} | {target} |")
    return "\n".join(lines) + "\n"
