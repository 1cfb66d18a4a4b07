"""The SQLite store: spec and status kept apart, generations, deletion, leases."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from deploy.errors import ControllerError
from deploy.spec import FlinkJob, JobStatus, Lifecycle, parse
from deploy.store import SAVEPOINT_ON_DELETE, SqliteStore


def job(parallelism: int = 1) -> FlinkJob:
    return parse(
        {
            "apiVersion": "eddyline.dev/v1alpha1",
            "kind": "FlinkJob",
            "metadata": {"name": "ledger"},
            "spec": {"job": {"entry": "jobs.ledger", "parallelism": parallelism}},
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "jobs.db")


def test_the_file_is_in_wal_mode(store: SqliteStore) -> None:
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_generations_follow_spec_changes_only(store: SqliteStore) -> None:
    created = store.apply(job())
    assert created.metadata.generation == 1
    assert created.metadata.creation_timestamp
    assert store.apply(job()).metadata.generation == 1
    assert store.apply(job(2)).metadata.generation == 2

    def scale(spec):  # type: ignore[no-untyped-def]
        return spec.model_copy(update={"job": spec.job.model_copy(update={"parallelism": 3})})

    assert store.update_spec("ledger", scale).metadata.generation == 3


def test_status_and_spec_never_overwrite_each_other(store: SqliteStore) -> None:
    store.apply(job())
    status = JobStatus(job_id="j1", lifecycle=Lifecycle.RUNNING, observed_generation=1)
    assert store.write_status("ledger", status)
    store.apply(job(2))  # a user's change after the controller wrote
    got = store.get("ledger")
    assert got is not None
    assert got.status == status
    assert got.spec.job.parallelism == 2
    store.write_status("ledger", status.model_copy(update={"lifecycle": Lifecycle.STABLE}))
    got = store.get("ledger")
    assert got is not None
    assert got.spec.job.parallelism == 2


def test_deletion_is_a_request_the_controller_finishes(store: SqliteStore) -> None:
    store.apply(job())
    deleting = store.request_delete("ledger", savepoint=True)
    assert deleting.metadata.deletion_timestamp
    assert deleting.metadata.annotations[SAVEPOINT_ON_DELETE] == "true"
    with pytest.raises(ControllerError, match="being deleted"):
        store.apply(job(2))
    store.forget("ledger")
    assert store.get("ledger") is None
    assert store.write_status("ledger", JobStatus()) is False
    with pytest.raises(ControllerError, match="no job named 'ledger'"):
        store.request_delete("ledger", savepoint=False)


def test_a_lease_keeps_a_second_controller_out_until_it_expires(store: SqliteStore) -> None:
    assert store.acquire("ledger", "a", ttl=0.5)
    assert not store.acquire("ledger", "b", ttl=0.5)
    assert store.acquire("ledger", "a", ttl=0.5)  # renewal
    time.sleep(0.6)
    assert store.acquire("ledger", "b", ttl=10)
    assert not store.acquire("ledger", "a", ttl=10)
    store.release("ledger", "b")
    assert store.acquire("ledger", "a", ttl=10)


def test_two_stores_on_one_file_see_the_same_jobs(store: SqliteStore) -> None:
    other = SqliteStore(store.path)
    store.apply(job())
    assert [j.name for j in other.list()] == ["ledger"]
