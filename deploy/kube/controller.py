"""The controller in Kubernetes mode: the same observe → decide → act loop
(deploy/controller/loop.py) over FlinkJob custom resources.

What differs from the local mode is only around the loop: the jobs come from a watch cache that
wakes the loop when a job is created, changed or deleted (and is re-listed every `resync_s`);
the finalizer is put on each FlinkJob before the controller first acts on it; the store posts
Kubernetes Events and writes status through the status subresource; the TaskManager Deployment
provides the task slots (deploy/kube/runtime.py).
"""

from __future__ import annotations

import logging
import threading

from deploy.controller.capacity import SlotProvider
from deploy.controller.loop import Controller, Runtime
from deploy.controller.metrics import ControllerMetrics
from deploy.errors import EddylineError
from deploy.kube.store import KubeStore

log = logging.getLogger("eddyline.controller")
SYNC_TIMEOUT_S = 30.0


class KubeController(Controller):
    def __init__(
        self,
        store: KubeStore,
        runtime: Runtime,
        metrics: ControllerMetrics | None = None,
        *,
        lease_ttl: float = 10.0,
        interval: float = 1.0,
        workers: int = 4,
        slots: SlotProvider | None = None,
    ) -> None:
        super().__init__(
            store,
            runtime,
            metrics,
            lease_ttl=lease_ttl,
            interval=interval,
            workers=workers,
            slots=slots,
        )
        self.kube = store
        self.kube.events.host = self.holder.split("/", 1)[0]
        self._wake = threading.Event()
        self._changed: set[str] = set()  # jobs changed since their reconcile started
        self._changed_lock = threading.Lock()
        self.wakes = 0  # loop ticks started early by a watch event

    def reconcile(self, name: str) -> None:
        try:
            self.kube.ensure_finalizer(name)
        except EddylineError as e:
            log.warning("%s: could not add the finalizer: %s", name, e)
        super().reconcile(name)

    def run(self, stop: threading.Event) -> None:
        """Watch the namespace's FlinkJobs and reconcile them until `stop` is set."""

        def changed(name: str) -> None:
            log.debug("%s changed", name)
            with self._changed_lock:
                self._changed.add(name)
            self._wake.set()

        cache = self.kube.start_watch(changed)
        if not cache.wait_synced(SYNC_TIMEOUT_S):
            log.warning("no FlinkJob list after %.0f s; listing directly meanwhile", SYNC_TIMEOUT_S)
        waker = threading.Thread(target=self._wake_on_stop, args=(stop,), daemon=True)
        waker.start()
        try:
            super().run(stop)
        finally:
            self.kube.stop_watch()

    def _run_job(self, name: str) -> None:
        """A change that arrives while the job's reconcile runs (the loop skips a busy job) wakes
        the loop again once it is done, instead of waiting for the next tick."""
        with self._changed_lock:
            self._changed.discard(name)
        try:
            super()._run_job(name)
        finally:
            with self._changed_lock:
                again = name in self._changed
            if again:
                self._wake.set()

    def _wake_on_stop(self, stop: threading.Event) -> None:
        stop.wait()
        self._wake.set()

    def _pause(self, stop: threading.Event, seconds: float) -> None:
        if stop.is_set():
            return
        if self._wake.wait(seconds):
            self.wakes += 1
        self._wake.clear()
