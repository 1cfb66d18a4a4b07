"""One coordination.k8s.io Lease per FlinkJob (`flinkjob-NAME`): it names the controller that acts
on the job, and another controller takes over once it has not been renewed for its duration.

The Lease is owned by its FlinkJob (an ownerReference), so Kubernetes' garbage collector removes
it with the job even when no controller is left to do so.
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

from deploy.errors import KubeConflictError, KubeError, KubeNotFoundError
from deploy.kube.api import GROUP, KIND, VERSION, Doc, KubeApi

log = logging.getLogger("eddyline.kube.store")

LEASE_PREFIX = "flinkjob-"
_MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def lease_name(job: str) -> str:
    return LEASE_PREFIX + job


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


class Leases:
    def __init__(self, api: KubeApi, document: Callable[[str], Doc | None]) -> None:
        """`document(name)` gives the FlinkJob's latest known document (for its uid)."""
        self.api = api
        self.document = document
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()

    def holds(self, name: str, holder: str) -> bool:
        with self._lock:
            held = self._held.get(name)
        return held is not None and held.holder == holder and time.time() < held.expires

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the Lease on `name`. A lease renewed less than ttl/4 ago is ours
        without asking the API server again."""
        now = time.time()
        with self._lock:
            held = self._held.get(name)
        if held is not None and held.holder == holder and now - held.renewed < ttl / 4:
            return now < held.expires
        try:
            stored = self._take(name, holder, ttl, now)
        except KubeError as e:  # unreachable or refused alike: not ours until it is renewed
            log.warning("%s: lease not renewed: %s", name, e)
            stored = None
        with self._lock:
            if stored is not None:
                version = str((stored.get("metadata") or {}).get("resourceVersion", ""))
                self._held[name] = _Held(holder, now + ttl, now, version)
            elif name in self._held and self._held[name].holder == holder:
                del self._held[name]
        return stored is not None

    def _take(self, name: str, holder: str, ttl: float, now: float) -> Doc | None:
        """The Lease as written with `holder` in it; None when another holds it (or won a race
        for it)."""
        spec: dict[str, Any] = {
            "holderIdentity": holder,
            "leaseDurationSeconds": max(1, math.ceil(ttl)),
            "renewTime": _microtime(now),
        }
        lease = self.api.get_lease(lease_name(name))
        if lease is None:
            return self._create(name, spec, now)
        current = lease.get("spec") or {}
        other = current.get("holderIdentity") or ""
        renewed = _parse_time(current.get("renewTime")) or 0.0
        expired = renewed + float(current.get("leaseDurationSeconds") or 0) < now
        if other and other != holder and not expired:
            return None
        transitions = int(current.get("leaseTransitions") or 0)
        if other == holder:
            spec["acquireTime"] = current.get("acquireTime") or _microtime(now)
            spec["leaseTransitions"] = transitions
        else:
            spec.update(acquireTime=_microtime(now), leaseTransitions=transitions + 1)
        try:
            return self.api.replace_lease(lease_name(name), {**lease, "spec": spec})
        except (KubeConflictError, KubeNotFoundError):
            return None  # another controller renewed, took or released it meanwhile

    def _create(self, name: str, spec: dict[str, Any], now: float) -> Doc | None:
        spec.update(acquireTime=_microtime(now), leaseTransitions=0)
        body: Doc = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": lease_name(name), "namespace": self.api.namespace},
            "spec": spec,
        }
        owner = self._owner(name)
        if owner is not None:
            body["metadata"]["ownerReferences"] = [owner]
        try:
            return self.api.create_lease(body)
        except KubeConflictError:
            return None  # another controller created it first

    def _owner(self, name: str) -> dict[str, Any] | None:
        doc = self.document(name)
        uid = ((doc or {}).get("metadata") or {}).get("uid")
        if not uid:
            return None
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": name, "uid": uid}

    def release(self, name: str, holder: str) -> None:
        """Give the Lease up (another controller may take it at once)."""
        with self._lock:
            held = self._held.pop(name, None)
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

    def holder(self, name: str) -> tuple[str, float] | None:
        """Who holds the Lease on `name` and until when (epoch seconds), if anyone."""
        lease = self.api.get_lease(lease_name(name))
        spec = (lease or {}).get("spec") or {}
        if not spec.get("holderIdentity"):
            return None
        renewed = _parse_time(spec.get("renewTime")) or 0.0
        return str(spec["holderIdentity"]), renewed + float(spec.get("leaseDurationSeconds") or 0)

    def delete(self, name: str) -> None:
        """The job is gone: its Lease goes too (one already gone is fine)."""
        with self._lock:
            self._held.pop(name, None)
        try:
            self.api.delete_lease(lease_name(name))
        except KubeNotFoundError:
            pass
        except KubeError as e:
            log.warning("%s: could not delete its lease: %s", name, e)
