"""The fault proxy the REST fault tests put between the controller and Flink: it passes requests
on untouched when healthy, and each fault looks to a client the way it should."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.faultproxy import FaultProxy, Faults


class _Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True
    seen: list[tuple[str, str, bytes]]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Upstream

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.seen.append((self.command, self.path, body))
        data = b'{"ok": true, "path": "' + self.path.encode() + b'"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _reply  # noqa: N815
    do_POST = _reply  # noqa: N815
    do_PATCH = _reply  # noqa: N815

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream(("127.0.0.1", 0), _Handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: _Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}") as p:
        yield p


def test_healthy_requests_pass_through_with_their_bodies(
    proxy: FaultProxy, upstream: _Upstream
) -> None:
    with httpx.Client(base_url=proxy.url) as client:
        assert client.get("/jobs/overview").json() == {"ok": True, "path": "/jobs/overview"}
        resp = client.post("/jobs/x/stop", json={"triggerId": "t1"})
        assert resp.status_code == 200
    assert upstream.seen[-1] == ("POST", "/jobs/x/stop", b'{"triggerId":"t1"}')
    assert [e.fault for e in proxy.exchanges()] == [None, None]
    assert [e.status for e in proxy.exchanges()] == [200, 200]


def test_a_large_body_arrives_whole(proxy: FaultProxy, upstream: _Upstream) -> None:
    big = bytes(range(256)) * 20_000  # 5 MB, like a jar upload
    with httpx.Client(base_url=proxy.url) as client:
        assert client.post("/jars/upload", content=big).status_code == 200
    assert upstream.seen[-1][2] == big


def test_an_error_is_answered_by_the_proxy_and_never_reaches_the_server(
    proxy: FaultProxy, upstream: _Upstream
) -> None:
    proxy.set(Faults(error=1.0, error_status=500))
    with httpx.Client(base_url=proxy.url) as client:
        assert client.get("/overview").status_code == 500
    assert upstream.seen == []


def test_a_reset_is_a_connection_error_and_never_reaches_the_server(
    proxy: FaultProxy, upstream: _Upstream
) -> None:
    proxy.set(Faults(reset=1.0))
    with httpx.Client(base_url=proxy.url) as client, pytest.raises(httpx.TransportError):
        client.get("/overview")
    assert upstream.seen == []


def test_a_lost_answer_is_a_connection_error_but_the_server_applied_the_request(
    proxy: FaultProxy, upstream: _Upstream
) -> None:
    proxy.set(Faults(lost=1.0))
    with httpx.Client(base_url=proxy.url) as client, pytest.raises(httpx.TransportError):
        client.post("/jars/j/run", json={"jobId": "abc"})
    assert upstream.seen == [("POST", "/jars/j/run", b'{"jobId":"abc"}')]
    assert proxy.exchanges()[-1].status == 200


def test_a_hang_times_the_client_out(proxy: FaultProxy) -> None:
    proxy.set(Faults(hang=1.0, hang_s=2.0))
    with (
        httpx.Client(base_url=proxy.url, timeout=0.5) as client,
        pytest.raises(httpx.TimeoutException),
    ):
        client.get("/overview")


def test_faults_apply_only_to_the_requests_selected(proxy: FaultProxy) -> None:
    proxy.set(Faults(error=1.0, applies_to=lambda method, _path: method == "POST"))
    with httpx.Client(base_url=proxy.url) as client:
        assert client.get("/overview").status_code == 200
        assert client.post("/jobs/x/stop", json={}).status_code == 503
    proxy.heal()
    with httpx.Client(base_url=proxy.url) as client:
        assert client.post("/jobs/x/stop", json={}).status_code == 200
    assert proxy.fault_counts() == {"none": 2, "error": 1}


def test_the_same_seed_injects_the_same_faults(proxy: FaultProxy) -> None:
    def run() -> list[str | None]:
        proxy.set(Faults(error=0.5, seed=7))
        start = len(proxy.exchanges())
        with httpx.Client(base_url=proxy.url) as client:
            for _ in range(20):
                client.get("/overview")
        return [e.fault for e in proxy.exchanges()[start:]]

    first = run()
    assert "error" in first
    assert None in first
    assert run() == first
