"""The control plane as host processes: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and CoreDNS. Each step starts its component, records it, and returns only once
the component answers its health check; only the API server and DNS listen beyond loopback (on
the bridge address, where the node and the pods reach them)."""

from __future__ import annotations

from deploy.localkube import certs, configs, probes, procs
from deploy.localkube.checks import free_port
from deploy.localkube.layout import API_PORT, BIN_DIR, GATEWAY, SERVICE_CIDR, Layout
from deploy.localkube.probes import START_TIMEOUT, http_ok, kubectl
from deploy.localkube.procs import Proc
from deploy.localkube.record import ClusterState, start_recorded

ISSUER = "https://kubernetes.default.svc.cluster.local"


def start_etcd(layout: Layout, state: ClusterState) -> str:
    """etcd on loopback, its data under `run/` (gone with `down`); returns its client URL."""
    etcd_port, peer_port = free_port(), free_port()
    etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
    argv = [
        str(BIN_DIR / "etcd"),
        "--name=eddyline",
        f"--data-dir={layout.run / 'etcd'}",
        f"--listen-client-urls={etcd_url}",
        f"--advertise-client-urls={etcd_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=eddyline={peer_url}",
        "--listen-metrics-urls=",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]
    etcd = start_recorded(layout, state, "etcd", argv)
    procs.wait_until(etcd, "healthy /health", http_ok(f"{etcd_url}/health"), START_TIMEOUT)
    return etcd_url


def start_apiserver(layout: Layout, state: ClusterState, etcd_url: str) -> None:
    """kube-apiserver on the bridge address; the kubeconfigs that point at it are written while
    it starts."""
    pkid = layout.pki
    argv = [
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
    ]
    apiserver = start_recorded(layout, state, "kube-apiserver", argv)
    certs.write_kubeconfigs(layout, state.server)
    ready = http_ok(f"{state.server}/readyz", probes.admin_tls(layout))
    procs.wait_until(apiserver, "ready /readyz", ready, 240)


def _controller_flags(layout: Layout, port: int, cert_dir: str) -> list[str]:
    """What kube-controller-manager and kube-scheduler share: the admin kubeconfig for
    everything, no leader election (one of each), HTTPS on a loopback port."""
    admin = str(layout.kubeconfig)
    return [
        f"--kubeconfig={admin}",
        f"--authentication-kubeconfig={admin}",
        f"--authorization-kubeconfig={admin}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={layout.run / cert_dir}",
    ]


def start_controllers(layout: Layout, state: ClusterState) -> Proc:
    """kube-controller-manager and kube-scheduler; returns the controller-manager, which later
    steps wait on (it creates the default ServiceAccount)."""
    kcm_port, sched_port = free_port(), free_port()
    pkid, run_dir = layout.pki, layout.run
    kcm_argv = [
        str(BIN_DIR / "kube-controller-manager"),
        *_controller_flags(layout, kcm_port, "kcm-certs"),
        f"--service-account-private-key-file={pkid / 'sa.key'}",
        "--use-service-account-credentials=true",
        f"--flex-volume-plugin-dir={run_dir / 'flexvolume'}",
        f"--root-ca-file={pkid / 'ca.crt'}",
        f"--cluster-signing-cert-file={pkid / 'ca.crt'}",
        f"--cluster-signing-key-file={pkid / 'ca.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--profiling=false",
        "--v=1",
    ]
    kcm = start_recorded(layout, state, "kube-controller-manager", kcm_argv)
    sched_argv = [
        str(BIN_DIR / "kube-scheduler"),
        *_controller_flags(layout, sched_port, "scheduler-certs"),
        "--profiling=false",
        "--v=1",
    ]
    scheduler = start_recorded(layout, state, "kube-scheduler", sched_argv)
    insecure = probes.insecure_tls()
    kcm_health = http_ok(f"https://127.0.0.1:{kcm_port}/healthz", insecure)
    procs.wait_until(kcm, "healthy /healthz", kcm_health, 120)
    sched_health = http_ok(f"https://127.0.0.1:{sched_port}/healthz", insecure)
    procs.wait_until(scheduler, "healthy /healthz", sched_health, 120)
    return kcm


def start_coredns(layout: Layout, state: ClusterState) -> None:
    """CoreDNS with its RBAC, serving the cluster domain on the bridge address and nothing else."""
    run_dir = layout.run
    kubectl(layout, "apply", "-f", "-", input_text=configs.COREDNS_RBAC)
    dns_health, dns_ready = free_port(), free_port()
    corefile = run_dir / "Corefile"
    corefile.write_text(configs.corefile(run_dir / "coredns.kubeconfig", dns_health, dns_ready))
    argv = [str(BIN_DIR / "coredns"), "-conf", str(corefile), "-dns.port", "53"]
    coredns = start_recorded(layout, state, "coredns", argv)
    procs.wait_until(coredns, "ready /ready", http_ok(f"http://127.0.0.1:{dns_ready}/ready"), 120)


def wait_for_default_service_account(layout: Layout, kcm: Proc) -> None:
    """Pods cannot be created in a namespace until the controller-manager has made its default
    ServiceAccount: `up` returns only once the first one exists."""

    def default_sa() -> str | None:
        out = kubectl(layout, "get", "serviceaccount", "default", "-o", "name", check=False)
        return None if out.strip() else "no ServiceAccount default/default yet"

    procs.wait_until(kcm, "ServiceAccount default/default", default_sa, 120)
