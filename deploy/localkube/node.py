"""`up`, `down` and `status` of the local cluster: the order things start and stop in.

up:   host checks → kernel settings saved → bridge → containerd (+ pause image) → etcd →
      kube-apiserver → controller-manager, scheduler → CoreDNS → kubelet (node Ready) →
      kube-proxy → forwarding locked to the bridge → the project's image loaded.
down: pods deleted (CNI removes their network) → kube-proxy --cleanup → every process by PID →
      leftover containers, shims, mounts, cgroups, iptables chains, bridge → kernel settings back.
A failed `up` runs `down` before it raises, so nothing is left half-started.

The steps live beside this module: checks (before anything changes), agents (containerd,
kubelet, kube-proxy), control_plane (etcd to CoreDNS), certs, teardown, and record (what a run
records in `cluster.json`); probes asks the components whether they are up.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from pydantic import BaseModel, Field

from deploy.errors import ClusterError
from deploy.localkube import agents, certs, control_plane, host, images
from deploy.localkube.checks import check_ports, free_port, preflight
from deploy.localkube.layout import API_PORT, GATEWAY, Layout
from deploy.localkube.pods import explain_pods, pod_problems
from deploy.localkube.probes import api_healthy, kubectl
from deploy.localkube.record import (
    ORDER,
    ClusterState,
    check_owner,
    claim_owner,
    load_state,
    locked,
    save_state,
)
from deploy.localkube.teardown import DownResult, Progress, leftovers, teardown

# What other modules and the tests use from here; the rest of the package is the steps.
__all__ = [
    "ORDER",
    "ClusterState",
    "DownResult",
    "Progress",
    "Status",
    "UpResult",
    "api_healthy",
    "down",
    "explain_pods",
    "free_port",
    "kubectl",
    "load_state",
    "pod_problems",
    "preflight",
    "status",
    "up",
]


def _quiet(_: str) -> None:
    pass


# --- up -----------------------------------------------------------------------------------------


class UpResult(BaseModel):
    already_running: bool
    kubeconfig: Path
    server: str
    images_loaded: list[str] = Field(default_factory=list)


def up(layout: Layout, image_archives: dict[str, Path], progress: Progress = _quiet) -> UpResult:
    """Start the cluster (or find it running); load `image_archives` ({ref: docker-save tar})."""
    preflight()
    with locked(layout):
        current = load_state(layout)
        if current and all(p.alive() for p in current.procs) and api_healthy(layout, current):
            loaded = _load_images(layout, image_archives, progress)
            return UpResult(
                already_running=True,
                kubeconfig=layout.kubeconfig,
                server=current.server,
                images_loaded=loaded,
            )
        check_owner(layout)
        if current or leftovers(layout):
            progress("clearing what an earlier run left behind")
            teardown(layout, current, progress)
        host.check_subnets_free()
        check_ports()
        state = ClusterState(
            server=f"https://{GATEWAY}:{API_PORT}",
            netns_before=host.netns_names(),
            started_at=time.time(),
        )
        try:
            _start(layout, state, progress)
            loaded = _load_images(layout, image_archives, progress)
        except BaseException:
            progress("start failed: stopping what started")
            with contextlib.suppress(Exception):
                teardown(layout, state, progress)
            raise
        return UpResult(
            already_running=False,
            kubeconfig=layout.kubeconfig,
            server=state.server,
            images_loaded=loaded,
        )


def _start(layout: Layout, state: ClusterState, progress: Progress) -> None:
    """Every step records what it started in `state` at once, so a failure anywhere leaves
    `teardown` the full list to stop."""
    layout.run.mkdir(parents=True, exist_ok=True)
    layout.logs.mkdir(parents=True, exist_ok=True)
    _claim_host(layout, state)
    progress("pod network (bridge, routes, forwarding rules)")
    _pod_network(layout, state)
    progress("certificates")
    certs.ensure_pki(layout.pki)
    progress("containerd")
    agents.start_containerd(layout, state)
    progress("etcd")
    etcd_url = control_plane.start_etcd(layout, state)
    progress("kube-apiserver")
    control_plane.start_apiserver(layout, state, etcd_url)
    progress("controller-manager and scheduler")
    kcm = control_plane.start_controllers(layout, state)
    progress("cluster DNS (CoreDNS)")
    control_plane.start_coredns(layout, state)
    progress("kubelet")
    agents.start_kubelet(layout, state)
    progress("kube-proxy")
    agents.start_kube_proxy(layout, state)
    control_plane.wait_for_default_service_account(layout, kcm)
    save_state(layout, state)


def _claim_host(layout: Layout, state: ClusterState) -> None:
    claim_owner(layout)
    # Kernel settings first, so a crash after this point still has them to put back.
    saved = layout.run / "sysctls.json"
    if not saved.exists():
        saved.write_text(json.dumps(host.read_sysctls(), indent=2))
    save_state(layout, state)


def _pod_network(layout: Layout, state: ClusterState) -> None:
    """The bridge the pods attach to, with forwarding on and locked to this machine."""
    state.shared_netns_dir = host.share_netns_dir()
    save_state(layout, state)
    host.write_sysctl("net/ipv4/ip_forward", "1")
    host.create_bridge()
    host.ensure_forward_rules()


def _load_images(layout: Layout, archives: dict[str, Path], progress: Progress) -> list[str]:
    loaded = []
    for ref, archive in archives.items():
        if archive.exists():
            progress(f"loading {ref} into the node")
            if images.load(layout, archive, ref):
                loaded.append(ref)
    return loaded


# --- down ---------------------------------------------------------------------------------------


def down(layout: Layout, progress: Progress = _quiet) -> DownResult:
    if not host.is_root():
        raise ClusterError("stopping the local cluster needs root")
    with locked(layout):
        check_owner(layout)
        state = load_state(layout)
        if state is None and not leftovers(layout):
            return DownResult(was_running=False)
        result = teardown(layout, state, progress)
        result.cleared_leftovers = state is None
        return result


# --- status -------------------------------------------------------------------------------------


class Status(BaseModel):
    running: bool
    server: str | None = None
    kubeconfig: Path
    components: dict[str, bool] = Field(default_factory=dict)
    # One line per pod that is not Running and Ready, quoting why (its container's waiting
    # reason, else its latest Warning Event): e.g. an image that is not loaded on the node.
    pod_problems: list[str] = Field(default_factory=list)


def status(layout: Layout) -> Status:
    state = load_state(layout)
    if state is None:
        return Status(running=False, kubeconfig=layout.kubeconfig)
    comps = {p.name: p.alive() for p in state.procs}
    running = all(comps.values()) and api_healthy(layout, state)
    return Status(
        running=running,
        server=state.server,
        kubeconfig=layout.kubeconfig,
        components=comps,
        pod_problems=pod_problems(layout) if running else [],
    )
