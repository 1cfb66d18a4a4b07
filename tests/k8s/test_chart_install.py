"""The chart against a real API server (the session `kube` fixture: etcd + kube-apiserver +
controller-manager + scheduler + kwok nodes): every values file's manifests pass server-side
dry-run, `helm install --wait` brings the release up and `helm test` passes, the FlinkJob CRD
validates custom resources by the schema generated from the spec model, and the controller's
ServiceAccount may do exactly what the controller needs (SubjectAccessReviews)."""

from __future__ import annotations

import json
import re
import select
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from deploy import paths, spec
from deploy.kube import crd
from deploy.kube.rbac import CONTROLLER_RULES
from tests.faultproxy import FaultProxy
from tests.integration.cli import EDDYLINE, stop_like_ctrl_c
from tests.integration.stacks import RunningStack
from tests.k8s.chart import CHART, RELEASE, ROOT, VALUES_FILES, ci_values, render, scenario
from tests.k8s.envtest import Kube

INSTALL_VALUES = ci_values("install")
TM = f"{RELEASE}-taskmanager"
CONTROLLER_SA = f"{RELEASE}-controller"
FLINK_SA = f"{RELEASE}-flink"  # the JobManager's (and the helm test's)
# Kinds of third-party APIs the test server does not serve; every other kind must dry-run.
NOT_SERVED = {("monitoring.coreos.com/v1", "ServiceMonitor")}


@dataclass
class Installed:
    namespace: str
    notes: str
    install_seconds: float


@pytest.fixture(scope="module")
def installed(kube: Kube) -> Iterator[Installed]:
    """The chart installed with helm/eddyline/ci/install-values.yaml, once for this module."""
    ns = f"eddyline-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    core.create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="kafka-credentials"),
            string_data={"KAFKA_SASL_USERNAME": "eddyline", "KAFKA_SASL_PASSWORD": "secret"},
        ),
    )
    core.create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="flink-state-s3"),
            string_data={"AWS_ACCESS_KEY_ID": "eddyline", "AWS_SECRET_ACCESS_KEY": "secret"},
        ),
    )
    started = time.monotonic()
    result = kube.helm_run(
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        ns,
        "--values",
        str(INSTALL_VALUES),
        "--wait",
        "--timeout",
        "180s",
    )
    artifacts = paths.PROJECT_ROOT / "test-artifacts" / "k8s"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "helm-install.txt").write_text(result.stdout)
    try:
        yield Installed(ns, result.stdout, time.monotonic() - started)
    finally:
        kube.helm_run("uninstall", RELEASE, "--namespace", ns, "--wait", check=False)
        core.delete_namespace(ns)


# -- server-side dry-run -----------------------------------------------------------------------


def served_by(kube: Kube, api_version: str, kind: str) -> bool:
    """Whether the API server serves `kind` at `api_version`, by its discovery document."""
    path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    found = kube.kubectl_run("get", "--raw", path, check=False)
    if found.returncode != 0:
        return False  # the group/version is not served at all
    return any(r["kind"] == kind for r in json.loads(found.stdout).get("resources", []))


