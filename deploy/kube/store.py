"""FlinkJob custom resources as the controller's store (deploy/controller/store.py's `JobStore`).

- **Spec** is written by users (`kubectl apply`, `eddyline submit --kube`); the API server bumps
  `metadata.generation` when it changes, exactly what SqliteStore does locally.
- **Status** is written by the controller only, through the status subresource: a PUT of the
  whole status carrying the resourceVersion it was decided from. A conflict (409) means the
  object changed meanwhile: when only its spec or metadata did, the status is written again on
  the new version; when its status did too (another writer), nothing is written and the
  reconcile acts on nothing, as when a lease is lost.
- **Deletion** goes through the finalizer `eddyline.dev/savepoint`: a FlinkJob keeps existing
  (with a deletionTimestamp) until the controller has stopped its job — with a final savepoint
  when the annotation `eddyline.dev/savepoint-on-delete` is "true" — and then removes the
  finalizer (`forget`). `eddyline submit --kube` creates FlinkJobs with the finalizer; the
  controller adds it to those made otherwise before it first acts on them.
- **Leases**: one coordination.k8s.io Lease per job (deploy/kube/leases.py).
- Each event the controller records in a status (Submitting, Deployed, SavepointTaken, …) is
  also posted as a Kubernetes Event on the FlinkJob.

The documents themselves (model ↔ resource, the finalizer) are in deploy/kube/resource.py. An API
failure the store cannot handle is a ControllerError — a StoreUnavailableError (temporary) when
the API server was unreachable or busy, so the controller waits it out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from deploy.controller.store import SAVEPOINT_ON_DELETE
from deploy.errors import (
    ControllerError,
    KubeConflictError,
    KubeError,
    KubeNotFoundError,
    SpecError,
    StoreUnavailableError,
    TemporaryError,
)
from deploy.kube.api import Doc, KubeApi
from deploy.kube.events import EventRecorder
from deploy.kube.leases import Leases, lease_name
from deploy.kube.resource import (
    FINALIZER,
    applied,
    deleting,
    has_finalizer,
    new_events,
    new_resource,
    now_iso,
    same_status,
    spec_doc,
    status_doc,
    to_job,
    with_finalizer,
)
from deploy.kube.watch import JobCache
from deploy.spec import FlinkJob, FlinkJobSpec, JobStatus

__all__ = ["CONFLICT_RETRIES", "FINALIZER", "KubeStore", "lease_name", "to_job"]

log = logging.getLogger("eddyline.kube.store")

CONFLICT_RETRIES = 8


def _store_error(e: KubeError) -> ControllerError:
    """The store's error for an API failure it cannot handle itself; a temporary one stays
    temporary (the controller waits it out instead of reporting a refusal)."""
    if isinstance(e, TemporaryError):
        return StoreUnavailableError(str(e))
    return ControllerError(str(e))


def _kept_changing(name: str) -> ControllerError:
    return ControllerError(f"job {name!r} kept changing; try again")


class KubeStore:
    def __init__(
        self,
        api: KubeApi,
        events: EventRecorder | None = None,
        *,
        resync_s: float = 60.0,
    ) -> None:
        self.api = api
        self.namespace = api.namespace
        self.events = events if events is not None else EventRecorder(api, self.document)
        if self.events.involved is None:
            self.events.involved = self.document
        self.resync_s = resync_s
        self.cache: JobCache | None = None
        self.leases = Leases(api, self.document)
        self.invalid: dict[str, str] = {}  # name → resourceVersion reported as invalid
        self.conflicts = 0  # status writes that met a resourceVersion conflict
        self._docs: dict[str, Doc] = {}  # the last version of each job this store read or wrote
        self._lock = threading.Lock()

    # -- documents --------------------------------------------------------------------------

    def _remember(self, doc: Doc) -> None:
        with self._lock:
            self._docs[str(doc["metadata"]["name"])] = doc

    def document(self, name: str) -> Doc | None:
        """The job's latest document known here (for Events: its uid)."""
        with self._lock:
            doc = self._docs.get(name)
        if doc is None and self.cache is not None:
            doc = self.cache.get(name)
        return doc

    def _fetch(self, name: str) -> Doc | None:
        doc = self.api.get_job(name)
        if doc is not None:
            self._remember(doc)
        return doc

    def _must_fetch(self, name: str) -> Doc:
        doc = self._fetch(name)
        if doc is None:
            raise ControllerError(f"no job named {name!r} (see `eddyline list --kube`)")
        return doc

    def get(self, name: str) -> FlinkJob | None:
        doc = self._fetch(name)
        return to_job(doc) if doc is not None else None

    def list(self) -> list[FlinkJob]:
        """Every valid FlinkJob, by name: from the watch cache when it runs. One that does not
        validate is left out (and reported once per version, as a Warning Event)."""
        if self.cache is not None and self.cache.synced.is_set():
            docs = self.cache.items()
        else:
            docs = sorted(self.api.list_jobs()[0], key=lambda d: str(d["metadata"]["name"]))
        jobs = []
        for doc in docs:
            try:
                jobs.append(to_job(doc))
            except SpecError as e:
                self._report_invalid(doc, e)
        return jobs

    def _report_invalid(self, doc: Doc, error: SpecError) -> None:
        meta = doc.get("metadata") or {}
        name, version = str(meta.get("name")), str(meta.get("resourceVersion"))
        if self.invalid.get(name) == version:
            return
        self.invalid[name] = version
        log.warning("%s", error)
        self.events.record(name, "InvalidSpec", "; ".join(error.problems), warning=True)

    # -- watching ---------------------------------------------------------------------------

    def start_watch(self, on_change: Callable[[str], None] | None = None) -> JobCache:
        self.cache = JobCache(self.api, on_change, self.resync_s)
        self.cache.start()
        return self.cache

    def stop_watch(self) -> None:
        if self.cache is not None:
            self.cache.stop()
            self.cache = None

    # -- spec (users) -----------------------------------------------------------------------

    def apply(self, job: FlinkJob) -> FlinkJob:
        """Create the FlinkJob (with the finalizer), or change its spec, labels and annotations
        (the API server bumps the generation when the spec differs)."""
        for _ in range(CONFLICT_RETRIES):
            current = self._fetch(job.name)
            if current is None:
                try:
                    created = self.api.create_job(new_resource(job, self.namespace))
                except KubeConflictError:  # created meanwhile: change it instead
                    continue
                except KubeError as e:
                    raise _store_error(e) from None
                self._remember(created)
                return to_job(created)
            if deleting(current):
                raise ControllerError(
                    f"job {job.name!r} is being deleted; submit it again once it is gone"
                )
            body = applied(current, job)
            if body is None:
                return to_job(current)
            changed = self._replace(body)
            if changed is not None:
                return changed
        raise _kept_changing(job.name)

    def _replace(self, body: Doc) -> FlinkJob | None:
        """PUT the document at its resourceVersion; None on a conflict (read it again)."""
        name = str(body["metadata"]["name"])
        try:
            stored = self.api.replace_job(name, body)
        except KubeConflictError:
            return None
        except KubeNotFoundError:
            raise ControllerError(f"no job named {name!r} (see `eddyline list`)") from None
        except KubeError as e:
            raise _store_error(e) from None
        self._remember(stored)
        return to_job(stored)

    def update_spec(self, name: str, change: Callable[[FlinkJobSpec], FlinkJobSpec]) -> FlinkJob:
        for _ in range(CONFLICT_RETRIES):
            current = self._must_fetch(name)
            if deleting(current):
                raise ControllerError(f"job {name!r} is being deleted")
            job = to_job(current)
            spec = change(job.spec)
            if spec == job.spec:
                return job
            changed = self._replace({**current, "spec": spec_doc(spec)})
            if changed is not None:
                return changed
        raise _kept_changing(name)

    def request_delete(self, name: str, savepoint: bool) -> FlinkJob:
        """Record whether a final savepoint is wanted, then delete: the finalizer keeps the
        FlinkJob until the controller has stopped its job."""
        current = self._mark_savepoint_on_delete(name, "true" if savepoint else "false")
        try:
            self.api.delete_job(name)
        except KubeNotFoundError:
            pass  # gone already: what was asked
        except KubeError as e:
            raise _store_error(e) from None
        after = self._fetch(name)
        if after is not None:
            return to_job(after)
        gone = to_job(current)  # no finalizer: the API server removed it at once
        gone.metadata.deletion_timestamp = gone.metadata.deletion_timestamp or now_iso()
        return gone

    def _mark_savepoint_on_delete(self, name: str, wanted: str) -> Doc:
        """The job's document once its annotation says `wanted` (or it is being deleted)."""
        for _ in range(CONFLICT_RETRIES):
            current = self._must_fetch(name)
            meta = dict(current["metadata"])
            annotations = dict(meta.get("annotations") or {})
            if annotations.get(SAVEPOINT_ON_DELETE) == wanted or meta.get("deletionTimestamp"):
                return current
            annotations[SAVEPOINT_ON_DELETE] = wanted
            body = {**current, "metadata": {**meta, "annotations": annotations}}
            if self._replace(body) is not None:
                return current
        raise _kept_changing(name)

    # -- status (the controller) ------------------------------------------------------------

    def write_status(self, name: str, status: JobStatus, holder: str | None = None) -> bool:
        """Write `status` on the version this store last read; False when the job is gone, the
        lease is not `holder`'s, or another writer changed the status meanwhile."""
        if holder is not None and not self.holds(name, holder):
            return False
        with self._lock:
            base = self._docs.get(name)
        base = base if base is not None else self._fetch(name)
        if base is None:
            return False
        if same_status(base, status):
            return True  # nothing to write (the API server may have filled in defaults)
        return self._put_status(name, base, status)

    def _put_status(self, name: str, base: Doc, status: JobStatus) -> bool:
        wanted = status_doc(status)
        for _ in range(CONFLICT_RETRIES):
            try:
                stored = self.api.replace_job_status(name, {**base, "status": wanted})
            except KubeNotFoundError:
                return False
            except KubeConflictError:
                self.conflicts += 1
                fresh = self._rebase(name, base)
                if fresh is None:
                    return False
                base = fresh
                continue
            except KubeError as e:
                raise _store_error(e) from None
            self._remember(stored)
            for ev in new_events(base.get("status") or {}, status):
                self.events.record(name, ev.reason, ev.message, ev.type == "Warning", ev.time)
            return True
        return False

    def _rebase(self, name: str, base: Doc) -> Doc | None:
        """After a conflict: the new version to write the status on when only the spec or
        metadata changed; None when the job is gone or another writer changed its status."""
        fresh = self.api.get_job(name)
        if fresh is None:
            return None
        if (fresh.get("status") or {}) != (base.get("status") or {}):
            log.warning("%s: its status was changed by another writer", name)
            self._remember(fresh)
            return None
        return fresh

    def ensure_finalizer(self, name: str) -> None:
        """Add the finalizer to a FlinkJob made without it (kubectl apply), so it cannot vanish
        while its Flink job runs. No request when the known version has it already."""
        known = self.document(name) or {}
        if has_finalizer(known) or deleting(known):
            return
        for _ in range(CONFLICT_RETRIES):
            doc = self._fetch(name)
            if doc is None or has_finalizer(doc) or deleting(doc):
                return
            try:
                if self._replace(with_finalizer(doc, present=True)) is not None:
                    return
            except ControllerError:
                return  # gone meanwhile, or refused: the next reconcile tries again

    def forget(self, name: str) -> None:
        """Deletion is done (the FlinkJob has a deletionTimestamp): remove the finalizer, so the
        API server removes the FlinkJob, and the job's lease."""
        for _ in range(CONFLICT_RETRIES):
            doc = self._fetch(name)
            if doc is None or not has_finalizer(doc):
                break
            try:
                self.api.replace_job(name, with_finalizer(doc, present=False))
            except KubeConflictError:
                continue
            except KubeNotFoundError:
                pass  # removed meanwhile
            except KubeError as e:
                raise _store_error(e) from None
            break
        self.leases.delete(name)
        with self._lock:
            self._docs.pop(name, None)

    # -- leases (deploy/kube/leases.py) -----------------------------------------------------

    def holds(self, name: str, holder: str) -> bool:
        return self.leases.holds(name, holder)

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        return self.leases.acquire(name, holder, ttl)

    def release(self, name: str, holder: str) -> None:
        self.leases.release(name, holder)

    def lease_holder(self, name: str) -> tuple[str, float] | None:
        return self.leases.holder(name)
