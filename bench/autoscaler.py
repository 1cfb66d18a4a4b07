"""The autoscaler under load: no rescale at steady load, and after a 4x load step, how long until
the lag is bounded again and how many rescales that took.

    .venv/bin/python -m bench.autoscaler [--steady 180] [--base-rate 100] [--record-cost 5ms]

Starts a throw-away stack on free ports and an `eddyline controller` process, and runs
jobs.loadsim (each record costs `--record-cost` in a Python function, so one subtask handles at
most 1/cost records/s and more subtasks handle more, even on two cores) with the autoscaler
enabled, parallelism 1..4 over 4 input partitions: `--base-rate` events/s for `--steady` seconds
(the full profile: 600), then 4x that rate. Every 2 s it notes the job's parallelism (from the
controller's status), the input rate and the consumer lag (Kafka: the job's committed offsets
against the topics' ends). Convergence is the time from the step until the lag is under 5 s of
the new input rate and stays there to the end of the run (at least 30 s). Adds
autoscaler_convergence_s, autoscaler_actions_step and autoscaler_actions_steady to
bench/results/latest.json and plots the run to bench/results/autoscaler.png.

Why not a reference job: on two cores they are CPU-bound (measured: the ledger ran ~600
events/s at parallelism 1 and fell further behind at 4, its subtasks sharing the same cores), so
a step beyond one subtask is a step beyond the machine, and no autoscaler could converge.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from bench import harness, results_file
from deploy import kafka_io
from deploy.datagen import generator
from deploy.local.stack import control
from deploy.local.stack.ephemeral import free_settings
from deploy.spec import FlinkJob, parse

TOPIC, OUT = "bench-as-in", "bench-as-out"
GROUP = "bench-autoscaled"
NAME = "autoscaled"
PARTITIONS = 4
STEP = 4
HOLD_S = 30
BOUND_S = 5  # the lag is bounded when under this many seconds of input


@dataclass
class Point:
    t: float  # seconds since the start
    parallelism: int
    rate: float
    lag: int


class Load:
    """Produces generated orders (jobs.loadsim passes any message on) at a rate that can be
    changed while it runs."""

    def __init__(self, bootstrap: str, rate: float) -> None:
        self.rate = rate
        self._stop = threading.Event()
        self._sender = kafka_io.Sender(bootstrap)
        config = generator.GeneratorConfig(
            seed=9, events=200_000, skus=500, duplicate=0.0, malformed=0.0, late=0.0
        )
        self._messages = generator.orders(config)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            m = self._messages[i % len(self._messages)]
            self._sender.send(TOPIC, m.key, m.value)
            i += 1
            next_at += 1.0 / self.rate
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sender.close()


def lag(bootstrap: str) -> int | None:
    """The job's consumer-group lag, or None when Kafka cannot tell right now."""
    try:
        return kafka_io.consumer_lag(bootstrap, GROUP, [TOPIC], timeout=5)
    except KafkaException:
        return None


def spec(bootstrap: str, record_cost: str) -> FlinkJob:
    return parse(
        {
            "apiVersion": "eddyline.dev/v1alpha1",
            "kind": "FlinkJob",
            "metadata": {"name": NAME},
            "spec": {
                "job": {
                    "entry": "jobs.loadsim",
                    "args": [
                        "--input-topic", TOPIC, "--output-topic", OUT, "--group-id", GROUP,
                        "--starting-offsets", "latest", "--record-cost", record_cost,
                    ],
                    "parallelism": 1,
                },
                "checkpointing": {"interval": "2s"},
                "autoscaler": {
                    "enabled": True,
                    "minParallelism": 1,
                    "maxParallelism": PARTITIONS,
                    "targetUtilization": 0.6,
                    "utilizationBand": 0.25,
                    "metricsWindow": "30s",
                    "catchUp": "1m",
                    "stabilization": "20s",
                    "cooldown": "40s",
                    "scaleDownDelay": "2m",
                },
                "kafka": {"bootstrapServers": bootstrap, "inputTopics": [TOPIC]},
            },
        }
    )  # fmt: skip


