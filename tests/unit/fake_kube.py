"""An in-memory Kubernetes API server behind Eddyline's `KubeApi` interface (deploy/kube/api.py),
with the semantics the Kubernetes store relies on: resourceVersions and 409 conflicts,
generation bumps on spec changes (and when a deletion starts), the status subresource (a main
update ignores status, a status update ignores the rest), finalizers holding a deleted object,
watches from a resourceVersion (410 once it is compacted), Leases, Events, Deployment scales
and a Deployment's Pods (labelled `app=<deployment>`).
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from deploy.kube.api import Doc, KubeError

P = ParamSpec("P")
R = TypeVar("R")


def _atomic(method: Callable[P, R]) -> Callable[P, R]:
    """Runs a FlinkJob read or write under the server's lock, as a real API server does: a list
    never sees a resourceVersion whose object is not stored yet (a watch resumed from it would
    then miss that object forever)."""

    @wraps(method)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        server = args[0]
        assert isinstance(server, FakeKube)
        with server._cond:
            return method(*args, **kwargs)

    return locked


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeKube:
    def __init__(self, namespace: str = "default") -> None:
        self.namespace = namespace
        self.jobs: dict[str, Doc] = {}
        self.leases: dict[str, Doc] = {}
        self.events: list[Doc] = []
        self.replicas: dict[str, int] = {}
        self.scale_requests: list[tuple[str, int]] = []
        self.pods: dict[str, Doc] = {}  # name → Pod
        self.calls: list[str] = []  # "get_job ledger", "replace_job_status ledger", …
        self.version = 100
        self.history: list[tuple[int, str, Doc]] = []  # (resourceVersion, type, object)
        self.compacted = 0  # a watch from a version below this gets 410 Gone
        self.fail: dict[str, list[KubeError]] = {}  # method → errors raised on its next calls
        self.before: dict[str, Callable[[str], None]] = {}  # method → hook run before it
        self.down = False
        self._cond = threading.Condition()
        self._stop_watch = False

    # -- helpers ----------------------------------------------------------------------------

    def _call(self, method: str, name: str = "") -> None:
        self.calls.append(f"{method} {name}".strip())
        hook = self.before.get(method)
        if hook is not None:
            del self.before[method]
            hook(name)
        if self.down:
            raise KubeError("Kubernetes API at https://fake unreachable: connection refused")
        errors = self.fail.get(method)
        if errors:
            raise errors.pop(0)

    def _bump(self) -> str:
        self.version += 1
        return str(self.version)

    def _record(self, kind: str, doc: Doc) -> None:
        with self._cond:
            self.history.append((self.version, kind, copy.deepcopy(doc)))
            self._cond.notify_all()

    @staticmethod
    def _check_version(current: Doc, body: Doc) -> None:
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        have = current["metadata"]["resourceVersion"]
        if wanted and wanted != have:
            name = current["metadata"]["name"]
            raise KubeError(
                f"Operation cannot be fulfilled on {name}: the object has been modified",
                409,
                "Conflict",
            )

    def _missing(self, name: str) -> KubeError:
        return KubeError(f'flinkjobs "{name}" not found', 404, "NotFound")

    # -- FlinkJobs --------------------------------------------------------------------------

    def get_job(self, name: str) -> Doc | None:
        self._call("get_job", name)
        doc = self.jobs.get(name)
        return copy.deepcopy(doc) if doc else None

    @_atomic
    def list_jobs(self) -> tuple[list[Doc], str]:
        self._call("list_jobs")
        return [copy.deepcopy(d) for _, d in sorted(self.jobs.items())], str(self.version)

    def watch_jobs(self, resource_version: str, timeout_s: int) -> Iterator[tuple[str, Doc]]:
        self._call("watch_jobs")
        since = int(resource_version)
        if since < self.compacted:
            raise KubeError("too old resource version", 410, "Expired")
        deadline = threading.Event()
        timer = threading.Timer(timeout_s, deadline.set)
        timer.daemon = True
        timer.start()
        sent = since
        try:
            while True:
                if sent < self.compacted:  # the server ends a watch it cannot continue
                    raise KubeError("too old resource version", 410, "Expired")
                with self._cond:
                    pending = [h for h in self.history if h[0] > sent]
                    if not pending:
                        if deadline.is_set() or self._stop_watch:
                            self._stop_watch = False
                            return
                        self._cond.wait(0.05)
                        continue
                for version, kind, doc in pending:
                    sent = version
                    yield kind, copy.deepcopy(doc)
        finally:
            timer.cancel()

    def stop_watch(self) -> None:
        with self._cond:
            self._stop_watch = True
            self._cond.notify_all()

    @_atomic
    def create_job(self, body: Doc) -> Doc:
        name = body["metadata"]["name"]
        self._call("create_job", name)
        if name in self.jobs:
            raise KubeError(f'flinkjobs "{name}" already exists', 409, "AlreadyExists")
        doc = copy.deepcopy(body)
        doc.pop("status", None)
        meta = doc["metadata"]
        meta.update(
            namespace=self.namespace,
            uid=str(uuid.uuid4()),
            generation=1,
            creationTimestamp=_now(),
            resourceVersion=self._bump(),
        )
        self.jobs[name] = doc
        self._record("ADDED", doc)
        return copy.deepcopy(doc)

    @_atomic
    def replace_job(self, name: str, body: Doc) -> Doc:
        self._call("replace_job", name)
        current = self.jobs.get(name)
        if current is None:
            raise self._missing(name)
        self._check_version(current, body)
        doc = copy.deepcopy(body)
        meta = doc["metadata"]
        old = current["metadata"]
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "generation", "namespace"):
            if key in old:
                meta[key] = old[key]
            else:
                meta.pop(key, None)
        if old.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old.get("finalizers") or [])
            if added:
                raise KubeError("no new finalizers can be added while deleting", 422, "Invalid")
        doc["status"] = copy.deepcopy(current.get("status"))  # the status subresource owns it
        if doc["status"] is None:
            doc.pop("status")
        if doc.get("spec") != current.get("spec"):
            meta["generation"] = old["generation"] + 1
        if doc == current:
            return copy.deepcopy(current)
        meta["resourceVersion"] = self._bump()
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self.jobs[name]
            self._record("DELETED", doc)
            return copy.deepcopy(doc)
        self.jobs[name] = doc
        self._record("MODIFIED", doc)
        return copy.deepcopy(doc)

    @_atomic
    def replace_job_status(self, name: str, body: Doc) -> Doc:
        self._call("replace_job_status", name)
        current = self.jobs.get(name)
        if current is None:
            raise self._missing(name)
        self._check_version(current, body)
        doc = copy.deepcopy(current)
        doc["status"] = copy.deepcopy(body.get("status"))
        if doc == current:
            return copy.deepcopy(current)
        doc["metadata"]["resourceVersion"] = self._bump()
        self.jobs[name] = doc
        self._record("MODIFIED", doc)
        return copy.deepcopy(doc)

    @_atomic
    def delete_job(self, name: str) -> None:
        self._call("delete_job", name)
        current = self.jobs.get(name)
        if current is None:
            raise self._missing(name)
        meta = current["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = _now()
                meta["generation"] += 1
                meta["resourceVersion"] = self._bump()
                self._record("MODIFIED", current)
            return
        del self.jobs[name]
        self._bump()
        self._record("DELETED", current)

    # -- what a user does with kubectl ------------------------------------------------------

    @_atomic
    def kubectl_apply(self, doc: Doc) -> Doc:
        """Create (no finalizer: kubectl knows none) or change the spec, as `kubectl apply`."""
        name = doc["metadata"]["name"]
        current = self.jobs.get(name)
        if current is None:
            return self.create_job(doc)
        body = copy.deepcopy(current)
        body["spec"] = copy.deepcopy(doc["spec"])
        return self.replace_job(name, body)

    # -- Leases -----------------------------------------------------------------------------

    def get_lease(self, name: str) -> Doc | None:
        self._call("get_lease", name)
        doc = self.leases.get(name)
        return copy.deepcopy(doc) if doc else None

    def create_lease(self, body: Doc) -> Doc:
        name = body["metadata"]["name"]
        self._call("create_lease", name)
        if name in self.leases:
            raise KubeError(f'leases "{name}" already exists', 409, "AlreadyExists")
        doc = copy.deepcopy(body)
        doc["metadata"]["resourceVersion"] = self._bump()
        self.leases[name] = doc
        return copy.deepcopy(doc)

    def replace_lease(self, name: str, body: Doc) -> Doc:
        self._call("replace_lease", name)
        current = self.leases.get(name)
        if current is None:
            raise KubeError(f'leases "{name}" not found', 404, "NotFound")
        self._check_version(current, body)
        doc = copy.deepcopy(body)
        doc["metadata"]["resourceVersion"] = self._bump()
        self.leases[name] = doc
        return copy.deepcopy(doc)

    def delete_lease(self, name: str) -> None:
        self._call("delete_lease", name)
        if self.leases.pop(name, None) is None:
            raise KubeError(f'leases "{name}" not found', 404, "NotFound")

    # -- Events and scales ------------------------------------------------------------------

    def create_event(self, body: Doc) -> None:
        self._call("create_event", body["involvedObject"]["name"])
        self.events.append(copy.deepcopy(body))

    def get_replicas(self, deployment: str) -> int:
        self._call("get_replicas", deployment)
        if deployment not in self.replicas:
            raise KubeError(f'deployments.apps "{deployment}" not found', 404, "NotFound")
        return self.replicas[deployment]

    def set_replicas(self, deployment: str, replicas: int) -> None:
        self._call("set_replicas", deployment)
        if deployment not in self.replicas:
            raise KubeError(f'deployments.apps "{deployment}" not found', 404, "NotFound")
        self.replicas[deployment] = replicas
        self.scale_requests.append((deployment, replicas))

    def get_scale(self, deployment: str) -> tuple[int, str]:
        self._call("get_scale", deployment)
        if deployment not in self.replicas:
            raise KubeError(f'deployments.apps "{deployment}" not found', 404, "NotFound")
        return self.replicas[deployment], f"app={deployment}"

    def list_pods(self, selector: str) -> list[Doc]:
        self._call("list_pods", selector)
        key, _, value = selector.partition("=")
        return [
            copy.deepcopy(p)
            for p in self.pods.values()
            if (p["metadata"].get("labels") or {}).get(key) == value
        ]

    def annotate_pod(self, name: str, annotations: dict[str, str]) -> None:
        self._call("annotate_pod", name)
        if name not in self.pods:
            raise KubeError(f'pods "{name}" not found', 404, "NotFound")
        self.pods[name]["metadata"].setdefault("annotations", {}).update(annotations)

    def add_pod(self, deployment: str, name: str, created: str, deleting: bool = False) -> None:
        meta: Doc = {"name": name, "labels": {"app": deployment}, "creationTimestamp": created}
        if deleting:
            meta["deletionTimestamp"] = created
        self.pods[name] = {"metadata": meta, "status": {"phase": "Running"}}

    # -- what tests look at -----------------------------------------------------------------

    def reasons(self, name: str) -> list[str]:
        return [e["reason"] for e in self.events if e["involvedObject"]["name"] == name]

    def count(self, method: str) -> int:
        return sum(1 for c in self.calls if c.split(" ", 1)[0] == method)


def flinkjob_doc(name: str = "ledger", **spec: Any) -> Doc:
    job: dict[str, Any] = {"entry": "jobs.ledger"}
    job.update(spec.pop("job", {}))
    return {
        "apiVersion": "eddyline.dev/v1alpha1",
        "kind": "FlinkJob",
        "metadata": {"name": name},
        "spec": {"job": job, **spec},
    }
