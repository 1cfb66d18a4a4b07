"""The test control plane itself: it stores objects, runs controllers, schedules Pods onto kwok
nodes that turn them Ready, serves CRDs with schema validation, enforces RBAC, and helm and
kubectl reach it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.k8s.envtest import Kube


def eventually(check: Callable[[], Any], timeout: float = 120.0, what: str = "") -> Any:
    """Poll until `check` returns a truthy value; fail with the last value or error."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except ApiException as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what or check}: last {last!r}")


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(kube.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def test_namespace_is_created_and_active(kube: Kube) -> None:
    core = client.CoreV1Api(kube.api_client)
    name = f"ns-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    got = core.read_namespace(name)
    assert got.metadata.name == name
    assert got.status.phase == "Active"
    # The namespace controller (kube-controller-manager) finalizes a deleted namespace.
    core.delete_namespace(name)

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as e:
            return e.status == 404
        return False

    eventually(gone, what=f"namespace {name} to be finalized and removed")


def test_deployment_pods_are_scheduled_on_kwok_nodes_and_turn_ready(
    kube: Kube, namespace: str
) -> None:
    apps = client.AppsV1Api(kube.api_client)
    core = client.CoreV1Api(kube.api_client)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1DeploymentSpec(
                replicas=3,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    # kwok never pulls or runs the image: any name is fine.
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="web", image="example.invalid/web:1")]
                    ),
                ),
            ),
        ),
    )

    def ready() -> bool:
        status = apps.read_namespaced_deployment_status("web", namespace).status
        return (status.ready_replicas or 0) == 3 and (status.available_replicas or 0) == 3

    eventually(ready, what="Deployment web to have 3 ready replicas")
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.spec.node_name in kube.nodes  # placed by kube-scheduler
        assert pod.status.phase == "Running"  # run by kwok
        assert pod.status.pod_ip
        assert any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
        # The ServiceAccount admission plugin and the token controller did their part.
        assert pod.spec.service_account_name == "default"

    # Scaling down removes Pods (kwok finishes the deletion a kubelet would).
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 1}})

    def one_pod() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        return len(pods) == 1

    eventually(one_pod, what="Deployment web to scale down to one Pod")


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.envtest.eddyline.dev"},
    "spec": {
        "group": "envtest.eddyline.dev",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_is_served_and_validates_custom_resources(kube: Kube, namespace: str) -> None:
    ext = client.ApiextensionsV1Api(kube.api_client)
    ext.create_custom_resource_definition(WIDGET_CRD)

    def established() -> bool:
        crd = ext.read_custom_resource_definition("widgets.envtest.eddyline.dev")
        conditions = crd.status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    eventually(established, what="the Widget CRD to be Established")
    custom = client.CustomObjectsApi(kube.api_client)
    args = ("envtest.eddyline.dev", "v1", namespace, "widgets")

    def create(obj: dict[str, Any]) -> Any:
        return custom.create_namespaced_custom_object(*args, obj)

    widget = {
        "apiVersion": "envtest.eddyline.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 3},
    }
    # Right after Established the discovery cache may lag for a moment: retry a 404.
    eventually(lambda: create(widget), timeout=30, what="creating Widget w1")
    got = custom.get_namespaced_custom_object(*args, "w1")
    assert got["spec"] == {"size": 3}
    assert got["metadata"]["generation"] == 1

    custom.patch_namespaced_custom_object_status(*args, "w1", {"status": {"phase": "Ready"}})
    got = custom.get_namespaced_custom_object(*args, "w1")
    assert got["status"] == {"phase": "Ready"}
    assert got["metadata"]["generation"] == 1  # status writes do not bump the generation

    bad = {**widget, "metadata": {"name": "w2"}, "spec": {"size": 0}}
    with pytest.raises(ApiException) as err:
        create(bad)
    assert err.value.status == 422
    assert "spec.size" in str(err.value.body)

    out = kube.kubectl_run("get", "widgets", "-n", namespace, "-o", "name").stdout
    assert out.split() == ["widget.envtest.eddyline.dev/w1"]


def test_rbac_is_enforced(kube: Kube, namespace: str) -> None:
    """--authorization-mode=RBAC: a ServiceAccount may do only what a binding grants."""
    core = client.CoreV1Api(kube.api_client)
    rbac = client.RbacAuthorizationV1Api(kube.api_client)
    authz = client.AuthorizationV1Api(kube.api_client)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    user = f"system:serviceaccount:{namespace}:reader"

    def can_list_pods() -> bool:
        review = authz.create_subject_access_review(
            client.V1SubjectAccessReview(
                spec=client.V1SubjectAccessReviewSpec(
                    user=user,
                    groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
                    resource_attributes=client.V1ResourceAttributes(
                        namespace=namespace, verb="list", resource="pods"
                    ),
                )
            )
        )
        return bool(review.status.allowed)

    assert not can_list_pods()
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader-reads-pods"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader")],
        ),
    )
    eventually(can_list_pods, timeout=30, what="the RoleBinding to take effect")

    # The same, for real requests made with the ServiceAccount's own token.
    sa_client = config.new_client_from_config(
        config_file=str(kube.service_account_kubeconfig(namespace, "reader"))
    )
    try:
        as_reader = client.CoreV1Api(sa_client)
        assert as_reader.list_namespaced_pod(namespace).items == []
        with pytest.raises(ApiException) as err:
            as_reader.list_namespaced_secret(namespace)
        assert err.value.status == 403
    finally:
        sa_client.close()


def test_kubectl_sees_the_kwok_nodes(kube: Kube) -> None:
    out = kube.kubectl_run("get", "nodes", "-o", "name").stdout.split()
    assert sorted(out) == sorted(f"node/{n}" for n in kube.nodes)


def test_helm_runs_against_the_cluster(kube: Kube, namespace: str) -> None:
    version = kube.helm_run("version", "--short").stdout.strip()
    assert version.startswith("v3."), version
    # helm reads the fixture's kubeconfig (KUBECONFIG in kube.env): a fresh namespace has no
    # releases, and a namespace that does not exist is no error for `helm list`.
    assert kube.helm_run("list", "-n", namespace, "-q").stdout.strip() == ""
    server = kube.helm_run("version", "--template", "{{.Version}}").stdout
    assert server.startswith("v3.")