def run(
    steady_s: float, base_rate: float, after_s: float, record_cost: str, state: Path
) -> dict[str, Any]:
    settings = free_settings(state / "stack", controller=False)
    control.up(settings)
    bs = settings.bootstrap_servers
    running = ExitStack()
    store = running.enter_context(harness.controller(settings, state))
    load: Load | None = None
    points: list[Point] = []
    started_ms = 0.0
    step_at = steady_s
    try:
        kafka_io.create_topics(bs, {TOPIC: PARTITIONS, OUT: PARTITIONS})
        store.apply(spec(bs, record_cost))
        harness.wait_running(store, NAME, 1, poll=1.0)
        # The load starts once the job runs: a backlog built while Flink starts the job (its
        # Python workers take 20-40 s on 2 busy cores) is start-up, not steady load.
        load = Load(bs, base_rate)
        start = time.monotonic()
        started_ms = time.time() * 1000
        step_at = steady_s
        end = steady_s + after_s
        while (now := time.monotonic() - start) < end:
            if load.rate == base_rate and now >= step_at:
                load.rate = base_rate * STEP
            job = store.get(NAME)
            parallelism = job.status.parallelism or 0 if job else 0
            behind = lag(bs)
            if behind is None:
                time.sleep(2)
                continue
            points.append(Point(now, parallelism, load.rate, behind))
            print(f"{now:6.0f} s  p={parallelism}  rate={load.rate:.0f}/s  lag={points[-1].lag}",
                  flush=True)  # fmt: skip
            time.sleep(2)
        job = store.get(NAME)
        decisions = job.status.autoscaler.get("decisions", []) if job else []
    finally:
        if load:
            load.close()
        running.close()  # the controller
        control.down(settings.state_dir)
    return {
        "points": points,
        "decisions": decisions,
        "step_at": step_at,
        "started_ms": started_ms,
        "job": f"jobs.loadsim, {record_cost} a record",
    }


def convergence(points: list[Point], step_at: float, bound: float) -> float | None:
    """Seconds from the step until the lag is under `bound` and stays there to the end of the
    run (at least HOLD_S of it); None when that never happens."""
    after = [p for p in points if p.t >= step_at + 5]  # the step itself is not the answer
    for i, p in enumerate(after):
        rest = after[i:]
        if rest[-1].t - p.t >= HOLD_S - 2 and all(q.lag <= bound for q in rest):
            return p.t - step_at
    return None


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only the plot needs it, and it is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    points: list[Point] = result["points"]
    t = [p.t for p in points]
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(9, 7))
    axes[0].step(t, [p.parallelism for p in points], where="post", color="tab:blue")
    axes[0].set_ylabel("parallelism")
    axes[1].plot(t, [p.rate for p in points], color="tab:green")
    axes[1].set_ylabel("input events/s")
    axes[2].plot(t, [p.lag for p in points], color="tab:red")
    axes[2].set_ylabel("consumer lag")
    axes[2].set_xlabel("seconds")
    for ax in axes:
        ax.axvline(result["step_at"], color="grey", linestyle="--", linewidth=1)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Autoscaler: steady load, then a 4x step ({result['job']}, 2 vCPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser(
        prog="python -m bench.autoscaler",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--steady", type=float, default=180.0, help="seconds of steady load first")
    p.add_argument("--after", type=float, default=300.0, help="seconds to watch after the step")
    # 5 ms a record: one subtask handles at most 200 events/s. 100/s sits inside the band at
    # parallelism 1 (half busy); 400/s needs 4 subtasks at the 0.6 target utilisation.
    p.add_argument("--base-rate", type=float, default=100.0, help="events/s before the step")
    p.add_argument("--record-cost", default="5ms", help="time each record takes in the job")
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eddyline-bench-as-") as tmp:
        result = run(args.steady, args.base_rate, args.after, args.record_cost, Path(tmp))
    decisions = result["decisions"]
    step_at = result["step_at"]
    step_ms = result["started_ms"] + step_at * 1000
    steady_actions = sum(1 for d in decisions if d["time"] < step_ms)
    step_actions = len(decisions) - steady_actions
    bound = BOUND_S * args.base_rate * STEP
    converged = convergence(result["points"], step_at, bound)
    figures = {
        # None (null): the lag was never bounded again while watched.
        "autoscaler_convergence_s": round(converged, 1) if converged is not None else None,
        "autoscaler_actions_step": step_actions,
        "autoscaler_actions_steady": steady_actions,
        "autoscaler_steady_s": args.steady,
        "autoscaler_step_rate": args.base_rate * STEP,
        "autoscaler_peak_parallelism": max((pt.parallelism for pt in result["points"]), default=0),
        "autoscaler_applied": sorted({str(d.get("applied")) for d in decisions}),
        "autoscaler_job": f"jobs.loadsim, {args.record_cost} a record",
    }
    print(json.dumps({**figures, "decisions": decisions}, indent=2))
    if not args.no_save:
        path = results_file.RESULTS / "autoscaler.png"
        results_file.RESULTS.mkdir(parents=True, exist_ok=True)
        plot(result, path)
        merged = results_file.merge(figures)
        print(results_file.markdown(merged))
        print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
