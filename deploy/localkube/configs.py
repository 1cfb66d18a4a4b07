"""Configuration files of the local cluster's node: pure functions of paths and ports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import yaml

from deploy.localkube.layout import (
    BRIDGE,
    CLUSTER_DOMAIN,
    CNI_PLUGINS,
    GATEWAY,
    KUBELET_PORT,
    NODE_NAME,
    PAUSE_IMAGE,
    POD_CIDR,
    Layout,
)
from deploy.paths import TEMPLATES

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # noqa: S701 - configuration files, not HTML
)


def containerd(layout: Layout) -> str:
    return _env.get_template("localkube-containerd.toml.j2").render(
        root=layout.containerd_root,
        state=layout.containerd_state,
        socket=layout.containerd_socket,
        pause_image=PAUSE_IMAGE,
        cni_bin=CNI_PLUGINS,
        cni_conf=layout.cni_conf,
    )


def cni(layout: Layout) -> str:
    """The pod network: one bridge, addresses from host-local IPAM, no masquerading (pods reach
    nothing beyond this machine anyway)."""
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "eddyline",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(layout.cni_ipam),
                    },
                }
            ],
        },
        indent=2,
    )


def kubelet(layout: Layout, healthz_port: int, resolv_conf: Path) -> str:
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": GATEWAY,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        # This machine runs cgroup v1 (a v2 mount beside it); kubelet refuses v1 otherwise.
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDNS": [GATEWAY],
        "clusterDomain": CLUSTER_DOMAIN,
        # Pods with dnsPolicy Default get this (empty) file: no upstream resolver exists.
        "resolvConf": str(resolv_conf),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(layout.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(layout.pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(layout.pki / "kubelet-serving.key"),
        # A small disk is fine for a test node: evict only when it is really full.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        # No image GC at all (100 turns it off): nothing can pull our images back (no
        # registry), and the pause image counts as unused to kubelet unless containerd reports it
        # pinned, which Debian's containerd 1.6.20 cannot (pinning came in 1.6.22/1.7). A CI run
        # lost eddyline.local/pause:1 mid-suite, and every later pod failed with "failed to pull
        # image" (most likely GC on a fuller disk: nothing else here removes images).
        # images.pin labels them too, for newer containerds.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "imageMaximumGCAge": "0s",
        "maxPods": 40,
        "serializeImagePulls": False,
        "staticPodPath": "",
        "enableServer": True,
        "shutdownGracePeriod": "0s",
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy(kubeconfig: Path, healthz_port: int, metrics_port: int) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "clusterCIDR": POD_CIDR,
        # NodePorts only on the bridge (a loopback address here would make it set route_localnet).
        "nodePortAddresses": [f"{GATEWAY}/32"],
        # Leave the kernel's conntrack settings alone.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def corefile(kubeconfig: Path, health_port: int, ready_port: int) -> str:
    """Cluster names from the API server; every other name NXDOMAIN (nothing is forwarded)."""
    return f"""\
{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {GATEWAY}
    errors
    health 127.0.0.1:{health_port}
    ready 127.0.0.1:{ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
    }}
    cache 30
    loadbalance
}}
.:53 {{
    bind {GATEWAY}
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""


COREDNS_RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: eddyline:coredns
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: eddyline:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: eddyline:coredns
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: eddyline-coredns
"""
