"""Health probes of the stack's servers: a Kafka metadata request, Flink's REST API, and for
the S3 server an authenticated ListBuckets."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from deploy.kafka_io import admin


def component_healthy(
    kind: str,
    name: str,
    kafka_ok: bool,
    registered: set[str] | None,
    port: int | None = None,
    objectstore_ok: bool = False,
) -> bool:
    """Whether a component is healthy, given a Kafka probe, an S3 probe and the TaskManagers the
    JobManager lists (None when it does not answer): Kafka answers; the S3 server answers with
    the stack's keys; the JobManager answers; a TaskManager is registered under its own name;
    the controller serves its metrics."""
    if kind == "kafka":
        return kafka_ok
    if kind == "objectstore":
        return objectstore_ok
    if kind == "controller":
        return port is not None and metrics_answer(f"http://localhost:{port}/metrics")
    if kind == "jobmanager":
        return registered is not None
    return registered is not None and name in registered


def kafka_answers(bootstrap_servers: str, timeout: float = 3.0) -> bool:
    """True when the broker answers a metadata request and lists itself."""
    try:
        meta = admin(bootstrap_servers).list_topics(timeout=timeout)
    except Exception:  # KafkaException on timeout: the broker is not answering yet
        return False
    return len(meta.brokers) > 0


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


def metrics_answer(url: str, timeout: float = 3.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
