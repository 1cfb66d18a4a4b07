"""The reconcile loop: for each job, observe → decide → write the status → act.

The status is written before the actions run (write-ahead), so the ids and savepoint paths an
action uses are on record first. Each job is held through a lease in the store, renewed while
the controller lives: a second controller leaves it alone, and after a crash another one takes
over once the lease expires.

Errors (deploy/errors.py): an action that fails is recorded in the job's status with a backoff,
whichever its kind. An error that stops a whole reconcile (the store's server unreachable, say)
is logged in one line — a warning for a TemporaryError, which the next tick waits out, an error
for a PermanentError, which needs a change first — and only anything else, a bug, with its
traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Protocol

from deploy import failpoints
from deploy.controller.capacity import SlotProvider, slots_wanted
from deploy.controller.decide import action_failed, decide
from deploy.controller.metrics import ControllerMetrics
from deploy.controller.model import Action, Forget, Observation
from deploy.controller.store import JobStore
from deploy.errors import EddylineError, PermanentError, TemporaryError
from deploy.spec import FlinkJob, JobStatus

log = logging.getLogger("eddyline.controller")
FAST_INTERVAL = 0.2


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT while the block runs; the caller's handlers come back
    afterwards, so a process that ran a controller in-line (a test) keeps its own Ctrl-C."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Runtime(Protocol):
    def observe(self, job: FlinkJob, now: int) -> Observation: ...
    def act(self, job: FlinkJob, action: Action) -> None: ...


def now_ms() -> int:
    return int(time.time() * 1000)


class Controller:
    def __init__(
        self,
        store: JobStore,
        runtime: Runtime,
        metrics: ControllerMetrics | None = None,
        *,
        lease_ttl: float = 10.0,
        interval: float = 1.0,
        workers: int = 4,
        slots: SlotProvider | None = None,
    ) -> None:
        self.store = store
        self.slots = slots
        self.runtime = runtime
        self.metrics = metrics or ControllerMetrics()
        self.holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.lease_ttl = lease_ttl
        self.interval = interval
        self.workers = workers
        self._held: set[str] = set()
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    # -- one job ----------------------------------------------------------------------------

    def reconcile(self, name: str) -> None:
        if not self.store.acquire(name, self.holder, self.lease_ttl):
            log.debug("%s: another controller holds the lease", name)
            return
        with self._lock:
            self._held.add(name)
        job = self.store.get(name)  # read under the lease: no other controller changes it now
        if job is None:
            self.store.release(name, self.holder)
            with self._lock:
                self._held.discard(name)
            return
        st = job.status
        now = now_ms()
        if st.outage_retry_at and now < st.outage_retry_at and not _changed(job):
            return  # backing off while Flink or Kafka is unreachable
        self.metrics.reconciles.labels(name).inc()
        obs = self.runtime.observe(job, now)
        if obs.flink_error or obs.kafka_error:
            self.metrics.errors.labels(name, "unreachable").inc()
        plan = decide(job, obs)
        self._savepoint_timing(job, plan.status, now)
        if plan.status != st and not self.store.write_status(name, plan.status, self.holder):
            return  # deleted meanwhile, or the lease was lost: act on nothing
        failpoints.hit("after:status-write")
        status = plan.status
        for action in plan.actions:
            failpoints.hit(f"before:{action.kind}")
            if isinstance(action, Forget):
                self.store.forget(name)
                self.metrics.forget(name)
                with self._lock:
                    self._held.discard(name)
                log.info("%s: deleted", name)
                return
            log.info("%s: %s", name, _describe(action))
            try:
                self.runtime.act(job, action)
            except EddylineError as e:
                # Temporary or permanent alike: the status records it with a backoff, and the
                # spec's restartPolicy bounds how often a submission is tried again.
                log.warning("%s: %s failed: %s", name, action.kind, e)
                self.metrics.actions.labels(name, action.kind, "error").inc()
                self.metrics.errors.labels(name, action.kind).inc()
                status = action_failed(job, status, action, str(e), now_ms())
                self.store.write_status(name, status, self.holder)
                break
            self.metrics.actions.labels(name, action.kind, "ok").inc()
            failpoints.hit(f"after:{action.kind}")
        self.metrics.observe_job(job.model_copy(update={"status": status}))

    def _savepoint_timing(self, job: FlinkJob, new: JobStatus, now: int) -> None:
        op = job.status.operation
        if op is None or not op.trigger_id:
            return
        before = {s.path for s in job.status.savepoints}
        for sp in new.savepoints:
            if sp.path not in before:
                self.metrics.savepoint_duration.labels(job.name, sp.trigger).observe(
                    max(0.0, (now - op.started_at) / 1000)
                )

    # -- all jobs ---------------------------------------------------------------------------

    def run_once(self) -> None:
        """Reconcile every job once, one after another (`eddyline controller --once`)."""
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew_leases, args=(stop,), daemon=True)
        renewer.start()  # a submission can outlast the lease
        try:
            for job in self.store.list():
                self._safe_reconcile(job.name)
        finally:
            stop.set()
            for name in list(self._held):
                self.store.release(name, self.holder)

    def run(self, stop: threading.Event) -> None:
        """Reconcile every job each interval until `stop` is set; a job whose previous reconcile
        is still running (a long submission) is skipped, not queued twice."""
        log.info("controller %s started", self.holder)
        renewer = threading.Thread(target=self._renew_leases, args=(stop,), daemon=True)
        renewer.start()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="reconcile") as pool:
            while not stop.is_set():
                jobs = self._list_jobs()
                if jobs is None:
                    stop.wait(self.interval)
                    continue
                self._want_slots(jobs)
                for job in jobs:
                    with self._lock:
                        if job.name in self._busy:
                            continue
                        self._busy.add(job.name)
                    pool.submit(self._run_job, job.name)
                # While an operation is in flight, look again soon: each step (savepoint done,
                # old job ended) is noticed within FAST_INTERVAL instead of a whole interval.
                busy = any(j.status.operation is not None for j in jobs)
                self._pause(stop, min(self.interval, FAST_INTERVAL) if busy else self.interval)
        for name in list(self._held):
            self.store.release(name, self.holder)
        log.info("controller %s stopped", self.holder)

    def _list_jobs(self) -> list[FlinkJob] | None:
        """Every job, or None (said in the log) when the store cannot tell now."""
        try:
            return self.store.list()
        except TemporaryError as e:
            log.warning("reading the jobs failed (%s); trying again", e)
        except Exception:
            # A locked database or a row this version cannot read: say so, keep going.
            log.exception("reading the jobs failed; trying again")
        return None

    def _want_slots(self, jobs: list[FlinkJob]) -> None:
        if self.slots is None:
            return
        try:
            self.slots.want(slots_wanted(jobs))
        except Exception:
            log.exception("asking for task slots failed")

    def _pause(self, stop: threading.Event, seconds: float) -> None:
        """Between ticks. The Kubernetes mode (deploy/kube/controller.py) returns early when
        its watch sees a job change."""
        stop.wait(seconds)

    def _run_job(self, name: str) -> None:
        try:
            self._safe_reconcile(name)
        finally:
            with self._lock:
                self._busy.discard(name)

    def _safe_reconcile(self, name: str) -> None:
        """Reconcile one job; whatever it raises must not stop the other jobs. It is logged and
        counted, and the next tick tries again."""
        try:
            self.reconcile(name)
        except PermanentError as e:
            log.error("%s: reconcile failed: %s", name, e)
            self.metrics.errors.labels(name, "permanent").inc()
        except EddylineError as e:  # temporary, or not known to be permanent: waited out
            log.warning("%s: reconcile postponed: %s", name, e)
            self.metrics.errors.labels(name, "temporary").inc()
        except Exception:
            log.exception("%s: reconcile failed", name)  # a bug or an unexpected answer
            self.metrics.errors.labels(name, "internal").inc()

    def _renew_leases(self, stop: threading.Event) -> None:
        while not stop.wait(self.lease_ttl / 3):
            with self._lock:
                held = list(self._held)
            for name in held:
                try:
                    self.store.acquire(name, self.holder, self.lease_ttl)
                except Exception:
                    log.exception("renewing the lease on %s failed", name)


def _changed(job: FlinkJob) -> bool:
    return job.metadata.generation != job.status.observed_generation or bool(
        job.metadata.deletion_timestamp
    )


def _describe(action: Action) -> str:
    fields = {k: v for k, v in vars(action).items() if k not in ("kind", "spec")}
    return f"{action.kind} " + " ".join(f"{k}={v}" for k, v in fields.items())