@pytest.mark.parametrize("values_file", VALUES_FILES, ids=scenario)
def test_rendered_manifests_pass_server_side_dry_run(kube: Kube, values_file: Path) -> None:
    ns = f"dry-{scenario(values_file)}-{uuid.uuid4().hex[:4]}"
    core = client.CoreV1Api(kube.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        docs = render(values_file, crds=True, namespace=ns)
        served = [d for d in docs if (d["apiVersion"], d["kind"]) not in NOT_SERVED]
        kinds = {(d["apiVersion"], d["kind"]) for d in docs}
        skipped = kinds - {(d["apiVersion"], d["kind"]) for d in served}
        # What is left out is exactly what this API server's discovery does not serve: a kind
        # skipped though served, or a new unserved kind slipping through, fails here.
        unserved = {k for k in kinds if not served_by(kube, *k)}
        assert skipped == unserved, f"left out {skipped}; the server does not serve {unserved}"
        result = kube.kubectl_run(
            "apply",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
            input_text=yaml.safe_dump_all(served),
        )
        applied = result.stdout.lower().splitlines()
        for doc in served:
            kind, name = doc["kind"].lower(), doc["metadata"]["name"]
            assert any(
                re.match(rf"{kind}(\.[a-z0-9.]+)?/{re.escape(name)} ", line) for line in applied
            ), f"{kind}/{name} not applied:\n{result.stdout}"
    finally:
        core.delete_namespace(ns)


# -- helm install, helm test --------------------------------------------------------------------


def test_helm_install_waits_until_every_deployment_is_ready(
    kube: Kube, installed: Installed
) -> None:
    apps = client.AppsV1Api(kube.api_client)
    deployments = {
        d.metadata.name: d for d in apps.list_namespaced_deployment(installed.namespace).items
    }
    assert set(deployments) == {f"{RELEASE}-jobmanager", TM, f"{RELEASE}-controller"}
    for name, d in deployments.items():
        assert d.status.ready_replicas == d.spec.replicas, name
    assert deployments[TM].spec.replicas == 2
    pods = client.CoreV1Api(kube.api_client).list_namespaced_pod(installed.namespace).items
    assert {p.spec.node_name for p in pods} <= set(kube.nodes)
    assert installed.install_seconds < 120, f"helm install took {installed.install_seconds:.0f}s"


def test_install_notes_tell_how_to_open_the_dashboard_and_submit(installed: Installed) -> None:
    notes = installed.notes
    assert f"port-forward service/{RELEASE}-jobmanager 8081:rest" not in notes  # ingress is on
    assert "http://flink.test.example/" in notes
    assert "kind: FlinkJob" in notes
    assert f"kubectl -n {installed.namespace} get flinkjobs" in notes
    assert "State: checkpoints, savepoints and HA metadata in s3://flink-state/eddyline/" in notes
    assert "JobManager high availability is on" in notes
    assert "WARNING" not in notes


def test_notes_of_an_ephemeral_release_say_what_it_loses(kube: Kube) -> None:
    out = kube.helm_run(
        "install", RELEASE, str(CHART), "--dry-run=client", "--set", "flink.state.ephemeral=true"
    ).stdout
    notes = " ".join(out.split("NOTES:", 1)[1].split())
    assert "WARNING: flink.state.ephemeral is on" in notes
    assert "lost when any pod restarts" in notes
    assert "a JobManager restart loses every running job" in notes
    assert "high availability is on" not in notes


def test_install_without_a_state_location_fails_saying_what_to_set(kube: Kube) -> None:
    result = kube.helm_run("install", RELEASE, str(CHART), "--dry-run=client", check=False)
    assert result.returncode != 0
    for value in ("flink.state.s3.bucket", "flink.state.persistence", "flink.state.ephemeral"):
        assert value in result.stderr, result.stderr


def test_helm_test_passes(kube: Kube, installed: Installed) -> None:
    started = time.monotonic()
    result = kube.helm_run("test", RELEASE, "--namespace", installed.namespace, "--timeout", "120s")
    assert f"TEST SUITE:     {RELEASE}-test" in result.stdout
    assert "Phase:          Succeeded" in result.stdout
    assert time.monotonic() - started < 90


def test_the_release_lists_what_it_installed(kube: Kube, installed: Installed) -> None:
    manifest = kube.helm_run("get", "manifest", RELEASE, "--namespace", installed.namespace)
    kinds = {d["kind"] for d in yaml.safe_load_all(manifest.stdout) if d}
    assert kinds >= {
        "Deployment",
        "Service",
        "ConfigMap",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
    }


# -- the FlinkJob CRD -----------------------------------------------------------------------------


def custom(kube: Kube) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube.api_client)


def create_job(kube: Kube, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = custom(kube).create_namespaced_custom_object(
        crd.GROUP, crd.VERSION, ns, crd.PLURAL, body, field_validation="Strict"
    )
    return created


def ledger() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "jobs" / "specs" / "ledger.yaml").read_text())
    return data


