"""Checkpoint durations of the ledger with its state on local disk against in the local stack's
S3 bucket (`eddyline up --state-storage s3`), side by side in one run.

    .venv/bin/python -m bench.state_storage [--seconds 180] [--rate 200] [--interval 2s]

Starts a throw-away stack with S3 state (a versitygw beside Flink, data under the stack's state
folder) and runs two copies of the exactly-once ledger at the same time, on the same orders (one
topic, a steady `--rate` orders/s over 2,000 SKUs, two partitions), each with its own consumer
group and output: one keeps its checkpoints in the bucket (the stack's `execution.checkpointing.
dir`, s3://flink-state/checkpoints), the other on local disk (`file://` in the job's own
flinkConfiguration) — the only difference between a local-disk stack and an S3 one. Running them
together puts both under the same machine load at the same moments.

After both run and a warm-up (`--warmup`, the first checkpoints include the S3 client's start),
every completed checkpoint triggered in the next `--seconds` is collected from Flink's REST API
(`/jobs/<id>/checkpoints`, polled every second: its history keeps only the last 10), with its
end-to-end duration and its size. Adds to bench/results/latest.json:
state_storage_{local,s3}_checkpoint_ms_{median,p95,max}, state_storage_{local,s3}_checkpoints,
state_storage_{local,s3}_failed, state_storage_{local,s3}_state_kb_median and
state_storage_s3_vs_local_{median,p95}_ratio.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import results_file
from deploy import kafka_io
from deploy.datagen.generator import GeneratorConfig, orders
from deploy.errors import FlinkError
from deploy.flink import pyjobs
from deploy.flink.rest import FlinkClient
from deploy.flink.states import TERMINAL_STATES
from deploy.local.stack import control
from deploy.local.stack.ephemeral import free_settings
from deploy.settings import StackSettings

ORDERS = "bench-state-orders"
STORAGES = ("local", "s3")


class Producer:
    """Sends generated orders to ORDERS at a steady rate until closed."""

    def __init__(self, bootstrap: str, rate: float, seconds: float) -> None:
        config = GeneratorConfig(seed=7, events=int(rate * seconds) + 1000, skus=2000)
        self.messages = orders(config)
        self.sent = 0
        self._rate = rate
        self._sender = kafka_io.Sender(bootstrap)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        for m in self.messages:
            if self._stop.is_set():
                break
            self._sender.send(ORDERS, m.key, m.value)
            self.sent += 1
            ahead = start + self.sent / self._rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sender.close()


@dataclass
class Checkpoints:
    """The completed and failed checkpoints of one job, by id, as Flink's history showed them."""

    job_id: str
    completed: dict[int, dict[str, Any]] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)

    def poll(self, flink: FlinkClient) -> None:
        for entry in flink.checkpoints(self.job_id).get("history") or []:
            if entry.get("is_savepoint"):
                continue
            if entry.get("status") == "COMPLETED":
                self.completed[int(entry["id"])] = entry
            elif entry.get("status") == "FAILED":
                self.failed.add(int(entry["id"]))

    def window(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        return [
            e for e in self.completed.values() if start_ms <= int(e["trigger_timestamp"]) < end_ms
        ]


def submit(flink: FlinkClient, settings: StackSettings, storage: str, interval: str) -> str:
    args = [
        "--bootstrap-servers", settings.bootstrap_servers,
        "--orders-topic", ORDERS, "--starting-offsets", "earliest",
        "--group-id", f"bench-state-{storage}", "--output-topic", f"bench-state-out-{storage}",
        "--dead-letter-topic", f"bench-state-dead-{storage}",
        "--transactional-id-prefix", f"bench-state-{storage}-{time.time_ns()}",
        "--checkpoint-interval", interval,
    ]  # fmt: skip
    configuration = {"pipeline.name": f"ledger-{storage}"}
    if storage == "local":
        local = settings.state_dir.resolve() / "checkpoints-local"
        local.mkdir(parents=True, exist_ok=True)
        configuration["execution.checkpointing.dir"] = f"file://{local}"
    return pyjobs.submit(flink, "jobs.ledger", args, configuration=configuration)


def wait_running(flink: FlinkClient, job_id: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = flink.job(job_id)
        if detail["state"] in TERMINAL_STATES:
            raise RuntimeError(f"job {job_id} ended: {detail['state']}")
        vertices = detail.get("vertices") or []
        if detail["state"] == "RUNNING" and all(v.get("status") == "RUNNING" for v in vertices):
            return
        time.sleep(1)
    raise RuntimeError(f"job {job_id} not running after {timeout:.0f} s")


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1), nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def figures(runs: dict[str, Checkpoints], start_ms: int, end_ms: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for storage, run in runs.items():
        done = run.window(start_ms, end_ms)
        if not done:
            raise RuntimeError(f"no completed checkpoint of the {storage} job in the window")
        scheme = "s3://" if storage == "s3" else "file:"
        elsewhere = [p for e in done if not (p := str(e.get("external_path"))).startswith(scheme)]
        if elsewhere:
            raise RuntimeError(f"a checkpoint of the {storage} job went to {elsewhere[0]}")
        ms = [float(e["end_to_end_duration"]) for e in done]
        size = [float(e.get("checkpointed_size") or e.get("state_size") or 0) for e in done]
        key = f"state_storage_{storage}"
        out |= {
            f"{key}_checkpoint_ms_median": round(statistics.median(ms), 1),
            f"{key}_checkpoint_ms_p95": round(percentile(ms, 0.95), 1),
            f"{key}_checkpoint_ms_max": round(max(ms), 1),
            f"{key}_checkpoints": len(done),
            f"{key}_failed": len(run.failed),
            f"{key}_state_kb_median": round(statistics.median(size) / 1024, 1),
        }
    for stat in ("median", "p95"):
        s3 = out[f"state_storage_s3_checkpoint_ms_{stat}"]
        local = out[f"state_storage_local_checkpoint_ms_{stat}"]
        out[f"state_storage_s3_vs_local_{stat}_ratio"] = round(s3 / local, 2) if local else None
    return out


def measure(seconds: float, rate: float, interval: str, warmup: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="eddyline-bench-state-") as tmp:
        settings = free_settings(Path(tmp) / "stack", state_storage="s3", controller=False)
        print("starting a stack with S3 state…", flush=True)
        control.up(settings)
        producer = None
        flink = FlinkClient(settings.flink_url)
        jobs: dict[str, str] = {}
        try:
            kafka_io.create_topics(
                settings.bootstrap_servers,
                {ORDERS: 2}
                | {f"bench-state-{kind}-{s}": 1 for kind in ("out", "dead") for s in STORAGES},
            )
            producer = Producer(settings.bootstrap_servers, rate, seconds + warmup + 600)
            for storage in STORAGES:
                jobs[storage] = submit(flink, settings, storage, interval)
                print(f"submitted the {storage} ledger: {jobs[storage]}", flush=True)
            for job_id in jobs.values():
                wait_running(flink, job_id)
            runs = {storage: Checkpoints(job_id) for storage, job_id in jobs.items()}
            start_ms = int((time.time() + warmup) * 1000)
            end_ms = start_ms + int(seconds * 1000)
            print(f"both run; measuring for {seconds:.0f} s after {warmup:.0f} s", flush=True)
            while time.time() * 1000 < end_ms + 30_000:  # + the last ones to complete
                for run in runs.values():
                    run.poll(flink)
                time.sleep(1)
                if time.time() * 1000 > end_ms and all(
                    not _pending(flink, run.job_id, end_ms) for run in runs.values()
                ):
                    break
            out = figures(runs, start_ms, end_ms)
            out["state_storage_orders_per_s"] = rate
            out["state_storage_load_average"] = [round(x, 2) for x in _loadavg()]
            return out
        finally:
            if producer is not None:
                producer.close()
            for job_id in jobs.values():
                try:
                    flink.cancel(job_id)
                except FlinkError as e:  # it may have ended; the stack goes down next
                    print(f"cancelling {job_id}: {e}", file=sys.stderr)
            flink.close()
            control.down(settings.state_dir)


def _pending(flink: FlinkClient, job_id: str, before_ms: int) -> bool:
    """Whether a checkpoint triggered before `before_ms` is still in progress."""
    history = flink.checkpoints(job_id).get("history") or []
    return any(
        e.get("status") == "IN_PROGRESS" and int(e["trigger_timestamp"]) < before_ms
        for e in history
    )


def _loadavg() -> tuple[float, float, float]:
    one, five, fifteen = (float(x) for x in Path("/proc/loadavg").read_text().split()[:3])
    return one, five, fifteen


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser(
        prog="python -m bench.state_storage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seconds", type=float, default=180.0, help="measured window")
    p.add_argument("--warmup", type=float, default=20.0, help="seconds not measured first")
    p.add_argument("--rate", type=float, default=200.0, help="orders per second")
    p.add_argument("--interval", default="2s", help="checkpoint interval of both jobs")
    p.add_argument("--no-save", action="store_true", help="print, do not write bench/results")
    args = p.parse_args(argv)
    result = measure(args.seconds, args.rate, args.interval, args.warmup)
    print(json.dumps(result, indent=2))
    if not args.no_save:
        merged = results_file.merge(result)
        print(results_file.markdown(merged))
    return 0


if __name__ == "__main__":
    sys.exit(main())
