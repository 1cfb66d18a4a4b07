"""`up`, `down` and `status` of the local cluster: the order things start and stop in.

up:   host checks → kernel settings saved → bridge → containerd (+ pause image) → etcd →
      kube-apiserver → controller-manager, scheduler → CoreDNS → kubelet (node Ready) →
      kube-proxy → forwarding locked to the bridge → the project's image loaded.
down: pods deleted (CNI removes their network) → kube-proxy --cleanup → every process by PID →
      leftover containers, shims, mounts, cgroups, iptables chains, bridge → kernel settings back.
A failed `up` runs `down` before it raises, so nothing is left half-started.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
from pydantic import BaseModel, Field

from deploy.localkube import configs, host, images, pki, procs
from deploy.localkube.layout import (
    API_PORT,
    BIN_DIR,
    BINARIES,
    CNI_PLUGINS,
    DNS_PORT,
    GATEWAY,
    HOST_COMMANDS,
    KUBELET_PORT,
    KUBERNETES_SERVICE_IP,
    NODE_NAME,
    SERVICE_CIDR,
    Layout,
)
from deploy.localkube.procs import ClusterError, Proc

Progress = Callable[[str], None]
START_TIMEOUT = 180.0
ISSUER = "https://kubernetes.default.svc.cluster.local"
# Stopped in the reverse of this order.
ORDER = (
    "containerd",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "coredns",
    "kubelet",
    "kube-proxy",
)


class ClusterState(BaseModel):
    """`<root>/cluster.json`: what runs, for `status`, `down` and the tests."""

    server: str
    procs: list[Proc] = Field(default_factory=list)
    netns_before: list[str] = Field(default_factory=list)
    shared_netns_dir: bool = False  # `up` made /run/netns a shared mount: `down` undoes it
    started_at: float = 0.0

    def proc(self, name: str) -> Proc | None:
        return next((p for p in self.procs if p.name == name), None)


# The folder whose cluster holds the bridge now: one local cluster per machine.
OWNER_FILE = Path("/run/eddyline-localkube.owner")


def _check_owner(layout: Layout) -> None:
    """Refuse, in one line, to touch a cluster another checkout started and still runs."""
    try:
        other = Path(OWNER_FILE.read_text().strip())
    except OSError:
        return
    if other == layout.root.resolve():
        return
    theirs = load_state(Layout(other))
    if theirs is not None and any(p.alive() for p in theirs.procs):
        raise ClusterError(
            f"a local cluster from {other} is running (one per machine): stop it there with "
            "`make cluster-down`"
        )


def _quiet(_: str) -> None:
    pass


@contextlib.contextmanager
def _locked(layout: Layout) -> Iterator[None]:
    """One `up` or `down` at a time for this folder."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with layout.lock_file.open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ClusterError(
                f"another `up` or `down` of {layout.root} is running; wait for it"
            ) from None
        yield


def load_state(layout: Layout) -> ClusterState | None:
    try:
        return ClusterState.model_validate_json(layout.state_file.read_text())
    except FileNotFoundError:
        return None


def _save_state(layout: Layout, state: ClusterState) -> None:
    tmp = layout.state_file.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    tmp.replace(layout.state_file)


# --- checks -------------------------------------------------------------------------------------


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


def _check_ports() -> None:
    wild = ("0.0.0.0", "::", GATEWAY)
    for port, what in ((API_PORT, "the API server"), (KUBELET_PORT, "kubelet"), (DNS_PORT, "DNS")):
        taken = _listening(port, wild)
        if taken:
            raise ClusterError(f"{taken}: {what} of the local cluster needs it")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- health -------------------------------------------------------------------------------------


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as resp:  # noqa: S310
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode(errors="replace")


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> Callable[[], str | None]:
    def check() -> str | None:
        status, body = _get(url, context)
        return None if status == 200 else f"HTTP {status}: {body.strip()[:200]}"

    return check


def _insecure() -> ssl.SSLContext:
    # controller-manager, scheduler: self-signed serving certificates on loopback.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _admin_tls(layout: Layout) -> ssl.SSLContext:
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
        status, _ = _get(f"{state.server}/readyz", _admin_tls(layout))
    except (OSError, ssl.SSLError):
        return False
    return status == 200


