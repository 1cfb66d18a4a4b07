"""Port checks for the local stack: which ports are free, and a free one when any will do."""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path

from deploy.errors import PortInUseError


def is_free(port: int, host: str = "localhost") -> bool:
    """True when nothing listens on `port` and we could bind it ourselves."""
    for family, addr in _addresses(host, port):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(addr)
            except OSError:
                return False
    return True


def _addresses(host: str, port: int) -> list[tuple[socket.AddressFamily, tuple[str, int]]]:
    """Each distinct (family, address) `host` resolves to: localhost is often both v4 and v6."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    out: list[tuple[socket.AddressFamily, tuple[str, int]]] = []
    for family, _kind, _proto, _canon, addr in infos:
        entry = (family, (str(addr[0]), port))
        if entry not in out:
            out.append(entry)
    return out


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PICK_LOW = 20000  # above the well-known and registered ports most servers default to
PICK_HIGH = 29999  # below Kubernetes' NodePort range (30000-32767), which kube-proxy may claim


def pick_range(ephemeral: tuple[int, int] | None) -> tuple[int, int] | None:
    """Pure: where to pick a server's port so that no outgoing connection takes it first. The
    kernel gives outgoing connections (and bind-to-0) ports from its ephemeral range, so a port
    found free there can be gone before a server binds it — it happened when several stacks
    started at once. Below that range only other deliberate picks compete. None: no room."""
    if ephemeral is None:
        return None
    low, high = PICK_LOW, min(PICK_HIGH, ephemeral[0] - 1)
    return (low, high) if high - low >= 1000 else None


def _ephemeral() -> tuple[int, int] | None:
    try:
        low, high = EPHEMERAL_RANGE.read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def free_port(host: str = "localhost") -> int:
    """A port free now, chosen at random below the kernel's ephemeral range (see pick_range);
    it may still be taken by another deliberate pick before we bind it: use promptly."""
    span = pick_range(_ephemeral())
    if span is not None:
        for _ in range(100):
            port = span[0] + secrets.randbelow(span[1] - span[0] + 1)
            if is_free(port, host):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((socket.gethostbyname(host), 0))
        return int(sock.getsockname()[1])


def check_free(ports: Mapping[str, int], host: str = "localhost") -> None:
    """Raise PortInUseError naming the first port of `ports` that is taken."""
    for purpose, port in ports.items():
        if not is_free(port, host):
            raise PortInUseError(purpose, port)


def listening(port: int, host: str = "localhost", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False
