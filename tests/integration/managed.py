"""Jobs under a real controller: an `eddyline controller` process of the test's own (its own
store, pointed at the session's stack), the `eddyline` CLI to change specs, and waits on the
status the controller writes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import yaml

from deploy import paths
from deploy.cli.jobs import JOB_DIRS_ENV
from deploy.errors import FlinkError
from deploy.flink.rest import FlinkClient
from deploy.flink.states import TERMINAL_STATES
from deploy.local.stack.ports import free_port
from deploy.local.store import SqliteStore
from deploy.settings import StackSettings
from deploy.spec import FlinkJob
from tests.integration.cli import EDDYLINE, eddyline
from tests.integration.stacks import RunningStack

TEST_JOBS = paths.PROJECT_ROOT / "tests" / "jobs"
LEASE_TTL = "4"


def allowed_env() -> dict[str, str]:
    return {JOB_DIRS_ENV: os.pathsep.join([str(paths.PROJECT_ROOT / "jobs"), str(TEST_JOBS)])}


class ControllerProcess:
    """`eddyline controller` as a process, so a test can kill -9 it."""

    def __init__(
        self,
        stack: RunningStack,
        state_dir: Path,
        failpoints: str = "",
        elastic: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.log = state_dir / f"controller-{time.time_ns()}.log"
        self.metrics_port = free_port()
        env = {
            **os.environ,
            **allowed_env(),
            "EDDYLINE_FAILPOINTS": failpoints,
            **(extra_env or {}),
        }
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [
                    str(EDDYLINE), "controller",
                    "--state-dir", str(state_dir),
                    "--flink-url", stack.flink_url,
                    "--bootstrap-servers", stack.bootstrap_servers,
                    "--metrics-port", str(self.metrics_port),
                    "--lease-ttl", LEASE_TTL,
                    "--interval", "0.5",
                    # Grow and shrink the stack's TaskManagers with the jobs' slots.
                    *(["--stack-dir", str(stack.settings.state_dir)] if elastic else []),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )  # fmt: skip

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_killed(self, timeout: float = 300) -> int:
        """Waits for the process to end (a failpoint kills it); returns its exit code."""
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        except OSError:
            return ""


class Managed:
    """One test's controller, store and CLI."""

    def __init__(
        self, stack: RunningStack, state_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        """`env`: more environment for the controller and the CLI (a Kafka client
        configuration: EDDYLINE_KAFKA_CONFIG, KAFKA_*)."""
        self.stack = stack
        self.state_dir = state_dir
        self.env = env or {}
        self.settings = StackSettings(state_dir=state_dir)
        self.store = SqliteStore(self.settings.controller_db)
        self.flink = FlinkClient(stack.flink_url)
        self.controller: ControllerProcess | None = None
        # Flink's own job list when the test began: any job it lists later beyond these is one
        # this test's controller started (the session's stack runs one test at a time).
        self.jobs_before = {j["jid"] for j in self.flink.jobs()}

    def start_controller(self, failpoints: str = "", elastic: bool = False) -> ControllerProcess:
        self.controller = ControllerProcess(
            self.stack, self.state_dir, failpoints, elastic, self.env
        )
        return self.controller

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return eddyline(
            *args, "--state-dir", str(self.state_dir), env={**allowed_env(), **self.env}
        )

    def submit(self, doc: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        path = self.state_dir / f"{doc['metadata']['name']}-{time.time_ns()}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return self.cli("submit", str(path))

    def job(self, name: str) -> FlinkJob:
        job = self.store.get(name)
        assert job is not None, f"{name} is not in the store"
        return job

    def wait(
        self, name: str, done: Callable[[FlinkJob], bool], what: str, timeout: float = 240
    ) -> FlinkJob:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(name)
            if done(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{name} did not {what} in {timeout:.0f} s; it is {job.status.lifecycle}; "
                    f"error {job.status.error!r}; events {[e.message for e in job.status.events]}"
                    f"; autoscaler's last word {job.status.autoscaler.get('last')!r}"
                    f"\ncontroller log:\n{self.controller.tail() if self.controller else ''}"
                )
            time.sleep(0.5)

    def wait_running(self, name: str, generation: int, timeout: float = 240) -> FlinkJob:
        return self.wait(
            name, lambda job: job.running_at(generation), f"run generation {generation}", timeout
        )

    def live_flink_jobs(self) -> list[str]:
        """Ids of the jobs Flink runs now that it did not list when this test began, sorted.

        From Flink's own job list, not from the ids the controller recorded: a job it started
        and never recorded counts too, and a REST error fails the test rather than reading as
        "not live"."""
        return sorted(
            j["jid"]
            for j in self.flink.jobs()
            if j["jid"] not in self.jobs_before and j["state"] not in TERMINAL_STATES
        )

    def close(self) -> None:
        """Delete every job through the controller; cancel what is left, stop the controller."""
        try:
            if self.controller is not None and self.controller.alive():
                for job in self.store.list():
                    self.store.request_delete(job.name, savepoint=False)
                deadline = time.monotonic() + 60
                while self.store.list() and time.monotonic() < deadline:
                    time.sleep(0.5)
            for jid in self.live_flink_jobs():
                with suppress(FlinkError):  # it may end on its own meanwhile
                    self.flink.cancel(jid)
        finally:
            if self.controller is not None:
                self.controller.stop()
            self.flink.close()


def flinkjob(name: str, entry: str, args: list[str], **spec: Any) -> dict[str, Any]:
    """A FlinkJob document; `spec` adds or overrides top-level spec blocks (snake_case → keys
    given as written)."""
    job = {"entry": entry, "args": args, "parallelism": 1, "upgradeMode": "savepoint"}
    job.update(spec.pop("job", {}))
    body: dict[str, Any] = {
        "job": job,
        "checkpointing": {"interval": "1s"},
        "restartPolicy": {"maxRetries": 3, "backoff": "1s", "maxBackoff": "4s"},
    }
    body.update(spec)
    return {
        "apiVersion": "eddyline.dev/v1alpha1",
        "kind": "FlinkJob",
        "metadata": {"name": name},
        "spec": body,
    }
