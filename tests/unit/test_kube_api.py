"""The raw REST layer (deploy/kube/api.py RestApi) against a small HTTP server in this process
that answers as the API server does: documents, Status errors mapped to KubeError, a watch
stream (events, then an expired-version ERROR), a watch stopped from another thread, merge
patches of a scale, and a server that is not there."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from deploy.errors import (
    KubeConflictError,
    KubeGoneError,
    KubeRefusedError,
    KubeUnavailableError,
)
from deploy.kube.api import KubeError, RestApi

JOBS = "/apis/eddyline.dev/v1alpha1/namespaces/ns/flinkjobs"


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str, Any]]  # method, path, content type, body
    hold = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n)) if n else None

    def _send(self, code: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str, message: str) -> None:
        self._send(code, {"kind": "Status", "code": code, "reason": reason, "message": message})

    def _record(self) -> Any:
        body = self._body()
        self.seen.append((self.command, self.path, self.headers.get("Content-Type", ""), body))
        return body

    def do_GET(self) -> None:
        self._record()
        if "watch=true" in self.path:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            for i in range(2):
                event = {"type": "ADDED", "object": {"metadata": {"name": f"j{i}"}}}
                self.wfile.write((json.dumps(event) + "\n").encode())
                self.wfile.flush()
            if "resourceVersion=old" in self.path:
                gone = {"code": 410, "reason": "Expired", "message": "too old resource version"}
                self.wfile.write((json.dumps({"type": "ERROR", "object": gone}) + "\n").encode())
                return
            self.hold.wait(30)  # a quiet watch: only stop_watch ends it early
            return
        if self.path == f"{JOBS}/missing":
            return self._status(404, "NotFound", 'flinkjobs.eddyline.dev "missing" not found')
        if self.path == JOBS:
            return self._send(200, {"items": [{"metadata": {"name": "a"}}],
                                    "metadata": {"resourceVersion": "42"}})  # fmt: skip
        if self.path.endswith("/scale"):
            return self._send(200, {"spec": {"replicas": 2}})
        self._send(200, {"metadata": {"name": "x"}, "auth": self.headers.get("Authorization")})

    def do_PUT(self) -> None:
        self._record()
        self._status(409, "Conflict", "the object has been modified; please apply your changes")

    def do_PATCH(self) -> None:
        body = self._record()
        self._send(200, {"spec": body["spec"]})

    def do_POST(self) -> None:
        body = self._record()
        self._send(201, body)

    def do_DELETE(self) -> None:
        self._record()
        self._status(403, "Forbidden", 'cannot delete resource "flinkjobs"')


@pytest.fixture
def api() -> Iterator[tuple[RestApi, list[tuple[str, str, str, Any]]]]:
    seen: list[tuple[str, str, str, Any]] = []
    handler = type("H", (Handler,), {"seen": seen, "hold": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = client.Configuration()
    config.host = f"http://127.0.0.1:{server.server_port}"
    config.api_key = {"BearerToken": "Bearer t0ken"}
    rest = RestApi(client.ApiClient(config), "ns")
    try:
        yield rest, seen
    finally:
        handler.hold.set()
        rest.close()
        server.shutdown()
        server.server_close()


def test_documents_and_errors(api: tuple[RestApi, list[Any]]) -> None:
    rest, seen = api
    assert rest.get_job("x") == {"metadata": {"name": "x"}, "auth": "Bearer t0ken"}
    assert rest.get_job("missing") is None
    assert rest.list_jobs() == ([{"metadata": {"name": "a"}}], "42")
    with pytest.raises(KubeError) as conflict:
        rest.replace_job_status("x", {"metadata": {"name": "x", "resourceVersion": "1"}})
    assert isinstance(conflict.value, KubeConflictError)
    assert conflict.value.status == 409
    assert conflict.value.reason == "Conflict"
    assert "the object has been modified" in str(conflict.value)
    with pytest.raises(KubeError) as forbidden:
        rest.delete_job("x")
    assert forbidden.value.status == 403
    assert isinstance(forbidden.value, KubeRefusedError)  # retrying cannot help
    assert ("PUT", f"{JOBS}/x/status") == seen[3][:2]


def test_scale_is_a_merge_patch_of_the_scale_subresource(api: tuple[RestApi, list[Any]]) -> None:
    rest, seen = api
    assert rest.get_replicas("tm") == 2
    rest.set_replicas("tm", 3)
    method, path, content_type, body = seen[-1]
    assert (method, path) == ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/tm/scale")
    assert content_type == "application/merge-patch+json"
    assert body == {"spec": {"replicas": 3}}


def test_events_are_posted_to_the_namespace(api: tuple[RestApi, list[Any]]) -> None:
    rest, seen = api
    rest.create_event({"reason": "Submit"})
    assert seen[-1][:2] == ("POST", "/api/v1/namespaces/ns/events")


def test_a_watch_streams_events_then_raises_410_when_expired(
    api: tuple[RestApi, list[Any]],
) -> None:
    rest, seen = api
    got: list[tuple[str, str]] = []

    def follow() -> None:
        for kind, doc in rest.watch_jobs("old", 5):
            got.append((kind, doc["metadata"]["name"]))

    with pytest.raises(KubeError) as gone:
        follow()
    assert got == [("ADDED", "j0"), ("ADDED", "j1")]
    assert isinstance(gone.value, KubeGoneError)
    assert gone.value.status == 410
    query = seen[-1][1].split("?", 1)[1]
    assert "watch=true" in query
    assert "allowWatchBookmarks=true" in query
    assert "timeoutSeconds=5" in query


def test_a_watch_is_stopped_from_another_thread_at_once(api: tuple[RestApi, list[Any]]) -> None:
    rest, _ = api
    threading.Timer(0.5, rest.stop_watch).start()
    start = time.monotonic()
    names = [doc["metadata"]["name"] for _, doc in rest.watch_jobs("1", 30)]
    assert names == ["j0", "j1"]
    assert time.monotonic() - start < 5


def test_an_absent_server_is_a_kube_error_naming_it() -> None:
    config = client.Configuration()
    config.host = "http://127.0.0.1:9"
    rest = RestApi(client.ApiClient(config), "ns")
    try:
        with pytest.raises(
            KubeUnavailableError, match=r"Kubernetes API at http://127\.0\.0\.1:9 unreachable"
        ):
            rest.get_job("x")
    finally:
        rest.close()