# --- up -----------------------------------------------------------------------------------------


class UpResult(BaseModel):
    already_running: bool
    kubeconfig: Path
    server: str
    images_loaded: list[str] = Field(default_factory=list)


def up(layout: Layout, image_archives: dict[str, Path], progress: Progress = _quiet) -> UpResult:
    """Start the cluster (or find it running); load `image_archives` ({ref: docker-save tar})."""
    preflight()
    with _locked(layout):
        current = load_state(layout)
        if current and all(p.alive() for p in current.procs) and api_healthy(layout, current):
            loaded = _load_images(layout, image_archives, progress)
            return UpResult(
                already_running=True,
                kubeconfig=layout.kubeconfig,
                server=current.server,
                images_loaded=loaded,
            )
        _check_owner(layout)
        if current or _leftovers(layout):
            progress("clearing what an earlier run left behind")
            _teardown(layout, current, progress)
        host.check_subnets_free()
        _check_ports()
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
                _teardown(layout, state, progress)
            raise
        return UpResult(
            already_running=False,
            kubeconfig=layout.kubeconfig,
            server=state.server,
            images_loaded=loaded,
        )


def _leftovers(layout: Layout) -> bool:
    return (
        host.link_exists("eddyline0")
        or bool(host.mounts_under(layout.root))
        or (layout.run / "sysctls.json").exists()
        or bool(_orphans(layout))
        or host.kube_chains_present()
    )


def _orphans(layout: Layout) -> list[psutil.Process]:
    """Processes of an earlier run this folder no longer records (its state file lost): every
    one names the cluster folder on its command line."""
    root = str(layout.root.resolve())
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = p.info.get("cmdline") or []
        if p.pid != os.getpid() and any(root in part for part in cmd[1:]):
            found.append(p)
    return found


def _load_images(layout: Layout, archives: dict[str, Path], progress: Progress) -> list[str]:
    loaded = []
    for ref, archive in archives.items():
        if archive.exists():
            progress(f"loading {ref} into the node")
            if images.load(layout, archive, ref):
                loaded.append(ref)
    return loaded


