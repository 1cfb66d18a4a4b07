"""Where a reference job spends its time: py-spy on its Python workers and Flink's own flame graph
of its busiest vertex, while it works through a backlog.

    .venv/bin/python -m bench.profile [--job attribution] [--events 200000] [--seconds 30]
                                      [--python-execution-mode process|thread]

Starts a throw-away stack on free ports (Flink's flame graphs on), produces the generated input,
runs the job at parallelism 1 from the earliest offsets, and once records flow samples for
`--seconds`: with `py-spy record` (100 Hz) every Python worker of the TaskManagers (PROCESS
mode) or the TaskManagers themselves, whose JVM embeds the interpreter (THREAD mode), and the
job's busiest vertex through Flink's REST flame graph (on-CPU stacks of its task threads).
Writes bench/results/profile-<job>-<mode>.md (the top frames of each) and a py-spy flame graph
per process, profile-<job>-<mode>-python-<pid>.svg.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import psutil

from bench import results_file
from bench.figures import ORDER_JOBS
from bench.taskmanagers import taskmanager_pids
from bench.throughput import CLICK_TOPICS, ORDER_TOPICS
from deploy.datagen import generator, loadgen
from deploy.flink import pyjobs
from deploy.flink.rest import FlinkClient
from deploy.local.stack import control
from deploy.local.stack.ephemeral import free_settings

TOP = 15


def python_workers(state_dir: Path) -> list[int]:
    """Pids of the Python processes under the stack's TaskManagers (PyFlink's workers)."""
    pids = []
    for taskmanager in taskmanager_pids(state_dir):
        for child in psutil.Process(taskmanager).children(recursive=True):
            try:
                if "python" in child.name().lower():
                    pids.append(child.pid)
            except psutil.Error:
                continue
    return pids


def self_and_total(collapsed: Iterable[str]) -> tuple[Counter[str], Counter[str], int]:
    """From collapsed stacks ("frame;frame;leaf count" lines): samples per frame as the leaf
    (self) and anywhere on the stack (total, once per stack), and the number of samples."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    return own, total, samples


def flink_frames(node: Mapping[str, Any]) -> tuple[Counter[str], int]:
    """Self samples per frame of a Flink flame graph (its JSON tree: name, value, children)."""
    own: Counter[str] = Counter()

    def walk(n: Mapping[str, Any]) -> None:
        children = n.get("children") or []
        below = sum(int(c.get("value", 0)) for c in children)
        here = int(n.get("value", 0)) - below
        if here > 0:
            own[str(n.get("name"))] += here
        for c in children:
            walk(c)

    walk(node)
    return own, int(node.get("value", 0))


def table(title: str, counts: Counter[str], samples: int) -> list[str]:
    lines = [f"| {title} | share |", "|---|---|"]
    for frame, n in counts.most_common(TOP):
        lines.append(f"| `{frame[:140].replace('|', '/')}` | {n / max(samples, 1):.1%} |")
    return lines


def busiest_vertex(flink: FlinkClient, job_id: str) -> tuple[str, str]:
    best, best_busy = ("", ""), -1.0
    for v in flink.job(job_id).get("vertices", []):
        got = flink.subtask_metrics(job_id, str(v["id"]), ["busyTimeMsPerSecond"])
        busy = float(got.get("busyTimeMsPerSecond", {}).get("max", 0.0))
        if busy > best_busy:
            best, best_busy = (str(v["id"]), str(v["name"])), busy
    return best


def flame_graph(flink: FlinkClient, job_id: str, vertex: str, timeout: float) -> dict[str, Any]:
    """Flink samples on the first request and answers with the graph once it has one."""
    deadline = time.monotonic() + timeout
    graph: dict[str, Any] = {}
    while time.monotonic() < deadline:
        graph = flink.flame_graph(job_id, vertex)
        data = graph.get("data") or {}
        if data.get("value"):
            return dict(data)
        time.sleep(2)
    return {}


