"""Elastic TaskManagers for the local stack: the controller says how many task slots its jobs
want; the supervisor starts TaskManagers up to `max_taskmanagers` to provide them, and stops the
extra ones again once they have been idle (no slot in use) for a grace period.

The request is a small JSON file in the stack's state folder (`slots-wanted.json`), written by
the controller and read by the supervisor each tick — the two are separate processes, and a file
outlives either restarting. The decisions are pure functions; the supervisor does the I/O.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

IDLE_GRACE_S = 30.0  # an extra TaskManager must be idle this long before it is stopped
REQUEST_FILE = "slots-wanted.json"


def request_file(stack_dir: Path) -> Path:
    return stack_dir / REQUEST_FILE


def write_request(stack_dir: Path, slots: int) -> None:
    """Ask for `slots` task slots in all (atomically: the supervisor never reads half a file)."""
    path = request_file(stack_dir)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"slots": slots, "time": time.time()}))
    os.replace(tmp, path)


def read_request(stack_dir: Path) -> int | None:
    """The slots the controller last asked for; None when it never asked or the file is bad."""
    try:
        value = json.loads(request_file(stack_dir).read_text()).get("slots")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value >= 0 else None


def desired_taskmanagers(wanted_slots: int | None, slots_per_tm: int, base: int, top: int) -> int:
    """TaskManagers to run: enough for the wanted slots, never fewer than the configured base
    nor more than the maximum."""
    if wanted_slots is None:
        return base
    needed = math.ceil(wanted_slots / max(slots_per_tm, 1))
    return max(base, min(top, needed))


@dataclass(frozen=True)
class Extra:
    """A TaskManager started beyond the base count."""

    name: str
    index: int
    idle_since: float | None  # monotonic time since which all its slots are free; None = busy


def to_stop(extras: list[Extra], running: int, desired: int, now: float) -> list[str]:
    """Which extra TaskManagers to stop: the newest first, only while more run than desired, and
    only those idle for IDLE_GRACE_S (a TaskManager with tasks is never taken away)."""
    surplus = running - desired
    chosen: list[str] = []
    for tm in sorted(extras, key=lambda e: e.index, reverse=True):
        if len(chosen) >= surplus:
            break
        if tm.idle_since is not None and now - tm.idle_since >= IDLE_GRACE_S:
            chosen.append(tm.name)
    return chosen


def headroom(running: int, top: int, slots_per_tm: int) -> int:
    """Slots the stack could still add by starting TaskManagers."""
    return max(0, top - running) * slots_per_tm
