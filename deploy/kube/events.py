"""Kubernetes Events about FlinkJobs (`kubectl describe flinkjob NAME` and `kubectl get events`
show them): one for each decision the controller records in the status, one for each action it
performs on Flink, and one on the TaskManager Deployment when it scales it. Posting is best
effort: an Event that cannot be written is logged, never a reason to stop reconciling."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from deploy.errors import KubeError
from deploy.kube.api import GROUP, KIND, VERSION, Doc, KubeApi

log = logging.getLogger("eddyline.kube.events")
COMPONENT = "eddyline-controller"
MAX_MESSAGE = 1024


def _time(ms: int | None = None) -> str:
    moment = datetime.now(UTC) if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(
        self,
        api: KubeApi,
        involved: Callable[[str], Doc | None] | None = None,
        component: str = COMPONENT,
        host: str | None = None,
    ) -> None:
        """`involved(name)` gives the FlinkJob's current document (for its uid), if known."""
        self.api = api
        self.involved = involved
        self.component = component
        self.host = host
        self.failures = 0

    def record(
        self,
        name: str,
        reason: str,
        message: str,
        warning: bool = False,
        time_ms: int | None = None,
        ref: dict[str, str] | None = None,
    ) -> None:
        """An Event on the FlinkJob `name`, or on the object `ref` names (apiVersion, kind,
        name: the TaskManager Deployment)."""
        if ref is not None:
            ref = {**ref, "namespace": self.api.namespace}
            doc = None
        else:
            ref = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": name,
                "namespace": self.api.namespace,
            }
            doc = self.involved(name) if self.involved is not None else None
        meta = (doc or {}).get("metadata") or {}
        if meta.get("uid"):
            ref["uid"] = str(meta["uid"])
        if meta.get("resourceVersion"):
            ref["resourceVersion"] = str(meta["resourceVersion"])
        when = _time(time_ms)
        source = {"component": self.component, **({"host": self.host} if self.host else {})}
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{name}.{uuid.uuid4().hex[:16]}",
                "namespace": self.api.namespace,
            },
            "involvedObject": ref,
            "reason": reason,
            "message": message[:MAX_MESSAGE],
            "type": "Warning" if warning else "Normal",
            "source": source,
            "firstTimestamp": when,
            "lastTimestamp": when,
            "count": 1,
        }
        try:
            self.api.create_event(body)
        except KubeError as e:
            self.failures += 1
            log.warning("%s: could not post Event %s (%s): %s", name, reason, message, e)
