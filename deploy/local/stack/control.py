"""`eddyline up | down | status`: start the supervisor, wait for health, stop, report."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deploy.errors import ComponentStartError, StackError, StackNotRunningError
from deploy.flink import health as flink_health
from deploy.local.stack import components, health, ports, prepare, processes, s3state, state
from deploy.local.stack.state import Phase, StackState
from deploy.settings import StackSettings

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def supervisor_running(state_dir: Path) -> bool:
    """True while a supervisor holds the stack's lock in `state_dir`."""
    path = state.lock_file(state_dir)
    if not path.exists():
        return False
    with path.open("r") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


@dataclass(frozen=True)
class UpResult:
    state: StackState
    already_running: bool


def up(settings: StackSettings, progress: Progress = _quiet) -> UpResult:
    """Start the stack and wait until every server is healthy.

    Raises StackError with one line naming the cause (and the log) when it cannot; in that case
    nothing is left running.
    """
    state_dir = settings.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    if supervisor_running(state_dir):
        current = state.load(state_dir)
        if current is not None:
            state.register_stack(current)
            return UpResult(current, already_running=True)
    prepare.check_tools(settings)
    ports.check_free(settings.reserved_ports(), settings.listen_host)

    progress("starting the supervisor")
    sup_pid = _launch_supervisor(settings)
    try:
        return UpResult(_wait_running(settings, sup_pid, progress), already_running=False)
    except BaseException:
        # Leave nothing half-started: a failure or Ctrl-C stops whatever the supervisor began.
        if processes.alive(sup_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(sup_pid, signal.SIGTERM)
            if not _wait_gone(sup_pid, 90):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(sup_pid, signal.SIGKILL)
        _kill_orphans(state_dir)
        raise


def _supervisor_log(settings: StackSettings) -> Path:
    return settings.state_dir / "logs" / "supervisor.log"


def _launch_supervisor(settings: StackSettings) -> int:
    """Start the supervisor as a daemon; returns its pid."""
    launcher = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy.local.stack.supervisor",
            settings.model_dump_json(),
            "--daemon",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if launcher.returncode != 0 or not launcher.stdout.strip().isdigit():
        raise ComponentStartError(
            "supervisor",
            f"could not be started: {launcher.stderr.strip()[-300:]}",
            _supervisor_log(settings),
        )
    return int(launcher.stdout.strip())


def _wait_running(settings: StackSettings, sup_pid: int, progress: Progress) -> StackState:
    """Follow the supervisor's state file until the stack runs; StackError when it failed."""
    deadline = time.monotonic() + settings.start_timeout + 60
    while True:
        current = state.load(settings.state_dir)
        mine = current if current is not None and current.supervisor_pid == sup_pid else None
        if mine is not None:
            # A secured broker: probe it (and let our caller use it) as the stack's own user.
            state.register_stack(mine)
        if mine is not None and mine.phase == Phase.RUNNING:
            return mine
        if mine is not None and mine.phase == Phase.FAILED:
            _wait_gone(sup_pid, 120)
            raise StackError(_one_line(mine))
        if not processes.alive(sup_pid):
            if mine is not None and mine.error:
                raise StackError(_one_line(mine))
            raise ComponentStartError(
                "supervisor", "exited during start-up", _supervisor_log(settings)
            )
        if time.monotonic() > deadline:
            raise ComponentStartError("stack", "start-up timed out", _supervisor_log(settings))
        if mine is not None:
            progress(_waiting_for(settings, mine))
        time.sleep(0.5)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while processes.alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _one_line(current: StackState) -> str:
    msg = current.error or "the stack failed to start"
    if current.error_log and str(current.error_log) not in msg:
        msg += f"; log: {current.error_log}"
    return msg


def _waiting_for(settings: StackSettings, current: StackState) -> str:
    names = [c.name for c in current.components]
    if not names:
        return "preparing configuration and storage"
    pending = []
    if components.OBJECTSTORE in names and not _objectstore_answers(settings.state_dir, current):
        pending.append(components.OBJECTSTORE)
    if not health.kafka_answers(settings.bootstrap_servers, timeout=0.5):
        pending.append(components.KAFKA)
    registered = flink_health.flink_taskmanagers(settings.flink_url, timeout=0.5)
    if registered is None:
        pending.append(components.JOBMANAGER)
    pending += [
        n
        for n in names
        if n.startswith("taskmanager") and (registered is None or n not in registered)
    ]
    return "waiting for " + (", ".join(pending) if pending else "health")


def _objectstore_answers(state_dir: Path, current: StackState) -> bool:
    """The stack's S3 server answers an authenticated ListBuckets with the stack's keys."""
    store = s3state.running_store(state_dir, current.objectstore_endpoint)
    return store is not None and store.probe(timeout=1.0) is None


@dataclass(frozen=True)
class DownResult:
    was_running: bool
    stopped: list[str]


def down(state_dir: Path, timeout: float = 120.0) -> DownResult:
    """Stop everything the stack started. Safe to call when nothing runs."""
    current = state.load(state_dir)
    names = [c.name for c in current.components if c.pid] if current else []
    if supervisor_running(state_dir) and current is not None:
        pid = current.supervisor_pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while supervisor_running(state_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        if supervisor_running(state_dir):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        _kill_orphans(state_dir)
        return DownResult(True, names)
    orphans = _kill_orphans(state_dir)
    return DownResult(bool(orphans), orphans)


def _kill_orphans(state_dir: Path) -> list[str]:
    """Stop servers a dead supervisor left behind: only those it recorded, checked by start time."""
    current = state.load(state_dir)
    if current is None:
        return []
    left = [c for c in current.components if processes.alive(c.pid, c.started_at)]
    processes.stop_groups([c.pid for c in left if c.pid], grace=20.0)
    if left or current.phase not in (Phase.STOPPED, Phase.FAILED):
        current.phase = Phase.STOPPED if current.phase != Phase.FAILED else Phase.FAILED
        for c in current.components:
            c.pid = None
        state.save(state_dir, current)
    return [c.name for c in left]


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    port: int
    metrics_port: int | None
    version: str
    healthy: bool
    log: Path
    restarts: int


def status(state_dir: Path) -> list[ComponentStatus]:
    """Each server's process and health; empty when the stack is not running."""
    current = state.load(state_dir)
    if current is None or not supervisor_running(state_dir):
        return []
    state.register_stack(current)
    registered = flink_health.flink_taskmanagers(current.flink_url)
    out = []
    for c in current.components:
        kafka_ok = c.kind == components.KAFKA and health.kafka_answers(current.bootstrap_servers)
        s3_ok = c.kind == components.OBJECTSTORE and _objectstore_answers(state_dir, current)
        healthy = processes.alive(c.pid) and health.component_healthy(
            c.kind, c.name, kafka_ok, registered, c.metrics_port, s3_ok
        )
        out.append(
            ComponentStatus(
                c.name, c.pid, c.port, c.metrics_port, c.version, healthy, c.log, c.restarts
            )
        )
    return out


def load_running(state_dir: Path) -> StackState:
    """The running stack's state, its Kafka client configuration registered for this process
    (state.register_stack); StackNotRunningError with the next step when it is down."""
    current = state.load(state_dir)
    if current is None or not supervisor_running(state_dir) or current.phase != Phase.RUNNING:
        raise StackNotRunningError(
            f"the local stack is not running (state folder {state_dir}): "
            "start it with `eddyline up`"
        )
    state.register_stack(current)
    return current
