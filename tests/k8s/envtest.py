"""A real Kubernetes control plane for tests, started the way controller-runtime's envtest does.

etcd, kube-apiserver (TLS, client-certificate auth, RBAC on), kube-controller-manager,
kube-scheduler and kwok (two simulated nodes, so Deployments get Pods that turn Ready) run as local
processes on free loopback ports, with every file (certificates, etcd data, logs, kubeconfig) in one
directory. The binaries come from scripts/kube-tools.sh (`make kube-tools`), cached in
~/.cache/eddyline/bin (EDDYLINE_KUBE_BIN overrides). Nothing here skips: a missing binary or a
component that does not come up raises EnvtestError naming the component and its log.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from deploy.localkube import pki as localkube_pki

BIN_DIR = Path(os.environ.get("EDDYLINE_KUBE_BIN", Path.home() / ".cache" / "eddyline" / "bin"))
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
    "helm",
)
KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")
FORWARDED_POD_PORT = 8081  # the JobManager's REST port in the chart


def port_forward_config(forward_port: int) -> dict[str, object]:
    """kwok configuration: a port-forward to FORWARDED_POD_PORT of any Pod goes to
    127.0.0.1:forward_port."""
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterPortForward",
        "metadata": {"name": "to-the-test"},
        "spec": {
            "forwards": [
                {
                    "ports": [FORWARDED_POD_PORT],
                    "target": {"address": "127.0.0.1", "port": forward_port},
                }
            ]
        },
    }


SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.1/16"
FAKE_NODES = ("kwok-node-0", "kwok-node-1")
# Nodes kwok manages carry this annotation (kwok --manage-nodes-with-annotation-selector).
KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
ISSUER = "https://kubernetes.default.svc.cluster.local"
START_TIMEOUT = float(os.environ.get("EDDYLINE_KUBE_START_TIMEOUT", "180"))


class EnvtestError(RuntimeError):
    """The control plane could not start; the message names the component and its log."""


@dataclass
class Component:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def describe(self) -> str:
        return f"{self.name} (pid {self.proc.pid}, log {self.log})"

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


@dataclass
class Kube:
    """A running control plane: what tests and the other k8s fixtures use."""

    root: Path
    kubeconfig: Path
    server: str
    api_client: client.ApiClient
    bin_dir: Path
    ca_file: Path
    nodes: tuple[str, ...]
    components: dict[str, Component] = field(default_factory=dict)
    # kwok plays each node's kubelet on one local port, and sends a port-forward to port
    # FORWARDED_POD_PORT of any Pod to 127.0.0.1:forward_port (nothing listens there until a
    # test does): `kubectl port-forward` through the API server reaches a local process.
    forward_port: int = 0

    @property
    def helm(self) -> Path:
        return self.bin_dir / "helm"

    @property
    def kubectl(self) -> Path:
        return self.bin_dir / "kubectl"

    @property
    def logs(self) -> dict[str, Path]:
        return {name: c.log for name, c in self.components.items()}

    @property
    def env(self) -> dict[str, str]:
        """os.environ pointed at this cluster; kubectl and helm keep their caches under root."""
        helm_home = self.root / "helm"
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.root / "kube-cache"),
            "HELM_CONFIG_HOME": str(helm_home / "config"),
            "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_DATA_HOME": str(helm_home / "data"),
        }

    def new_client(self) -> client.ApiClient:
        """A fresh ApiClient for the admin user (one per thread or per controller under test)."""
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def service_account_kubeconfig(
        self, namespace: str, name: str, expiration_seconds: int = 3600
    ) -> Path:
        """A kubeconfig that authenticates as an existing ServiceAccount (a TokenRequest token),
        to run a process with exactly the permissions RBAC grants that account."""
        core = client.CoreV1Api(self.api_client)
        request = core.create_namespaced_service_account_token(
            name,
            namespace,
            client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(
                    audiences=[ISSUER], expiration_seconds=expiration_seconds
                )
            ),
        )
        path = self.root / f"kubeconfig-sa-{namespace}-{name}"
        write_kubeconfig(path, self.server, self.ca_file, {"token": request.status.token})
        return path

    def run(
        self, tool: str, *args: str, check: bool = True, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `kubectl` or `helm` (or another cached tool) against this cluster."""
        result = subprocess.run(
            [str(self.bin_dir / tool), *args],
            env=self.env,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def kubectl_run(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, **kwargs)

    def helm_run(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("helm", *args, **kwargs)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.api_client.close()
        stop_components(list(self.components.values()))


# --- processes ---------------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the child if pytest dies without running the fixture's teardown."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_component(name: str, argv: Sequence[str], logs: Path) -> Component:
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=logs,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads are forking here
        )
    return Component(name, proc, log)


def stop_components(components: list[Component], grace: float = 15.0) -> None:
    """SIGTERM in reverse start order, SIGKILL whatever outlives the grace period. By PID only."""
    for c in reversed(components):
        if c.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                c.proc.terminate()
            try:
                c.proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.kill()
                c.proc.wait(5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    component: Component, what: str, check: Callable[[], str | None], timeout: float
) -> None:
    """Poll `check` (None = ready, else the latest reason) until ready, the process dies or time
    runs out; then raise with the reason, the log path and the log's last lines."""
    deadline = time.monotonic() + timeout
    reason = "not checked yet"
    while True:
        if component.proc.poll() is not None:
            raise EnvtestError(
                f"{component.describe()} exited with code {component.proc.returncode} "
                f"before {what}\n--- last lines of {component.log}:\n{component.tail()}"
            )
        try:
            result = check()
        except Exception as e:  # the check talks to a server that may not be up yet
            result = f"{type(e).__name__}: {e}"
        if result is None:
            return
        reason = result
        if time.monotonic() > deadline:
            raise EnvtestError(
                f"{component.describe()}: no {what} after {timeout:.0f}s (last: {reason})\n"
                f"--- last lines of {component.log}:\n{component.tail()}"
            )
        time.sleep(0.25)


# --- certificates (deploy/localkube/pki.py: the same PKI as the real local cluster) --------------

API_SANS = (
    "IP:127.0.0.1",
    "IP:10.96.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


def make_pki(pki_dir: Path) -> None:
    """CA, apiserver serving cert, admin client cert (system:masters), service-account keys."""
    try:
        localkube_pki.make_pki(pki_dir, "eddyline-envtest-ca", API_SANS)
    except localkube_pki.PkiError as e:
        raise EnvtestError(str(e)) from None


write_kubeconfig = localkube_pki.write_kubeconfig


# --- health checks -----------------------------------------------------------------------------


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as resp:
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode(errors="replace")


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> Callable[[], str | None]:
    def check() -> str | None:
        status, body = _get(url, context)
        return None if status == 200 else f"HTTP {status}: {body.strip()[:300]}"

    return check


def _insecure() -> ssl.SSLContext:
    # kube-controller-manager and kube-scheduler serve /healthz with self-signed certificates.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --- the control plane -------------------------------------------------------------------------


def missing_binaries(bin_dir: Path = BIN_DIR) -> list[str]:
    return [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]


def start(root: Path, bin_dir: Path = BIN_DIR, timeout: float = START_TIMEOUT) -> Kube:
    """Start the whole control plane under `root`; on failure stop what started and raise."""
    missing = missing_binaries(bin_dir)
    if missing:
        raise EnvtestError(
            f"missing in {bin_dir}: {', '.join(missing)} — run `make kube-tools` "
            "(scripts/kube-tools.sh builds them with the Go toolchain)"
        )
    pki, logs = root / "pki", root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    components: list[Component] = []
    try:
        return _start(root, pki, logs, bin_dir, components, timeout)
    except BaseException:
        stop_components(components)
        raise


def _start(
    root: Path,
    pki: Path,
    logs: Path,
    bin_dir: Path,
    components: list[Component],
    timeout: float,
) -> Kube:
    make_pki(pki)

    def bin_(name: str) -> str:
        return str(bin_dir / name)

    # etcd: plain HTTP on loopback, like envtest; fsync off (test data), small backend quota.
    etcd_port, peer_port = free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    etcd = start_component(
        "etcd",
        [
            bin_("etcd"),
            "--name=envtest",
            f"--data-dir={root / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=envtest={peer_url}",
            "--unsafe-no-fsync=true",
            f"--quota-backend-bytes={512 * 1024 * 1024}",
            "--log-level=warn",
        ],
        logs,
    )
    components.append(etcd)

    def etcd_healthy() -> str | None:
        status, body = _get(f"{etcd_url}/health")
        healthy = status == 200 and json.loads(body).get("health") == "true"
        return None if healthy else f"HTTP {status}: {body[:200]}"

    wait_until(etcd, "healthy /health", etcd_healthy, timeout)

    api_port = free_port()
    kwok_port = free_port()  # kwok's kubelet API (logs, exec, port-forward) for every fake node
    server = f"https://127.0.0.1:{api_port}"
    apiserver = start_component(
        "kube-apiserver",
        [
            bin_("kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # A loopback address may not be the `kubernetes` Service's endpoint (as in envtest).
            "--endpoint-reconciler-type=none",
            f"--secure-port={api_port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # The fake nodes' kubelet is kwok, on 127.0.0.1 (their InternalIP); their Hostname
            # resolves nowhere. kwok's serving certificate is its own: the API server does not
            # check kubelet certificates without --kubelet-certificate-authority.
            "--kubelet-preferred-address-types=InternalIP",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ],
        logs,
    )
    components.append(apiserver)
    write_kubeconfig(
        root / "kubeconfig", server, pki / "ca.crt", localkube_pki.cert_user(pki, "admin")
    )
    admin_tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    admin_tls.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    wait_until(apiserver, "ready /readyz", _http_ok(f"{server}/readyz", admin_tls), timeout)

    kubeconfig = str(root / "kubeconfig")
    kcm_port = free_port()
    kcm = start_component(
        "kube-controller-manager",
        [
            bin_("kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={kcm_port}",
            f"--cert-dir={root / 'kcm-certs'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            # Else it creates /usr/libexec/kubernetes/kubelet-plugins/volume/exec on the host.
            f"--flex-volume-plugin-dir={root / 'flexvolume'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Under CPU load kwok's node heartbeats can come late; after the default 50 s grace
            # the node lifecycle controller would mark the fake nodes NotReady and taint them,
            # leaving new Pods Pending. The controller has to stay: it removes the not-ready
            # taint that admission puts on every new node.
            "--node-monitor-grace-period=10m",
            "--profiling=false",
            "--v=1",
        ],
        logs,
    )
    components.append(kcm)
    sched_port = free_port()
    scheduler = start_component(
        "kube-scheduler",
        [
            bin_("kube-scheduler"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={sched_port}",
            f"--cert-dir={root / 'scheduler-certs'}",
            "--profiling=false",
            "--v=1",
        ],
        logs,
    )
    components.append(scheduler)
    forward_port = free_port()
    forwards = root / "kwok-port-forward.yaml"
    forwards.write_text(yaml.safe_dump(port_forward_config(forward_port)))
    kwok = start_component(
        "kwok",
        [
            bin_("kwok"),
            f"--kubeconfig={kubeconfig}",
            f"--config={KWOK_STAGES}",
            f"--config={forwards}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={'='.join(KWOK_ANNOTATION)}",
            f"--cidr={POD_CIDR}",
            "--node-ip=127.0.0.1",
            f"--node-port={kwok_port}",
            f"--server-address=127.0.0.1:{kwok_port}",
        ],
        logs,
    )
    components.append(kwok)

    api_client = config.new_client_from_config(config_file=kubeconfig)
    kube = Kube(
        root=root,
        kubeconfig=root / "kubeconfig",
        server=server,
        api_client=api_client,
        bin_dir=bin_dir,
        ca_file=pki / "ca.crt",
        nodes=FAKE_NODES,
        components={c.name: c for c in components},
        forward_port=forward_port,
    )
    try:
        _await_workers(kube, kcm, kcm_port, scheduler, sched_port, kwok, kwok_port, timeout)
    except BaseException:
        api_client.close()
        raise
    return kube


def _await_workers(
    kube: Kube,
    kcm: Component,
    kcm_port: int,
    scheduler: Component,
    sched_port: int,
    kwok: Component,
    kwok_port: int,
    timeout: float,
) -> None:
    insecure = _insecure()
    wait_until(
        kcm,
        "healthy /healthz",
        _http_ok(f"https://127.0.0.1:{kcm_port}/healthz", insecure),
        timeout,
    )
    wait_until(
        scheduler,
        "healthy /healthz",
        _http_ok(f"https://127.0.0.1:{sched_port}/healthz", insecure),
        timeout,
    )
    wait_until(kwok, "healthy /healthz", _http_ok(f"http://127.0.0.1:{kwok_port}/healthz"), timeout)

    core = client.CoreV1Api(kube.api_client)

    def default_service_account() -> str | None:
        # The serviceaccount controller (in kube-controller-manager) creates it: Pods need it.
        names = [sa.metadata.name for sa in core.list_namespaced_service_account("default").items]
        return None if "default" in names else "no ServiceAccount default/default yet"

    wait_until(kcm, "ServiceAccount default/default", default_service_account, timeout)

    for name in kube.nodes:
        core.create_node(
            client.V1Node(
                metadata=client.V1ObjectMeta(
                    name=name,
                    annotations={
                        KWOK_ANNOTATION[0]: KWOK_ANNOTATION[1],
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                    labels={
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                )
            )
        )

    def nodes_ready() -> str | None:
        waiting = []
        for name in kube.nodes:
            conditions = core.read_node(name).status.conditions or []
            if not any(c.type == "Ready" and c.status == "True" for c in conditions):
                waiting.append(name)
        return None if not waiting else f"nodes not Ready: {', '.join(waiting)}"

    wait_until(kwok, "Ready fake nodes", nodes_ready, timeout)
