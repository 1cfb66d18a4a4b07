"""FlinkJob custom resources as the controller's store (the `JobStore` of deploy/local/store.py).

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
- **Leases**: one coordination.k8s.io Lease per job (`flinkjob-NAME`) names the controller that
  acts on it; another one takes over once it has not been renewed for its duration.
- Each event the controller records in a status (Submitting, Deployed, SavepointTaken, …) is
  also posted as a Kubernetes Event on the FlinkJob.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from deploy.controller.store import SAVEPOINT_ON_DELETE
from deploy.errors import ControllerError, SpecError
from deploy.kube.api import GROUP, KIND, VERSION, Doc, KubeApi, KubeError
from deploy.kube.events import EventRecorder
from deploy.kube.watch import JobCache
from deploy.spec import FlinkJob, FlinkJobSpec, JobStatus, problems

log = logging.getLogger("eddyline.kube.store")

FINALIZER = "eddyline.dev/savepoint"
LEASE_PREFIX = "flinkjob-"
CONFLICT_RETRIES = 8
_MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def lease_name(job: str) -> str:
    return LEASE_PREFIX + job


def to_job(doc: Doc) -> FlinkJob:
    """A FlinkJob from its custom resource; SpecError (every problem) when it does not fit the
    model (a resource written past the CRD's schema)."""
    data = {k: doc.get(k) for k in ("apiVersion", "kind", "metadata", "spec")}
    data["status"] = doc.get("status") or {}
    try:
        return FlinkJob.model_validate(data)
    except ValidationError as e:
        name = str((doc.get("metadata") or {}).get("name", "?"))
        raise SpecError(f"flinkjob/{name}", problems(e)) from None


def spec_doc(spec: FlinkJobSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True)


def status_doc(status: JobStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def _microtime(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime(_MICROTIME)


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class _Held:
    holder: str
    expires: float  # our own clock: the lease is ours until then
    renewed: float
    version: str  # the Lease's resourceVersion after our last write


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
        self.invalid: dict[str, str] = {}  # name → resourceVersion reported as invalid
        self.conflicts = 0  # status writes that met a resourceVersion conflict
        self._docs: dict[str, Doc] = {}  # the last version of each job this store read or wrote
        self._leases: dict[str, _Held] = {}
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
                body = {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": KIND,
                    "metadata": {
                        "name": job.name,
                        "namespace": self.namespace,
                        "labels": job.metadata.labels,
                        "annotations": job.metadata.annotations,
                        "finalizers": [FINALIZER],
                    },
                    "spec": spec_doc(job.spec),
                }
                try:
                    created = self.api.create_job(body)
                except KubeError as e:
                    if e.conflict:  # created meanwhile: change it instead
                        continue
                    raise ControllerError(str(e)) from None
                self._remember(created)
                return to_job(created)
            if (current.get("metadata") or {}).get("deletionTimestamp"):
                raise ControllerError(
                    f"job {job.name!r} is being deleted; submit it again once it is gone"
                )
            meta = dict(current["metadata"])
            labels = {**(meta.get("labels") or {}), **job.metadata.labels}
            annotations = {**(meta.get("annotations") or {}), **job.metadata.annotations}
            existing = to_job(current)
            if (
                existing.spec == job.spec
                and labels == (meta.get("labels") or {})
                and annotations == (meta.get("annotations") or {})
            ):
                return existing
            meta["labels"], meta["annotations"] = labels, annotations
            changed = self._replace({**current, "metadata": meta, "spec": spec_doc(job.spec)})
            if changed is not None:
                return changed
        raise ControllerError(f"job {job.name!r} kept changing; try again")

    def _replace(self, body: Doc) -> FlinkJob | None:
        """PUT the document at its resourceVersion; None on a conflict (read it again)."""
        name = str(body["metadata"]["name"])
        try:
            stored = self.api.replace_job(name, body)
        except KubeError as e:
            if e.conflict:
                return None
            if e.not_found:
                raise ControllerError(f"no job named {name!r} (see `eddyline list`)") from None
            raise ControllerError(str(e)) from None
        self._remember(stored)
        return to_job(stored)

    def _must_fetch(self, name: str) -> Doc:
        doc = self._fetch(name)
        if doc is None:
            raise ControllerError(f"no job named {name!r} (see `eddyline list --kube`)")
        return doc

    def update_spec(self, name: str, change: Callable[[FlinkJobSpec], FlinkJobSpec]) -> FlinkJob:
        for _ in range(CONFLICT_RETRIES):
            current = self._must_fetch(name)
            if (current.get("metadata") or {}).get("deletionTimestamp"):
                raise ControllerError(f"job {name!r} is being deleted")
            job = to_job(current)
            spec = change(job.spec)
            if spec == job.spec:
                return job
            changed = self._replace({**current, "spec": spec_doc(spec)})
            if changed is not None:
                return changed
        raise ControllerError(f"job {name!r} kept changing; try again")

    def request_delete(self, name: str, savepoint: bool) -> FlinkJob:
        """Record whether a final savepoint is wanted, then delete: the finalizer keeps the
        FlinkJob until the controller has stopped its job."""
        wanted = "true" if savepoint else "false"
        for _ in range(CONFLICT_RETRIES):
            current = self._must_fetch(name)
            meta = dict(current["metadata"])
            annotations = dict(meta.get("annotations") or {})
            if annotations.get(SAVEPOINT_ON_DELETE) == wanted or meta.get("deletionTimestamp"):
                break
            annotations[SAVEPOINT_ON_DELETE] = wanted
            body = {**current, "metadata": {**meta, "annotations": annotations}}
            if self._replace(body) is not None:
                break
        else:
            raise ControllerError(f"job {name!r} kept changing; try again")
        try:
            self.api.delete_job(name)
        except KubeError as e:
            if not e.not_found:
                raise ControllerError(str(e)) from None
        after = self._fetch(name)
        if after is not None:
            return to_job(after)
        gone = to_job(current)  # no finalizer: the API server removed it at once
        gone.metadata.deletion_timestamp = gone.metadata.deletion_timestamp or _now_iso()
        return gone

    # -- status (the controller) ------------------------------------------------------------

    def write_status(  # noqa: PLR0911 - one return per outcome
        self, name: str, status: JobStatus, holder: str | None = None
    ) -> bool:
        """Write `status` on the version this store last read; False when the job is gone, the
        lease is not `holder`'s, or another writer changed the status meanwhile."""
        if holder is not None and not self.holds(name, holder):
            return False
        with self._lock:
            base = self._docs.get(name)
        if base is None:
            base = self._fetch(name)
            if base is None:
                return False
        wanted = status_doc(status)
        if _same_status(base, status):
            return True  # nothing to write (the API server may have filled in defaults)
        for _ in range(CONFLICT_RETRIES):
            try:
                stored = self.api.replace_job_status(name, {**base, "status": wanted})
            except KubeError as e:
                if e.not_found:
                    return False
                if not e.conflict:
                    raise ControllerError(str(e)) from None
                self.conflicts += 1
                fresh = self.api.get_job(name)
                if fresh is None:
                    return False
                if (fresh.get("status") or {}) != (base.get("status") or {}):
                    log.warning("%s: its status was changed by another writer", name)
                    self._remember(fresh)
                    return False
                base = fresh  # only the spec or metadata changed: write on the new version
                continue
            self._remember(stored)
            self._post_events(name, base.get("status") or {}, status)
            return True
        return False

    def _post_events(self, name: str, before: Doc, after: JobStatus) -> None:
        try:
            old = JobStatus.model_validate(before).events
        except ValidationError:
            old = []
        seen = {(e.time, e.reason, e.message) for e in old}
        for e in after.events:
            if (e.time, e.reason, e.message) not in seen:
                self.events.record(name, e.reason, e.message, e.type == "Warning", e.time)

    def ensure_finalizer(self, name: str) -> None:
        """Add the finalizer to a FlinkJob made without it (kubectl apply), so it cannot vanish
        while its Flink job runs. No request when the known version has it already."""
        known = (self.document(name) or {}).get("metadata") or {}
        if FINALIZER in (known.get("finalizers") or []) or known.get("deletionTimestamp"):
            return
        for _ in range(CONFLICT_RETRIES):
            doc = self._fetch(name)
            if doc is None:
                return
            meta = doc.get("metadata") or {}
            finalizers = list(meta.get("finalizers") or [])
            if FINALIZER in finalizers or meta.get("deletionTimestamp"):
                return
            body = {**doc, "metadata": {**meta, "finalizers": [*finalizers, FINALIZER]}}
            try:
                if self._replace(body) is not None:
                    return
            except ControllerError:
                return  # gone meanwhile

    def forget(self, name: str) -> None:
        """Deletion is done (the FlinkJob has a deletionTimestamp): remove the finalizer, so the
        API server removes the FlinkJob, and the job's lease."""
        for _ in range(CONFLICT_RETRIES):
            doc = self._fetch(name)
            if doc is None:
                break
            meta = doc.get("metadata") or {}
            finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
            if finalizers != list(meta.get("finalizers") or []):
                body = {**doc, "metadata": {**meta, "finalizers": finalizers}}
                try:
                    self.api.replace_job(name, body)
                except KubeError as e:
                    if e.conflict:
                        continue
                    if not e.not_found:
                        raise ControllerError(str(e)) from None
            break
        try:
            self.api.delete_lease(lease_name(name))
        except KubeError as e:
            if not e.not_found:
                log.warning("%s: could not delete its lease: %s", name, e)
        with self._lock:
            self._docs.pop(name, None)
            self._leases.pop(name, None)

    # -- leases -----------------------------------------------------------------------------

    def holds(self, name: str, holder: str) -> bool:
        with self._lock:
            held = self._leases.get(name)
        return held is not None and held.holder == holder and time.time() < held.expires

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the Lease on `name`. A lease renewed less than ttl/4 ago is ours
        without asking the API server again."""
        now = time.time()
        with self._lock:
            held = self._leases.get(name)
        if held is not None and held.holder == holder and now - held.renewed < ttl / 4:
            return now < held.expires
        try:
            ok = self._acquire(name, holder, ttl, now)
        except KubeError as e:
            log.warning("%s: lease not renewed: %s", name, e)
            ok = False
        if not ok:
            with self._lock:
                if name in self._leases and self._leases[name].holder == holder:
                    del self._leases[name]
        return ok

    def _acquire(self, name: str, holder: str, ttl: float, now: float) -> bool:
        lease = self.api.get_lease(lease_name(name))
        duration = max(1, math.ceil(ttl))
        spec: dict[str, Any] = {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "renewTime": _microtime(now),
        }
        if lease is None:
            spec.update(acquireTime=_microtime(now), leaseTransitions=0)
            body: Doc = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": lease_name(name), "namespace": self.namespace},
                "spec": spec,
            }
            owner = self._owner(name)
            if owner is not None:
                body["metadata"]["ownerReferences"] = [owner]
            try:
                stored = self.api.create_lease(body)
            except KubeError as e:
                if e.conflict:
                    return False  # another controller created it first
                raise
        else:
            current = lease.get("spec") or {}
            other = current.get("holderIdentity") or ""
            renewed = _parse_time(current.get("renewTime")) or 0.0
            expired = renewed + float(current.get("leaseDurationSeconds") or 0) < now
            if other and other != holder and not expired:
                return False
            transitions = int(current.get("leaseTransitions") or 0)
            if other == holder:
                spec["acquireTime"] = current.get("acquireTime") or _microtime(now)
                spec["leaseTransitions"] = transitions
            else:
                spec.update(acquireTime=_microtime(now), leaseTransitions=transitions + 1)
            try:
                stored = self.api.replace_lease(lease_name(name), {**lease, "spec": spec})
            except KubeError as e:
                if e.conflict or e.not_found:
                    return False
                raise
        version = str((stored.get("metadata") or {}).get("resourceVersion", ""))
        with self._lock:
            self._leases[name] = _Held(holder, now + ttl, now, version)
        return True

    def _owner(self, name: str) -> dict[str, Any] | None:
        doc = self.document(name)
        uid = ((doc or {}).get("metadata") or {}).get("uid")
        if not uid:
            return None
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": name, "uid": uid}

    def release(self, name: str, holder: str) -> None:
        """Give the Lease up (another controller may take it at once)."""
        with self._lock:
            held = self._leases.pop(name, None)
        if held is None or held.holder != holder:
            return
        try:
            lease = self.api.get_lease(lease_name(name))
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != holder:
                return
            spec = {**(lease.get("spec") or {}), "holderIdentity": "", "leaseDurationSeconds": 1}
            self.api.replace_lease(lease_name(name), {**lease, "spec": spec})
        except KubeError as e:
            log.info("%s: lease not released (%s); it expires by itself", name, e)

    def lease_holder(self, name: str) -> tuple[str, float] | None:
        lease = self.api.get_lease(lease_name(name))
        spec = (lease or {}).get("spec") or {}
        if not spec.get("holderIdentity"):
            return None
        renewed = _parse_time(spec.get("renewTime")) or 0.0
        return str(spec["holderIdentity"]), renewed + float(spec.get("leaseDurationSeconds") or 0)


def _same_status(doc: Doc, status: JobStatus) -> bool:
    try:
        return JobStatus.model_validate(doc.get("status") or {}) == status
    except ValidationError:
        return False


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