def test_crd_is_established(kube: Kube, installed: Installed) -> None:
    ext = client.ApiextensionsV1Api(kube.api_client)
    got = ext.read_custom_resource_definition(crd.CRD_NAME)
    conditions = {c.type: c.status for c in got.status.conditions}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert conditions.get("NonStructuralSchema", "False") == "False"


def test_a_valid_spec_round_trips_through_the_api_server(kube: Kube, installed: Installed) -> None:
    body = ledger()
    body["metadata"]["name"] = "ledger-roundtrip"
    created = create_job(kube, installed.namespace, body)
    # The API server's defaults fill in the objects the spec has (not absent ones: autoscaler);
    # the model reads it back as the same spec.
    assert "state" not in body["spec"]["job"]
    assert created["spec"]["job"]["state"] == "running"
    assert created["spec"]["checkpointing"]["timeout"] == "10m"
    assert created["spec"]["restartPolicy"]["maxBackoff"] == "5m"
    assert "autoscaler" not in created["spec"]
    assert spec.parse(created).spec == spec.parse(body).spec


def test_status_written_by_the_model_survives_the_schema(kube: Kube, installed: Installed) -> None:
    """Nothing the model writes into status is pruned: the status schema is the model's."""
    body = ledger()
    body["metadata"]["name"] = "ledger-status"
    created = create_job(kube, installed.namespace, body)
    job = spec.FlinkJob.model_validate({k: v for k, v in created.items() if k != "status"})
    status = spec.JobStatus(
        job_id="0123456789abcdef0123456789abcdef",
        flink_state="RUNNING",
        lifecycle=spec.Lifecycle.RUNNING,
        parallelism=2,
        last_reconciled_spec=job.spec,
        observed_generation=1,
        savepoints=[spec.SavepointInfo(path="file:///sp/1", time=1, trigger="upgrade")],
        conditions=[spec.Condition(type="Ready", status="True", reason="Running")],
        events=[spec.Event(time=2, reason="Submitted", message="job submitted")],
        operation=spec.Operation(
            kind="upgrade",
            step="stopping",
            started_at=3,
            trigger="upgrade",
            upgrade_mode=spec.UpgradeMode.savepoint,
            spec=job.spec.with_job(parallelism=2),
        ),
        autoscaler={"lastDecision": {"vertex": "a", "busy": 0.93, "rates": [1, 2]}},
    )
    current = dict(created)
    current["status"] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    written = custom(kube).replace_namespaced_custom_object_status(
        crd.GROUP, crd.VERSION, installed.namespace, crd.PLURAL, "ledger-status", current
    )
    assert spec.FlinkJob.model_validate(written).status == status
    # The status subresource: a write of the main resource leaves status alone.
    written["status"] = {"lifecycle": "FAILED"}
    after = custom(kube).replace_namespaced_custom_object(
        crd.GROUP, crd.VERSION, installed.namespace, crd.PLURAL, "ledger-status", written
    )
    assert after["status"]["lifecycle"] == "RUNNING"


def test_status_with_nulls_is_accepted(kube: Kube, installed: Installed) -> None:
    """Every field the model may leave empty is nullable, enums included."""
    body = ledger()
    body["metadata"]["name"] = "ledger-nulls"
    created = create_job(kube, installed.namespace, body)
    status = spec.JobStatus(
        operation=spec.Operation(kind="submit", step="submitting", started_at=1),
    )
    created["status"] = status.model_dump(mode="json", by_alias=True)  # None as null
    assert created["status"]["operation"]["trigger"] is None
    assert created["status"]["operation"]["upgradeMode"] is None
    written = custom(kube).replace_namespaced_custom_object_status(
        crd.GROUP, crd.VERSION, installed.namespace, crd.PLURAL, "ledger-nulls", created
    )
    assert spec.FlinkJob.model_validate(written).status == status
    # ...while a value outside the choices is still refused.
    written["status"]["operation"]["trigger"] = "whenever"
    with pytest.raises(ApiException) as err:
        custom(kube).replace_namespaced_custom_object_status(
            crd.GROUP, crd.VERSION, installed.namespace, crd.PLURAL, "ledger-nulls", written
        )
    assert err.value.status == 422
    assert "status.operation.trigger" in json.loads(err.value.body)["message"]


