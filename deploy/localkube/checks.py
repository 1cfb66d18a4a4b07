"""What `up` checks before it changes anything on the host, each failure one line saying what
is missing or in the way and how to fix it; and the free loopback ports it picks."""

from __future__ import annotations

import contextlib
import shutil
import socket
from pathlib import Path

import psutil

from deploy.errors import ClusterError
from deploy.localkube import host
from deploy.localkube.layout import (
    API_PORT,
    BIN_DIR,
    BINARIES,
    CNI_PLUGINS,
    DNS_PORT,
    GATEWAY,
    HOST_COMMANDS,
    KUBELET_PORT,
)


def preflight() -> None:
    """Everything `up` needs, or one line naming what is missing and how to get it."""
    if not host.is_root():
        raise ClusterError("the local cluster needs root (kubelet, containerd, iptables)")
    missing = [b for b in BINARIES if not (BIN_DIR / b).exists()]
    if missing:
        raise ClusterError(f"missing in {BIN_DIR}: {', '.join(missing)} — run `make kube-tools`")
    packages = sorted({pkg for cmd, pkg in HOST_COMMANDS.items() if not shutil.which(cmd)})
    if not (CNI_PLUGINS / "bridge").exists() or not (CNI_PLUGINS / "host-local").exists():
        packages.append("containernetworking-plugins")
    if packages:
        raise ClusterError(
            f"missing Debian packages: {' '.join(packages)} — run `make cluster-packages` "
            f"(apt-get install {' '.join(packages)})"
        )
    if not Path("/proc/sys/net/bridge").exists():
        raise ClusterError(
            "the kernel's bridge netfilter (br_netfilter) is not loaded: `modprobe br_netfilter`"
        )


def _listening(port: int, addresses: tuple[str, ...]) -> str | None:
    for conn in psutil.net_connections(kind="inet"):
        laddr = conn.laddr
        if (
            conn.status == psutil.CONN_LISTEN
            and laddr
            and (laddr.port, laddr.ip) in {(port, a) for a in addresses}
        ):
            owner = ""
            with contextlib.suppress(psutil.Error):
                if conn.pid:
                    owner = f" by {psutil.Process(conn.pid).name()} (pid {conn.pid})"
            return f"{laddr.ip}:{port} is taken{owner}"
    return None


def check_ports() -> None:
    """The fixed ports (API server, kubelet, DNS) are free on the bridge address."""
    wild = ("0.0.0.0", "::", GATEWAY)
    for port, what in ((API_PORT, "the API server"), (KUBELET_PORT, "kubelet"), (DNS_PORT, "DNS")):
        taken = _listening(port, wild)
        if taken:
            raise ClusterError(f"{taken}: {what} of the local cluster needs it")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
