"""A fault-injecting HTTP proxy for tests: it stands between a client (the controller) and a
real HTTP server (Flink's REST API) and, request by request, passes the request on or injects a
fault chosen by the test.

Faults, as a client sees them:
    error     a 5xx answer made up by the proxy (the request never reaches the server)
    delay     the request is held `delay_s` seconds, then passed on
    hang      the request is held `hang_s` seconds (longer than the client waits), then the
              connection is closed without an answer: a timeout
    reset     the connection is reset (TCP RST) before the request is passed on
    lost      the request IS passed on and applied by the server, then the connection is reset
              instead of answering: the nastiest case, "did it happen or not?"

One request per connection (each answer says `Connection: close`), so every request is decided
and logged on its own. Threads, plain sockets and http.client: no dependency beyond the standard
library.

    with FaultProxy("http://localhost:8081") as proxy:
        proxy.set(Faults(error=0.3, reset=0.2, seed=1))
        ... point the client at proxy.url ...
        proxy.heal()
"""

from __future__ import annotations

import http.client
import random
import socket
import socketserver
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

FAULTS = ("error", "delay", "hang", "reset", "lost")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
_MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Faults:
    """How often each fault happens (each a probability, tried in the order of FAULTS), for the
    requests `applies_to` selects (default: all)."""

    error: float = 0.0
    delay: float = 0.0
    hang: float = 0.0
    reset: float = 0.0
    lost: float = 0.0
    error_status: int = 503
    delay_s: float = 1.0
    hang_s: float = 40.0
    seed: int | None = None
    applies_to: Callable[[str, str], bool] = field(default=lambda _method, _path: True)

    def choose(self, rng: random.Random, method: str, path: str) -> str | None:
        if not self.applies_to(method, path):
            return None
        for name in FAULTS:
            if rng.random() < getattr(self, name):
                return name
        return None


HEALTHY = Faults()


@dataclass(frozen=True)
class Exchange:
    """One request as the proxy handled it."""

    time: float
    method: str
    path: str
    fault: str | None
    status: int | None  # the server's answer (None: not forwarded, or no answer)
    request_body: bytes


class FaultProxy:
    def __init__(self, upstream: str, host: str = "127.0.0.1", port: int = 0) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "localhost"
        self.upstream_port = parts.port or 80
        self._faults = HEALTHY
        self._rng = random.Random()
        self._lock = threading.Lock()
        self.log: list[Exchange] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((host, port), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True)

    # -- control ---------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)

    def heal(self) -> None:
        self.set(HEALTHY)

    def exchanges(self, since: float = 0.0) -> list[Exchange]:
        with self._lock:
            return [e for e in self.log if e.time >= since]

    def fault_counts(self, since: float = 0.0) -> Counter[str]:
        return Counter(e.fault or "none" for e in self.exchanges(since))

    # -- one connection, one request -------------------------------------------------------

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(60)
        try:
            request = _read_request(conn)
        except (OSError, ValueError):
            return
        if request is None:
            return
        method, target, headers, body = request
        with self._lock:
            faults = self._faults
            fault = faults.choose(self._rng, method, target)
        status: int | None = None
        try:
            if fault == "delay":
                time.sleep(faults.delay_s)
            elif fault == "hang":
                time.sleep(faults.hang_s)
            answer = None
            if fault in (None, "delay", "lost"):
                answer = self._forward(method, target, headers, body)
                status = answer[0] if answer else None
            # Logged before the client hears anything, so a client that has its answer can
            # count on finding the exchange in the log.
            with self._lock:
                self.log.append(Exchange(time.time(), method, target, fault, status, body))
            if fault == "error":
                _answer(conn, faults.error_status, b'{"errors":["injected by the fault proxy"]}')
            elif fault in ("reset", "hang", "lost"):
                _reset(conn)
            elif answer is None:
                _answer(conn, 502, b'{"errors":["the fault proxy could not reach upstream"]}')
            else:
                _answer(conn, answer[0], answer[2], answer[1])
        except OSError:
            pass  # the client went away: nothing to answer
        finally:
            conn.close()

    def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=600)
        try:
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    upstream.putheader(name, value)
            upstream.putheader("Content-Length", str(len(body)))
            upstream.putheader("Connection", "close")
            upstream.endheaders(body)
            resp = upstream.getresponse()
            data = resp.read()  # http.client undoes chunked encoding
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            kept = [(k, v) for k, v in kept if k.lower() != "content-length"]
            return resp.status, kept, data
        except OSError:
            return None
        finally:
            upstream.close()


def _read_request(
    conn: socket.socket,
) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > _MAX_HEADER_BYTES and b"\r\n\r\n" not in buf:
            raise ValueError("request headers too large")
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    names = {k.lower(): v for k, v in headers}
    if names.get("transfer-encoding", "").lower() == "chunked":
        body, rest = _read_chunked(conn, rest)
    else:
        length = int(names.get("content-length", "0") or 0)
        while len(rest) < length:
            chunk = conn.recv(min(1 << 20, length - len(rest)))
            if not chunk:
                raise ValueError("connection closed inside the body")
            rest += chunk
        body = rest[:length]
    return method, target, headers, body


def _read_chunked(conn: socket.socket, buf: bytes) -> tuple[bytes, bytes]:
    body = b""

    def need(n: int) -> None:
        nonlocal buf
        while len(buf) < n:
            chunk = conn.recv(1 << 20)
            if not chunk:
                raise ValueError("connection closed inside a chunk")
            buf += chunk

    while True:
        while b"\r\n" not in buf:
            need(len(buf) + 1)
        size_line, buf = buf.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            while b"\r\n" not in buf:  # trailers end with an empty line
                need(len(buf) + 1)
            return body, buf
        need(size + 2)
        body += buf[:size]
        buf = buf[size + 2 :]


def _answer(
    conn: socket.socket,
    status: int,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    reason = http.client.responses.get(status, "Status")
    lines = [f"HTTP/1.1 {status} {reason}"]
    given = headers or [("Content-Type", "application/json; charset=UTF-8")]
    lines += [f"{k}: {v}" for k, v in given]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    conn.sendall("\r\n".join(lines).encode("latin-1") + body)


def _reset(conn: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN: the client sees 'connection reset by peer'."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