def test_printer_columns_show_lifecycle_parallelism_and_job_id(
    kube: Kube, installed: Installed
) -> None:
    body = ledger()
    body["metadata"]["name"] = "ledger-columns"
    created = create_job(kube, installed.namespace, body)
    created["status"] = {"lifecycle": "STABLE", "parallelism": 3, "jobId": "feedbeef"}
    custom(kube).replace_namespaced_custom_object_status(
        crd.GROUP, crd.VERSION, installed.namespace, crd.PLURAL, "ledger-columns", created
    )
    out = kube.kubectl_run(
        "get", "fj", "ledger-columns", "--namespace", installed.namespace, "-o", "wide"
    ).stdout
    header, row = out.splitlines()[:2]
    for column in ("NAME", "LIFECYCLE", "PARALLELISM", "JOB ID", "DESIRED", "STATE", "AGE"):
        assert column in header, header
    assert row.split()[:4] == ["ledger-columns", "STABLE", "3", "feedbeef"]


def broken(change: Any) -> dict[str, Any]:
    body = ledger()
    body["metadata"]["name"] = f"bad-{uuid.uuid4().hex[:6]}"
    change(body)
    return body


def _set(path: str, value: Any) -> Any:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = body
        for p in parents:
            node = node.setdefault(p, {})
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return change


_DELETE = object()


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (_set("spec.job.parallelism", 0), "spec.job.parallelism"),
        (_set("spec.job.parallelism", 2000), "spec.job.parallelism"),
        (_set("spec.job.parallelism", "two"), "spec.job.parallelism"),
        (_set("spec.job.upgradeMode", "sometimes"), "spec.job.upgradeMode"),
        (_set("spec.job.entry", _DELETE), "spec.job.entry"),
        (_set("spec", _DELETE), "spec"),
        (_set("spec.checkpointing.interval", "soon"), "spec.checkpointing.interval"),
        (_set("spec.checkpointing.mode", "EVENTUALLY"), "spec.checkpointing.mode"),
        (_set("spec.autoscaler.targetUtilization", 0), "spec.autoscaler.targetUtilization"),
        (_set("spec.savepoints.maxCount", 0), "spec.savepoints.maxCount"),
        (_set("spec.job.args", "--not-a-list"), "spec.job.args"),
        (_set("spec.job.paralelism", 2), 'unknown field "spec.job.paralelism"'),
        (_set("metadata.name", "ledger.v2"), "metadata.name"),
        (_set("metadata.name", "l" * 64), "metadata.name"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_invalid_flinkjobs_are_rejected_by_the_api_server(
    kube: Kube, installed: Installed, change: Any, complaint: str
) -> None:
    body = broken(change)
    with pytest.raises(ApiException) as err:
        create_job(kube, installed.namespace, body)
    assert err.value.status in (400, 422), err.value.body
    message = json.loads(err.value.body)["message"]
    assert complaint in message, message
    # ...and the model refuses the same document: the API server and the CLI agree.
    with pytest.raises(spec.SpecError):
        spec.parse(body)


# -- the controller's permissions ---------------------------------------------------------------


def can(
    kube: Kube,
    user_ns: str,
    sa: str,
    verb: str,
    group: str,
    resource: str,
    namespace: str | None,
    name: str | None = None,
) -> bool:
    resource, _, subresource = resource.partition("/")
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{user_ns}:{sa}",
            groups=["system:serviceaccounts", f"system:serviceaccounts:{user_ns}"],
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace,
                verb=verb,
                group=group,
                resource=resource,
                subresource=subresource or None,
                name=name,
            ),
        )
    )
    answer = client.AuthorizationV1Api(kube.api_client).create_subject_access_review(review)
    return bool(answer.status.allowed)


