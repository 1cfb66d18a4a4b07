"""The real single-node cluster (deploy/localkube: kubelet + containerd + runc + CNI bridge +
kube-proxy + CoreDNS) for tests/cluster, started once per session and stopped at its end.

Pods run the image `make image` built (loaded into the node, never pulled); Kafka is a local
stack's broker outside the cluster, and the state bucket a versitygw S3 server on the host, both
reached by the pods on the node's bridge. The broker wants SASL over TLS, as production ones do
(`eddyline up --kafka-security sasl-ssl`): the chart carries its credentials and CA from Secrets
into every pod, so every test here runs its jobs through SCRAM over TLS. A part that cannot
start fails the tests that need it, saying which and where its log is. These tests run last
(tests/conftest.py): they need the most memory, and nothing else needs them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from kubernetes import config

from deploy.errors import EddylineError
from deploy.local.objectstore import ObjectStore, ObjectStoreServer
from deploy.local.stack import control, ports
from deploy.localkube import host, node
from deploy.localkube.__main__ import image_archive, image_ref
from deploy.localkube.layout import BIN_DIR, GATEWAY, NODE_NAME, Layout
from deploy.settings import StackSettings
from tests.integration.stacks import RunningStack, free_settings
from tests.k8s.chart import CHART, CI, RELEASE
from tests.k8s.envtest import Kube

VALUES = CI / "real-node.yaml"
S3_SECRET = "flink-state-s3"
KAFKA_SECRET = "kafka-credentials"
KAFKA_CA_SECRET = "kafka-ca"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster" in str(item.path):
            item.add_marker(pytest.mark.cluster)


@dataclass
class RealCluster:
    layout: Layout
    kube: Kube
    started_here: bool
    # The host before `up` (for the teardown check); None when the cluster was already running.
    before: dict[str, object] | None
    stopped: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    layout = Layout.default()
    archive = image_archive()
    if not archive.exists():
        pytest.fail(f"no image archive at {archive}: run `make image`", pytrace=False)
    running = node.status(layout).running
    before = None if running else host.snapshot(layout.root)
    try:
        result = node.up(layout, {image_ref(): archive})
    except EddylineError as e:
        failure = str(e)
    else:
        failure = ""
    if failure:
        pytest.fail(f"the local cluster did not start: {failure}", pytrace=False)
    kube = Kube(
        root=layout.root,
        kubeconfig=result.kubeconfig,
        server=result.server,
        api_client=config.new_client_from_config(config_file=str(result.kubeconfig)),
        bin_dir=BIN_DIR,
        ca_file=layout.pki / "ca.crt",
        nodes=(NODE_NAME,),
    )
    cluster = RealCluster(layout, kube, started_here=not result.already_running, before=before)
    try:
        yield cluster
    finally:
        kube.api_client.close()
        if cluster.started_here and not cluster.stopped:
            node.down(layout)


@pytest.fixture(scope="session")
def pod_kafka(
    real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningStack, str]]:
    """A local stack whose secured broker also listens on the node's bridge: (stack, pods'
    address)."""
    settings: StackSettings = free_settings(
        tmp_path_factory.mktemp("pod-kafka"),
        kafka_external_address=GATEWAY,
        kafka_external_port=ports.free_port(),
        kafka_security="sasl-ssl",
        controller=False,
    )
    try:
        result = control.up(settings)
    except EddylineError as e:
        pytest.fail(f"the local stack did not start: {e}", pytrace=False)
    external = result.state.external_bootstrap_servers
    assert external == f"{GATEWAY}:{settings.kafka_external_port}"
    try:
        yield RunningStack(settings, result.state), external
    finally:
        control.down(settings.state_dir)


@dataclass
class Release:
    namespace: str
    notes: str
    install_seconds: float
    bootstrap: str  # Kafka as the pods reach it
    stack: RunningStack
    cluster: RealCluster
    s3: PodS3

    @property
    def kube(self) -> Kube:
        return self.cluster.kube

    def kubectl(self, *args: str, check: bool = True) -> str:
        return self.kube.kubectl_run("-n", self.namespace, *args, check=check).stdout

    def pods(self, component: str) -> list[dict[str, Any]]:
        out = self.kubectl(
            "get", "pods", "-l", f"app.kubernetes.io/component={component}", "-o", "yaml"
        )
        items: list[dict[str, Any]] = yaml.safe_load(out)["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def service_ip(self, name: str) -> str:
        return self.kubectl("get", "service", name, "-o", "jsonpath={.spec.clusterIP}").strip()

    @property
    def flink_url(self) -> str:
        """The JobManager's REST API through its Service (the host reaches ClusterIPs)."""
        return f"http://{self.service_ip(f'{RELEASE}-jobmanager')}:8081"


