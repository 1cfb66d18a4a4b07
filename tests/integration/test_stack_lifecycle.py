"""Starting, failing, healing and stopping a stack of its own (not the session's shared one)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from deploy.errors import EddylineError, StackError
from deploy.local.stack import control, ports, processes, state
from deploy.settings import StackSettings
from tests.integration.cli import eddyline
from tests.integration.stacks import free_settings


def _all_ports(settings: StackSettings, st: state.StackState) -> set[int]:
    return set(settings.reserved_ports().values()) | {c.port for c in st.components}


def _assert_nothing_left(settings: StackSettings, pids: set[int], used: set[int]) -> None:
    assert not control.supervisor_running(settings.state_dir)
    alive = [p for p in pids if processes.alive(p)]
    assert alive == [], f"processes left running: {alive}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(not ports.is_free(p) for p in used):
        time.sleep(0.2)  # sockets in TIME_WAIT may take a moment; listeners must be gone
    listening = [p for p in used if ports.listening(p)]
    assert listening == [], f"ports still listening: {listening}"
    assert control.status(settings.state_dir) == []


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackSettings]:
    settings = free_settings(tmp_path_factory.mktemp("own-stack"))
    try:
        control.up(settings)
    except EddylineError as e:
        pytest.fail(f"the local stack did not start: {e}", pytrace=False)
    yield settings
    control.down(settings.state_dir)


def _taskmanager(settings: StackSettings) -> control.ComponentStatus:
    return next(c for c in control.status(settings.state_dir) if c.name == "taskmanager-1")


def test_a_killed_taskmanager_is_restarted(own_stack: StackSettings) -> None:
    before = _taskmanager(own_stack)
    assert before.healthy
    assert before.pid
    os.kill(before.pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    after = before
    while time.monotonic() < deadline:
        after = _taskmanager(own_stack)
        if after.pid not in (None, before.pid) and after.healthy:
            break
        time.sleep(1)
    assert after.healthy, "taskmanager-1 did not come back healthy"
    assert after.pid != before.pid
    assert after.restarts == before.restarts + 1


def test_down_leaves_no_process_or_port(own_stack: StackSettings) -> None:
    st = state.load(own_stack.state_dir)
    assert st is not None
    pids = {st.supervisor_pid}
    for c in st.components:
        assert c.pid is not None
        proc = psutil.Process(c.pid)
        pids |= {c.pid} | {child.pid for child in proc.children(recursive=True)}
    used = _all_ports(own_stack, st)

    done = eddyline("down", "--state-dir", str(own_stack.state_dir))
    assert done.returncode == 0, done.stderr
    assert "Stopped: kafka, jobmanager, taskmanager-1, controller." in done.stdout
    _assert_nothing_left(own_stack, pids, used)

    again = eddyline("down", "--state-dir", str(own_stack.state_dir))
    assert again.returncode == 0
    assert "was not running" in again.stdout
    status = eddyline("status", "--state-dir", str(own_stack.state_dir))
    assert status.returncode == 1
    assert "not running" in status.stdout


def test_a_taken_port_is_named_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        settings = free_settings(tmp_path, flink_port=taken)
        done = eddyline(
            "up", "--state-dir", str(tmp_path), "--kafka-port", str(settings.kafka_port),
            "--kafka-controller-port", str(settings.kafka_controller_port),
            "--flink-port", str(taken), "--flink-rpc-port", str(settings.flink_rpc_port),
            "--metrics-port", str(settings.metrics_port),
        )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {taken} (Flink REST) is already in use" in lines[0]
    assert state.load(tmp_path) is None
    assert not control.supervisor_running(tmp_path)


def test_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    done = eddyline(
        "up", "--state-dir", str(tmp_path), env={"PATH": str(Path(sys.executable).parent)}
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: Java not found on PATH: install a JDK 17 (e.g. `apt-get install "
        "openjdk-17-jre-headless`)"
    ]


def test_a_component_dying_at_start_is_named_with_its_log_and_nothing_is_left(
    tmp_path: Path,
) -> None:
    # A heap too small for the JVM to start: Kafka dies at once, Flink would start fine.
    settings = free_settings(tmp_path, kafka_heap="1m")
    with pytest.raises(StackError) as info:
        control.up(settings)
    message = str(info.value)
    assert message.startswith("kafka failed to start: exited with code 1: ")
    assert "heap" in message
    assert f"log: {tmp_path.resolve()}/logs/kafka" in message
    st = state.load(tmp_path)
    assert st is not None
    assert st.phase == state.Phase.FAILED
    started = {c.pid for c in st.components if c.pid}
    _assert_nothing_left(settings, started, _all_ports(settings, st))
