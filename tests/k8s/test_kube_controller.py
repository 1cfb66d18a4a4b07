"""The controller in Kubernetes mode, in-cluster, against a real API server (tests/k8s/envtest.py)
and the real local Kafka + Flink stack (the session `stack` fixture of tests/conftest.py).

The controller runs in this test process as it runs in its pod: in-cluster credentials (a
service account token from the TokenRequest API, the cluster's CA, KUBERNETES_SERVICE_HOST/PORT),
and that service account is bound to a Role with exactly deploy/kube/rbac.py's CONTROLLER_RULES,
so every request it makes is one the chart's Role must allow. Users act as users do: kubectl
(apply, patch, annotate, delete) and `eddyline … --kube` with the admin kubeconfig.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from kubernetes import client

from deploy import kafka_io, paths
from deploy.controller.store import SAVEPOINT_ON_DELETE
from deploy.errors import FlinkError
from deploy.flink.rest import FlinkClient
from deploy.flink.states import TERMINAL_STATES
from deploy.kube import client as kube_client
from deploy.kube import crd
from deploy.kube import wiring as kube_wiring
from deploy.kube.api import KubeError, RestApi
from deploy.kube.client import KubeTarget, connect
from deploy.kube.controller import KubeController
from deploy.kube.rbac import CONTROLLER_RULES
from deploy.kube.store import FINALIZER, KubeStore, lease_name, to_job
from deploy.spec import FlinkJob, JobStatus, Lifecycle, parse
from tests.integration.cli import eddyline
from tests.integration.jobrun import Topics
from tests.integration.managed import flinkjob
from tests.integration.stacks import RunningStack
from tests.k8s.envtest import Kube

SERVICE_ACCOUNT = "eddyline-controller"
TASKMANAGERS = "flink-taskmanager"
SCALE_DOWN_DELAY_S = 5.0
JOB_DIRS = [paths.PROJECT_ROOT / "jobs", paths.PROJECT_ROOT / "tests" / "jobs"]

ARTIFACTS = paths.PROJECT_ROOT / "test-artifacts" / "k8s"


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flinkjob_crd(kube: Kube) -> None:
    """The CRD the chart ships (generated from the model by deploy/kube/crd.py), established."""
    kube.kubectl_run("apply", "-f", "-", input_text=yaml.safe_dump(crd.crd()))
    kube.kubectl_run(
        "wait", "--for", "condition=Established", f"crd/{crd.CRD_NAME}", "--timeout=60s"
    )


@pytest.fixture
def namespace(kube: Kube, flinkjob_crd: None) -> Iterator[str]:
    """A namespace with the controller's service account, bound to CONTROLLER_RULES only."""
    name = f"ek-{uuid.uuid4().hex[:8]}"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": name},
        "rules": CONTROLLER_RULES,
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": name},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": SERVICE_ACCOUNT,
        },
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": name}],
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": SERVICE_ACCOUNT, "namespace": name}}  # fmt: skip
    kube.kubectl_run("create", "namespace", name)
    docs = yaml.safe_dump_all([account, role, binding])
    kube.kubectl_run("apply", "-f", "-", input_text=docs)
    yield name
    kube.kubectl_run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def in_cluster(
    kube: Kube, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> KubeTarget:
    """What a pod of the service account sees: its token, the CA, the namespace, the env."""
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    token = kube.kubectl_run(
        "create", "token", SERVICE_ACCOUNT, "-n", namespace, "--duration=2h"
    ).stdout.strip()
    (sa / "token").write_text(token)
    (sa / "ca.crt").write_bytes(kube.ca_file.read_bytes())
    (sa / "namespace").write_text(namespace)
    server = urlparse(kube.server)
    monkeypatch.setenv(kube_client.HOST_ENV, str(server.hostname))
    monkeypatch.setenv(kube_client.PORT_ENV, str(server.port))
    return KubeTarget(service_account_dir=sa)  # in-cluster chosen as in a pod: no kubeconfig


@dataclass
class Cluster:
    kube: Kube
    namespace: str
    stack: RunningStack
    admin: RestApi
    flink: FlinkClient
    log: Path
    controller: KubeController | None = None

    # -- users ---------------------------------------------------------------------------

    def kubectl(self, *args: str, input_text: str | None = None) -> str:
        return self.kube.kubectl_run(*args, "-n", self.namespace, input_text=input_text).stdout

    def eddyline(self, *args: str, timeout: float = 300) -> Any:
        return eddyline(
            *args, "--kube", "--kubeconfig", str(self.kube.kubeconfig), "-n", self.namespace,
            timeout=timeout,
        )  # fmt: skip

    def apply(self, doc: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(doc))

    def patch(self, name: str, patch: dict[str, Any]) -> None:
        self.kubectl("patch", "flinkjob", name, "--type=merge", "-p", json.dumps(patch))

    # -- looking -------------------------------------------------------------------------

    def doc(self, name: str) -> dict[str, Any] | None:
        return self.admin.get_job(name)

    def job(self, name: str) -> FlinkJob | None:
        doc = self.doc(name)
        return to_job(doc) if doc else None

    def tail(self, lines: int = 40) -> str:
        with suppress(OSError):
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        return ""

    def wait(
        self,
        name: str,
        done: Callable[[FlinkJob | None], bool],
        what: str,
        timeout: float = 240,
    ) -> FlinkJob | None:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(name)
            if done(job):
                return job
            if time.monotonic() > deadline:
                st = job.status if job else None
                raise AssertionError(
                    f"{name} did not {what} in {timeout:.0f} s: "
                    f"{st.lifecycle if st else 'gone'}, error {st.error if st else None!r}, "
                    f"events {[e.message for e in st.events] if st else []}\n"
                    f"controller log:\n{self.tail()}"
                )
            time.sleep(0.5)

    def running(self, name: str, generation: int, timeout: float = 240) -> FlinkJob:
        job = self.wait(name, lambda j: j is not None and j.running_at(generation),
                        f"run generation {generation}", timeout)  # fmt: skip
        assert job is not None
        return job

    def events(self, name: str) -> list[Any]:
        core = client.CoreV1Api(self.kube.api_client)
        found = core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        ).items
        return sorted(found, key=lambda e: (e.first_timestamp, e.metadata.creation_timestamp))

    def reasons(self, name: str) -> list[str]:
        return [e.reason for e in self.events(name)]

    def flink_state(self, job_id: str | None) -> str:
        assert job_id is not None
        return str(self.flink.job(job_id)["state"])


