"""bench.latency's Flink side: submitting the job on its topics, watching it while the load runs
(its checkpoints, back-pressure and watermarks), running the load to its end and waiting for
the last windows and a checkpoint after them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.latency_job import DEAD, LATE, OUTPUT, PARTITIONS, TOPICS, watermark_behind_s
from bench.latency_load import LoadProducer, Reader
from bench.profile import python_workers
from bench.state_storage import Checkpoints
from bench.state_storage import wait_running as wait_vertices_running
from bench.taskmanagers import cpu_used, taskmanager_cpu
from bench.throughput import root_cause
from deploy import kafka_io
from deploy.errors import FlinkError
from deploy.flink import pyjobs
from deploy.flink.rest import FlinkClient

# How often the main loop reads the job's checkpoints, watermarks and back-pressure.
POLL_S = 2.0


@dataclass
class Watch:
    """What the main loop reads from Flink while the load runs."""

    job_id: str
    history: Checkpoints = field(init=False)  # the completed and failed checkpoints, by id
    backpressured: list[float] = field(default_factory=list)  # the most of any vertex, per poll
    vertices: dict[str, str] = field(default_factory=dict)  # name → how it was at the last poll

    def __post_init__(self) -> None:
        self.history = Checkpoints(self.job_id)

    def poll(self, flink: FlinkClient) -> None:
        job_id = self.job_id
        detail = flink.job(job_id)
        if detail["state"] != "RUNNING":
            raise RuntimeError(f"the job is {detail['state']}: {root_cause(flink, job_id)}")
        self.history.poll(flink)
        pressured = 0.0
        # Logged, not reported: Flink's REST metrics are up to 10 s old (its metric fetcher's
        # interval), and the sources with their Python operators were seen 80-90 % busy even
        # at 20 messages/s, so busy time says little about headroom.
        names = ["busyTimeMsPerSecond", "backPressuredTimeMsPerSecond"]
        for vertex in detail.get("vertices") or []:
            try:
                found = flink.subtask_metrics(job_id, vertex["id"], names, agg="max")
                marks = flink.vertex_watermarks(job_id, vertex["id"])
            except FlinkError:
                continue
            now = time.time() * 1000
            busy = found.get(names[0], {}).get("max", 0.0) / 1000
            behind = found.get(names[1], {}).get("max", 0.0) / 1000
            pressured = max(pressured, behind)
            late = watermark_behind_s(marks, now)
            name = str(vertex.get("name", ""))
            shown = "no watermark" if late is None else f"watermark {late:.1f} s behind"
            self.vertices[name] = f"busy {busy:.0%}, back-pressured {behind:.0%}, {shown}"
        self.backpressured.append(pressured)

    def sorted_checkpoints(self) -> list[tuple[float, float]]:
        """(trigger, completion) of each completed checkpoint, by trigger (ms)."""
        out = []
        for entry in self.history.completed.values():
            trigger = float(entry["trigger_timestamp"])
            out.append((trigger, trigger + float(entry["end_to_end_duration"])))
        return sorted(out)


def wait_for_workers(state_dir: Path, timeout: float = 120) -> list[int]:
    """The pids of the Python workers under the TaskManagers, once there are some."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = python_workers(state_dir)
        if workers:
            return workers
        time.sleep(1)
    raise RuntimeError(f"no Python worker under the TaskManagers after {timeout:.0f} s")


def start_job(
    flink: FlinkClient,
    bootstrap: str,
    state_dir: Path,
    flags: Sequence[str],
    conf: Mapping[str, str],
    log: Callable[[str], None],
) -> str:
    """Create the topics, submit the job and wait until it runs with its Python workers up."""
    partitions = {**dict.fromkeys(TOPICS.values(), PARTITIONS), OUTPUT: PARTITIONS}
    kafka_io.create_topics(bootstrap, {**partitions, LATE: 1, DEAD: 1})
    job_id = pyjobs.submit(
        flink,
        "jobs.attribution",
        ["--bootstrap-servers", bootstrap, *flags],
        configuration=dict(conf) or None,
    )
    shown = "".join(f" -D{k}={v}" for k, v in conf.items())
    log(f"submitted attribution {' '.join(flags)}{shown}: {job_id}")
    wait_vertices_running(flink, job_id)
    if "thread" not in flags:  # THREAD mode runs Python inside the TaskManager: no workers
        log(f"running; Python workers {wait_for_workers(state_dir)}")
    return job_id


def drive(
    flink: FlinkClient,
    state_dir: Path,
    load: LoadProducer,
    reader: Reader,
    watch: Watch,
    warmup: float,
    log: Callable[[str], None],
) -> float | None:
    """Run the load to its end, watching the job; returns the TaskManager cores (CPU seconds
    per second) used after the warm-up."""
    cpu_before: dict[int, float] = {}
    cpu_from = 0.0
    measured_from = time.monotonic() + warmup
    next_log = time.monotonic() + 10
    load.start()
    while not load.done():
        time.sleep(POLL_S)
        watch.poll(flink)
        if not cpu_before and time.monotonic() >= measured_from:
            cpu_before = taskmanager_cpu(state_dir)
            cpu_from = time.monotonic()
        if reader.error is not None:
            raise RuntimeError(f"the reader failed: {reader.error}")
        if time.monotonic() >= next_log:
            next_log += 10
            log(f"  sent {load.sent:,}, {len(reader.records):,} attributed records seen")
            for name, state in watch.vertices.items():
                log(f"    {name[:70]}: {state}")
    cpu = cpu_used(cpu_before, taskmanager_cpu(state_dir))
    if load.error is not None:
        raise RuntimeError(f"the producer failed: {load.error}")
    if load.failures:
        raise RuntimeError(f"{len(load.failures)} sends failed: {load.failures[0]}")
    elapsed = time.monotonic() - cpu_from
    return round(cpu / elapsed, 2) if cpu is not None and cpu_before and elapsed > 0 else None


def drain(
    flink: FlinkClient,
    reader: Reader,
    watch: Watch,
    pending: Callable[[], bool],
    grace: float,
    checkpoint_ms: int,
) -> None:
    """After the load: until no expected click is `pending` (or `grace` passed), then until a
    checkpoint triggered after the last record completed (the exactly-once estimate)."""
    deadline = time.monotonic() + grace
    while pending() and time.monotonic() < deadline:
        time.sleep(POLL_S)
        watch.poll(flink)
    last = max((v for _, v in reader.records), default=0.0)
    deadline = time.monotonic() + checkpoint_ms / 1000 + 30
    while time.monotonic() < deadline and not any(t >= last for t, _ in watch.sorted_checkpoints()):
        time.sleep(POLL_S)
        watch.poll(flink)