NEEDED = [
    ("get", "eddyline.dev", "flinkjobs", None),
    ("list", "eddyline.dev", "flinkjobs", None),
    ("watch", "eddyline.dev", "flinkjobs", None),
    ("update", "eddyline.dev", "flinkjobs", None),
    ("patch", "eddyline.dev", "flinkjobs", None),
    ("update", "eddyline.dev", "flinkjobs/status", None),
    ("patch", "eddyline.dev", "flinkjobs/status", None),
    ("update", "eddyline.dev", "flinkjobs/finalizers", None),
    ("create", "", "events", None),
    ("patch", "", "events", None),
    ("create", "events.k8s.io", "events", None),
    ("get", "coordination.k8s.io", "leases", None),
    ("create", "coordination.k8s.io", "leases", None),
    ("update", "coordination.k8s.io", "leases", None),
    ("delete", "coordination.k8s.io", "leases", None),
    ("get", "apps", "deployments/scale", TM),
    ("patch", "apps", "deployments/scale", TM),
]


@pytest.mark.parametrize(("verb", "group", "resource", "name"), NEEDED)
def test_controller_may_do_what_it_needs(
    kube: Kube, installed: Installed, verb: str, group: str, resource: str, name: str | None
) -> None:
    ns = installed.namespace
    assert can(kube, ns, CONTROLLER_SA, verb, group, resource, ns, name)


def test_controller_may_make_every_request_the_kubernetes_mode_makes(
    kube: Kube, installed: Installed
) -> None:
    """deploy/kube/rbac.py lists the requests the controller's code makes: all allowed."""
    ns = installed.namespace
    for rule in CONTROLLER_RULES:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                name = TM if resource.startswith("deployments") else None
                for verb in rule["verbs"]:
                    assert can(kube, ns, CONTROLLER_SA, verb, group, resource, ns, name), (
                        f"the chart's Role does not allow {verb} {group}/{resource}"
                    )


REFUSED = [
    ("get", "", "secrets", None),
    ("list", "", "secrets", None),
    ("delete", "", "secrets", None),
    ("create", "eddyline.dev", "flinkjobs", None),
    ("delete", "eddyline.dev", "flinkjobs", None),
    ("deletecollection", "eddyline.dev", "flinkjobs", None),
    ("patch", "apps", "deployments", TM),
    ("update", "apps", "deployments", TM),
    ("patch", "apps", "deployments/scale", f"{RELEASE}-jobmanager"),
    ("patch", "apps", "deployments/scale", "someone-else"),
    ("create", "", "pods", None),
    ("create", "", "pods/exec", None),
    ("get", "", "configmaps", None),
    ("create", "rbac.authorization.k8s.io", "rolebindings", None),
    ("update", "rbac.authorization.k8s.io", "roles", None),
    ("create", "", "serviceaccounts/token", CONTROLLER_SA),
    ("list", "coordination.k8s.io", "leases", None),
]


@pytest.mark.parametrize(("verb", "group", "resource", "name"), REFUSED)
def test_controller_is_refused_everything_else(
    kube: Kube, installed: Installed, verb: str, group: str, resource: str, name: str | None
) -> None:
    ns = installed.namespace
    assert not can(kube, ns, CONTROLLER_SA, verb, group, resource, ns, name)


@pytest.mark.parametrize(
    ("verb", "group", "resource", "namespace"),
    [
        ("list", "eddyline.dev", "flinkjobs", None),  # all namespaces
        ("watch", "eddyline.dev", "flinkjobs", None),
        ("update", "eddyline.dev", "flinkjobs", "default"),  # another namespace
        ("create", "", "events", "kube-system"),
        ("create", "", "namespaces", None),
        ("update", "apiextensions.k8s.io", "customresourcedefinitions", None),
        ("create", "rbac.authorization.k8s.io", "clusterrolebindings", None),
        ("patch", "", "nodes", None),
    ],
)
def test_controller_has_no_cluster_wide_or_cross_namespace_rights(
    kube: Kube, installed: Installed, verb: str, group: str, resource: str, namespace: str | None
) -> None:
    assert not can(kube, installed.namespace, CONTROLLER_SA, verb, group, resource, namespace)


