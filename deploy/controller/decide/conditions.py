"""What the status tells a reader: an event log (capped) and conditions that change only when
their value does (so `last_transition_time` says since when)."""

from __future__ import annotations

from typing import Literal

from deploy.spec import Condition, Event, JobStatus

MAX_EVENTS = 30


def event(status: JobStatus, now: int, reason: str, message: str, warning: bool = False) -> None:
    status.events.append(
        Event(time=now, type="Warning" if warning else "Normal", reason=reason, message=message)
    )
    del status.events[:-MAX_EVENTS]


def set_condition(
    status: JobStatus, now: int, type_: str, ok: bool, reason: str, message: str
) -> None:
    value: Literal["True", "False"] = "True" if ok else "False"
    for c in status.conditions:
        if c.type == type_:
            if c.status != value:
                c.last_transition_time = now
            c.status, c.reason, c.message = value, reason, message
            return
    status.conditions.append(
        Condition(
            type=type_, status=value, reason=reason, message=message, last_transition_time=now
        )
    )


def find_condition(status: JobStatus, type_: str) -> Condition | None:
    return next((c for c in status.conditions if c.type == type_), None)


def drop_condition(status: JobStatus, type_: str) -> None:
    """Remove a condition that no longer applies (its check was turned off)."""
    status.conditions[:] = [c for c in status.conditions if c.type != type_]
