"""What the benchmarks that measure the controller share: an `eddyline controller` process with
its own store beside a throw-away stack, and waiting for a job to run a generation."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.local.store import SqliteStore
from deploy.settings import StackSettings
from deploy.spec import FlinkJob, Lifecycle


@contextmanager
def controller(stack: StackSettings, state: Path) -> Iterator[SqliteStore]:
    """A controller process reconciling the store under `state` against `stack`; yields the
    store, stops the process on the way out. Its log is `state`/controller.log."""
    with (state / "controller.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", "controller", "--state-dir", str(state),
             "--flink-url", stack.flink_url, "--bootstrap-servers", stack.bootstrap_servers,
             "--metrics-port", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield SqliteStore(StackSettings(state_dir=state).controller_db)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def wait_running(
    store: SqliteStore, name: str, generation: int, timeout: float = 300, poll: float = 0.05
) -> FlinkJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.get(name)
        if job is not None and job.running_at(generation):
            return job
        if job is not None and job.status.lifecycle == Lifecycle.FAILED:
            raise RuntimeError(f"{name} failed: {job.status.error}")
        time.sleep(poll)
    raise RuntimeError(f"{name}: generation {generation} not running after {timeout} s")
