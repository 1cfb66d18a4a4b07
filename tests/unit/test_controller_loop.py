"""The reconcile loop (deploy/controller/loop.py) with a real SqliteStore and a fake runtime
(tests/unit/builders.FakeRuntime): the status is written before any action runs, failed actions
are recorded, deletion forgets the job, and a job leased by one controller is left alone by
another."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deploy import failpoints
from deploy.controller.loop import Controller, now_ms, stop_on_signals
from deploy.controller.model import (
    Cancel,
    Dispose,
    Forget,
    StopWithSavepoint,
    Submit,
)
from deploy.errors import FlinkError, SpecError
from deploy.local.store import SqliteStore
from deploy.spec import FlinkJobSpec, JobStatus, Lifecycle, SavepointInfo
from tests.unit.builders import NAME, SP, FakeRuntime, flinkjob


def scale(parallelism: int) -> Callable[[FlinkJobSpec], FlinkJobSpec]:
    """A user's `eddyline scale`: the change the store applies to the spec."""

    def change(spec: FlinkJobSpec) -> FlinkJobSpec:
        return spec.with_job(parallelism=parallelism)

    return change


@pytest.fixture(autouse=True)
def _no_failpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(failpoints.ENV, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "jobs.db")


@pytest.fixture
def runtime(store: SqliteStore) -> FakeRuntime:
    return FakeRuntime(store)


def status(store: SqliteStore, name: str = NAME) -> JobStatus:
    job = store.get(name)
    assert job is not None
    return job.status


def metric(controller: Controller, name: str, **labels: str) -> float:
    value = controller.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


# -- write-ahead ----------------------------------------------------------------------------------


def test_the_status_is_written_before_the_submission_is_sent(
    store: SqliteStore, runtime: FakeRuntime
) -> None:
    store.apply(flinkjob())
    Controller(store, runtime).reconcile(NAME)
    (acted,) = runtime.acted
    assert isinstance(acted.action, Submit)
    op = acted.status_then.operation
    assert op is not None
    assert op.step == "submitting"
    assert op.new_job_id == acted.action.job_id
    assert acted.status_then.lifecycle == Lifecycle.DEPLOYING
    assert status(store) == acted.status_then  # nothing else was written after it


def test_every_action_of_a_savepoint_upgrade_is_on_record_before_it_runs(
    store: SqliteStore, runtime: FakeRuntime
) -> None:
    store.apply(flinkjob())
    controller = Controller(store, runtime)
    controller.reconcile(NAME)  # submit
    controller.reconcile(NAME)  # the job is there: adopted
    first = status(store)
    assert first.operation is None
    assert first.job_id is not None
    assert first.observed_generation == 1

    store.update_spec(NAME, scale(2))
    controller.reconcile(NAME)  # stop with a savepoint
    stop = runtime.acted[-1]
    assert isinstance(stop.action, StopWithSavepoint)
    op = stop.status_then.operation
    assert op is not None
    assert (op.kind, op.step, op.job_id, op.trigger_id) == (
        "upgrade",
        "stopping",
        first.job_id,
        stop.action.trigger_id,
    )

    controller.reconcile(NAME)  # savepoint done, job finished: submit from it
    submit = runtime.acted[-1]
    assert isinstance(submit.action, Submit)
    assert submit.action.savepoint_path == SP
    assert submit.action.spec.job.parallelism == 2
    op = submit.status_then.operation
    assert op is not None
    assert (op.step, op.new_job_id, op.savepoint_path) == (
        "submitting",
        submit.action.job_id,
        SP,
    )
    assert submit.status_then.upgrade_savepoint_path == SP
    assert [s.path for s in submit.status_then.savepoints] == [SP]

    controller.reconcile(NAME)  # adopted
    final = status(store)
    assert final.job_id == submit.action.job_id
    assert final.operation is None
    assert final.observed_generation == 2
    assert runtime.kinds() == ["submit", "stop-with-savepoint", "submit"]
    ok = {"job_name": NAME, "kind": "submit", "result": "ok"}
    assert metric(controller, "eddyline_controller_actions_total", **ok) == 2