@pytest.mark.parametrize(
    ("verb", "group", "resource"),
    [
        ("get", "eddyline.dev", "flinkjobs"),
        ("list", "", "pods"),
        ("get", "", "secrets"),
        ("create", "", "events"),
        ("deletecollection", "", "configmaps"),
        ("create", "coordination.k8s.io", "leases"),
    ],
)
def test_flink_pods_identity_may_do_nothing_but_ha_configmaps(
    kube: Kube, installed: Installed, verb: str, group: str, resource: str
) -> None:
    ns = installed.namespace
    assert not can(kube, ns, FLINK_SA, verb, group, resource, ns)


@pytest.mark.parametrize("verb", ["get", "list", "watch", "create", "update", "patch", "delete"])
def test_flink_pods_identity_keeps_ha_configmaps_of_its_namespace_only(
    kube: Kube, installed: Installed, verb: str
) -> None:
    """Kubernetes HA (on in install.yaml): leader election and job metadata in ConfigMaps."""
    ns = installed.namespace
    assert can(kube, ns, FLINK_SA, verb, "", "configmaps", ns)
    assert not can(kube, ns, FLINK_SA, verb, "", "configmaps", "kube-system")
    # The TaskManagers (users' code runs there) only read the leader's address.
    reads = verb in ("get", "list", "watch")
    assert can(kube, ns, TM, verb, "", "configmaps", ns) is reads
    assert not can(kube, ns, TM, "get", "", "secrets", ns)


def test_eddyline_dashboard_forwards_a_local_port_to_the_jobmanager_service(
    kube: Kube, installed: Installed, stack: RunningStack
) -> None:
    """`eddyline dashboard --kube` runs `kubectl port-forward` to the release's JobManager
    Service: through the real API server to the Pod's kubelet, which is kwok here — it hands
    the Pod's port 8081 to 127.0.0.1:kube.forward_port. A proxy there passes each request on to
    the test stack's Flink, standing in for the JobManager container kwok does not run."""
    with FaultProxy(stack.flink_url, port=kube.forward_port) as flink:
        command = [str(EDDYLINE), "dashboard", "--kube", "--namespace", installed.namespace]
        command += ["--kubeconfig", str(kube.kubeconfig), "-o", "json"]
        env = {**kube.env, "EDDYLINE_KUBECTL": str(kube.kubectl)}
        with subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        ) as proc:
            assert proc.stdout is not None
            assert proc.stderr is not None
            try:
                ready, _, _ = select.select([proc.stdout], [], [], 120)
                line = proc.stdout.readline() if ready else ""
                if not line:
                    proc.kill()
                    pytest.fail(f"no address printed; stderr:\n{proc.stderr.read()}")
                shown = json.loads(line)
                assert f"service/{RELEASE}-jobmanager" in shown["portForward"]
                assert f"--namespace {installed.namespace}" in shown["portForward"]
                url = shown["url"]
                with httpx.Client(timeout=30) as http:
                    forwarded = http.get(f"{url}/overview").json()
                    direct = http.get(f"{stack.flink_url}/overview").json()
                    assert forwarded["flink-version"] == direct["flink-version"]
                    assert forwarded["taskmanagers"] == direct["taskmanagers"]
                    page = http.get(f"{url}/")  # the Web UI itself
                    assert page.status_code == 200
                    assert "<title>Apache Flink Web Dashboard</title>" in page.text
                assert [e.path for e in flink.exchanges()][:2] == ["/overview", "/"]
            finally:
                code = stop_like_ctrl_c(proc)  # as Ctrl-C: the forward ends, the command too
                stderr = proc.stderr.read()
    assert code == 0, stderr
