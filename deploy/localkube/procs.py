"""The cluster's host processes: started detached (they outlive `make cluster-up`), recorded by
PID and start time, stopped by PID only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel

from deploy.errors import ClusterError as ClusterError  # noqa: PLC0414 - still importable from here


def _stat(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): unlike a
    wall-clock create time it does not drift when the kernel's boot-time estimate moves, as it
    does on some virtual machines within the hour."""
    fields = _stat(pid)
    return None if fields is None else int(fields[19])


class Proc(BaseModel):
    name: str
    pid: int
    start_ticks: int
    log: Path

    def alive(self) -> bool:
        """Still running, and still the process we started (not a reused PID)."""
        fields = _stat(self.pid)
        return fields is not None and fields[0] != "Z" and int(fields[19]) == self.start_ticks

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start(name: str, argv: Sequence[str], logs: Path, env: Mapping[str, str] | None = None) -> Proc:
    """Start `argv` in a session of its own (it outlives the shell or pytest that ran `up`),
    stdout and stderr to `<logs>/<name>.log`; recorded by PID, never waited on by a Popen."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        pid = os.posix_spawnp(
            argv[0],
            list(argv),
            dict(env) if env is not None else dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, fd, 1),
                (os.POSIX_SPAWN_DUP2, fd, 2),
            ],
            setsid=True,
        )
    except OSError as e:
        raise ClusterError(f"{name} could not be started ({argv[0]}): {e}") from None
    finally:
        os.close(fd)
    return Proc(name=name, pid=pid, start_ticks=start_ticks(pid) or 0, log=log)


def stop(proc: Proc, grace: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds. Only if it is still the process we started."""
    if not proc.alive():
        _reap(proc.pid)  # it may have died already: a zombie of ours until waited for
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while proc.alive() and time.monotonic() < deadline:
        _reap(proc.pid)
        time.sleep(0.1)
    if proc.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while proc.alive() and time.monotonic() < deadline:
            _reap(proc.pid)
            time.sleep(0.1)
    _reap(proc.pid)


def _reap(pid: int) -> None:
    # When `up` and `down` run in one process (the tests), our children must be waited for.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    proc: Proc, what: str, check: Callable[[], str | None], timeout: float, interval: float = 0.3
) -> None:
    """Poll `check` (None = ready, else why not) until ready; raise naming the component, its
    log and its last lines if it dies or time runs out."""
    deadline = time.monotonic() + timeout
    reason = "not checked yet"
    while True:
        if not proc.alive():
            raise ClusterError(
                f"{proc.name} exited while waiting for {what} (log {proc.log}):\n{proc.tail()}"
            )
        try:
            result = check()
        except Exception as e:  # the check talks to a server that may not be up yet
            result = f"{type(e).__name__}: {e}"
        if result is None:
            return
        reason = result
        if time.monotonic() > deadline:
            raise ClusterError(
                f"{proc.name}: no {what} after {timeout:.0f} s (last: {reason}; log {proc.log}):"
                f"\n{proc.tail()}"
            )
        time.sleep(interval)


def run(argv: Sequence[str], timeout: float = 120, check: bool = True) -> str:
    """A short command; its output, or ClusterError with its output."""
    result = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise ClusterError(
            f"`{' '.join(argv)}` exited {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[-2000:]}"
        )
    return result.stdout