def test_an_unchanged_status_is_not_written_again(
    store: SqliteStore, runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.apply(flinkjob())
    controller = Controller(store, runtime)
    controller.reconcile(NAME)
    controller.reconcile(NAME)
    writes: list[JobStatus] = []
    original = store.write_status

    def counting(name: str, st: JobStatus, holder: str | None = None) -> bool:
        writes.append(st)
        return original(name, st, holder)

    monkeypatch.setattr(store, "write_status", counting)
    # A job that is RUNNING but not yet STABLE writes nothing new until it becomes STABLE.
    controller.reconcile(NAME)
    before = len(writes)
    controller.reconcile(NAME)
    assert len(writes) == before


def test_nothing_is_done_for_a_job_deleted_while_it_was_observed(
    store: SqliteStore, runtime: FakeRuntime
) -> None:
    store.apply(flinkjob())
    runtime.on_observe = lambda: store.forget(NAME)
    Controller(store, runtime).reconcile(NAME)
    assert runtime.acted == []
    assert store.get(NAME) is None


def test_an_unknown_job_is_ignored(store: SqliteStore, runtime: FakeRuntime) -> None:
    Controller(store, runtime).reconcile("ghost")
    assert runtime.observed == []
    assert store.lease_holder("ghost") is None


# -- failed actions -------------------------------------------------------------------------------


def test_a_failing_action_records_the_error_and_a_backoff(
    store: SqliteStore, runtime: FakeRuntime
) -> None:
    store.apply(flinkjob(restartPolicy={"backoff": "30s"}))
    runtime.fail["submit"] = FlinkError("Flink REST POST /jars/x/run answered 500: boom", 500)
    controller = Controller(store, runtime)
    before = now_ms()
    controller.reconcile(NAME)
    after = now_ms()
    st = status(store)
    assert st.failures == 1
    assert st.error == (
        "submit failed: Flink REST POST /jars/x/run answered 500: boom; retrying in 30 s"
    )
    assert st.next_retry_at is not None
    assert before + 30_000 <= st.next_retry_at <= after + 30_000
    assert st.events[-1].reason == "ActionFailed"
    assert st.events[-1].type == "Warning"
    submitted = runtime.acted[0].action
    assert isinstance(submitted, Submit)
    assert st.operation is not None
    assert st.operation.new_job_id == submitted.job_id  # the same submission, later
    error = {"job_name": NAME, "kind": "submit", "result": "error"}
    assert metric(controller, "eddyline_controller_actions_total", **error) == 1
    # During the backoff, nothing is sent again.
    del runtime.fail["submit"]
    controller.reconcile(NAME)
    assert len(runtime.acted) == 1


def test_a_refused_entry_is_recorded_like_any_failed_action(
    store: SqliteStore, runtime: FakeRuntime
) -> None:
    store.apply(flinkjob())
    runtime.fail["submit"] = SpecError("spec", ["spec.job.entry: 'jobs.x' no module"])
    Controller(store, runtime).reconcile(NAME)
    assert "submit failed: spec is not a valid FlinkJob" in str(status(store).error)


def test_a_failed_action_stops_the_rest_of_the_plan(
    store: SqliteStore, runtime: FakeRuntime
) -> None:
    store.apply(flinkjob())
    controller = Controller(store, runtime)
    controller.reconcile(NAME)
    controller.reconcile(NAME)
    store.request_delete(NAME, savepoint=False)
    runtime.fail["cancel"] = FlinkError("Flink REST PATCH answered 500: busy", 500)
    controller.reconcile(NAME)
    assert runtime.kinds()[-1] == "cancel"
    assert store.get(NAME) is not None  # not forgotten: the cancel failed
    assert "cancel failed" in str(status(store).error)


def test_an_unexpected_exception_escapes_reconcile_but_not_run_once(
    store: SqliteStore, runtime: FakeRuntime
) -> None:
    store.apply(flinkjob())
    store.apply(flinkjob(name="other"))
    runtime.fail["submit"] = RuntimeError("a bug")
    controller = Controller(store, runtime)
    with pytest.raises(RuntimeError, match="a bug"):
        controller.reconcile(NAME)
    controller.run_once()  # logged and counted, then the next job
    assert (
        metric(controller, "eddyline_controller_errors_total", job_name="other", kind="internal")
        == 1
    )


def test_a_failed_disposal_is_only_an_event(store: SqliteStore, runtime: FakeRuntime) -> None:
    store.apply(flinkjob(savepoints={"maxCount": 1}))
    controller = Controller(store, runtime)
    controller.reconcile(NAME)
    controller.reconcile(NAME)
    st = status(store)
    old = [SavepointInfo(path=f"sp{i}", time=i, trigger="periodic") for i in (1, 2)]
    store.write_status(NAME, st.model_copy(update={"savepoints": old}))
    runtime.fail["dispose-savepoint"] = FlinkError("not found", 404)
    controller.reconcile(NAME)
    assert runtime.acted[-1].action == Dispose("sp1")
    after = status(store)
    assert after.failures == 0
    assert after.error is None
    assert after.events[-1].reason == "DisposeFailed"


# -- deletion -------------------------------------------------------------------------------------


def test_deletion_cancels_the_job_then_forgets_it_and_its_lease(
    store: SqliteStore, runtime: FakeRuntime
) -> None:
    store.apply(flinkjob())
    controller = Controller(store, runtime)
    controller.reconcile(NAME)
    controller.reconcile(NAME)
    job_id = status(store).job_id
    store.request_delete(NAME, savepoint=False)
    controller.reconcile(NAME)
    assert runtime.acted[-1].action == Cancel(str(job_id))
    assert runtime.acted[-1].status_then.lifecycle == Lifecycle.DELETING
    assert store.get(NAME) is None
    assert store.lease_holder(NAME) is None
    assert Forget().kind not in runtime.kinds()  # the store forgets; the runtime is not asked


def test_deletion_with_a_savepoint_forgets_the_job_once_the_savepoint_is_taken(
    store: SqliteStore, runtime: FakeRuntime
) -> None:
    store.apply(flinkjob())
    controller = Controller(store, runtime)
    controller.reconcile(NAME)
    controller.reconcile(NAME)
    store.request_delete(NAME, savepoint=True)
    controller.reconcile(NAME)
    stop = runtime.acted[-1]
    assert isinstance(stop.action, StopWithSavepoint)
    assert stop.status_then.operation is not None
    assert stop.status_then.operation.kind == "delete"
    assert store.get(NAME) is not None
    controller.reconcile(NAME)
    assert store.get(NAME) is None


# -- outages --------------------------------------------------------------------------------------


def test_an_outage_backoff_skips_observing_until_it_is_over(
    store: SqliteStore, runtime: FakeRuntime
) -> None:
    store.apply(flinkjob())
    controller = Controller(store, runtime)
    controller.reconcile(NAME)
    controller.reconcile(NAME)  # deployed: generation 1 observed
    runtime.observed.clear()
    runtime.observation = {"flink_error": "connection refused"}
    controller.reconcile(NAME)
    st = status(store)
    assert st.outages == 1
    assert "Flink unreachable" in str(st.error)
    assert (
        metric(controller, "eddyline_controller_errors_total", job_name=NAME, kind="unreachable")
        == 1
    )
    assert len(runtime.observed) == 1
    controller.reconcile(NAME)  # within the 1 s backoff: not even observed
    assert len(runtime.observed) == 1
    # A spec change is looked at right away, backoff or not.
    store.write_status(NAME, st.model_copy(update={"outage_retry_at": now_ms() + 60_000}))
    store.update_spec(NAME, scale(2))
    controller.reconcile(NAME)
    assert len(runtime.observed) == 2
    assert runtime.kinds() == ["submit"]


# -- leases ---------------------------------------------------------------------------------------


def test_a_second_controller_does_nothing_while_the_first_holds_the_lease(
    store: SqliteStore,
) -> None:
    store.apply(flinkjob())
    first_runtime, second_runtime = FakeRuntime(store), FakeRuntime(store)
    first = Controller(store, first_runtime, lease_ttl=30)
    second = Controller(store, second_runtime, lease_ttl=30)
    assert first.holder != second.holder
    first.reconcile(NAME)
    assert len(first_runtime.acted) == 1
    holder = store.lease_holder(NAME)
    assert holder is not None
    assert holder[0] == first.holder
    for _ in range(3):
        second.reconcile(NAME)
    assert second_runtime.observed == []
    assert second_runtime.acted == []
    # The first controller goes on with the job.
    first.reconcile(NAME)
    assert len(first_runtime.observed) == 2
    # Once it lets go, the second takes over.
    store.release(NAME, first.holder)
    second.reconcile(NAME)
    assert len(second_runtime.observed) == 1
    assert store.lease_holder(NAME) is not None
    assert store.lease_holder(NAME)[0] == second.holder  # type: ignore[index]


def test_a_crashed_controllers_lease_expires_and_another_takes_over(
    store: SqliteStore,
) -> None:
    store.apply(flinkjob())
    first_runtime, second_runtime = FakeRuntime(store), FakeRuntime(store)
    Controller(store, first_runtime, lease_ttl=2.0).reconcile(NAME)
    second = Controller(store, second_runtime, lease_ttl=30)
    time.sleep(2.2)
    second.reconcile(NAME)
    assert len(second_runtime.observed) == 1


def test_run_once_reconciles_every_job(store: SqliteStore, runtime: FakeRuntime) -> None:
    for name in ("a", "b", "c"):
        store.apply(flinkjob(name=name))
    Controller(store, runtime).run_once()
    assert runtime.kinds() == ["submit", "submit", "submit"]
    assert all(status(store, n).operation is not None for n in ("a", "b", "c"))


def test_signals_stop_the_loop_and_the_callers_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    with stop_on_signals() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the event, not a KeyboardInterrupt
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt), stop_on_signals():
        raise KeyboardInterrupt  # an error inside still puts the handlers back
    assert signal.getsignal(signal.SIGINT) is before
