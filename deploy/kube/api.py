"""The part of the Kubernetes API Eddyline uses, as plain JSON documents in one namespace.

`KubeApi` is the interface the Kubernetes store, Events and the TaskManager scaler are written
against; `RestApi` is the real one, on the official client's ApiClient (its authentication, TLS
and token refresh) but with raw JSON bodies, so FlinkJobs, Leases, Events and Scales are the
same dicts the API server speaks. Unit tests use an in-memory API server with the same
interface (tests/unit/fake_kube.py).

Every failure is a `KubeError` (deploy/errors.py), built from the HTTP status so that it is
already the leaf callers catch: KubeNotFoundError (404), KubeConflictError (409: a
resourceVersion conflict, or already exists), KubeGoneError (410: a watch too old to resume),
KubeUnavailableError (the server unreachable, 408, 429, 5xx), KubeRefusedError (another 4xx).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import suppress
from typing import Any, Protocol

from kubernetes.watch.watch import iter_resp_lines

from deploy.errors import KubeError, KubeNotFoundError, KubeUnavailableError

GROUP = "eddyline.dev"
VERSION = "v1alpha1"
PLURAL = "flinkjobs"
KIND = "FlinkJob"
REQUEST_TIMEOUT_S = 30.0

Doc = dict[str, Any]

__all__ = [
    "GROUP",
    "KIND",
    "PLURAL",
    "REQUEST_TIMEOUT_S",
    "VERSION",
    "Doc",
    "KubeApi",
    "KubeError",  # defined in deploy/errors.py; importable from here as before
    "RestApi",
]


class KubeApi(Protocol):
    """One namespace of the Kubernetes API, as Eddyline uses it."""

    namespace: str

    # FlinkJobs (eddyline.dev/v1alpha1, plural flinkjobs; status is a subresource)
    def get_job(self, name: str) -> Doc | None: ...
    def list_jobs(self) -> tuple[list[Doc], str]: ...
    def watch_jobs(self, resource_version: str, timeout_s: int) -> Iterator[tuple[str, Doc]]: ...
    def stop_watch(self) -> None: ...
    def create_job(self, body: Doc) -> Doc: ...
    def replace_job(self, name: str, body: Doc) -> Doc: ...
    def replace_job_status(self, name: str, body: Doc) -> Doc: ...
    def delete_job(self, name: str) -> None: ...

    # Leases (coordination.k8s.io/v1): one per job, held by the controller acting on it
    def get_lease(self, name: str) -> Doc | None: ...
    def create_lease(self, body: Doc) -> Doc: ...
    def replace_lease(self, name: str, body: Doc) -> Doc: ...
    def delete_lease(self, name: str) -> None: ...

    # Events (core/v1)
    def create_event(self, body: Doc) -> None: ...

    # Deployments' scale subresource (apps/v1)
    def get_replicas(self, deployment: str) -> int: ...
    def set_replicas(self, deployment: str, replicas: int) -> None: ...
    def get_scale(self, deployment: str) -> tuple[int, str]: ...

    # Pods (core/v1): the TaskManager Deployment's, to choose which go on a scale-down
    def list_pods(self, selector: str) -> list[Doc]: ...
    def annotate_pod(self, name: str, annotations: dict[str, str]) -> None: ...


def _jobs_path(namespace: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"


class RestApi:
    """`KubeApi` over the official client's ApiClient (kubeconfig or in-cluster credentials)."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self._watch_lock = threading.Lock()
        self._watch_response: Any = None

    def close(self) -> None:
        self.stop_watch()
        self.api_client.close()

    # -- transport --------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] = REQUEST_TIMEOUT_S,
        stream: bool = False,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            method, url, headers, body, _ = self.api_client.param_serialize(
                method,
                path,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            resp = self.api_client.call_api(method, url, headers, body, _request_timeout=timeout)
        except Exception as e:  # urllib3 connection errors, TLS, a token file that went away
            host = self.api_client.configuration.host
            raise KubeUnavailableError(f"Kubernetes API at {host} unreachable: {e}") from e
        if stream and 200 <= resp.status < 300:
            return resp.response
        data = resp.read()
        if not 200 <= resp.status < 300:
            raise _error(method, path, resp.status, data)
        return json.loads(data) if data else {}

    # -- FlinkJobs --------------------------------------------------------------------------

    def get_job(self, name: str) -> Doc | None:
        try:
            doc: Doc = self._request("GET", f"{_jobs_path(self.namespace)}/{name}")
        except KubeNotFoundError:
            return None
        return doc

    def list_jobs(self) -> tuple[list[Doc], str]:
        doc = self._request("GET", _jobs_path(self.namespace))
        return list(doc.get("items") or []), str(doc["metadata"]["resourceVersion"])

    def watch_jobs(self, resource_version: str, timeout_s: int) -> Iterator[tuple[str, Doc]]:
        """Changes after `resource_version` for about `timeout_s` seconds (the server ends the
        stream then). Raises KubeGoneError when that version is too old to resume from."""
        query = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_s)),
        ]
        resp = self._request(
            "GET",
            _jobs_path(self.namespace),
            query=query,
            timeout=(REQUEST_TIMEOUT_S, timeout_s + REQUEST_TIMEOUT_S),
            stream=True,
        )
        with self._watch_lock:
            self._watch_response = resp
        try:
            for line in iter_resp_lines(resp):  # type: ignore[no-untyped-call]
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    raise KubeError(
                        f"watch of {PLURAL}: {obj.get('message', obj)}",
                        int(obj.get("code") or 0),
                        str(obj.get("reason") or ""),
                    )
                yield str(event["type"]), obj
        except KubeError:
            raise
        except Exception as e:  # the connection dropped (or stop_watch closed it)
            raise KubeUnavailableError(f"watch of {PLURAL} ended: {e}") from e
        finally:
            with self._watch_lock:
                self._watch_response = None
            with suppress(Exception):
                resp.close()  # not back to the pool: it may have been shut down

    def stop_watch(self) -> None:
        """Ends a watch in progress from another thread (its iterator stops)."""
        with self._watch_lock:
            resp = self._watch_response
        if resp is None:
            return
        # The reading thread is blocked in recv(): shutting the socket down wakes it. The
        # connection no longer holds the socket once the response is streaming; its reader does.
        reader = getattr(getattr(getattr(resp, "_fp", None), "fp", None), "raw", None)
        candidates = [
            getattr(getattr(resp, "connection", None), "sock", None),
            getattr(reader, "_sock", None),
        ]
        for sock in candidates:
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def create_job(self, body: Doc) -> Doc:
        doc: Doc = self._request("POST", _jobs_path(self.namespace), body)
        return doc

    def replace_job(self, name: str, body: Doc) -> Doc:
        doc: Doc = self._request("PUT", f"{_jobs_path(self.namespace)}/{name}", body)
        return doc

    def replace_job_status(self, name: str, body: Doc) -> Doc:
        doc: Doc = self._request("PUT", f"{_jobs_path(self.namespace)}/{name}/status", body)
        return doc

    def delete_job(self, name: str) -> None:
        self._request("DELETE", f"{_jobs_path(self.namespace)}/{name}")

    # -- Leases -----------------------------------------------------------------------------

    def _leases(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"

    def get_lease(self, name: str) -> Doc | None:
        try:
            doc: Doc = self._request("GET", f"{self._leases()}/{name}")
        except KubeNotFoundError:
            return None
        return doc

    def create_lease(self, body: Doc) -> Doc:
        doc: Doc = self._request("POST", self._leases(), body)
        return doc

    def replace_lease(self, name: str, body: Doc) -> Doc:
        doc: Doc = self._request("PUT", f"{self._leases()}/{name}", body)
        return doc

    def delete_lease(self, name: str) -> None:
        self._request("DELETE", f"{self._leases()}/{name}")

    # -- Events -----------------------------------------------------------------------------

    def create_event(self, body: Doc) -> None:
        self._request("POST", f"/api/v1/namespaces/{self.namespace}/events", body)

    # -- Deployments' scale -----------------------------------------------------------------

    def _scale(self, deployment: str) -> str:
        return f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{deployment}/scale"

    def get_replicas(self, deployment: str) -> int:
        return self.get_scale(deployment)[0]

    def set_replicas(self, deployment: str, replicas: int) -> None:
        self._request(
            "PATCH",
            self._scale(deployment),
            {"spec": {"replicas": replicas}},
            content_type="application/merge-patch+json",
        )

    def get_scale(self, deployment: str) -> tuple[int, str]:
        """The replicas asked for and the label selector of the Deployment's Pods, as its scale
        subresource gives them (so no read access to the Deployment itself is needed)."""
        doc = self._request("GET", self._scale(deployment))
        replicas = int((doc.get("spec") or {}).get("replicas") or 0)
        return replicas, str((doc.get("status") or {}).get("selector") or "")

    # -- Pods -------------------------------------------------------------------------------

    def list_pods(self, selector: str) -> list[Doc]:
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        doc = self._request("GET", path, query=[("labelSelector", selector)])
        return list(doc.get("items") or [])

    def annotate_pod(self, name: str, annotations: dict[str, str]) -> None:
        self._request(
            "PATCH",
            f"/api/v1/namespaces/{self.namespace}/pods/{name}",
            {"metadata": {"annotations": annotations}},
            content_type="application/merge-patch+json",
        )


def _error(method: str, path: str, status: int, data: bytes | None) -> KubeError:
    """The API server's Status document as an error (its message says what was wrong), of the
    class its status means."""
    reason, message = "", (data or b"").decode("utf-8", "replace")[:500]
    with suppress(ValueError, AttributeError):
        doc = json.loads(data or b"{}")
        reason = str(doc.get("reason") or "")
        message = str(doc.get("message") or message)
    return KubeError(f"Kubernetes {method} {path}: {status} {reason}: {message}", status, reason)
