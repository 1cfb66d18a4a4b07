"""A FlinkJob as a custom resource and back: the model from a document, the document for a new
FlinkJob, the spec and status as the API server stores them, and the finalizer.

Pure functions of documents (the dicts the API server speaks); deploy/kube/store.py sends them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from deploy.errors import SpecError
from deploy.kube.api import GROUP, KIND, VERSION, Doc
from deploy.spec import Event, FlinkJob, FlinkJobSpec, JobStatus, problems

# Keeps a deleted FlinkJob until the controller has stopped its job (with a final savepoint when
# asked): without it the API server would remove the resource while its Flink job runs on.
FINALIZER = "eddyline.dev/savepoint"


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


def new_resource(job: FlinkJob, namespace: str) -> Doc:
    """The document that creates `job`, with the finalizer from the start."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": job.name,
            "namespace": namespace,
            "labels": job.metadata.labels,
            "annotations": job.metadata.annotations,
            "finalizers": [FINALIZER],
        },
        "spec": spec_doc(job.spec),
    }


def applied(current: Doc, job: FlinkJob) -> Doc | None:
    """`current` with `job`'s spec, and its labels and annotations merged in (others kept);
    None when that changes nothing."""
    meta = dict(current["metadata"])
    labels = {**(meta.get("labels") or {}), **job.metadata.labels}
    annotations = {**(meta.get("annotations") or {}), **job.metadata.annotations}
    if (
        to_job(current).spec == job.spec
        and labels == (meta.get("labels") or {})
        and annotations == (meta.get("annotations") or {})
    ):
        return None
    meta["labels"], meta["annotations"] = labels, annotations
    return {**current, "metadata": meta, "spec": spec_doc(job.spec)}


def deleting(doc: Doc) -> bool:
    return bool((doc.get("metadata") or {}).get("deletionTimestamp"))


def has_finalizer(doc: Doc) -> bool:
    return FINALIZER in ((doc.get("metadata") or {}).get("finalizers") or [])


def with_finalizer(doc: Doc, present: bool) -> Doc:
    """The document with the finalizer added (`present`) or removed; other finalizers kept."""
    meta = doc.get("metadata") or {}
    others = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
    return {**doc, "metadata": {**meta, "finalizers": [*others, FINALIZER] if present else others}}


def same_status(doc: Doc, status: JobStatus) -> bool:
    """Whether the document already holds `status` (read as the model: the API server may have
    filled in defaults the model reads the same)."""
    try:
        return JobStatus.model_validate(doc.get("status") or {}) == status
    except ValidationError:
        return False


def new_events(before: Doc, after: JobStatus) -> list[Event]:
    """The events of `after` that the status document `before` does not hold yet."""
    try:
        old = JobStatus.model_validate(before).events
    except ValidationError:
        old = []
    seen = {(e.time, e.reason, e.message) for e in old}
    return [e for e in after.events if (e.time, e.reason, e.message) not in seen]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
