"""Port checks for the local stack: which ports are free, and a free one when any will do."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Mapping

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


def free_port(host: str = "localhost") -> int:
    """A port the OS says is free now (it may be taken again before we bind it: use promptly)."""
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
