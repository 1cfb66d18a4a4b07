"""Running the real `eddyline` command in tests."""

from __future__ import annotations

import os
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