def _controller_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("eddyline")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


@pytest.fixture
def cluster(
    kube: Kube,
    namespace: str,
    stack: RunningStack,
    tmp_path: Path,
) -> Iterator[Cluster]:
    admin = connect(KubeTarget(kubeconfig=kube.kubeconfig, namespace=namespace))
    c = Cluster(kube, namespace, stack, admin, FlinkClient(stack.flink_url),
                tmp_path / "controller.log")  # fmt: skip
    try:
        yield c
    finally:
        admin.close()
        c.flink.close()


@pytest.fixture
def controller(cluster: Cluster, in_cluster: KubeTarget) -> Iterator[KubeController]:
    """The Kubernetes-mode controller, in-cluster, in this process, until the test ends; then
    every FlinkJob of the namespace is deleted through it and any Flink job left is cancelled."""
    handler = _controller_log(cluster.log)
    options = kube_wiring.ControllerOptions(
        target=in_cluster,
        flink_url=cluster.stack.flink_url,
        bootstrap_servers=cluster.stack.bootstrap_servers,
        job_dirs=JOB_DIRS,
        interval=0.5,
        lease_ttl=6,
        resync=20,
        taskmanager_deployment=TASKMANAGERS,
        max_taskmanagers=3,
        # Down to as many as the local stack runs, once fewer are wanted for a few seconds.
        min_taskmanagers=int(cluster.flink.overview()["taskmanagers"]),
        taskmanager_scale_down_delay=SCALE_DOWN_DELAY_S,
    )
    flink = FlinkClient(cluster.stack.flink_url)
    ctl = kube_wiring.build(options, flink)
    assert ctl.kube.namespace == cluster.namespace  # from the service account's namespace file
    cluster.controller = ctl
    stop = threading.Event()
    thread = threading.Thread(target=ctl.run, args=(stop,), name="kube-controller", daemon=True)
    thread.start()
    seen: set[str] = set()
    try:
        yield ctl
    finally:
        try:
            items, _ = cluster.admin.list_jobs()
            for doc in items:
                st = doc.get("status") or {}
                seen.update(j for j in (st.get("jobId"), (st.get("operation") or {})
                                        .get("newJobId")) if j)  # fmt: skip
                with suppress(KubeError):
                    cluster.admin.delete_job(doc["metadata"]["name"])
            deadline = time.monotonic() + 90
            while cluster.admin.list_jobs()[0] and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            stop.set()
            thread.join(30)
            for jid in seen:
                with suppress(FlinkError):
                    if cluster.flink_state(jid) not in TERMINAL_STATES:
                        cluster.flink.cancel(jid)
            flink.close()
            logging.getLogger("eddyline").removeHandler(handler)
            handler.close()
        assert not thread.is_alive(), "the controller did not stop"


