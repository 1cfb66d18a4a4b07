"""Certificates and kubeconfigs for a Kubernetes control plane (the openssl command: the venv has
no `cryptography`). Used by the local cluster and by the tests' envtest control plane."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import yaml

from deploy.errors import PkiError


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise PkiError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def _ec_key(pki: Path, name: str) -> str:
    key = f"{name}.key"
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key, cwd=pki
    )
    return key


def client_cert(pki: Path, name: str, subject: str) -> None:
    """`name`.crt/.key signed by the CA: client authentication as `subject` (/O=group/CN=user)."""
    signed_cert(
        pki,
        name,
        subject,
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    )


def signed_cert(pki: Path, name: str, subject: str, extensions: str) -> None:
    key = _ec_key(pki, name)
    _openssl("req", "-new", "-key", key, "-subj", subject, "-out", f"{name}.csr", cwd=pki)
    (pki / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "365",
        "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=pki,
    )  # fmt: skip


def make_pki(pki: Path, ca_name: str, api_sans: Sequence[str]) -> None:
    """CA, API server serving cert (with `api_sans`), admin client cert (system:masters) and
    service-account keys."""
    pki.mkdir(parents=True, exist_ok=True)
    _ec_key(pki, "ca")
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-subj", f"/CN={ca_name}",
        "-days", "3650", "-sha256", "-out", "ca.crt",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", cwd=pki,
    )  # fmt: skip
    signed_cert(
        pki,
        "apiserver",
        "/CN=kube-apiserver",
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(api_sans)}\n",
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
