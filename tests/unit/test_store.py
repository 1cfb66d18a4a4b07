"""The SQLite store (deploy/local/store.py): spec and status kept apart, generations, deletion
requests, forgetting, leases and the file's journal mode."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from deploy.controller.store import SAVEPOINT_ON_DELETE
from deploy.errors import ControllerError
from deploy.local import store as store_module
from deploy.local.store import SqliteStore
from deploy.spec import (
    FlinkJob,
    FlinkJobSpec,
    JobStatus,
    Lifecycle,
    Operation,
    SavepointInfo,
    parse,
)


def flinkjob(name: str = "ledger", parallelism: int = 1, **metadata: Any) -> FlinkJob:
    return parse(
        {
            "apiVersion": "eddyline.dev/v1alpha1",
            "kind": "FlinkJob",
            "metadata": {"name": name, **metadata},
            "spec": {"job": {"entry": "jobs.ledger", "parallelism": parallelism}},
        }
    )


def scaled(parallelism: int):  # type: ignore[no-untyped-def]
    def change(spec: FlinkJobSpec) -> FlinkJobSpec:
        return spec.model_copy(
            update={"job": spec.job.model_copy(update={"parallelism": parallelism})}
        )

    return change


def must_get(store: SqliteStore, name: str = "ledger") -> FlinkJob:
    job = store.get(name)
    assert job is not None
    return job


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state" / "jobs.db")


A_STATUS = JobStatus(
    job_id="j1",
    lifecycle=Lifecycle.RUNNING,
    observed_generation=1,
    savepoints=[SavepointInfo(path="file:/sp/1", time=5, trigger="manual")],
    operation=Operation(kind="savepoint", step="savepointing", started_at=1, trigger_id="t"),
    error="something",
)


# -- creating and changing -----------------------------------------------------------------------


def test_the_folder_is_created_and_the_store_starts_empty(store: SqliteStore) -> None:
    assert store.path.exists()
    assert store.list() == []
    assert store.get("ledger") is None


def test_the_file_is_in_wal_mode(store: SqliteStore) -> None:
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_create_sets_generation_one_and_a_creation_timestamp(store: SqliteStore) -> None:
    created = store.apply(flinkjob(generation=7))
    assert created.metadata.generation == 1
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.creation_timestamp.endswith("Z")
    assert created.metadata.deletion_timestamp is None
    assert created.status == JobStatus()
    assert must_get(store) == created


def test_create_ignores_a_submitted_creation_or_deletion_timestamp(store: SqliteStore) -> None:
    submitted = flinkjob(
        creationTimestamp="2000-01-01T00:00:00Z", deletionTimestamp="2000-01-02T00:00:00Z"
    )
    created = store.apply(submitted)
    assert created.metadata.creation_timestamp != "2000-01-01T00:00:00Z"
    assert created.metadata.deletion_timestamp is None


def test_create_ignores_a_status_set_on_the_model(store: SqliteStore) -> None:
    job = flinkjob().model_copy(update={"status": A_STATUS})
    assert store.apply(job).status == JobStatus()
    assert must_get(store).status == JobStatus()


def test_reapplying_the_same_spec_keeps_the_generation(store: SqliteStore) -> None:
    created = store.apply(flinkjob())
    again = store.apply(flinkjob())
    assert again.metadata.generation == 1
    assert again.metadata.creation_timestamp == created.metadata.creation_timestamp
    assert must_get(store).metadata.generation == 1


def test_a_changed_spec_bumps_the_generation_once_per_change(store: SqliteStore) -> None:
    store.apply(flinkjob())
    assert store.apply(flinkjob(parallelism=2)).metadata.generation == 2
    assert store.apply(flinkjob(parallelism=2)).metadata.generation == 2
    assert store.apply(flinkjob(parallelism=3)).metadata.generation == 3
    assert store.apply(flinkjob(parallelism=1)).metadata.generation == 4
    assert must_get(store).spec.job.parallelism == 1


def test_labels_and_annotations_change_without_a_new_generation(store: SqliteStore) -> None:
    store.apply(flinkjob())
    changed = store.apply(flinkjob(labels={"team": "x"}, annotations={"a": "b"}))
    assert changed.metadata.generation == 1
    assert changed.metadata.labels == {"team": "x"}
    assert must_get(store).metadata.annotations == {"a": "b"}


def test_a_submitted_generation_is_ignored_on_change(store: SqliteStore) -> None:
    store.apply(flinkjob())
    assert store.apply(flinkjob(parallelism=2, generation=40)).metadata.generation == 2


def test_update_spec_applies_a_change_and_bumps_the_generation(store: SqliteStore) -> None:
    store.apply(flinkjob())
    updated = store.update_spec("ledger", scaled(4))
    assert updated.metadata.generation == 2
    assert must_get(store).spec.job.parallelism == 4
    # A change that changes nothing keeps the generation.
    assert store.update_spec("ledger", scaled(4)).metadata.generation == 2
    assert store.update_spec("ledger", lambda spec: spec).metadata.generation == 2


def test_update_spec_on_an_unknown_job_is_refused(store: SqliteStore) -> None:
    with pytest.raises(ControllerError, match="no job named 'ghost'"):
        store.update_spec("ghost", scaled(2))


def test_update_spec_on_a_deleting_job_is_refused(store: SqliteStore) -> None:
    store.apply(flinkjob())
    store.request_delete("ledger", savepoint=False)
    with pytest.raises(ControllerError, match="being deleted"):
        store.update_spec("ledger", scaled(2))
    assert must_get(store).spec.job.parallelism == 1


def test_list_returns_every_job_by_name(store: SqliteStore) -> None:
    for name in ("zeta", "alpha", "mid"):
        store.apply(flinkjob(name))
    assert [j.name for j in store.list()] == ["alpha", "mid", "zeta"]


def test_two_stores_on_one_file_see_the_same_jobs(store: SqliteStore) -> None:
    other = SqliteStore(store.path)
    store.apply(flinkjob())
    other.write_status("ledger", A_STATUS)
    assert must_get(store).status == A_STATUS


# -- status and spec never overwrite each other --------------------------------------------------


def test_write_status_stores_the_status_as_written(store: SqliteStore) -> None:
    store.apply(flinkjob())
    assert store.write_status("ledger", A_STATUS) is True
    assert must_get(store).status == A_STATUS


def test_status_survives_spec_changes(store: SqliteStore) -> None:
    store.apply(flinkjob())
    store.write_status("ledger", A_STATUS)
    store.apply(flinkjob(parallelism=2))
    store.update_spec("ledger", scaled(3))
    store.apply(flinkjob(parallelism=3, labels={"x": "y"}))
    job = must_get(store)
    assert job.status == A_STATUS
    assert job.spec.job.parallelism == 3
    assert job.metadata.generation == 3


def test_writing_status_never_touches_the_spec_or_metadata(store: SqliteStore) -> None:
    store.apply(flinkjob(parallelism=2, labels={"team": "x"}))
    before = must_get(store)
    store.write_status("ledger", A_STATUS.model_copy(update={"lifecycle": Lifecycle.STABLE}))
    after = must_get(store)
    assert after.spec == before.spec
    assert after.metadata == before.metadata
    assert after.status.lifecycle == Lifecycle.STABLE


def test_a_deletion_request_keeps_the_status(store: SqliteStore) -> None:
    store.apply(flinkjob())
    store.write_status("ledger", A_STATUS)
    assert store.request_delete("ledger", savepoint=True).status == A_STATUS
    assert must_get(store).status == A_STATUS


# -- deletion ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("savepoint", "value"), [(True, "true"), (False, "false")])
def test_request_delete_sets_the_timestamp_and_the_savepoint_annotation(
    store: SqliteStore, savepoint: bool, value: str
) -> None:
    store.apply(flinkjob(annotations={"keep": "me"}))
    deleting = store.request_delete("ledger", savepoint=savepoint)
    assert deleting.metadata.deletion_timestamp is not None
    assert deleting.metadata.annotations == {"keep": "me", SAVEPOINT_ON_DELETE: value}
    stored = must_get(store)
    assert stored.metadata.deletion_timestamp == deleting.metadata.deletion_timestamp
    assert stored.metadata.annotations[SAVEPOINT_ON_DELETE] == value
    assert stored.metadata.generation == 1


def test_a_second_deletion_request_keeps_the_first_timestamp(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.apply(flinkjob())
    monkeypatch.setattr(store_module, "now_iso", lambda: "2026-01-01T00:00:00Z")
    store.request_delete("ledger", savepoint=False)
    monkeypatch.setattr(store_module, "now_iso", lambda: "2026-01-02T00:00:00Z")
    again = store.request_delete("ledger", savepoint=True)
    assert again.metadata.deletion_timestamp == "2026-01-01T00:00:00Z"
    assert again.metadata.annotations[SAVEPOINT_ON_DELETE] == "true"


def test_request_delete_on_an_unknown_job_is_refused(store: SqliteStore) -> None:
    with pytest.raises(ControllerError, match="no job named 'ghost'"):
        store.request_delete("ghost", savepoint=False)


def test_apply_on_a_deleting_job_is_refused_and_changes_nothing(store: SqliteStore) -> None:
    store.apply(flinkjob())
    store.request_delete("ledger", savepoint=False)
    with pytest.raises(ControllerError, match="'ledger' is being deleted"):
        store.apply(flinkjob(parallelism=2))
    with pytest.raises(ControllerError, match="being deleted"):
        store.apply(flinkjob())  # the same spec too
    job = must_get(store)
    assert job.spec.job.parallelism == 1
    assert job.metadata.generation == 1


def test_forget_removes_the_job_and_its_lease(store: SqliteStore) -> None:
    store.apply(flinkjob())
    store.apply(flinkjob("other"))
    assert store.acquire("ledger", "a", ttl=60)
    store.forget("ledger")
    assert store.get("ledger") is None
    assert [j.name for j in store.list()] == ["other"]
    assert store.lease_holder("ledger") is None
    store.forget("ledger")  # forgetting twice is harmless


def test_write_status_on_a_forgotten_job_returns_false_and_writes_nothing(
    store: SqliteStore,
) -> None:
    store.apply(flinkjob())
    store.forget("ledger")
    assert store.write_status("ledger", A_STATUS) is False
    assert store.get("ledger") is None
    assert store.write_status("never-existed", A_STATUS) is False


def test_a_forgotten_job_can_be_created_again_from_scratch(store: SqliteStore) -> None:
    store.apply(flinkjob(parallelism=2))
    store.apply(flinkjob(parallelism=3))
    store.write_status("ledger", A_STATUS)
    store.request_delete("ledger", savepoint=False)
    store.forget("ledger")
    again = store.apply(flinkjob())
    assert again.metadata.generation == 1
    assert again.metadata.deletion_timestamp is None
    assert again.status == JobStatus()


# -- leases --------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(store_module.time, "time", fake)
    return fake


def test_a_lease_keeps_others_out_until_it_expires(store: SqliteStore, clock: Clock) -> None:
    assert store.acquire("ledger", "A", ttl=10)
    assert store.lease_holder("ledger") == ("A", clock.now + 10)
    assert not store.acquire("ledger", "B", ttl=10)
    clock.now += 9.9
    assert not store.acquire("ledger", "B", ttl=10)
    clock.now += 0.2  # A's lease has expired
    assert store.acquire("ledger", "B", ttl=10)
    assert store.lease_holder("ledger") == ("B", clock.now + 10)
    assert not store.acquire("ledger", "A", ttl=10)


def test_a_lease_is_not_taken_at_the_exact_moment_it_expires(
    store: SqliteStore, clock: Clock
) -> None:
    assert store.acquire("ledger", "A", ttl=10)
    clock.now += 10
    assert not store.acquire("ledger", "B", ttl=10)


def test_the_holder_renews_its_lease(store: SqliteStore, clock: Clock) -> None:
    assert store.acquire("ledger", "A", ttl=10)
    for _ in range(5):
        clock.now += 8
        assert store.acquire("ledger", "A", ttl=10)  # renewed before it runs out
        assert not store.acquire("ledger", "B", ttl=10)
    assert store.lease_holder("ledger") == ("A", clock.now + 10)
    clock.now += 10.5
    assert store.acquire("ledger", "B", ttl=10)


def test_a_failed_attempt_does_not_extend_or_steal_the_lease(
    store: SqliteStore, clock: Clock
) -> None:
    assert store.acquire("ledger", "A", ttl=10)
    expires = clock.now + 10
    clock.now += 5
    assert not store.acquire("ledger", "B", ttl=100)
    assert store.lease_holder("ledger") == ("A", expires)


def test_release_lets_another_holder_in(store: SqliteStore, clock: Clock) -> None:
    assert store.acquire("ledger", "A", ttl=60)
    store.release("ledger", "A")
    assert store.lease_holder("ledger") is None
    assert store.acquire("ledger", "B", ttl=60)


def test_only_the_holder_can_release(store: SqliteStore, clock: Clock) -> None:
    assert store.acquire("ledger", "A", ttl=60)
    store.release("ledger", "B")
    assert store.lease_holder("ledger") is not None
    assert not store.acquire("ledger", "B", ttl=60)


def test_leases_are_per_job(store: SqliteStore, clock: Clock) -> None:
    assert store.acquire("ledger", "A", ttl=60)
    assert store.acquire("sessions", "B", ttl=60)
    assert not store.acquire("sessions", "A", ttl=60)
    assert not store.acquire("ledger", "B", ttl=60)


def test_a_lease_with_a_tiny_ttl_expires_in_real_time(store: SqliteStore) -> None:
    import time  # noqa: PLC0415 - real time, only here

    # Wide enough that a loaded machine does not let it lapse between the two calls.
    assert store.acquire("ledger", "A", ttl=2.0)
    assert not store.acquire("ledger", "B", ttl=2.0)
    time.sleep(2.2)
    assert store.acquire("ledger", "B", ttl=60)