def smoke(cluster: Cluster, name: str, **spec: Any) -> dict[str, Any]:
    """The integration tests' smoke job on fresh topics, as a FlinkJob document."""
    topics = Topics.fresh(name)
    kafka_io.create_topics(cluster.stack.bootstrap_servers, {topics.views: 1, topics.output: 1})
    return flinkjob(
        name,
        "jobs.smoke",
        ["--input-topic", topics.views, "--output-topic", topics.output,
         "--group-id", f"kube-{topics.run}"],
        **spec,
    )  # fmt: skip


# -- tests -----------------------------------------------------------------------------------


def test_flinkjobs_created_upgraded_suspended_and_deleted_by_the_in_cluster_controller(
    cluster: Cluster, controller: KubeController
) -> None:
    name = "smoke-life"
    cluster.apply(smoke(cluster, name))  # kubectl apply: no finalizer, as users create them

    first = cluster.running(name, 1)
    doc = cluster.doc(name)
    assert doc is not None
    uid = doc["metadata"]["uid"]
    assert doc["metadata"]["finalizers"] == [FINALIZER]
    assert cluster.flink_state(first.status.job_id) == "RUNNING"
    lease = cluster.kubectl("get", "lease", lease_name(name), "-o", "json")
    assert json.loads(lease)["spec"]["holderIdentity"] == controller.holder

    listed = cluster.eddyline("list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    (item,) = json.loads(listed.stdout)["items"]
    assert item["status"]["jobId"] == first.status.job_id
    described = cluster.eddyline("describe", name)
    assert described.returncode == 0, described.stderr
    assert str(first.status.job_id) in described.stdout
    # What users see: the CRD's printer columns, kept as an artifact of the run.
    table = cluster.kubectl("get", "flinkjobs", "-o", "wide")
    assert name in table
    assert str(first.status.job_id) in table
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "kubectl-get-flinkjobs.txt").write_text(table)

    # Scale with eddyline --wait: in place where Flink runs the adaptive scheduler, else a
    # savepoint upgrade (decide.py chooses).
    scaled = cluster.eddyline("scale", name, "--parallelism", "2", "--wait", "--timeout", "240")
    assert scaled.returncode == 0, scaled.stderr + cluster.tail()
    rescaled = cluster.running(name, 2, timeout=5)
    assert rescaled.status.parallelism == 2
    in_place = rescaled.status.job_id == first.status.job_id

    # Any other change to the deployment (kubectl patch) is a savepoint upgrade.
    cluster.patch(name, {"spec": {"checkpointing": {"interval": "2s"}}})
    upgraded = cluster.running(name, 3)
    st = upgraded.status
    assert st.job_id != rescaled.status.job_id
    assert st.parallelism == 2
    assert st.upgrade_savepoint_path is not None
    assert [s.trigger for s in st.savepoints][-1] == "upgrade"
    assert cluster.flink_state(rescaled.status.job_id) == "FINISHED"

    # Suspend with kubectl; resume with eddyline.
    cluster.patch(name, {"spec": {"job": {"state": "suspended"}}})
    suspended = cluster.wait(
        name, lambda j: j is not None and j.status.lifecycle == Lifecycle.SUSPENDED, "suspend"
    )
    assert suspended is not None
    assert suspended.status.job_id is None
    assert cluster.flink_state(st.job_id) == "FINISHED"
    savepoint = suspended.status.upgrade_savepoint_path
    assert savepoint is not None
    resumed = cluster.eddyline("resume", name, "--wait", "--timeout", "240")
    assert resumed.returncode == 0, resumed.stderr + cluster.tail()
    running = cluster.running(name, 5, timeout=5)
    assert running.status.upgrade_savepoint_path == savepoint

    # Delete with a final savepoint: the finalizer keeps the FlinkJob until it is taken.
    cluster.kubectl("annotate", "flinkjob", name, f"{SAVEPOINT_ON_DELETE}=true")
    cluster.kubectl("delete", "flinkjob", name, "--wait=false")
    deleting = cluster.doc(name)
    assert deleting is not None, "gone before the controller could take the final savepoint"
    assert deleting["metadata"]["deletionTimestamp"]
    assert deleting["metadata"]["finalizers"] == [FINALIZER]
    cluster.wait(name, lambda j: j is None, "be deleted", timeout=120)
    # Stopped with the savepoint (not cancelled): it finishes once the savepoint is complete.
    deadline = time.monotonic() + 30
    while cluster.flink_state(running.status.job_id) != "FINISHED":
        assert time.monotonic() < deadline, cluster.flink_state(running.status.job_id)
        time.sleep(0.5)
    deleted = [e.message for e in cluster.events(name) if e.reason == "Deleted"]
    assert len(deleted) == 1
    assert deleted[0].startswith("final savepoint file:")
    final = Path(deleted[0].removeprefix("final savepoint file:"))
    assert final.exists(), final
    leases = cluster.kubectl("get", "leases", "-o", "name")
    assert lease_name(name) not in leases

    # Every decision and every action is an Event on the FlinkJob.
    events = cluster.events(name)
    reasons = [e.reason for e in events]
    for reason in ("Submitting", "Submit", "Deployed", "Upgrading", "StopWithSavepoint",
                   "Suspended", "Deleted"):  # fmt: skip
        assert reason in reasons, reasons
    # first run, upgrade, resume (and the scale, unless it was in place)
    assert reasons.count("Submit") == (3 if in_place else 4)
    assert ("Rescale" in reasons) == in_place
    for e in events:
        assert e.involved_object.uid == uid
        assert e.involved_object.kind == "FlinkJob"
        assert e.source.component == "eddyline-controller"


