"""Starting and stopping the stack's processes, each in its own process group.

Every server runs as the leader of a new session, so stopping it also stops what it started
(Flink's Python workers) — and we only ever signal process groups we created ourselves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:  # a type only: components imports deploy.local.objectstore, which imports us
    from deploy.local.stack.components import ProcessSpec

# Written to a server's stdout log before each start, so a failure is read from this start only.
START_MARK = "==== starting"


def start(spec: ProcessSpec) -> subprocess.Popen[bytes]:
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    spec.log_dir.mkdir(parents=True, exist_ok=True)
    with spec.log.open("ab") as out:
        out.write(f"\n{START_MARK} {spec.name}: {' '.join(spec.argv)}\n".encode())
        out.flush()
        return subprocess.Popen(
            spec.argv,
            env={**os.environ, **spec.env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def alive(pid: int | None, started_at: float | None = None) -> bool:
    """True when `pid` runs and (if given) is the process that started at `started_at`."""
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started_at is None or abs(proc.create_time() - started_at) < 1.0
    except psutil.NoSuchProcess:
        return False


def create_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.NoSuchProcess:
        return None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A group whose leader is a zombie we have not reaped still "exists"; look at members.
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return False


def stop_groups(pgids: Iterable[int], grace: float = 30.0) -> None:
    """SIGTERM each group, wait up to `grace` seconds, then SIGKILL what is left."""
    groups = [g for g in pgids if g > 0]
    for g in groups:
        _signal_group(g, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(g) for g in groups):
        time.sleep(0.2)
    for g in groups:
        _signal_group(g, signal.SIGKILL)


def tail(path: Path, lines: int = 200) -> list[str]:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            return f.read().decode(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return []


def failure_cause(logs: Iterable[Path]) -> str | None:
    """The most telling line of a dead server's logs: its last error or exception, else the
    last thing the first log says (a JVM that cannot start prints a bare reason to stdout)."""
    logs = list(logs)
    markers = ("Address already in use", "ERROR", "Exception", "Error:", "error:")
    for log in logs:
        for line in reversed(tail(log)):
            if any(m in line for m in markers):
                return line.strip()[:300]
    for log in logs[:1]:
        for line in reversed(tail(log)):
            if line.startswith(START_MARK):
                break
            if line.strip():
                return line.strip()[:300]
    return None
