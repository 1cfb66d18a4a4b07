"""Running the real `eddyline` command in tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

EDDYLINE = Path(sys.executable).parent / "eddyline"


def eddyline(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EDDYLINE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def stop_like_ctrl_c(proc: subprocess.Popen[str], timeout: float = 30) -> int:
    """SIGINT to `proc` and its exit code; killed, and the test failed, if it does not end."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        stderr = proc.stderr.read() if proc.stderr is not None else ""
        raise AssertionError(
            f"{proc.args!r} did not end within {timeout:.0f} s of SIGINT; stderr:\n{stderr}"
        ) from None