def test_status_writes_meet_resource_version_conflicts_on_the_real_api_server(
    cluster: Cluster,
) -> None:
    """No controller here: two stores and a user on one FlinkJob, so each conflict is certain."""
    name = "conflicted"
    ours, theirs = KubeStore(cluster.admin), KubeStore(cluster.admin)
    created = ours.apply(parse(smoke(cluster, name)))
    assert created.metadata.generation == 1

    # A user changes the FlinkJob between our read and our status write: written anyway, on
    # the new version, and the user's change is kept.
    read = ours.get(name)
    assert read is not None
    cluster.kubectl("label", "flinkjob", name, "team=ads")
    cluster.patch(name, {"spec": {"job": {"parallelism": 2}}})
    status = JobStatus(lifecycle=Lifecycle.DEPLOYING, observed_generation=1, error="mine")
    assert ours.write_status(name, status)
    assert ours.conflicts == 1
    now = cluster.job(name)
    assert now is not None
    assert now.status == status
    assert now.metadata.labels == {"team": "ads"}
    assert now.spec.job.parallelism == 2
    assert now.metadata.generation == 2

    # Another writer changed the status since we read it: ours is not written over it.
    assert theirs.get(name) is not None
    assert ours.get(name) is not None
    assert theirs.write_status(name, status.model_copy(update={"error": "theirs"}))
    assert not ours.write_status(name, status.model_copy(update={"error": "late"}))
    now = cluster.job(name)
    assert now is not None
    assert now.status.error == "theirs"
    cluster.admin.delete_job(name)  # no controller: nothing waits on its finalizer
    ours.forget(name)
    cluster.wait(name, lambda j: j is None, "be deleted", timeout=30)


