"""How `up` and `status` ask the cluster: its components' health endpoints over HTTP(S), the API
server's readiness, and kubectl with the admin kubeconfig. A check returns None when ready, else
why not (what `procs.wait_until` polls and quotes when time runs out)."""

from __future__ import annotations

import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable

from deploy.errors import ClusterError
from deploy.localkube.layout import BIN_DIR, Layout
from deploy.localkube.record import ClusterState

Check = Callable[[], str | None]

# For waits on real work rather than a process coming up: etcd's first start, kubelet
# registering the node.
START_TIMEOUT = 180.0


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as resp:  # noqa: S310
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode(errors="replace")


def http_ok(url: str, context: ssl.SSLContext | None = None) -> Check:
    def check() -> str | None:
        status, body = _get(url, context)
        return None if status == 200 else f"HTTP {status}: {body.strip()[:200]}"

    return check


def insecure_tls() -> ssl.SSLContext:
    # controller-manager, scheduler: self-signed serving certificates on loopback.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def admin_tls(layout: Layout) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
    ctx.load_cert_chain(str(layout.pki / "admin.crt"), str(layout.pki / "admin.key"))
    return ctx


def kubectl(layout: Layout, *args: str, input_text: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        [str(BIN_DIR / "kubectl"), f"--kubeconfig={layout.kubeconfig}", *args],
        input=input_text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)}: {result.stderr.strip()[-1000:]}")
    return result.stdout


def api_healthy(layout: Layout, state: ClusterState) -> bool:
    try:
        status, _ = _get(f"{state.server}/readyz", admin_tls(layout))
    except (OSError, ssl.SSLError):
        return False
    return status == 200
