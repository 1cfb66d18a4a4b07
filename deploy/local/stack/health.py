"""Health of the stack's components: a Kafka metadata request, the controller's metrics page, and
the verdict per component (Flink's side is asked through deploy.flink.health)."""

from __future__ import annotations

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


def metrics_answer(url: str, timeout: float = 3.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
