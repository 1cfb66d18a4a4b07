"""Whether Flink answers, and which TaskManagers it has registered (idle or busy): the probes the
stack's supervisor, `eddyline status` and the Kubernetes runtime ask."""

from __future__ import annotations

from collections.abc import Mapping

import httpx


def flink_taskmanagers(flink_url: str, timeout: float = 3.0) -> set[str] | None:
    """The ids of the TaskManagers registered with the JobManager, or None if it does not answer."""
    listed = _taskmanagers(flink_url, timeout)
    return None if listed is None else {str(tm["id"]) for tm in listed}


def flink_idle_taskmanagers(flink_url: str, timeout: float = 3.0) -> set[str] | None:
    """The ids of registered TaskManagers with every slot free, or None if Flink does not answer."""
    listed = _taskmanagers(flink_url, timeout)
    if listed is None:
        return None
    return {str(tm["id"]) for tm in listed if idle(tm)}


def idle(taskmanager: Mapping[str, object]) -> bool:
    """A TaskManager of Flink's /taskmanagers with every slot free (no task on it)."""
    slots, free = taskmanager.get("slotsNumber"), taskmanager.get("freeSlots")
    return isinstance(slots, int) and free == slots


def _taskmanagers(flink_url: str, timeout: float) -> list[dict[str, object]] | None:
    try:
        resp = httpx.get(f"{flink_url}/taskmanagers", timeout=timeout)
        resp.raise_for_status()
    except httpx.HTTPError:
        return None
    return list(resp.json().get("taskmanagers", []))


def flink_answers(flink_url: str, timeout: float = 3.0) -> bool:
    try:
        return httpx.get(f"{flink_url}/overview", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
