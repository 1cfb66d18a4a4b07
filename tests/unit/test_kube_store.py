"""The Kubernetes store (deploy/kube/store.py) against an in-memory API server: spec and status
kept apart, status writes at a resourceVersion with conflicts handled, the finalizer, leases,
Events mirrored from the status, and the watch cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from deploy.controller.store import SAVEPOINT_ON_DELETE
from deploy.errors import ControllerError, StoreUnavailableError, TemporaryError
from deploy.kube.api import KubeError
from deploy.kube.store import FINALIZER, KubeStore, lease_name, to_job
from deploy.spec import (
    Event,
    FlinkJob,
    FlinkJobSpec,
    JobStatus,
    Lifecycle,
    Operation,
    parse,
)
from tests.unit.fake_kube import FakeKube, flinkjob_doc

NAME = "ledger"


def flinkjob(name: str = NAME, parallelism: int = 1, **metadata: Any) -> FlinkJob:
    doc = flinkjob_doc(name, job={"parallelism": parallelism})
    doc["metadata"].update(metadata)
    return parse(doc)


def scaled(parallelism: int) -> Callable[[FlinkJobSpec], FlinkJobSpec]:
    return lambda spec: spec.with_job(parallelism=parallelism)


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube("flink")


@pytest.fixture
def store(kube: FakeKube) -> KubeStore:
    return KubeStore(kube)


def must_get(store: KubeStore, name: str = NAME) -> FlinkJob:
    job = store.get(name)
    assert job is not None
    return job


RUNNING = JobStatus(job_id="j1", lifecycle=Lifecycle.RUNNING, observed_generation=1)


# -- spec ------------------------------------------------------------------------------------


def test_apply_creates_the_resource_with_the_finalizer_and_generation_1(
    store: KubeStore, kube: FakeKube
) -> None:
    job = store.apply(flinkjob(labels={"team": "ads"}))
    assert job.metadata.generation == 1
    assert job.metadata.namespace == "flink"
    assert job.metadata.creation_timestamp
    assert job.status == JobStatus()
    doc = kube.jobs[NAME]
    assert doc["metadata"]["finalizers"] == [FINALIZER]
    assert doc["metadata"]["labels"] == {"team": "ads"}
    assert doc["spec"]["job"]["entry"] == "jobs.ledger"
    assert "status" not in doc


def test_apply_again_changes_the_spec_only_when_it_differs(
    store: KubeStore, kube: FakeKube
) -> None:
    store.apply(flinkjob())
    same = store.apply(flinkjob())
    assert same.metadata.generation == 1
    assert kube.count("replace_job") == 0
    changed = store.apply(flinkjob(parallelism=3, annotations={"owner": "me"}))
    assert changed.metadata.generation == 2
    assert changed.spec.job.parallelism == 3
    assert kube.jobs[NAME]["metadata"]["annotations"] == {"owner": "me"}
    assert kube.jobs[NAME]["metadata"]["finalizers"] == [FINALIZER]


def test_apply_keeps_the_status_and_other_annotations(store: KubeStore, kube: FakeKube) -> None:
    store.apply(flinkjob())
    kube.jobs[NAME]["metadata"]["annotations"] = {"kubectl.kubernetes.io/x": "1"}
    assert store.write_status(NAME, RUNNING)
    store.apply(flinkjob(parallelism=2, annotations={"owner": "me"}))
    job = must_get(store)
    assert job.status == RUNNING
    assert job.metadata.annotations == {"kubectl.kubernetes.io/x": "1", "owner": "me"}


def test_update_spec_bumps_the_generation_and_retries_a_conflict(
    store: KubeStore, kube: FakeKube
) -> None:
    store.apply(flinkjob())
    # Someone else changes the object between the store's read and its write.
    kube.before["replace_job"] = lambda _: kube.replace_job(
        NAME, {**kube.jobs[NAME], "metadata": {**kube.jobs[NAME]["metadata"], "labels": {"a": "b"}}}
    )
    job = store.update_spec(NAME, scaled(4))
    assert job.spec.job.parallelism == 4
    assert job.metadata.generation == 2
    assert kube.jobs[NAME]["metadata"]["labels"] == {"a": "b"}


def test_update_spec_refuses_unknown_and_deleting_jobs(store: KubeStore) -> None:
    with pytest.raises(ControllerError, match="no job named 'nope'"):
        store.update_spec("nope", scaled(2))
    store.apply(flinkjob())
    store.request_delete(NAME, savepoint=False)
    with pytest.raises(ControllerError, match="being deleted"):
        store.update_spec(NAME, scaled(2))
    with pytest.raises(ControllerError, match="being deleted"):
        store.apply(flinkjob(parallelism=2))


# -- status ----------------------------------------------------------------------------------


def test_status_goes_through_the_status_subresource_and_leaves_the_spec_alone(
    store: KubeStore, kube: FakeKube
) -> None:
    store.apply(flinkjob())
    status = RUNNING.model_copy(
        update={"operation": Operation(kind="submit", step="submitting", started_at=5)}
    )
    must_get(store)
    assert store.write_status(NAME, status)
    assert kube.count("replace_job_status") == 1
    job = must_get(store)
    assert job.status == status
    assert job.metadata.generation == 1
    assert job.spec == flinkjob().spec
    # The same status again is no request at all.
    assert store.write_status(NAME, status)
    assert kube.count("replace_job_status") == 1


def test_a_spec_change_between_read_and_status_write_is_a_conflict_that_is_retried(
    store: KubeStore, kube: FakeKube
) -> None:
    store.apply(flinkjob())
    read = must_get(store)
    kube.kubectl_apply(flinkjob_doc(job={"parallelism": 5}))  # a user, meanwhile
    decided = RUNNING.model_copy(update={"observed_generation": read.metadata.generation})
    assert store.write_status(NAME, decided)
    assert store.conflicts == 1
    job = must_get(store)
    assert job.status == decided
    assert job.spec.job.parallelism == 5  # the user's change is kept…
    assert job.metadata.generation == 2  # …and still to be reconciled
    assert job.status.observed_generation == 1


def test_a_status_changed_by_another_writer_is_not_overwritten(
    store: KubeStore, kube: FakeKube
) -> None:
    store.apply(flinkjob())
    must_get(store)
    other = KubeStore(kube)
    must_get(other)
    assert other.write_status(NAME, RUNNING)
    mine = RUNNING.model_copy(update={"job_id": "mine"})
    assert not store.write_status(NAME, mine)
    assert must_get(store).status.job_id == "j1"


def test_status_needs_the_lease_when_a_holder_is_named(store: KubeStore, kube: FakeKube) -> None:
    store.apply(flinkjob())
    must_get(store)
    assert not store.write_status(NAME, RUNNING, holder="me")
    assert kube.count("replace_job_status") == 0
    assert store.acquire(NAME, "me", ttl=10)
    assert store.write_status(NAME, RUNNING, holder="me")
    assert not store.write_status(NAME, RUNNING, holder="someone-else")


def test_status_of_a_job_that_is_gone_is_not_written(store: KubeStore, kube: FakeKube) -> None:
    store.apply(flinkjob())
    must_get(store)
    del kube.jobs[NAME]
    assert not store.write_status(NAME, RUNNING)
    assert not store.write_status("never", RUNNING)


def test_an_api_failure_writing_status_is_a_controller_error(
    store: KubeStore, kube: FakeKube
) -> None:
    store.apply(flinkjob())
    must_get(store)
    kube.fail["replace_job_status"] = [KubeError("forbidden", 403, "Forbidden")]
    with pytest.raises(ControllerError, match="forbidden"):
        store.write_status(NAME, RUNNING)


def test_an_api_server_unreachable_or_busy_writing_status_is_a_temporary_error(
    store: KubeStore, kube: FakeKube
) -> None:
    """Still a ControllerError (callers catching that keep working), but one the controller
    waits out: a 503 while the API server elects a leader, or no answer at all."""
    store.apply(flinkjob())
    must_get(store)
    kube.fail["replace_job_status"] = [KubeError("etcd leader changed", 503, "ServiceUnavailable")]
    with pytest.raises(StoreUnavailableError, match="etcd leader changed") as busy:
        store.write_status(NAME, RUNNING)
    assert isinstance(busy.value, ControllerError)
    assert isinstance(busy.value, TemporaryError)
    kube.fail["delete_job"] = [KubeError("Internal error occurred", 500, "InternalError")]
    with pytest.raises(StoreUnavailableError, match="Internal error occurred"):
        store.request_delete(NAME, savepoint=False)
    kube.fail["replace_job_status"] = [KubeError("forbidden", 403, "Forbidden")]
    with pytest.raises(ControllerError) as refused:
        store.write_status(NAME, RUNNING)
    assert not isinstance(refused.value, TemporaryError)
    assert store.write_status(NAME, RUNNING)  # the failures left nothing behind


def test_new_status_events_are_posted_as_kubernetes_events_once(
    store: KubeStore, kube: FakeKube
) -> None:
    store.apply(flinkjob())
    must_get(store)
    first = Event(time=1_700_000_000_000, reason="Submitting", message="job j1 (fresh)")
    status = RUNNING.model_copy(update={"events": [first]})
    assert store.write_status(NAME, status)
    second = Event(time=1_700_000_001_000, type="Warning", reason="JobFailed", message="boom")
    assert store.write_status(NAME, status.model_copy(update={"events": [first, second]}))
    posted = [e for e in kube.events if e["involvedObject"]["name"] == NAME]
    assert [(e["reason"], e["type"], e["message"]) for e in posted] == [
        ("Submitting", "Normal", "job j1 (fresh)"),
        ("JobFailed", "Warning", "boom"),
    ]
    ref = posted[0]["involvedObject"]
    assert ref["uid"] == kube.jobs[NAME]["metadata"]["uid"]
    assert ref["kind"] == "FlinkJob"
    assert ref["apiVersion"] == "eddyline.dev/v1alpha1"
    assert ref["namespace"] == "flink"
    assert posted[0]["firstTimestamp"] == "2023-11-14T22:13:20Z"
    assert posted[0]["metadata"]["namespace"] == "flink"


def test_an_event_that_cannot_be_posted_does_not_fail_the_status_write(
    store: KubeStore, kube: FakeKube
) -> None:
    store.apply(flinkjob())
    must_get(store)
    kube.fail["create_event"] = [KubeError("forbidden", 403)]
    ev = Event(time=1, reason="Submitting", message="m")
    assert store.write_status(NAME, RUNNING.model_copy(update={"events": [ev]}))
    assert store.events.failures == 1


# -- deletion and the finalizer --------------------------------------------------------------


def test_delete_with_savepoint_waits_for_the_controller_then_forget_removes_it(
    store: KubeStore, kube: FakeKube
) -> None:
    store.apply(flinkjob())
    store.acquire(NAME, "me", ttl=10)
    job = store.request_delete(NAME, savepoint=True)
    assert job.metadata.deletion_timestamp
    assert job.metadata.annotations[SAVEPOINT_ON_DELETE] == "true"
    assert job.metadata.generation == 2  # the API server counts a deletion as a change
    assert NAME in kube.jobs  # held by the finalizer
    assert lease_name(NAME) in kube.leases
    store.forget(NAME)
    assert NAME not in kube.jobs
    assert lease_name(NAME) not in kube.leases
    assert store.get(NAME) is None
    store.forget(NAME)  # again: nothing left, no error


def test_delete_of_a_resource_without_the_finalizer_is_immediate(
    store: KubeStore, kube: FakeKube
) -> None:
    kube.kubectl_apply(flinkjob_doc())
    job = store.request_delete(NAME, savepoint=False)
    assert job.metadata.deletion_timestamp
    assert NAME not in kube.jobs
    with pytest.raises(ControllerError, match="no job named"):
        store.request_delete(NAME, savepoint=False)


def test_the_finalizer_is_added_to_a_resource_made_without_it(
    store: KubeStore, kube: FakeKube
) -> None:
    kube.kubectl_apply(flinkjob_doc())
    store.ensure_finalizer(NAME)
    assert kube.jobs[NAME]["metadata"]["finalizers"] == [FINALIZER]
    assert kube.jobs[NAME]["metadata"]["generation"] == 1
    writes = kube.count("replace_job")
    reads = kube.count("get_job")
    store.ensure_finalizer(NAME)  # known to be there: no request
    assert (kube.count("replace_job"), kube.count("get_job")) == (writes, reads)
    store.ensure_finalizer("missing")  # nothing to do


def test_the_finalizer_is_not_added_to_a_resource_being_deleted(
    store: KubeStore, kube: FakeKube
) -> None:
    kube.kubectl_apply(flinkjob_doc())
    kube.jobs[NAME]["metadata"]["finalizers"] = ["someone.else/keep"]
    kube.delete_job(NAME)
    store.ensure_finalizer(NAME)
    assert kube.jobs[NAME]["metadata"]["finalizers"] == ["someone.else/keep"]
    store.forget(NAME)  # ours is not there: the other finalizer stays
    assert kube.jobs[NAME]["metadata"]["finalizers"] == ["someone.else/keep"]


# -- leases ----------------------------------------------------------------------------------


def test_a_lease_is_held_by_one_controller_until_it_expires(
    store: KubeStore, kube: FakeKube
) -> None:
    store.apply(flinkjob())
    other = KubeStore(kube)
    assert store.acquire(NAME, "a", ttl=0.6)
    lease = kube.leases[lease_name(NAME)]
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseDurationSeconds"] == 1
    assert lease["metadata"]["ownerReferences"][0]["uid"] == kube.jobs[NAME]["metadata"]["uid"]
    assert not other.acquire(NAME, "b", ttl=0.6)
    holder = other.lease_holder(NAME)
    assert holder is not None
    assert holder[0] == "a"
    time.sleep(1.2)  # the lease's duration (whole seconds) runs out
    assert other.acquire(NAME, "b", ttl=0.6)
    assert kube.leases[lease_name(NAME)]["spec"]["leaseTransitions"] == 1
    assert not store.holds(NAME, "a")


def test_a_fresh_lease_is_renewed_without_asking_the_api_server(
    store: KubeStore, kube: FakeKube
) -> None:
    assert store.acquire(NAME, "a", ttl=10)
    calls = len(kube.calls)
    assert store.acquire(NAME, "a", ttl=10)
    assert len(kube.calls) == calls


def test_a_released_lease_is_free_at_once(store: KubeStore, kube: FakeKube) -> None:
    other = KubeStore(kube)
    assert store.acquire(NAME, "a", ttl=30)
    store.release(NAME, "a")
    assert kube.leases[lease_name(NAME)]["spec"]["holderIdentity"] == ""
    assert other.lease_holder(NAME) is None
    assert other.acquire(NAME, "b", ttl=30)


def test_two_controllers_racing_for_a_new_lease_get_one_holder(
    store: KubeStore, kube: FakeKube
) -> None:
    other = KubeStore(kube)
    kube.before["create_lease"] = lambda _: kube.create_lease(
        {"metadata": {"name": lease_name(NAME)}, "spec": {"holderIdentity": "b",
         "leaseDurationSeconds": 30, "renewTime": "2999-01-01T00:00:00.000000Z"}}
    )  # fmt: skip
    assert not store.acquire(NAME, "a", ttl=30)
    assert not other.acquire(NAME, "c", ttl=30)


def test_a_lease_the_api_server_refuses_is_not_held(store: KubeStore, kube: FakeKube) -> None:
    kube.fail["get_lease"] = [KubeError("unreachable")]
    assert not store.acquire(NAME, "a", ttl=10)
    assert store.acquire(NAME, "a", ttl=10)


# -- reading ---------------------------------------------------------------------------------


def test_an_invalid_resource_is_left_out_of_the_list_and_reported_once(
    store: KubeStore, kube: FakeKube
) -> None:
    store.apply(flinkjob())
    bad = flinkjob_doc("broken", job={"parallelism": 0})
    kube.create_job(bad)
    assert [j.name for j in store.list()] == [NAME]
    assert [j.name for j in store.list()] == [NAME]
    assert kube.reasons("broken") == ["InvalidSpec"]
    assert "spec.job.parallelism" in kube.events[-1]["message"]


def test_to_job_reads_kubernetes_metadata() -> None:
    doc = flinkjob_doc()
    doc["metadata"].update(
        uid="u",
        resourceVersion="7",
        generation=3,
        managedFields=[{"manager": "kubectl"}],
        finalizers=[FINALIZER],
        deletionTimestamp="2024-01-01T00:00:00Z",
    )
    job = to_job(doc)
    assert job.metadata.generation == 3
    assert job.metadata.deletion_timestamp == "2024-01-01T00:00:00Z"
    assert job.status == JobStatus()


# -- the watch cache -------------------------------------------------------------------------


def wait_for(check: Callable[[], bool], what: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} in {timeout} s")
        time.sleep(0.01)


def test_the_watch_cache_follows_changes_and_wakes_only_for_spec_and_deletion(
    store: KubeStore, kube: FakeKube
) -> None:
    woken: list[str] = []
    lock = threading.Lock()

    def changed(name: str) -> None:
        with lock:
            woken.append(name)

    store.apply(flinkjob("first"))
    cache = store.start_watch(changed)
    try:
        assert cache.wait_synced(5)
        assert [j.name for j in store.list()] == ["first"]
        store.apply(flinkjob("second"))
        wait_for(lambda: [j.name for j in store.list()] == ["first", "second"], "listed")
        must_get(store, "second")
        store.write_status("second", RUNNING)  # status only: no wake
        wait_for(lambda: store.list()[1].status == RUNNING, "status seen")
        store.update_spec("second", scaled(2))  # a spec change wakes
        wait_for(lambda: store.list()[1].metadata.generation == 2, "generation seen")
        kube.delete_job("first")
        first = kube.jobs["first"]
        kube.replace_job("first", {**first, "metadata": {**first["metadata"], "finalizers": []}})
        wait_for(lambda: [j.name for j in store.list()] == ["second"], "deletion seen")
        with lock:
            assert woken == ["first", "second", "second", "first", "first"]
        lists = kube.count("list_jobs")
        assert lists == 1  # a watch, not a list per tick
    finally:
        store.stop_watch()


def test_the_watch_lists_again_when_its_version_is_too_old(
    store: KubeStore, kube: FakeKube
) -> None:
    store.apply(flinkjob("first"))
    cache = store.start_watch()
    try:
        assert cache.wait_synced(5)
        kube.compacted = kube.version + 1  # the watch's position is gone: 410
        store.apply(flinkjob("second"))
        wait_for(lambda: cache.lists >= 2, "listed again")
        wait_for(lambda: [j.name for j in store.list()] == ["first", "second"], "both listed")
    finally:
        store.stop_watch()


def test_the_watch_recovers_when_the_api_server_comes_back(
    store: KubeStore, kube: FakeKube
) -> None:
    kube.down = True
    cache = store.start_watch()
    try:
        assert not cache.wait_synced(0.3)
        kube.down = False
        store.apply(flinkjob())
        assert cache.wait_synced(5)
        wait_for(lambda: [j.name for j in store.list()] == [NAME], "listed")
    finally:
        store.stop_watch()


def test_list_asks_the_api_server_when_no_watch_runs(store: KubeStore, kube: FakeKube) -> None:
    store.apply(flinkjob("b"))
    store.apply(flinkjob("a"))
    assert [j.name for j in store.list()] == ["a", "b"]
    assert kube.count("list_jobs") == 1
