"""Process helpers of the supervisor: restart backoff, failure causes, group stop."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from deploy.local.stack import processes
from deploy.local.stack.health import component_healthy
from deploy.local.stack.supervisor import restart_delay


def test_restart_backoff_doubles_and_is_capped() -> None:
    assert [restart_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert restart_delay(20) == 30.0


def test_failure_cause_is_the_last_error_line(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(
        "INFO starting\n"
        "ERROR first problem\n"
        "INFO more\n"
        "java.net.BindException: Address already in use\n"
        "INFO shutting down\n"
    )
    assert processes.failure_cause([log]) == "java.net.BindException: Address already in use"


def test_failure_cause_reads_the_next_log_when_the_first_is_silent(tmp_path: Path) -> None:
    quiet, loud = tmp_path / "a.log", tmp_path / "b.log"
    quiet.write_text("INFO all good\n")
    loud.write_text("Error: Could not create the Java Virtual Machine.\n")
    assert processes.failure_cause([quiet, tmp_path / "missing.log", loud]) == (
        "Error: Could not create the Java Virtual Machine."
    )


def test_stop_groups_ends_a_process_and_its_children() -> None:
    # A parent that ignores SIGTERM and a child: both must be gone after stop_groups.
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True, text=True
    ) as proc:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        processes.stop_groups([proc.pid], grace=1.0)
        proc.wait(timeout=10)
    assert not processes.alive(proc.pid)
    # The orphaned child is killed with its group; on a busy machine it may take a moment to go.
    deadline = time.monotonic() + 10
    while processes.alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes.alive(child)


def test_failure_cause_falls_back_to_the_last_words_of_this_start(tmp_path: Path) -> None:
    out = tmp_path / "kafka.out"
    out.write_text(
        f"{processes.START_MARK} kafka: java ...\n"
        "Too small initial heap\n\n"
        f"{processes.START_MARK} kafka: java ...\n"
        "Error occurred during initialization of VM\n"
        "Too small maximum heap\n"
    )
    assert processes.failure_cause([out]) == "Too small maximum heap"


def test_failure_cause_is_none_for_a_silent_start(tmp_path: Path) -> None:
    out = tmp_path / "kafka.out"
    out.write_text(f"{processes.START_MARK} kafka: java ...\n")
    assert processes.failure_cause([out]) is None


def test_component_health_rule() -> None:
    assert component_healthy("kafka", "kafka", kafka_ok=True, registered=None)
    assert not component_healthy("kafka", "kafka", kafka_ok=False, registered={"taskmanager-1"})
    assert component_healthy("jobmanager", "jobmanager", kafka_ok=False, registered=set())
    assert not component_healthy("jobmanager", "jobmanager", kafka_ok=True, registered=None)
    assert component_healthy("taskmanager", "taskmanager-1", False, {"taskmanager-1"})
    assert not component_healthy("taskmanager", "taskmanager-2", False, {"taskmanager-1"})
