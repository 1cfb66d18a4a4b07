"""Last of the release's tests (after test_chart_on_node.py, test_chart_own_job.py,
test_chart_secrets.py and test_chart_state.py; pytest runs the modules in name order):
`helm uninstall` removes everything the chart made. What it leaves on purpose is checked too:
Flink's HA ConfigMaps (a reinstall under the same name resumes their jobs) and the state in the
bucket (savepoints outlive the release)."""

from __future__ import annotations

import time

from tests.cluster.conftest import Release
from tests.k8s.chart import RELEASE


def test_helm_uninstall_removes_everything_it_created(release: Release) -> None:
    kube = release.kube
    kube.helm_run(
        "uninstall", RELEASE, "--namespace", release.namespace, "--wait", "--timeout", "180s"
    )
    # Everything the chart made, but Pods: those are deleted by the garbage collector after
    # their ReplicaSets, and awaited below.
    kinds = (
        "deployments,replicasets,services,configmaps,secrets,serviceaccounts,roles,rolebindings,"
        "poddisruptionbudgets,networkpolicies,ingresses,jobs"
    )
    left = release.kubectl(
        "get", kinds, "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name"
    )
    assert left.strip() == ""
    deadline = time.monotonic() + 180
    pods = release.kubectl("get", "pods", "-o", "name")
    while pods.strip() and time.monotonic() < deadline:
        time.sleep(2)
        pods = release.kubectl("get", "pods", "-o", "name")
    assert pods.strip() == "", f"pods left after uninstall: {pods}"
    # Left on purpose, as NOTES.txt says: Flink's HA ConfigMaps (Flink's labels, not Helm's) and
    # the state in the bucket.
    ha = release.kubectl(
        "get", "configmaps", "-l", f"app={RELEASE},type=flink-native-kubernetes", "-o", "name"
    )
    assert f"configmap/{RELEASE}-cluster-config-map" in ha.split(), ha
    assert release.s3.keys(f"eddyline/{release.namespace}/{RELEASE}/savepoints/")
