"""Connecting to a Kubernetes API server: in-cluster (a pod's service account) or a kubeconfig.

`connect()` picks in-cluster credentials when asked, or when it runs in a pod and no kubeconfig
was named; a kubeconfig otherwise ($KUBECONFIG, else ~/.kube/config; `--context` picks one of its
contexts). The namespace is the one given, else the context's, else the pod's own, else
`default`. In-cluster, the service account token is re-read as it rotates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from deploy.errors import KubeConfigError
from deploy.kube.api import RestApi

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
HOST_ENV = "KUBERNETES_SERVICE_HOST"
PORT_ENV = "KUBERNETES_SERVICE_PORT"


@dataclass(frozen=True)
class KubeTarget:
    """Where `--kube` commands and the Kubernetes-mode controller go."""

    namespace: str | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool | None = None  # None: in-cluster when in a pod and no kubeconfig is named
    service_account_dir: Path = SERVICE_ACCOUNT_DIR  # in-cluster: token, ca.crt, namespace


def in_pod(target: KubeTarget) -> bool:
    return bool(os.environ.get(HOST_ENV)) and (target.service_account_dir / "token").is_file()


def connect(target: KubeTarget) -> RestApi:
    """An API client for `target`'s namespace; KubeConfigError saying why when there is none."""
    configuration = client.Configuration()
    use_cluster = target.in_cluster
    if use_cluster is None:
        use_cluster = target.kubeconfig is None and target.context is None and in_pod(target)
    namespace = target.namespace
    try:
        if use_cluster:
            sa = target.service_account_dir
            loader = config.incluster_config.InClusterConfigLoader(  # type: ignore[no-untyped-call]
                token_filename=str(sa / "token"), cert_filename=str(sa / "ca.crt")
            )
            loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
            if namespace is None and (sa / "namespace").is_file():
                namespace = (sa / "namespace").read_text().strip() or None
        else:
            file = str(target.kubeconfig) if target.kubeconfig else None
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=file,
                context=target.context,
                client_configuration=configuration,
                persist_config=False,
            )
            if namespace is None:
                namespace = _context_namespace(file, target.context)
    except (ConfigException, OSError) as e:
        how = "in-cluster credentials" if use_cluster else "a kubeconfig"
        raise KubeConfigError(f"cannot connect to Kubernetes with {how}: {e}") from None
    return RestApi(client.ApiClient(configuration), namespace or "default")


def _context_namespace(file: str | None, context: str | None) -> str | None:
    contexts, current = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
        config_file=file
    )
    wanted = context or (current or {}).get("name")
    for ctx in contexts:
        if ctx.get("name") == wanted:
            detail: dict[str, Any] = ctx.get("context") or {}
            ns = detail.get("namespace")
            return str(ns) if ns else None
    return None
