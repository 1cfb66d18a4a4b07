"""A job lost with its JobManager resumes from the newest checkpoint it left on disk, not from the
last one the controller happened to see (found by tests/integration/test_faults_processes.py:
the JobManager killed while the controller was away; Flink had deleted the checkpoint the
controller knew, and every restart failed with FileNotFoundException)."""

from __future__ import annotations

import os
from pathlib import Path

from deploy.controller.decide import decide
from deploy.controller.model import Observation, Submit
from deploy.flink.runtime import retained_checkpoint
from deploy.spec import JobStatus, Lifecycle, parse

T0 = 1_800_000_000_000


def _checkpoint(base: Path, job_id: str, n: int, mtime_ms: int, metadata: bytes = b"x") -> Path:
    folder = base / job_id / f"chk-{n}"
    folder.mkdir(parents=True)
    if metadata is not None:
        (folder / "_metadata").write_bytes(metadata)
        os.utime(folder / "_metadata", ns=(mtime_ms * 1_000_000, mtime_ms * 1_000_000))
    return folder


def test_the_newest_complete_checkpoint_of_the_job_is_found_next_to_the_known_one(
    tmp_path: Path,
) -> None:
    known = f"file:{tmp_path}/j1/chk-5"  # seen by the controller, deleted by Flink since
    _checkpoint(tmp_path, "j1", 6, T0 + 1_000)
    newest = _checkpoint(tmp_path, "j1", 7, T0 + 2_000)
    (tmp_path / "j1" / "chk-8").mkdir()  # in progress: no _metadata yet
    _checkpoint(tmp_path, "other", 9, T0 + 9_000)  # another job's
    assert retained_checkpoint("j1", known) == (f"file:{newest}", T0 + 2_000)


def test_an_empty_metadata_file_is_no_complete_checkpoint(tmp_path: Path) -> None:
    done = _checkpoint(tmp_path, "j1", 6, T0 + 1_000)
    _checkpoint(tmp_path, "j1", 7, T0 + 2_000, metadata=b"")
    assert retained_checkpoint("j1", f"file:{done}") == (f"file:{done}", T0 + 1_000)


def test_the_job_folder_is_looked_up_from_a_checkpoint_of_the_job_it_was_restored_from(
    tmp_path: Path,
) -> None:
    restored_from = _checkpoint(tmp_path, "j1", 5, T0)
    newest = _checkpoint(tmp_path, "j2", 6, T0 + 3_000)
    assert retained_checkpoint("j2", f"file:{restored_from}") == (f"file:{newest}", T0 + 3_000)


def test_nothing_is_found_without_a_local_checkpoint_to_start_from(tmp_path: Path) -> None:
    assert retained_checkpoint("j1", None) is None
    assert retained_checkpoint("j1", "s3://bucket/checkpoints/j1/chk-5") is None
    assert retained_checkpoint("j1", f"file:{tmp_path}/j1/chk-5") is None  # no folder at all


def test_a_job_gone_with_its_jobmanager_is_restarted_from_the_retained_checkpoint() -> None:
    job = parse(
        {
            "apiVersion": "eddyline.dev/v1alpha1",
            "kind": "FlinkJob",
            "metadata": {"name": "ledger"},
            "spec": {
                "job": {"entry": "jobs.ledger"},
                "restartPolicy": {"backoff": "1s", "maxRetries": 3},
            },
        }
    )
    job = job.model_copy(
        update={
            "status": JobStatus(
                job_id="j1",
                flink_state="RUNNING",
                lifecycle=Lifecycle.STABLE,
                last_reconciled_spec=job.spec,
                observed_generation=1,
                last_checkpoint_path="file:/state/checkpoints/j1/chk-5",
                last_checkpoint_time=T0 - 5_000,
            )
        }
    )
    newer = ("file:/state/checkpoints/j1/chk-7", T0 - 1_000)
    first = decide(job, Observation(now=T0, job=None, retained_checkpoint=newer))
    assert first.actions == []  # the restart waits for its backoff
    assert first.status.last_checkpoint_path == newer[0]
    job = job.model_copy(update={"status": first.status})
    later = decide(job, Observation(now=T0 + 1_000, job=None, retained_checkpoint=newer))
    (submit,) = [a for a in later.actions if isinstance(a, Submit)]
    assert submit.savepoint_path == newer[0]


def test_an_older_retained_checkpoint_does_not_replace_a_newer_one_seen() -> None:
    job = parse(
        {
            "apiVersion": "eddyline.dev/v1alpha1",
            "kind": "FlinkJob",
            "metadata": {"name": "ledger"},
            "spec": {"job": {"entry": "jobs.ledger"}},
        }
    )
    status = JobStatus(
        job_id="j1",
        lifecycle=Lifecycle.STABLE,
        last_reconciled_spec=job.spec,
        observed_generation=1,
        last_checkpoint_path="file:/state/checkpoints/j1/chk-9",
        last_checkpoint_time=T0,
    )
    job = job.model_copy(update={"status": status})
    older = ("file:/state/checkpoints/j1/chk-8", T0 - 1)
    plan = decide(job, Observation(now=T0 + 1, job=None, retained_checkpoint=older))
    assert plan.status.last_checkpoint_path == "file:/state/checkpoints/j1/chk-9"
