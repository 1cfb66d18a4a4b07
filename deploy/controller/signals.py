"""The data-level signals of a running job at one moment (plain data, no I/O): what the runtime
samples (deploy/flink/datasignals.py) and the health decision judges over a window of them
(deploy/controller/decide/health.py). A value the runtime could not read this time is None."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signals:
    time: int  # epoch ms
    # Records the job's consumer group has yet to commit on its input topics (Kafka's view:
    # committed offsets move at checkpoints, so a job that keeps up shows a sawtooth).
    lag: int | None = None
    # Records that ever arrived on the input topics (sum of their end offsets): input flows
    # while this grows.
    arrived: int | None = None
    # Records the job consumed (sum of its committed offsets past each partition's start).
    consumed: int | None = None
    # The smallest current input watermark of the vertices the sources feed, epoch ms; None
    # while no watermark has been emitted (or the job emits none).
    watermark: int | None = None
    # Records in the job's dead-letter topic (sum of its end offsets). A topic shared by
    # several jobs counts every writer's dead letters.
    dead_letters: int | None = None
    checkpoints_completed: int | None = None
    checkpoints_failed: int | None = None
    # Checkpoints that failed since the newest completed one (from Flink's recent history).
    checkpoints_failed_in_a_row: int | None = None
