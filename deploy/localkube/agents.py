"""The node's own processes: containerd (with the CNI config and the pause image), kubelet (until
the node is Ready) and kube-proxy (until its rules are in, with ours back in front of them).
Each step starts its component, records it, and returns once it is ready."""

from __future__ import annotations

import subprocess
import time

from deploy.localkube import configs, host, images, procs
from deploy.localkube.checks import free_port
from deploy.localkube.layout import BIN_DIR, GATEWAY, NODE_NAME, Layout
from deploy.localkube.probes import START_TIMEOUT, http_ok, kubectl
from deploy.localkube.record import ClusterState, start_recorded


def start_containerd(layout: Layout, state: ClusterState) -> None:
    """A containerd of our own (not Docker's): its own root, state and socket."""
    run_dir = layout.run
    for d in (layout.containerd_root, layout.containerd_state, layout.cni_conf, layout.cni_ipam):
        d.mkdir(parents=True, exist_ok=True)
    (layout.cni_conf / "10-eddyline.conflist").write_text(configs.cni(layout))
    (run_dir / "containerd.toml").write_text(configs.containerd(layout))
    argv = ["containerd", "--config", str(run_dir / "containerd.toml")]
    containerd = start_recorded(layout, state, "containerd", argv)

    def containerd_ready() -> str | None:
        r = subprocess.run(
            ["ctr", "--address", str(layout.containerd_socket), "version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return None if r.returncode == 0 else r.stderr.strip()[:200]

    procs.wait_until(containerd, "its socket", containerd_ready, 60)
    # No registry can be reached: every sandbox's pause image must be there before kubelet.
    images.ensure_pause(layout, BIN_DIR / "pause")


def start_kubelet(layout: Layout, state: ClusterState) -> None:
    """kubelet with the node IP on the bridge (it refuses a loopback one); returns once the
    node reports Ready."""
    run_dir = layout.run
    kubelet_health = free_port()
    resolv = run_dir / "resolv.conf"
    resolv.write_text("# no upstream resolver: pods reach only this machine\n")
    (run_dir / "kubelet.yaml").write_text(configs.kubelet(layout, kubelet_health, resolv))
    argv = [
        str(BIN_DIR / "kubelet"),
        f"--config={run_dir / 'kubelet.yaml'}",
        f"--kubeconfig={run_dir / 'kubelet.kubeconfig'}",
        f"--root-dir={layout.kubelet_root}",
        f"--cert-dir={run_dir / 'kubelet-pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={GATEWAY}",
        "--v=1",
    ]
    kubelet = start_recorded(layout, state, "kubelet", argv)
    healthy = http_ok(f"http://127.0.0.1:{kubelet_health}/healthz")
    procs.wait_until(kubelet, "healthy /healthz", healthy, 120)

    def node_ready() -> str | None:
        out = kubectl(
            layout,
            "get",
            "node",
            NODE_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False,
        )
        return None if out.strip() == "True" else f"node Ready={out.strip() or 'unknown'}"

    procs.wait_until(kubelet, "a Ready node", node_ready, START_TIMEOUT, interval=1.0)


def start_kube_proxy(layout: Layout, state: ClusterState) -> None:
    """kube-proxy in iptables mode; returns once its FORWARD rules are in and ours, which keep
    pods from reaching beyond this machine, are back in front of them."""
    run_dir = layout.run
    proxy_health, proxy_metrics = free_port(), free_port()
    (run_dir / "kube-proxy.yaml").write_text(
        configs.kube_proxy(run_dir / "kube-proxy.kubeconfig", proxy_health, proxy_metrics)
    )
    argv = [str(BIN_DIR / "kube-proxy"), f"--config={run_dir / 'kube-proxy.yaml'}", "--v=1"]
    proxy = start_recorded(layout, state, "kube-proxy", argv)
    healthy = http_ok(f"http://127.0.0.1:{proxy_health}/healthz")
    procs.wait_until(proxy, "healthy /healthz", healthy, 120)
    # kube-proxy inserts its chains at the top of FORWARD on its first sync (after /healthz):
    # once they are there, ours go back in front, where they stay (it only re-adds a missing jump).
    procs.wait_until(
        proxy,
        "its FORWARD rules",
        lambda: None if host.kube_proxy_synced() else "not all of its FORWARD jumps yet",
        120,
    )
    host.ensure_forward_rules()
    # ...and stay there: checked again a moment later, put back if a late jump went above them.
    for _ in range(5):
        time.sleep(1)
        if not host.forward_rules_first():
            host.ensure_forward_rules()
