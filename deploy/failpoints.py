"""Named crash points for fault tests: `EDDYLINE_FAILPOINTS=before:submit,after:cancel` makes the
process kill itself with SIGKILL (as `kill -9` would) when it reaches one of them. Unset, this is
one environment lookup."""

from __future__ import annotations

import os
import signal

ENV = "EDDYLINE_FAILPOINTS"


def hit(name: str) -> None:
    armed = os.environ.get(ENV)
    if armed and name in armed.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
