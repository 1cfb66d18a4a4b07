"""Where everything of the local cluster lives, and the fixed network plan."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from deploy.paths import cache_root

BRIDGE = "eddyline0"
POD_CIDR = "10.234.0.0/24"
GATEWAY = "10.234.0.1"  # the bridge's address: the node IP, the API server, DNS, Kafka for pods
SERVICE_CIDR = "10.234.1.0/24"
KUBERNETES_SERVICE_IP = "10.234.1.1"
CLUSTER_DOMAIN = "cluster.local"
NODE_NAME = "eddyline-node"
API_PORT = 6443
KUBELET_PORT = 10250
DNS_PORT = 53
PAUSE_IMAGE = "eddyline.local/pause:1"
# Tags every iptables rule of ours, so teardown finds exactly those.
RULE_COMMENT = "eddyline-localkube"

BIN_DIR = Path(os.environ.get("EDDYLINE_KUBE_BIN", Path.home() / ".cache" / "eddyline" / "bin"))
# Built by scripts/kube-tools.sh (`make kube-tools`).
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
    "helm",
    "coredns",
    "pause",
)
# From Debian's packages (scripts/ensure-cluster-packages.sh).
HOST_COMMANDS = {
    "containerd": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "ip": "iproute2",
    "openssl": "openssl",
    "conntrack": "conntrack",
}
CNI_PLUGINS = Path("/usr/lib/cni")
# Kernel settings kubelet and kube-proxy may change, and ip_forward that pods need: read before
# starting, put back after stopping.
SYSCTLS = (
    "vm/overcommit_memory",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
)


@dataclass(frozen=True)
class Layout:
    """The folder of one cluster. `state/` and `run/` are per run; images and PKI stay."""

    root: Path

    @classmethod
    def default(cls) -> Layout:
        return cls(Path(os.environ.get("EDDYLINE_CLUSTER_DIR", cache_root() / "cluster")))

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.root / "cluster.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "cluster.lock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def run(self) -> Path:
        """Per-run files: configs, etcd data, sockets (removed by `down`)."""
        return self.root / "run"

    @property
    def containerd_root(self) -> Path:
        """Images and snapshots: kept between runs so images are imported once."""
        return self.root / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.run / "containerd-state"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.run / "kubelet"

    @property
    def cni_conf(self) -> Path:
        return self.run / "cni"

    @property
    def cni_ipam(self) -> Path:
        return self.run / "cni-ipam"

    @property
    def images(self) -> Path:
        """Image archives loaded into the node (the pause image is built here)."""
        return self.root / "images"