def _start(  # noqa: PLR0915 - one start sequence, read top to bottom
    layout: Layout, state: ClusterState, progress: Progress
) -> None:
    run_dir, logs, pkid = layout.run, layout.logs, layout.pki
    run_dir.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)

    def started(proc: Proc) -> Proc:
        state.procs.append(proc)
        _save_state(layout, state)
        return proc

    OWNER_FILE.write_text(f"{layout.root.resolve()}\n")
    # Kernel settings first, so a crash after this point still has them to put back.
    saved = run_dir / "sysctls.json"
    if not saved.exists():
        saved.write_text(json.dumps(host.read_sysctls(), indent=2))
    _save_state(layout, state)

    progress("pod network (bridge, routes, forwarding rules)")
    state.shared_netns_dir = host.share_netns_dir()
    _save_state(layout, state)
    host.write_sysctl("net/ipv4/ip_forward", "1")
    host.create_bridge()
    host.ensure_forward_rules()

    progress("certificates")
    _make_pki(pkid)

    progress("containerd")
    for d in (layout.containerd_root, layout.containerd_state, layout.cni_conf, layout.cni_ipam):
        d.mkdir(parents=True, exist_ok=True)
    (layout.cni_conf / "10-eddyline.conflist").write_text(configs.cni(layout))
    (run_dir / "containerd.toml").write_text(configs.containerd(layout))
    containerd = started(
        procs.start(
            "containerd", ["containerd", "--config", str(run_dir / "containerd.toml")], logs
        )
    )

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
    images.ensure_pause(layout, BIN_DIR / "pause")

    progress("etcd")
    etcd_port, peer_port = free_port(), free_port()
    etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
    etcd = started(
        procs.start(
            "etcd",
            [
                str(BIN_DIR / "etcd"),
                "--name=eddyline",
                f"--data-dir={run_dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=eddyline={peer_url}",
                "--listen-metrics-urls=",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            logs,
        )
    )
    procs.wait_until(etcd, "healthy /health", _http_ok(f"{etcd_url}/health"), START_TIMEOUT)

    progress("kube-apiserver")
    apiserver = started(
        procs.start(
            "kube-apiserver",
            [
                str(BIN_DIR / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={GATEWAY}",
                f"--advertise-address={GATEWAY}",
                f"--secure-port={API_PORT}",
                f"--cert-dir={pkid}",
                f"--tls-cert-file={pkid / 'apiserver.crt'}",
                f"--tls-private-key-file={pkid / 'apiserver.key'}",
                f"--client-ca-file={pkid / 'ca.crt'}",
                f"--kubelet-client-certificate={pkid / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pkid / 'apiserver-kubelet-client.key'}",
                "--kubelet-preferred-address-types=InternalIP",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                f"--service-account-issuer={ISSUER}",
                f"--service-account-key-file={pkid / 'sa.pub'}",
                f"--service-account-signing-key-file={pkid / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--profiling=false",
                "--v=1",
            ],
            logs,
        )
    )
    _write_kubeconfigs(layout, state.server)
    procs.wait_until(
        apiserver, "ready /readyz", _http_ok(f"{state.server}/readyz", _admin_tls(layout)), 240
    )

    progress("controller-manager and scheduler")
    kcm_port, sched_port = free_port(), free_port()
    admin = str(layout.kubeconfig)
    kcm = started(
        procs.start(
            "kube-controller-manager",
            [
                str(BIN_DIR / "kube-controller-manager"),
                f"--kubeconfig={admin}",
                f"--authentication-kubeconfig={admin}",
                f"--authorization-kubeconfig={admin}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm_port}",
                f"--cert-dir={run_dir / 'kcm-certs'}",
                f"--service-account-private-key-file={pkid / 'sa.key'}",
                "--use-service-account-credentials=true",
                f"--flex-volume-plugin-dir={run_dir / 'flexvolume'}",
                f"--root-ca-file={pkid / 'ca.crt'}",
                f"--cluster-signing-cert-file={pkid / 'ca.crt'}",
                f"--cluster-signing-key-file={pkid / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--profiling=false",
                "--v=1",
            ],
            logs,
        )
    )
    scheduler = started(
        procs.start(
            "kube-scheduler",
            [
                str(BIN_DIR / "kube-scheduler"),
                f"--kubeconfig={admin}",
                f"--authentication-kubeconfig={admin}",
                f"--authorization-kubeconfig={admin}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={sched_port}",
                f"--cert-dir={run_dir / 'scheduler-certs'}",
                "--profiling=false",
                "--v=1",
            ],
            logs,
        )
    )
    insecure = _insecure()
    procs.wait_until(
        kcm, "healthy /healthz", _http_ok(f"https://127.0.0.1:{kcm_port}/healthz", insecure), 120
    )
    procs.wait_until(
        scheduler,
        "healthy /healthz",
        _http_ok(f"https://127.0.0.1:{sched_port}/healthz", insecure),
        120,
    )

    progress("cluster DNS (CoreDNS)")
    kubectl(layout, "apply", "-f", "-", input_text=configs.COREDNS_RBAC)
    dns_health, dns_ready = free_port(), free_port()
    corefile = run_dir / "Corefile"
    corefile.write_text(configs.corefile(run_dir / "coredns.kubeconfig", dns_health, dns_ready))
    coredns = started(
        procs.start(
            "coredns", [str(BIN_DIR / "coredns"), "-conf", str(corefile), "-dns.port", "53"], logs
        )
    )
    procs.wait_until(coredns, "ready /ready", _http_ok(f"http://127.0.0.1:{dns_ready}/ready"), 120)

    progress("kubelet")
    kubelet_health = free_port()
    resolv = run_dir / "resolv.conf"
    resolv.write_text("# no upstream resolver: pods reach only this machine\n")
    (run_dir / "kubelet.yaml").write_text(configs.kubelet(layout, kubelet_health, resolv))
    kubelet = started(
        procs.start(
            "kubelet",
            [
                str(BIN_DIR / "kubelet"),
                f"--config={run_dir / 'kubelet.yaml'}",
                f"--kubeconfig={run_dir / 'kubelet.kubeconfig'}",
                f"--root-dir={layout.kubelet_root}",
                f"--cert-dir={run_dir / 'kubelet-pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={GATEWAY}",
                "--v=1",
            ],
            logs,
        )
    )
    procs.wait_until(
        kubelet, "healthy /healthz", _http_ok(f"http://127.0.0.1:{kubelet_health}/healthz"), 120
    )

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

    progress("kube-proxy")
    proxy_health, proxy_metrics = free_port(), free_port()
    (run_dir / "kube-proxy.yaml").write_text(
        configs.kube_proxy(run_dir / "kube-proxy.kubeconfig", proxy_health, proxy_metrics)
    )
    proxy = started(
        procs.start(
            "kube-proxy",
            [str(BIN_DIR / "kube-proxy"), f"--config={run_dir / 'kube-proxy.yaml'}", "--v=1"],
            logs,
        )
    )
    procs.wait_until(
        proxy, "healthy /healthz", _http_ok(f"http://127.0.0.1:{proxy_health}/healthz"), 120
    )
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

    def default_sa() -> str | None:
        out = kubectl(layout, "get", "serviceaccount", "default", "-o", "name", check=False)
        return None if out.strip() else "no ServiceAccount default/default yet"

    procs.wait_until(kcm, "ServiceAccount default/default", default_sa, 120)
    _save_state(layout, state)


def _make_pki(pkid: Path) -> None:
    if (pkid / "ca.crt").exists() and (pkid / "kube-proxy.crt").exists():
        return  # kept between runs: kubeconfigs stay valid
    shutil.rmtree(pkid, ignore_errors=True)
    pki.make_pki(
        pkid,
        "eddyline-local-cluster-ca",
        [
            f"IP:{GATEWAY}",
            f"IP:{KUBERNETES_SERVICE_IP}",
            "IP:127.0.0.1",
            "DNS:localhost",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
        ],
    )
    pki.client_cert(pkid, "kubelet", f"/O=system:nodes/CN=system:node:{NODE_NAME}")
    pki.client_cert(pkid, "kube-proxy", "/CN=system:kube-proxy")
    pki.client_cert(pkid, "coredns", "/CN=eddyline-coredns")
    pki.client_cert(pkid, "apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver")
    pki.signed_cert(
        pkid,
        "kubelet-serving",
        f"/CN={NODE_NAME}",
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName=IP:{GATEWAY},DNS:{NODE_NAME}\n",
    )


def _write_kubeconfigs(layout: Layout, server: str) -> None:
    ca = layout.pki / "ca.crt"
    pki.write_kubeconfig(
        layout.kubeconfig, server, ca, pki.cert_user(layout.pki, "admin"), "eddyline-local"
    )
    for name in ("kubelet", "kube-proxy", "coredns"):
        pki.write_kubeconfig(
            layout.run / f"{name}.kubeconfig",
            server,
            ca,
            pki.cert_user(layout.pki, name),
            "eddyline-local",
        )


# --- down ---------------------------------------------------------------------------------------


class DownResult(BaseModel):
    was_running: bool
    cleared_leftovers: bool = False  # not running, but an earlier run's remains were removed
    stopped: list[str] = Field(default_factory=list)
    sysctls_restored: list[str] = Field(default_factory=list)


def down(layout: Layout, progress: Progress = _quiet) -> DownResult:
    if not host.is_root():
        raise ClusterError("stopping the local cluster needs root")
    with _locked(layout):
        _check_owner(layout)
        state = load_state(layout)
        if state is None and not _leftovers(layout):
            return DownResult(was_running=False)
        result = _teardown(layout, state, progress)
        result.cleared_leftovers = state is None
        return result


def _teardown(layout: Layout, state: ClusterState | None, progress: Progress) -> DownResult:
    result = DownResult(was_running=state is not None)
    live = {p.name: p for p in (state.procs if state else []) if p.alive()}
    if "kube-apiserver" in live and "kubelet" in live:
        progress("deleting the pods (their network goes with them)")
        _delete_pods(layout)
    if "kube-proxy" in live:
        procs.stop(live["kube-proxy"])
        result.stopped.append("kube-proxy")
    run_dir = layout.run
    cleanup = run_dir / "kube-proxy.yaml"
    progress("kube-proxy --cleanup")
    subprocess.run(
        [str(BIN_DIR / "kube-proxy"), "--cleanup", "--v=0"]
        + ([f"--config={cleanup}"] if cleanup.exists() else []),
        capture_output=True,
        timeout=60,
        check=False,
    )
    for name in reversed(ORDER):
        if name in live and name not in ("kube-proxy", "containerd"):
            progress(f"stopping {name}")
            procs.stop(live[name])
            result.stopped.append(name)
    orphans = [p for p in _orphans(layout) if "containerd" not in p.name()]
    if orphans:
        progress("stopping processes an earlier run left")
        _stop_orphans(orphans)
    if "containerd" in live:
        progress("removing leftover containers")
        _remove_containers(layout)
        procs.stop(live["containerd"])
        result.stopped.append("containerd")
    _kill_shims(layout)
    _stop_orphans(_orphans(layout))
    progress("network namespaces, mounts, cgroups")
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
    saved = run_dir / "sysctls.json"
    if saved.exists():
        progress("kernel settings")
        result.sysctls_restored = host.restore_sysctls(json.loads(saved.read_text()))
    shutil.rmtree(run_dir, ignore_errors=True)
    layout.state_file.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        if Path(OWNER_FILE.read_text().strip()) == layout.root.resolve():
            OWNER_FILE.unlink()
    return result


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


def _ctr(layout: Layout, *args: str) -> list[str]:
    return ["ctr", "--address", str(layout.containerd_socket), "--namespace", "k8s.io", *args]


def _tasks(layout: Layout) -> list[str]:
    r = subprocess.run(
        _ctr(layout, "tasks", "ls", "-q"), capture_output=True, text=True, timeout=30, check=False
    )
    return r.stdout.split() if r.returncode == 0 else []


def _remove_containers(layout: Layout) -> None:
    for task in _tasks(layout):
        subprocess.run(_ctr(layout, "tasks", "kill", "-a", "-s", "SIGKILL", task), check=False,
                       capture_output=True, timeout=30)  # fmt: skip
        time.sleep(0.5)
        subprocess.run(_ctr(layout, "tasks", "delete", "-f", task), check=False,
                       capture_output=True, timeout=30)  # fmt: skip
    r = subprocess.run(_ctr(layout, "containers", "ls", "-q"), capture_output=True, text=True,
                       timeout=30, check=False)  # fmt: skip
    for container in r.stdout.split():
        subprocess.run(_ctr(layout, "containers", "delete", container), check=False,
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


def pod_problems(layout: Layout) -> list[str]:
    pods = json.loads(kubectl(layout, "get", "pods", "-A", "-o", "json"))["items"]
    events = json.loads(
        kubectl(layout, "get", "events", "-A", "--field-selector", "type=Warning", "-o", "json")
    )["items"]
    return explain_pods(pods, events)


def explain_pods(pods: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[str]:
    """Pure: a line per pod that is neither Running and Ready nor Succeeded, with the reason."""
    lines = []
    for pod in pods:
        meta, st = pod["metadata"], pod.get("status", {})
        statuses = st.get("containerStatuses") or []
        phase = st.get("phase")
        ready = phase == "Running" and statuses and all(c.get("ready") for c in statuses)
        if phase == "Succeeded" or ready:
            continue
        where = f"pod {meta['namespace']}/{meta['name']} ({phase})"
        waiting = [c["state"]["waiting"] for c in statuses if (c.get("state") or {}).get("waiting")]
        reason = waiting[0].get("reason") if waiting else None
        if waiting and waiting[0].get("message"):
            lines.append(f"{where}: {reason}: {waiting[0]['message']}")
            continue
        mine = [e for e in events if e["involvedObject"].get("uid") == meta.get("uid")]
        mine.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        # kubelet's own Event for the waiting reason says the most ("Container image … is not
        # present with pull policy of Never"); its generic "Failed: Error: X" says least, but
        # names X, which finds that Event while the status still lags behind ("ContainerCreating").
        wanted = {reason} if reason else set()
        wanted |= {
            e["message"].removeprefix("Error: ")
            for e in mine
            if e.get("reason") == "Failed" and (e.get("message") or "").startswith("Error: ")
        }
        best = [e for e in mine if e.get("reason") in wanted] or mine
        if best:
            lines.append(f"{where}: {best[-1].get('reason')}: {best[-1].get('message')}")
        else:
            lines.append(f"{where}: {reason or 'not ready yet'}")
    return lines
