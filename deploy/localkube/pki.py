"""Certificates and kubeconfigs for a Kubernetes control plane (the openssl command: the venv has
no `cryptography`). Used by the local cluster and by the tests' envtest control plane."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import yaml

from deploy.errors import PkiError
from deploy.pki import client_cert, ec_key, make_ca, openssl, server_extensions, signed_cert

__all__ = [
    "PkiError",
    "b64",
    "cert_user",
    "client_cert",
    "make_pki",
    "signed_cert",
    "write_kubeconfig",
]


# The generic helpers live in deploy/pki.py (the local stack's Kafka TLS uses them too); their
# names stay importable from here.
_openssl = openssl
_ec_key = ec_key


def make_pki(pki: Path, ca_name: str, api_sans: Sequence[str]) -> None:
    """CA, API server serving cert (with `api_sans`), admin client cert (system:masters) and
    service-account keys."""
    make_ca(pki, ca_name)
    signed_cert(
        pki,
        "apiserver",
        "/CN=kube-apiserver",
        server_extensions(list(api_sans)),
    )
    client_cert(pki, "admin", "/O=system:masters/CN=eddyline-admin")
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key",
        cwd=pki,
    )  # fmt: skip
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(
    path: Path, server: str, ca_file: Path, user: dict[str, str], name: str = "envtest"
) -> None:
    """A self-contained kubeconfig (certificates inline) for `user` (kubeconfig user fields)."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority-data": b64(ca_file)},
            }
        ],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "user"}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)


def cert_user(pki: Path, name: str) -> dict[str, str]:
    """kubeconfig user fields for the client certificate `name`."""
    return {
        "client-certificate-data": b64(pki / f"{name}.crt"),
        "client-key-data": b64(pki / f"{name}.key"),
    }