def profile(
    job: str, events: int, seconds: float, functions: str, out: Path, mode: str = "process"
) -> str:
    with tempfile.TemporaryDirectory(prefix="eddyline-profile-") as state:
        settings = free_settings(Path(state), taskmanager_memory="3g", slots=4)
        control.up(settings)
        try:
            bs = settings.bootstrap_servers
            config = generator.GeneratorConfig(seed=1, events=events)
            if job in ORDER_JOBS:
                loadgen.produce(bs, generator.orders(config), ORDER_TOPICS, partitions=2)
                inputs = ["--orders-topic", ORDER_TOPICS["orders"]]
            else:
                loadgen.produce(bs, generator.clickstream(config), CLICK_TOPICS, partitions=2)
                inputs = ["--views-topic", CLICK_TOPICS["views"], "--clicks-topic",
                          CLICK_TOPICS["clicks"], "--functions", functions]  # fmt: skip
            with FlinkClient(settings.flink_url) as flink:
                job_id = pyjobs.submit(flink, f"jobs.{job}", [
                    "--bootstrap-servers", bs, "--starting-offsets", "earliest",
                    "--group-id", "profile", "--output-topic", "profile-out",
                    "--late-topic", "profile-late", "--dead-letter-topic", "profile-dead",
                    "--parallelism", "1", "--python-execution-mode", mode, *inputs,
                ])  # fmt: skip
                _await_records(flink, job_id)
                vertex, vertex_name = busiest_vertex(flink, job_id)
                # THREAD mode runs Python inside the TaskManager's JVM: py-spy samples the
                # interpreter PEMJA embedded there.
                workers = (
                    python_workers(settings.state_dir)
                    if mode == "process"
                    else taskmanager_pids(settings.state_dir)
                )
                spies = [
                    _py_spy(pid, fmt, path, seconds)
                    for pid in workers
                    for fmt, path in (
                        ("raw", out / f"profile-{job}-{pid}.txt"),
                        ("flamegraph", out / f"profile-{job}-{mode}-python-{pid}.svg"),
                    )
                ]
                graph = flame_graph(flink, job_id, vertex, timeout=seconds + 60)
                for proc in spies:
                    proc.wait(timeout=seconds + 120)
                flink.cancel(job_id)
        finally:
            control.down(settings.state_dir)
    what = f"{functions} functions, " if job not in ORDER_JOBS else ""
    lines = [
        f"# Profile of {job} ({what}{mode.upper()} mode), {seconds:.0f} s while working a backlog",
        "",
    ]
    for pid in workers:
        raw = out / f"profile-{job}-{pid}.txt"
        own, total, samples = self_and_total(raw.read_text().splitlines())
        raw.unlink()
        where = "Python worker" if mode == "process" else "TaskManager (embedded Python)"
        lines += [f"## {where} {pid}: {samples} samples (py-spy, 100 Hz)", ""]
        lines += [*table("frame (self)", own, samples), ""]
        lines += [*table("frame (on the stack)", total, samples), ""]
    own, samples = flink_frames(graph)
    lines += [f"## Flink flame graph of `{vertex_name[:120]}` (on-CPU, {samples} samples)", ""]
    lines += [*table("frame (self)", own, samples), ""]
    return "\n".join(lines)


def _py_spy(pid: int, fmt: str, path: Path, seconds: float) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid),
               "--duration", str(int(seconds)), "--rate", "100", "--nonblocking",
               "--format", fmt, "--output", str(path)]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _await_records(flink: FlinkClient, job_id: str, timeout: float = 300) -> None:
    """Until some vertex reads records (the Python workers have started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        detail = flink.job(job_id)
        if detail["state"] == "RUNNING" and any(
            int(v.get("metrics", {}).get("read-records", 0)) > 0 for v in detail["vertices"]
        ):
            time.sleep(5)  # past the first bundles
            return
        time.sleep(1)
    raise RuntimeError(f"job {job_id}: no records read after {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    p = argparse.ArgumentParser(
        prog="python -m bench.profile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--job", choices=("attribution", "sessions", "ledger"), default="attribution")
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--functions", choices=("pandas", "python", "builtin"), default="python")
    p.add_argument("--python-execution-mode", choices=("process", "thread"), default="process")
    args = p.parse_args(argv)
    out = results_file.RESULTS
    out.mkdir(parents=True, exist_ok=True)
    mode = args.python_execution_mode
    report = profile(args.job, args.events, args.seconds, args.functions, out, mode)
    (out / f"profile-{args.job}-{mode}.md").write_text(report + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
