"""The autoscaler's metrics of a running job, read from Flink's REST API: per vertex the busy and
back-pressured time and the record rates (aggregated over subtasks), and the sources' pending
records (the Kafka source's own measure of consumer lag)."""

from __future__ import annotations

from deploy.controller.autoscale import Sample, VertexSample
from deploy.flink.rest import FlinkClient

BUSY = "busyTimeMsPerSecond"
BACKPRESSURED = "backPressuredTimeMsPerSecond"
RATE_IN = "numRecordsInPerSecond"
RATE_OUT = "numRecordsOutPerSecond"
PENDING = "pendingRecords"


def sample(client: FlinkClient, job_id: str, now: int) -> Sample:
    """One Sample of the job (raises FlinkError when Flink does not answer)."""
    detail = client.job(job_id)
    vertices = []
    lag = 0
    source_in = 0.0
    parallelism = 1
    pending_seen = False
    for v in detail.get("vertices", []):
        vid, name = str(v["id"]), str(v["name"])
        parallelism = max(parallelism, int(v.get("parallelism", 1)))
        is_source = name.startswith("Source")
        names = [BUSY, BACKPRESSURED, RATE_IN, RATE_OUT]
        if is_source:
            pending = [n for n in client.subtask_metrics(job_id, vid) if n.endswith(PENDING)]
            pending_seen = pending_seen or bool(pending)
            names += pending
        got = client.subtask_metrics(job_id, vid, names)
        busy = got.get(BUSY, {}).get("max", 0.0) / 1000
        vertices.append(
            VertexSample(
                name=name,
                busy=min(1.0, max(0.0, busy)),
                records_in_per_s=got.get(RATE_IN, {}).get("sum", 0.0),
                records_out_per_s=got.get(RATE_OUT, {}).get("sum", 0.0),
                backpressured=got.get(BACKPRESSURED, {}).get("max", 0.0) / 1000,
                is_source=is_source,
            )
        )
        if is_source:
            lag += int(sum(m.get("sum", 0.0) for n, m in got.items() if n.endswith(PENDING)))
            source_in += got.get(RATE_OUT, {}).get("sum", 0.0)
    # Arrivals ≈ what the sources emit plus how fast the backlog grows; the decision adds the
    # lag's own term, so the sources' rate is the input rate here.
    source = "pending" if pending_seen else "none"
    return Sample(now, parallelism, tuple(vertices), lag, source_in, lag_source=source)
