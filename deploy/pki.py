"""A small certificate authority on the openssl command (the venv has no `cryptography`): a CA,
and keys and certificates it signs. Shared by the local Kubernetes cluster (deploy/localkube/pki.py)
and the local stack's TLS listener for Kafka (deploy/local/stack/kafka_tls.py).

Keys are EC P-256 in unencrypted PKCS#8 PEM (`BEGIN PRIVATE KEY`), which Go, librdkafka and
Java's PEM key stores all read; each is made readable by its owner only.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from deploy.errors import PkiError


def openssl(*args: str, cwd: Path) -> None:
    """Run `openssl args…` in `cwd`; PkiError with openssl's own message when it fails."""
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise PkiError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def ec_key(pki: Path, name: str) -> str:
    """A new private key `name`.key in `pki` (mode 0600); returns its file name."""
    key = f"{name}.key"
    openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key, cwd=pki
    )  # fmt: skip
    (pki / key).chmod(0o600)
    return key


def make_ca(pki: Path, ca_name: str, days: int = 3650) -> None:
    """ca.key and a self-signed ca.crt (subject /CN=`ca_name`) in `pki`."""
    pki.mkdir(parents=True, exist_ok=True)
    ec_key(pki, "ca")
    openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-subj", f"/CN={ca_name}",
        "-days", str(days), "-sha256", "-out", "ca.crt",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", cwd=pki,
    )  # fmt: skip


def signed_cert(pki: Path, name: str, subject: str, extensions: str, days: int = 365) -> None:
    """`name`.key and `name`.crt signed by the CA in `pki`, with the x509v3 `extensions` (one
    `key=value` a line; kept as `name`.ext, so a caller can tell whether they changed)."""
    key = ec_key(pki, name)
    openssl("req", "-new", "-key", key, "-subj", subject, "-out", f"{name}.csr", cwd=pki)
    (pki / f"{name}.ext").write_text(extensions)
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", str(days),
        "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=pki,
    )  # fmt: skip


def server_extensions(sans: list[str]) -> str:
    """Extensions of a TLS server certificate for `sans` (`DNS:name` or `IP:address` each)."""
    return (
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(sans)}\n"
    )


def client_cert(pki: Path, name: str, subject: str) -> None:
    """`name`.crt/.key signed by the CA: client authentication as `subject`."""
    signed_cert(
        pki,
        name,
        subject,
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    )
