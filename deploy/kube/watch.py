"""A cache of the namespace's FlinkJobs, kept current by a watch and re-listed periodically.

The controller's loop lists jobs from here every tick instead of asking the API server, and is
woken when a job appears, goes, or its spec, annotations or deletion change (a status write —
most often the controller's own — wakes it only when an operation starts or ends). A watch
that cannot resume (410 Gone) or a lost connection falls back to a fresh list, with backoff
while the server is unreachable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from deploy.errors import KubeError, KubeGoneError
from deploy.kube.api import Doc, KubeApi

log = logging.getLogger("eddyline.kube.watch")
WATCH_TIMEOUT_S = 10  # the server ends each watch request after this; it is then resumed
MAX_BACKOFF_S = 30.0


def _significant(old: Doc | None, new: Doc | None) -> bool:
    """A change the controller must act on: not a status write, unless it starts or ends an
    operation (the loop then looks again at its quicker pace)."""
    if old is None or new is None:
        return old is not new
    o, n = old.get("metadata") or {}, new.get("metadata") or {}
    busy = [bool((d.get("status") or {}).get("operation")) for d in (old, new)]
    return (
        busy[0] != busy[1]
        or o.get("generation") != n.get("generation")
        or o.get("deletionTimestamp") != n.get("deletionTimestamp")
        or o.get("annotations") != n.get("annotations")
        or o.get("finalizers") != n.get("finalizers")
    )


class JobCache:
    def __init__(
        self,
        api: KubeApi,
        on_change: Callable[[str], None] | None = None,
        resync_s: float = 60.0,
        watch_timeout_s: int = WATCH_TIMEOUT_S,
    ) -> None:
        self.api = api
        self.on_change = on_change
        self.resync_s = resync_s
        self.watch_timeout_s = watch_timeout_s
        self.synced = threading.Event()
        self.lists = 0  # full lists so far (the first, resyncs, and recoveries)
        self._docs: dict[str, Doc] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="flinkjob-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.api.stop_watch()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait_synced(self, timeout: float) -> bool:
        return self.synced.wait(timeout)

    def items(self) -> list[Doc]:
        with self._lock:
            return [self._docs[name] for name in sorted(self._docs)]

    def get(self, name: str) -> Doc | None:
        with self._lock:
            return self._docs.get(name)

    # -- the watch thread -------------------------------------------------------------------

    def _notify(self, name: str) -> None:
        if self.on_change is not None:
            try:
                self.on_change(name)
            except Exception:
                log.exception("change callback for %s failed", name)

    def _put(self, doc: Doc) -> None:
        name = str(doc["metadata"]["name"])
        with self._lock:
            old = self._docs.get(name)
            self._docs[name] = doc
        if _significant(old, doc):
            self._notify(name)

    def _drop(self, name: str) -> None:
        with self._lock:
            old = self._docs.pop(name, None)
        if old is not None:
            self._notify(name)

    def _relist(self) -> str:
        items, version = self.api.list_jobs()
        seen = {str(d["metadata"]["name"]) for d in items}
        for doc in items:
            self._put(doc)
        with self._lock:
            gone = [n for n in self._docs if n not in seen]
        for name in gone:
            self._drop(name)
        self.lists += 1
        self.synced.set()
        return version

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                version = self._relist()
                listed_at = time.monotonic()
                while not self._stop.is_set() and time.monotonic() - listed_at < self.resync_s:
                    version = self._watch(version)
                backoff = 1.0
            except KubeGoneError:
                if not self._stop.is_set():
                    log.info("watch expired (410); listing again")
            except KubeError as e:
                # Unreachable, or refused (RBAC being fixed, say): both may pass; back off.
                if self._stop.is_set():
                    break
                log.warning("watching FlinkJobs failed (%s); again in %.0f s", e, backoff)
                self._stop.wait(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
            except Exception:
                log.exception("watching FlinkJobs failed; listing again")
                self._stop.wait(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)

    def _watch(self, version: str) -> str:
        """One watch request, until the server ends it; returns the version to resume from."""
        for kind, doc in self.api.watch_jobs(version, self.watch_timeout_s):
            meta = doc.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            if kind in ("ADDED", "MODIFIED"):
                self._put(doc)
            elif kind == "DELETED":
                self._drop(str(meta["name"]))
            if self._stop.is_set():
                break
        return version
