"""Stopping the local cluster and putting the machine back: what `down` does, and what `up` does
first when an earlier run was killed half-way.

The order matters: pods are deleted while kubelet still runs (so CNI removes their network
namespaces), kube-proxy cleans its rules up, then every process stops by PID, containerd last
(no shim may be left). Then what they leave on the host goes: network namespaces, mounts,
cgroups, iptables chains and rules, the bridge, and the kernel settings go back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable

import psutil
from pydantic import BaseModel, Field

from deploy.localkube import host, procs
from deploy.localkube.images import ctr
from deploy.localkube.layout import BIN_DIR, BRIDGE, Layout
from deploy.localkube.probes import kubectl
from deploy.localkube.procs import Proc
from deploy.localkube.record import ORDER, ClusterState, release_owner

# Told each step as it begins (the CLI shows it on its spinner).
Progress = Callable[[str], None]


class DownResult(BaseModel):
    was_running: bool
    cleared_leftovers: bool = False  # not running, but an earlier run's remains were removed
    stopped: list[str] = Field(default_factory=list)
    sysctls_restored: list[str] = Field(default_factory=list)


def teardown(layout: Layout, state: ClusterState | None, progress: Progress) -> DownResult:
    """Stop everything of this folder's cluster and undo what it changed on the host, from
    `state` if there is one and from what is on the host now in any case."""
    result = DownResult(was_running=state is not None)
    live = {p.name: p for p in (state.procs if state else []) if p.alive()}
    result.stopped = _stop_processes(layout, live, progress)
    _clean_host(layout, state, progress)
    saved = layout.run / "sysctls.json"
    if saved.exists():
        progress("kernel settings")
        result.sysctls_restored = host.restore_sysctls(json.loads(saved.read_text()))
    shutil.rmtree(layout.run, ignore_errors=True)
    layout.state_file.unlink(missing_ok=True)
    release_owner(layout)
    return result


def leftovers(layout: Layout) -> bool:
    """Whether an earlier run left anything on the host (its state file may be gone)."""
    return (
        host.link_exists(BRIDGE)
        or bool(host.mounts_under(layout.root))
        or (layout.run / "sysctls.json").exists()
        or bool(orphans(layout))
        or host.kube_chains_present()
    )


def orphans(layout: Layout) -> list[psutil.Process]:
    """Processes of an earlier run this folder no longer records (its state file lost): every
    one names the cluster folder on its command line."""
    root = str(layout.root.resolve())
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = p.info.get("cmdline") or []
        if p.pid != os.getpid() and any(root in part for part in cmd[1:]):
            found.append(p)
    return found


def _stop_processes(layout: Layout, live: dict[str, Proc], progress: Progress) -> list[str]:
    """Stop the recorded processes still alive, and any of an earlier run; the names stopped."""
    stopped = []
    if "kube-apiserver" in live and "kubelet" in live:
        progress("deleting the pods (their network goes with them)")
        _delete_pods(layout)
    if "kube-proxy" in live:
        procs.stop(live["kube-proxy"])
        stopped.append("kube-proxy")
    _kube_proxy_cleanup(layout, progress)
    for name in reversed(ORDER):
        if name in live and name not in ("kube-proxy", "containerd"):
            progress(f"stopping {name}")
            procs.stop(live[name])
            stopped.append(name)
    earlier = [p for p in orphans(layout) if "containerd" not in p.name()]
    if earlier:
        progress("stopping processes an earlier run left")
        _stop_orphans(earlier)
    if "containerd" in live:
        progress("removing leftover containers")
        _remove_containers(layout)
        procs.stop(live["containerd"])
        stopped.append("containerd")
    _kill_shims(layout)
    _stop_orphans(orphans(layout))
    return stopped


def _kube_proxy_cleanup(layout: Layout, progress: Progress) -> None:
    """`kube-proxy --cleanup` removes its rules; run even when it was not running, since a
    killed run leaves them too."""
    config = layout.run / "kube-proxy.yaml"
    progress("kube-proxy --cleanup")
    subprocess.run(
        [str(BIN_DIR / "kube-proxy"), "--cleanup", "--v=0"]
        + ([f"--config={config}"] if config.exists() else []),
        capture_output=True,
        timeout=60,
        check=False,
    )


def _clean_host(layout: Layout, state: ClusterState | None, progress: Progress) -> None:
    progress("network namespaces, mounts, cgroups")
    # Only the namespaces the pods made: any that were there before `up` are not ours.
    before = set(state.netns_before) if state else set()
    for ns in host.netns_names():
        if ns.startswith("cni-") and ns not in before:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)
    host.unmount_under(layout.root)
    if state is not None and state.shared_netns_dir:
        host.unshare_netns_dir()
    host.remove_kubepods_cgroups()
    progress("iptables rules, bridge")
    host.remove_kube_chains()
    host.remove_our_rules()
    host.delete_bridge()


def _delete_pods(layout: Layout, timeout: float = 90.0) -> None:
    """Delete every workload and pod, and wait until kubelet has torn their sandboxes down."""
    kubectl(
        layout,
        "delete",
        "deployments,statefulsets,daemonsets,replicasets,jobs,pods",
        "--all",
        "--all-namespaces",
        "--grace-period=1",
        "--wait=false",
        check=False,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _tasks(layout):
            return
        time.sleep(1)


def _tasks(layout: Layout) -> list[str]:
    r = subprocess.run(
        ctr(layout, "tasks", "ls", "-q"), capture_output=True, text=True, timeout=30, check=False
    )
    return r.stdout.split() if r.returncode == 0 else []


def _remove_containers(layout: Layout) -> None:
    for task in _tasks(layout):
        subprocess.run(ctr(layout, "tasks", "kill", "-a", "-s", "SIGKILL", task), check=False,
                       capture_output=True, timeout=30)  # fmt: skip
        time.sleep(0.5)
        subprocess.run(ctr(layout, "tasks", "delete", "-f", task), check=False,
                       capture_output=True, timeout=30)  # fmt: skip
    r = subprocess.run(ctr(layout, "containers", "ls", "-q"), capture_output=True, text=True,
                       timeout=30, check=False)  # fmt: skip
    for container in r.stdout.split():
        subprocess.run(ctr(layout, "containers", "delete", container), check=False,
                       capture_output=True, timeout=30)  # fmt: skip


def _stop_orphans(found: list[psutil.Process]) -> None:
    for p in found:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(found, timeout=20)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)


def _kill_shims(layout: Layout) -> None:
    """containerd's shims outlive it; ours name our socket on their command line."""
    sock = str(layout.containerd_socket)
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = p.info.get("cmdline") or []
        if cmd and "containerd-shim" in cmd[0] and sock in cmd:
            with contextlib.suppress(psutil.Error):
                p.kill()