def test_the_taskmanager_deployment_is_scaled_up_and_down_with_the_slots_the_jobs_need(
    cluster: Cluster, controller: KubeController, in_cluster: KubeTarget
) -> None:
    apps = client.AppsV1Api(cluster.kube.api_client)
    overview = cluster.flink.overview()
    registered = int(overview["taskmanagers"])
    labels = {"app": TASKMANAGERS}
    apps.create_namespaced_deployment(
        cluster.namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name=TASKMANAGERS),
            spec=client.V1DeploymentSpec(
                replicas=registered,  # as many as the local stack runs
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="tm", image="flink:2.2")]
                    ),
                ),
            ),
        ),
    )
    per = int(overview["slots-total"]) // registered
    needed = registered * per + 1  # one slot more than the TaskManagers have
    name = "too-wide"
    cluster.apply(smoke(cluster, name, job={"parallelism": needed}))

    def scaled() -> bool:
        scale = apps.read_namespaced_deployment_scale(TASKMANAGERS, cluster.namespace)
        return bool(scale.spec.replicas == registered + 1)

    deadline = time.monotonic() + 120
    while not scaled():
        assert time.monotonic() < deadline, f"not scaled; log:\n{cluster.tail()}"
        time.sleep(0.5)

    def ours() -> list[Any]:  # the ReplicaSet controller posts its own Events on the Deployment
        events = cluster.events(TASKMANAGERS)
        return [e for e in events if e.source.component == "eddyline-controller"]

    deadline = time.monotonic() + 30  # the Event is posted just after the scale
    while not ours():
        assert time.monotonic() < deadline, f"no ScaledUp Event; log:\n{cluster.tail()}"
        time.sleep(0.2)
    (event,) = ours()
    assert (event.reason, event.involved_object.kind) == ("ScaledUp", "Deployment")
    assert event.message == (
        f"{registered} → {registered + 1} replicas: the FlinkJobs want {needed} task slots, "
        f"{per} per TaskManager"
    )

    def ready() -> bool:  # the new replica's Pod comes up (kwok plays its kubelet)
        deployment = apps.read_namespaced_deployment(TASKMANAGERS, cluster.namespace)
        return bool(deployment.status.ready_replicas == registered + 1)

    deadline = time.monotonic() + 120
    while not ready():
        assert time.monotonic() < deadline, (
            "the second TaskManager Pod never turned ready:\n" + _pods_and_nodes(cluster, labels)
        )
        time.sleep(0.5)

    # Fewer slots wanted: after the delay, back to `registered` replicas. No TaskManager has
    # registered from these Pods (the local stack's run the tasks), so each holds no task; the
    # oldest goes first, marked with the pod-deletion-cost annotation, and the ReplicaSet
    # deletes it — by its own ranking it would delete the newest (ready for the shortest time).
    core = client.CoreV1Api(cluster.kube.api_client)
    selector = ",".join(f"{k}={v}" for k, v in labels.items())

    def pods() -> list[Any]:
        found = core.list_namespaced_pod(cluster.namespace, label_selector=selector).items
        return sorted(found, key=lambda p: (p.metadata.creation_timestamp, p.metadata.name))

    before = [p.metadata.name for p in pods()]
    oldest, newest = before[0], before[-1]
    cluster.patch(name, {"spec": {"job": {"parallelism": 1}}})

    def down() -> list[Any]:
        return [e for e in ours() if e.reason == "ScaledDown"]

    deadline = time.monotonic() + 120
    while not down():
        assert time.monotonic() < deadline, f"not scaled down; log:\n{cluster.tail()}"
        time.sleep(0.5)
    (event,) = down()
    assert event.message.startswith(f"{registered + 1} → {registered} replicas: ")
    assert event.message.endswith(f"; removing {oldest} (no tasks on them)")
    scale = apps.read_namespaced_deployment_scale(TASKMANAGERS, cluster.namespace)
    assert scale.spec.replicas == registered

    def settled() -> list[str]:  # Pods not being deleted
        return [p.metadata.name for p in pods() if p.metadata.deletion_timestamp is None]

    deadline = time.monotonic() + 60
    while len(settled()) != registered:
        assert time.monotonic() < deadline, "a Pod was never deleted:\n" + _pods_and_nodes(
            cluster, labels
        )
        time.sleep(0.5)
    assert oldest not in settled()
    assert newest in settled()

    # The Role grants what the controller uses and nothing more: it cannot delete FlinkJobs.
    sa = connect(in_cluster)
    try:
        with pytest.raises(KubeError) as refused:
            sa.delete_job(name)
        assert refused.value.status == 403
    finally:
        sa.close()


def _pods_and_nodes(cluster: Cluster, labels: dict[str, str]) -> str:
    """What a stuck Pod's state says: its phase, node and conditions, and the nodes' taints."""
    core = client.CoreV1Api(cluster.kube.api_client)
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    lines = []
    for pod in core.list_namespaced_pod(cluster.namespace, label_selector=selector).items:
        conditions = [f"{c.type}={c.status}" for c in pod.status.conditions or []]
        lines.append(f"pod {pod.metadata.name}: {pod.status.phase} on {pod.spec.node_name} "
                     f"{' '.join(conditions)}")  # fmt: skip
    for node in core.list_node().items:
        ready = [c.status for c in node.status.conditions or [] if c.type == "Ready"]
        taints = [f"{t.key}:{t.effect}" for t in node.spec.taints or []]
        lines.append(f"node {node.metadata.name}: Ready={ready} taints={taints}")
    lines += [f"component {c.name}: log {c.log}" for c in cluster.kube.components.values()]
    return "\n".join(lines)
