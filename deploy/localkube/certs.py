"""The cluster's identities: a CA, the API server's serving certificate (every name a client may
use for it), one client certificate per component, and the kubeconfigs that carry them."""

from __future__ import annotations

import shutil
from pathlib import Path

from deploy.localkube import pki
from deploy.localkube.layout import GATEWAY, KUBERNETES_SERVICE_IP, NODE_NAME, Layout

_CONTEXT = "eddyline-local"


def ensure_pki(pkid: Path) -> None:
    """Make the certificates unless an earlier run left a complete set."""
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


def write_kubeconfigs(layout: Layout, server: str) -> None:
    """The admin's (`layout.kubeconfig`, what users and tests use) and one per node component."""
    ca = layout.pki / "ca.crt"
    pki.write_kubeconfig(
        layout.kubeconfig, server, ca, pki.cert_user(layout.pki, "admin"), _CONTEXT
    )
    for name in ("kubelet", "kube-proxy", "coredns"):
        pki.write_kubeconfig(
            layout.run / f"{name}.kubeconfig",
            server,
            ca,
            pki.cert_user(layout.pki, name),
            _CONTEXT,
        )