@dataclass
class PodS3:
    """A real S3 server (versitygw) on the host, reached by the pods on the node's bridge, with a
    bucket for this run: where the release keeps checkpoints, savepoints and HA metadata."""

    server: ObjectStoreServer
    bucket: str

    @property
    def store(self) -> ObjectStore:
        return self.server.store

    def keys(self, prefix: str = "") -> list[str]:
        return self.store.keys(self.bucket, prefix)


@pytest.fixture(scope="session")
def pod_s3(real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodS3]:
    root = tmp_path_factory.mktemp("pod-s3")
    server = ObjectStoreServer(
        root / "data", host=GATEWAY, port=ports.free_port(GATEWAY), log=root / "versitygw.log"
    )
    try:
        store = server.start()
    except EddylineError as e:
        pytest.fail(f"the S3 server for the pods did not start: {e}", pytrace=False)
    bucket = f"eddyline-{uuid.uuid4().hex[:8]}"
    store.create_bucket(bucket)
    try:
        yield PodS3(server, bucket)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def release(
    real_cluster: RealCluster, pod_kafka: tuple[RunningStack, str], pod_s3: PodS3
) -> Iterator[Release]:
    """The chart installed with `helm install --wait` on the real node: state in the run's
    bucket, its key in a Secret (the one thing the chart asks for besides Kafka)."""
    stack, bootstrap = pod_kafka
    kube = real_cluster.kube
    ns = f"eddyline-{uuid.uuid4().hex[:6]}"
    kube.kubectl_run("create", "namespace", ns)
    store = pod_s3.store
    kube.kubectl_run(
        "-n", ns, "create", "secret", "generic", S3_SECRET,
        f"--from-literal=AWS_ACCESS_KEY_ID={store.access_key}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={store.secret_key}",
    )  # fmt: skip
    security = stack.state.kafka_security()
    assert security is not None, "the pods' Kafka should be secured"
    assert security.password is not None
    assert security.ca_location is not None
    kube.kubectl_run(
        "-n", ns, "create", "secret", "generic", KAFKA_SECRET,
        f"--from-literal=KAFKA_SASL_USERNAME={security.username}",
        f"--from-literal=KAFKA_SASL_PASSWORD={security.password.get_secret_value()}",
    )  # fmt: skip
    kube.kubectl_run(
        "-n", ns, "create", "secret", "generic", KAFKA_CA_SECRET,
        f"--from-file=ca.crt={security.ca_location}",
    )  # fmt: skip
    started = time.monotonic()
    result = kube.helm_run(
        "install", RELEASE, str(CHART), "--namespace", ns, "--values", str(VALUES),
        "--set", f"kafka.bootstrapServers={bootstrap}",
        "--set", f"kafka.existingSecret={KAFKA_SECRET}",
        "--set", "kafka.security.protocol=SASL_SSL",
        "--set", f"kafka.security.saslMechanism={security.mechanism}",
        "--set", f"kafka.security.caSecret.name={KAFKA_CA_SECRET}",
        "--set", f"image.tag={image_ref().split(':')[1]}",
        "--set", f"flink.state.s3.bucket={pod_s3.bucket}",
        "--set", f"flink.state.s3.endpoint={store.endpoint}",
        "--set", f"flink.state.s3.credentialsSecret={S3_SECRET}",
        "--wait", "--timeout", "420s",
    )  # fmt: skip
    rel = Release(
        ns, result.stdout, time.monotonic() - started, bootstrap, stack, real_cluster, pod_s3
    )
    yield rel
    kube.helm_run("uninstall", RELEASE, "--namespace", ns, "--wait", check=False)
    kube.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)
