"""The job commands with --kube, against an in-memory API server put where the cluster would be
(tests/unit/fake_kube.py): they write FlinkJob resources, never the local store; and the
authentication choices of deploy/kube/client.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from deploy.cli.app import app
from deploy.controller.store import SAVEPOINT_ON_DELETE
from deploy.kube import client as kube_client
from deploy.kube import wiring as kube_wiring
from deploy.kube.api import KubeError, RestApi
from deploy.kube.client import KubeTarget, connect
from deploy.kube.store import FINALIZER, KubeStore
from deploy.settings import StackSettings
from deploy.spec import JobStatus, Lifecycle
from tests.unit.fake_kube import FakeKube

runner = CliRunner()
GOOD = """\
apiVersion: eddyline.dev/v1alpha1
kind: FlinkJob
metadata:
  name: ledger
spec:
  job:
    entry: jobs.not_here_but_on_the_cluster
    args: [--orders-topic, orders]
"""


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    fake = FakeKube("flink")
    targets: list[KubeTarget] = []

    def store(target: KubeTarget) -> KubeStore:
        targets.append(target)
        return KubeStore(fake)

    monkeypatch.setattr(kube_wiring, "store", store)
    fake.targets = targets  # type: ignore[attr-defined]
    return fake


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--state-dir", str(tmp_path / "state")])
    return result.exit_code, result.stdout, result.stderr


def test_submit_kube_creates_the_resource_and_not_a_local_row(
    kube: FakeKube, tmp_path: Path
) -> None:
    spec = tmp_path / "ledger.yaml"
    spec.write_text(GOOD)
    code, out, err = run(
        tmp_path, "submit", str(spec), "--kube", "-n", "flink", "--context", "prod"
    )
    assert code == 0, err
    assert "flinkjob/ledger created (generation 1)" in out
    doc = kube.jobs["ledger"]
    assert doc["metadata"]["finalizers"] == [FINALIZER]
    assert doc["spec"]["job"]["entry"] == "jobs.not_here_but_on_the_cluster"
    (target,) = kube.targets  # type: ignore[attr-defined]
    assert (target.namespace, target.context, target.kubeconfig) == ("flink", "prod", None)
    assert not StackSettings(state_dir=tmp_path / "state").controller_db.exists()

    code, out, _ = run(tmp_path, "submit", str(spec), "--kube")
    assert "flinkjob/ledger unchanged (generation 1)" in out
    spec.write_text(GOOD.replace("args:", "parallelism: 2\n    args:"))
    code, out, _ = run(tmp_path, "submit", str(spec), "--kube")
    assert "flinkjob/ledger configured (generation 2)" in out


def test_an_invalid_spec_is_refused_before_the_cluster_is_asked(
    kube: FakeKube, tmp_path: Path
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(GOOD.replace("name: ledger", "name: Ledger"))
    code, _, err = run(tmp_path, "submit", str(spec), "--kube")
    assert code == 2
    assert "metadata.name" in err
    assert kube.jobs == {}


def test_list_describe_scale_suspend_resume_savepoint_and_delete_with_kube(
    kube: FakeKube, tmp_path: Path
) -> None:
    spec = tmp_path / "ledger.yaml"
    spec.write_text(GOOD)
    assert run(tmp_path, "submit", str(spec), "--kube")[0] == 0
    store = KubeStore(kube)
    store.get("ledger")
    store.write_status(
        "ledger", JobStatus(job_id="f" * 32, lifecycle=Lifecycle.RUNNING, observed_generation=1)
    )

    code, out, _ = run(tmp_path, "list", "--kube", "-o", "json")
    assert code == 0
    (item,) = json.loads(out)["items"]
    assert item["status"]["lifecycle"] == "RUNNING"
    code, out, _ = run(tmp_path, "describe", "ledger", "--kube")
    assert code == 0
    assert "f" * 32 in out
    assert "Dashboard:" in out
    code, out, _ = run(tmp_path, "describe", "ledger", "--kube", "-o", "yaml")
    assert yaml.safe_load(out)["metadata"]["name"] == "ledger"

    assert run(tmp_path, "scale", "ledger", "--parallelism", "3", "--kube")[0] == 0
    assert kube.jobs["ledger"]["spec"]["job"]["parallelism"] == 3
    assert run(tmp_path, "suspend", "ledger", "--kube")[0] == 0
    assert kube.jobs["ledger"]["spec"]["job"]["state"] == "suspended"
    assert run(tmp_path, "resume", "ledger", "--kube")[0] == 0
    assert kube.jobs["ledger"]["spec"]["job"]["state"] == "running"
    assert run(tmp_path, "savepoint", "ledger", "--kube")[0] == 0
    assert kube.jobs["ledger"]["spec"]["savepointTriggerNonce"] == 1
    assert kube.jobs["ledger"]["metadata"]["generation"] == 5

    code, out, _ = run(tmp_path, "delete", "ledger", "--savepoint", "--kube")
    assert code == 0
    assert "flinkjob/ledger deletion requested" in out
    meta = kube.jobs["ledger"]["metadata"]  # the finalizer holds it for the controller
    assert meta["deletionTimestamp"]
    assert meta["annotations"][SAVEPOINT_ON_DELETE] == "true"


def test_kube_flags_without_kube_are_refused(kube: FakeKube, tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "list", "--namespace", "flink")
    assert code == 2
    assert "--namespace only go with --kube" in err


def test_an_unreachable_cluster_is_one_line_and_exit_1(kube: FakeKube, tmp_path: Path) -> None:
    kube.down = True
    code, _, err = run(tmp_path, "list", "--kube")
    assert code == 1
    assert "Kubernetes API at https://fake unreachable" in err
    assert "Traceback" not in err


def test_a_missing_job_is_named(kube: FakeKube, tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "describe", "nope", "--kube")
    assert code == 1
    assert "no job named 'nope'" in err
    code, _, err = run(tmp_path, "scale", "nope", "--parallelism", "2", "--kube")
    assert code == 1
    assert "no job named 'nope'" in err


# -- authentication ----------------------------------------------------------------------------


def kubeconfig(path: Path, namespace: str | None = None) -> Path:
    context: dict[str, str] = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://10.1.2.3:6443"}}],
                "users": [{"name": "u", "user": {"token": "s3cret"}}],
                "contexts": [
                    {"name": "one", "context": context},
                    {"name": "two", "context": {"cluster": "c", "user": "u", "namespace": "b"}},
                ],
                "current-context": "one",
            }
        )
    )
    return path


def bearer(api: RestApi) -> str:
    """The Authorization header the client sends."""
    return str(api.api_client.configuration.auth_settings()["BearerToken"]["value"])


def test_a_kubeconfig_gives_the_server_credentials_and_namespace(tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "config", namespace="a")
    api = connect(KubeTarget(kubeconfig=config))
    try:
        assert api.namespace == "a"
        assert api.api_client.configuration.host == "https://10.1.2.3:6443"
        assert bearer(api) == "Bearer s3cret"
    finally:
        api.close()
    assert connect(KubeTarget(kubeconfig=config, context="two")).namespace == "b"
    assert connect(KubeTarget(kubeconfig=config, namespace="x")).namespace == "x"
    plain = kubeconfig(tmp_path / "plain")
    assert connect(KubeTarget(kubeconfig=plain)).namespace == "default"


def test_in_cluster_credentials_come_from_the_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("pod-token")
    (sa / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (sa / "namespace").write_text("flink\n")
    monkeypatch.setenv(kube_client.HOST_ENV, "10.96.0.1")
    monkeypatch.setenv(kube_client.PORT_ENV, "443")
    target = KubeTarget(service_account_dir=sa)
    assert kube_client.in_pod(target)
    api = connect(target)  # in a pod and no kubeconfig named: in-cluster
    try:
        assert api.namespace == "flink"
        assert api.api_client.configuration.host == "https://10.96.0.1:443"
        assert bearer(api).lower() == "bearer pod-token"
        assert api.api_client.configuration.ssl_ca_cert == str(sa / "ca.crt")
    finally:
        api.close()


def test_no_credentials_is_an_error_that_says_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(kube_client.HOST_ENV, raising=False)
    with pytest.raises(KubeError, match="cannot connect to Kubernetes with in-cluster"):
        connect(KubeTarget(in_cluster=True, service_account_dir=tmp_path))
    with pytest.raises(KubeError, match="cannot connect to Kubernetes with a kubeconfig"):
        connect(KubeTarget(kubeconfig=tmp_path / "missing"))
