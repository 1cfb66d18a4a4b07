"""The Helm chart, rendered: lint, one render per scenario (helm/eddyline/ci/*-values.yaml), and
what every release must hold — restricted pods, least-privilege RBAC, probes and resources, names
and ports that agree with each other, Flink configuration that matches the pods. No cluster
needed (test_chart_install.py sends these manifests to a real API server)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import spec
from tests.k8s.chart import (
    CHART,
    NAMESPACE,
    RELEASE,
    ROOT,
    VALUES_FILES,
    Manifests,
    ci_values,
    container,
    env,
    flag,
    helm,
    render,
    scenario,
    template_args,
)

JM, TM, CTL = f"{RELEASE}-jobmanager", f"{RELEASE}-taskmanager", f"{RELEASE}-controller"
CONFIG = f"{RELEASE}-flink-config"
FLINK_COMPONENTS = {"jobmanager", "taskmanager"}


def values_id(path: Path) -> str:
    return scenario(path)


@pytest.fixture(scope="module")
def rendered() -> dict[str, Manifests]:
    """Every values file's release, rendered once for the module."""
    return {scenario(p): Manifests(render(p)) for p in VALUES_FILES}


@pytest.fixture(params=VALUES_FILES, ids=values_id)
def release(request: pytest.FixtureRequest, rendered: dict[str, Manifests]) -> Manifests:
    return rendered[scenario(request.param)]


def values(name: str) -> dict[str, Any]:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    given = yaml.safe_load(ci_values(name).read_text()) or {}
    return _merge(defaults, given)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def component(doc: dict[str, Any]) -> str:
    return str(doc["metadata"]["labels"].get("app.kubernetes.io/component", ""))


def flink_config(m: Manifests, name: str = CONFIG) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(m.get("ConfigMap", name)["data"]["config.yaml"])
    return data


# -- lint and schema -------------------------------------------------------------------------------


def test_scenarios_exist() -> None:
    assert {scenario(p) for p in VALUES_FILES} >= {
        "minimal",
        "ephemeral",
        "production",
        "flink-only",
        "small",
    }


@pytest.mark.parametrize("values_file", VALUES_FILES, ids=values_id)
def test_helm_lint_strict(values_file: Path) -> None:
    result = helm("lint", str(CHART), "--strict", "--values", str(values_file))
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("bogus=1", "additional properties 'bogus' not allowed"),
        ("jobmanager.memory=2G", "/jobmanager/memory"),
        ("taskmanager.replicas=-1", "/taskmanager/replicas"),
        ("flink.configuration.taskmanager.numberOfTaskSlots=4", "/flink/configuration/taskmanager"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("controller.rbac.extra=true", "additional properties 'extra' not allowed"),
        ("taskmanager.podDisruptionBudget.maxUnavailable=some", "maxUnavailable"),
        ("kafka.existingSecret=Not_A_Name", "/kafka/existingSecret"),
        ("jobmanager.memory=1Gi", "must leave at least 768Mi for Flink"),
        ("controller.serviceAccount.create=false", "controller.serviceAccount.name is required"),
    ],
)
def test_bad_values_are_refused_with_the_reason(setting: str, complaint: str) -> None:
    result = helm(*template_args(ci_values("minimal"), setting), check=False)
    assert result.returncode != 0, f"{setting} was accepted"
    assert complaint in result.stderr, result.stderr


def test_values_schema_describes_every_default() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(value: Any, node: dict[str, Any], where: str) -> None:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
        if isinstance(value, dict) and "properties" in node:
            assert node.get("additionalProperties") is False, f"{where}: open object"
            for key, sub in value.items():
                assert key in node["properties"], f"{where}.{key} is not in values.schema.json"
                walk(sub, node["properties"][key], f"{where}.{key}")

    walk(yaml.safe_load((CHART / "values.yaml").read_text()), schema, "values")


# -- every release ---------------------------------------------------------------------------------


def test_every_resource_is_named_labelled_and_namespaced(release: Manifests) -> None:
    seen = set()
    for doc in release.docs:
        meta = doc["metadata"]
        key = (doc["kind"], meta["name"])
        assert key not in seen, f"two {key}"
        seen.add(key)
        assert meta["namespace"] == NAMESPACE, key
        assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE, key
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm", key
        assert len(meta["name"]) <= 63, key


def test_pods_run_restricted(release: Manifests) -> None:
    for workload, pod in release.workloads():
        where = f"{workload['kind']} {workload['metadata']['name']}"
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True, where
        assert sc["runAsUser"] == 9999, where
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(key), f"{where}: {key}"
        assert all("hostPath" not in v for v in pod.get("volumes", [])), where
        for c in pod["containers"] + pod.get("initContainers", []):
            csc = c["securityContext"]
            assert csc["readOnlyRootFilesystem"] is True, f"{where}/{c['name']}"
            assert csc["allowPrivilegeEscalation"] is False, f"{where}/{c['name']}"
            assert csc["privileged"] is False, f"{where}/{c['name']}"
            assert csc["runAsNonRoot"] is True, f"{where}/{c['name']}"
            assert csc["capabilities"] == {"drop": ["ALL"]}, f"{where}/{c['name']}"


def test_only_pods_that_call_the_api_server_mount_a_token(release: Manifests) -> None:
    """The controller always; Flink's pods only with high availability (its ConfigMaps)."""
    ha = flink_config(release, _flink_config_name(release)).get("high-availability.type")
    for workload, pod in release.workloads():
        wanted = component(workload) == "controller" or (
            component(workload) in FLINK_COMPONENTS and ha == "kubernetes"
        )
        assert pod["automountServiceAccountToken"] is wanted, workload["metadata"]["name"]
    for sa in release.of("ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False, sa["metadata"]["name"]


def _flink_config_name(release: Manifests) -> str:
    [jm] = [w for w, _ in release.workloads() if component(w) == "jobmanager"]
    return _config_map_name(jm["spec"]["template"]["spec"])


def test_containers_have_resources_and_probes(release: Manifests) -> None:
    for workload, pod in release.workloads():
        for c in pod["containers"]:
            where = f"{workload['metadata']['name']}/{c['name']}"
            requests, limits = c["resources"]["requests"], c["resources"]["limits"]
            assert {"cpu", "memory"} <= set(requests), where
            assert "memory" in limits, where
            if workload["kind"] == "Deployment":
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    assert probe in c, f"{where}: no {probe}"
                    target = c[probe].get("httpGet", c[probe].get("tcpSocket"))
                    ports = {p["name"] for p in c["ports"]}
                    assert target["port"] in ports, f"{where}: {probe} on unknown port"


def test_writable_paths_are_volumes(release: Manifests) -> None:
    """The root filesystem is read-only: everything Flink and Python write is a mount."""
    for workload, pod in release.workloads():
        if workload["kind"] != "Deployment":
            continue
        c = pod["containers"][0]
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert "/tmp" in mounts, workload["metadata"]["name"]
        if component(workload) in FLINK_COMPONENTS:
            variables = env(c)
            assert variables["FLINK_LOG_DIR"] in mounts
            assert mounts[variables["FLINK_CONF_DIR"]]["readOnly"] is True
            assert variables["FLINK_PID_DIR"] in mounts
            conf = flink_config(release, _config_map_name(pod))
            for key in ("io.tmp.dirs", "web.tmpdir", "web.upload.dir"):
                assert any(conf[key].startswith(m) for m in mounts), key
            for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir"):
                if conf[key].startswith("file://"):
                    path = conf[key].removeprefix("file://")
                    assert any(path.startswith(m + "/") for m in mounts), key


def _config_map_name(pod: dict[str, Any]) -> str:
    [vol] = [v for v in pod["volumes"] if v["name"] == "flink-config"]
    return str(vol["configMap"]["name"])


def test_rbac_is_namespaced_without_wildcards(release: Manifests) -> None:
    kinds = {d["kind"] for d in release.docs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    for role in release.of("Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), (role["metadata"]["name"], rule)
            assert "secrets" not in rule["resources"], rule
            assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])
            if "delete" in rule["verbs"]:  # the controller's Leases, Flink's HA ConfigMaps
                assert rule["resources"] in (["leases"], ["configmaps"]), rule
    for binding in release.of("RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role"
        assert release.has("Role", binding["roleRef"]["name"])
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount"
            assert subject["namespace"] == NAMESPACE
            users = {
                component(w)
                for w, pod in release.workloads()
                if pod.get("serviceAccountName") == subject["name"]
            }
            # The JobManager's identity also runs the `helm test` Job, which mounts no token.
            assert users in (
                {"controller"},
                {"jobmanager"},
                {"jobmanager", "test"},
                {"taskmanager"},
            )


def test_flink_pods_may_touch_configmaps_only_with_ha(release: Manifests) -> None:
    """Flink's identities have no role, or with Kubernetes HA one on ConfigMaps and nothing else:
    read and write for the JobManager, read for the TaskManagers (they run users' code)."""
    ha = flink_config(release, _flink_config_name(release)).get("high-availability.type")
    wanted = {
        "jobmanager": ["get", "list", "watch", "create", "update", "patch", "delete"],
        "taskmanager": ["get", "list", "watch"],
    }
    for workload, pod in release.workloads():
        part = component(workload)
        if part not in FLINK_COMPONENTS:
            continue
        roles = [
            b["roleRef"]["name"]
            for b in release.of("RoleBinding")
            if any(s["name"] == pod["serviceAccountName"] for s in b["subjects"])
        ]
        if ha != "kubernetes":
            assert roles == [], part
            continue
        [role] = roles
        assert release.get("Role", role)["rules"] == [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": wanted[part]}
        ], part


def test_services_and_ports_agree_with_the_pods(release: Manifests) -> None:
    pods = list(release.pod_templates())
    for svc in release.of("Service"):
        selector = svc["spec"]["selector"]
        matching = [(w, t) for w, t in pods if selector.items() <= t["metadata"]["labels"].items()]
        assert matching, f"Service {svc['metadata']['name']} selects no pod"
        for _, template in matching:
            names = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
            for port in svc["spec"]["ports"]:
                assert port["targetPort"] in names, (svc["metadata"]["name"], port)


def test_selectors_pick_one_component(release: Manifests) -> None:
    for workload, template in release.pod_templates():
        if workload["kind"] != "Deployment":
            continue
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= template["metadata"]["labels"].items()
        others = [
            w["metadata"]["name"]
            for w, t in release.pod_templates()
            if w is not workload and selector.items() <= t["metadata"]["labels"].items()
        ]
        assert not others, f"{workload['metadata']['name']} selects {others}"
    for pdb in release.of("PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        assert any(sel.items() <= t["metadata"]["labels"].items() for _, t in pods_of(release))


def pods_of(release: Manifests) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(w, t) for w, t in release.pod_templates() if w["kind"] == "Deployment"]


def test_flink_configuration_matches_services_and_containers(release: Manifests) -> None:
    name = _config_map_name(
        next(p for w, p in release.workloads() if component(w) in FLINK_COMPONENTS)
    )
    conf = flink_config(release, name)
    prefix = name.removesuffix("-flink-config")
    jm_svc = release.get("Service", f"{prefix}-jobmanager")
    ports = {p["name"]: p["port"] for p in jm_svc["spec"]["ports"]}
    assert conf["jobmanager.rpc.address"] == jm_svc["metadata"]["name"]
    assert conf["rest.address"] == jm_svc["metadata"]["name"]
    assert conf["jobmanager.rpc.port"] == ports["rpc"]
    assert conf["rest.port"] == ports["rest"]
    assert conf["blob.server.port"] == ports["blob"]
    tm = container(
        release.get("Deployment", f"{prefix}-taskmanager")["spec"]["template"]["spec"],
        "taskmanager",
    )
    tm_ports = {p["name"]: p["containerPort"] for p in tm["ports"]}
    assert conf["taskmanager.rpc.port"] == tm_ports["rpc"]
    assert conf["taskmanager.data.port"] == tm_ports["data"]
    assert f"metrics.reporter.prom.port={tm_ports['metrics']}" in tm["args"]
    assert "taskmanager.host=$(POD_IP)" in tm["args"]
    # Flink's process fits its container: the TaskManager exactly, the JobManager leaves room
    # for the Python driver of a job being submitted.
    tm_mib = mebibytes(tm["resources"]["limits"]["memory"])
    assert conf["taskmanager.memory.process.size"] == f"{tm_mib}m"
    jm = container(
        release.get("Deployment", f"{prefix}-jobmanager")["spec"]["template"]["spec"], "jobmanager"
    )
    jm_mib = mebibytes(jm["resources"]["limits"]["memory"])
    assert int(conf["jobmanager.memory.process.size"].removesuffix("m")) <= jm_mib - 256
    assert conf["python.executable"] == "/opt/venv/bin/python"


def pod_spec(m: Manifests, deployment: str) -> dict[str, Any]:
    spec_: dict[str, Any] = m.get("Deployment", deployment)["spec"]["template"]["spec"]
    return spec_


def mebibytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def test_log4j_writes_to_console_and_the_pod_log_file(release: Manifests) -> None:
    for cm in release.of("ConfigMap"):
        if "log4j-console.properties" not in cm["data"]:
            continue
        props = dict(
            line.split(" = ", 1)
            for line in cm["data"]["log4j-console.properties"].splitlines()
            if " = " in line and not line.startswith("#")
        )
        assert props["appender.console.type"] == "CONSOLE"
        assert props["appender.rolling.fileName"] == "${sys:log.file}"
        assert props["rootLogger.appenderRef.console.ref"] == "ConsoleAppender"


# -- the controller --------------------------------------------------------------------------------


def test_controller_is_pointed_at_this_release() -> None:
    m = Manifests(render(ci_values("minimal")))
    pod = m.get("Deployment", CTL)["spec"]["template"]["spec"]
    c = container(pod, "controller")
    assert c["command"] == ["eddyline"]
    args = c["args"]
    assert args[:3] == ["controller", "--kube", "--in-cluster"]
    assert flag(args, "--namespace") == NAMESPACE
    rest = next(p["port"] for p in m.get("Service", JM)["spec"]["ports"] if p["name"] == "rest")
    assert flag(args, "--flink-url") == f"http://{JM}:{rest}"
    assert flag(args, "--taskmanager-deployment") == TM
    assert m.has("Deployment", TM)
    assert flag(args, "--taskmanager-slots") == str(
        flink_config(m)["taskmanager.numberOfTaskSlots"]
    )
    assert flag(args, "--metrics-host") == "0.0.0.0"
    port = int(flag(args, "--metrics-port"))
    assert [p["containerPort"] for p in c["ports"]] == [port]
    template = m.get("Deployment", CTL)["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert m.get("Deployment", CTL)["spec"]["strategy"]["type"] == "Recreate"
    assert m.get("Deployment", CTL)["spec"]["replicas"] == 1


def test_controller_role_scales_only_this_release_taskmanagers() -> None:
    m = Manifests(render(ci_values("minimal")))
    rules = m.get("Role", CTL)["rules"]
    apps = [r for r in rules if r["apiGroups"] == ["apps"]]
    assert apps == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/scale"],
            "resourceNames": [TM],
            "verbs": ["get", "patch", "update"],
        }
    ]
    off = Manifests(render(ci_values("small")))
    assert not [r for r in off.get("Role", CTL)["rules"] if r["apiGroups"] == ["apps"]]
    assert (
        "--taskmanager-deployment"
        not in container(off.get("Deployment", CTL)["spec"]["template"]["spec"], "controller")[
            "args"
        ]
    )
    assert off.get("RoleBinding", CTL)["subjects"][0]["name"] == "eddyline-ctl"


@pytest.mark.parametrize(
    ("values", "sets", "delay"),
    [
        ("minimal", (), "300"),
        ("production", (), "600"),
        ("minimal", ("controller.scaleTaskManagers.scaleDown.enabled=false",), None),
    ],
)
def test_controller_scales_taskmanagers_down_to_the_chart_replicas(
    values: str, sets: tuple[str, ...], delay: str | None
) -> None:
    """Back down to taskmanager.replicas after the delay; the Pods rule (to mark idle Pods
    for deletion) only when it may scale down."""
    m = Manifests(render(ci_values(values), *sets))
    args = container(m.get("Deployment", CTL)["spec"]["template"]["spec"], "controller")["args"]
    assert flag(args, "--min-taskmanagers") == str(m.get("Deployment", TM)["spec"]["replicas"])
    pods = [r for r in m.get("Role", CTL)["rules"] if "pods" in r["resources"]]
    if delay is None:
        assert "--no-taskmanager-scale-down" in args
        assert "--taskmanager-scale-down-delay" not in args
        assert pods == []
    else:
        assert flag(args, "--taskmanager-scale-down-delay") == delay
        assert pods == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch"]}]
    off = Manifests(render(ci_values("small")))  # the controller scales nothing
    assert not [r for r in off.get("Role", CTL)["rules"] if "pods" in r["resources"]]


def test_flink_only_release_has_no_controller_and_its_own_names() -> None:
    m = Manifests(render(ci_values("flink-only")))
    assert {component(w) for w, _ in m.workloads()} == FLINK_COMPONENTS
    ha_roles = ["stream-flink", "stream-taskmanager"]  # HA's only
    assert [r["metadata"]["name"] for r in m.of("Role")] == ha_roles
    assert [r["metadata"]["name"] for r in m.of("RoleBinding")] == ha_roles
    assert m.has("Deployment", "stream-jobmanager")
    conf = flink_config(m, "stream-flink-config")
    assert conf["execution.checkpointing.dir"] == "file:///flink-state/checkpoints"
    assert conf["high-availability.storageDir"] == "file:///flink-state/ha"
    assert conf["kubernetes.cluster-id"] == "stream"
    pod = m.get("Deployment", "stream-taskmanager")["spec"]["template"]["spec"]
    [state] = [v for v in pod["volumes"] if v["name"] == "flink-state"]
    assert state["persistentVolumeClaim"]["claimName"] == "shared-flink-state"
    assert not m.of("PersistentVolumeClaim")  # an existing claim is used, not created
    for workload, template in pods_of(m):
        annotations = template["metadata"].get("annotations", {})
        assert "prometheus.io/scrape" not in annotations, workload["metadata"]["name"]


# -- optional parts --------------------------------------------------------------------------------


def test_defaults_leave_optional_parts_off() -> None:
    m = Manifests(render(ci_values("minimal")))
    for kind in ("NetworkPolicy", "Ingress", "ServiceMonitor", "PersistentVolumeClaim"):
        assert not m.of(kind), kind
    assert [p["metadata"]["name"] for p in m.of("PodDisruptionBudget")] == [TM]
    # Prometheus finds every pod by its annotations.
    for workload, template in m.pod_templates():
        if workload["kind"] == "Deployment":
            assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_production_release() -> None:
    m = Manifests(render(ci_values("production")))
    v = values("production")
    # The image is pinned by digest everywhere.
    for _, pod in m.workloads():
        for c in pod["containers"]:
            assert c["image"] == f"{v['image']['repository']}@{v['image']['digest']}"
        assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    # Kafka credentials reach the pods only as a Secret reference.
    for workload, pod in m.workloads():
        if workload["kind"] == "Deployment":
            assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "kafka-credentials"}}]
    assert not m.of("Secret")
    # State in the bucket through the pods' cloud identity: no key anywhere, the role on the
    # ServiceAccount, no volume.
    conf = flink_config(m)
    base = "s3://acme-flink-state/streaming/prod/streaming/eddyline"  # prefix, namespace, name
    assert conf["execution.checkpointing.dir"] == f"{base}/checkpoints"
    assert conf["high-availability.storageDir"] == f"{base}/ha"
    assert conf["s3.endpoint.region"] == "eu-west-1"
    assert "s3.endpoint" not in conf
    assert not m.of("PersistentVolumeClaim")
    # The plugin's own chain has no web identity token provider: it comes first.
    assert conf["s3.aws.credentials.provider"].split(",") == [
        "com.amazonaws.auth.WebIdentityTokenCredentialsProvider",
        "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider",
    ]
    for name in (JM, TM):
        pod = m.get("Deployment", name)["spec"]["template"]["spec"]
        assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env(pod["containers"][0]))
    for name in (f"{RELEASE}-flink", TM):  # both write to the bucket: both have the role
        sa = m.get("ServiceAccount", name)
        assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("flink-state")
    # User configuration overrides the chart's, key by key.
    assert conf["state.backend.type"] == "rocksdb"
    assert conf["taskmanager.memory.managed.fraction"] == 0.5
    assert conf["jobmanager.rpc.address"] == JM
    assert conf["taskmanager.numberOfTaskSlots"] == 4
    assert m.get("Deployment", TM)["spec"]["replicas"] == 3
    # Scheduling settings reach the pods.
    jm_pod = m.get("Deployment", JM)["spec"]["template"]["spec"]
    assert jm_pod["nodeSelector"] == {"workload": "streaming"}
    assert jm_pod["tolerations"][0]["key"] == "dedicated"
    assert container(jm_pod, "jobmanager")["resources"]["limits"]["cpu"] == "2"
    assert "podAntiAffinity" in m.get("Deployment", TM)["spec"]["template"]["spec"]["affinity"]
    for doc in m.docs:
        assert doc["metadata"]["labels"]["team"] == "streaming"


def test_production_ingress_servicemonitor_and_pdbs() -> None:
    m = Manifests(render(ci_values("production")))
    [ingress] = m.of("Ingress")
    spec_ = ingress["spec"]
    assert spec_["ingressClassName"] == "nginx"
    assert spec_["tls"] == [
        {"hosts": ["flink.streaming.example.com"], "secretName": "flink-dashboard-tls"}
    ]
    backend = spec_["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": JM, "port": {"name": "rest"}}
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-type"] == "basic"
    [monitor] = m.of("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selected = [
        s
        for s in m.of("Service")
        if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert {s["metadata"]["name"] for s in selected} == {JM, TM, CTL}
    for s in selected:
        assert "metrics" in {p["name"] for p in s["spec"]["ports"]}
    assert monitor["spec"]["endpoints"][0]["interval"] == "15s"
    pdbs = {p["metadata"]["name"]: p["spec"]["maxUnavailable"] for p in m.of("PodDisruptionBudget")}
    assert pdbs == {TM: "25%", JM: 1}


def test_network_policies_let_in_only_what_is_needed() -> None:
    m = Manifests(render(ci_values("production")))
    flink = m.get("NetworkPolicy", f"{RELEASE}-flink")
    assert flink["spec"]["policyTypes"] == ["Ingress"]
    rules = flink["spec"]["ingress"]
    # 1: Flink pods among themselves, every port.
    assert "ports" not in rules[0]
    peer = rules[0]["from"][0]["podSelector"]
    assert peer["matchExpressions"][0]["values"] == ["jobmanager", "taskmanager"]
    # 2: the controller, the helm test and the ingress controller, REST port only.
    assert rules[1]["ports"] == [{"port": "rest", "protocol": "TCP"}]
    components = rules[1]["from"][0]["podSelector"]["matchExpressions"][0]["values"]
    assert components == ["controller", "test"]
    assert rules[1]["from"][1]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    # 3: Prometheus, metrics only.
    assert rules[2]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    ctl = m.get("NetworkPolicy", CTL)
    assert [r["ports"] for r in ctl["spec"]["ingress"]] == [
        [{"port": "metrics", "protocol": "TCP"}]
    ]
    # Named ports the policies use exist on the pods they select.
    for _, template in pods_of(m):
        names = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
        comp = template["metadata"]["labels"]["app.kubernetes.io/component"]
        assert "metrics" in names
        if comp == "jobmanager":
            assert "rest" in names
    # The test Job carries the label the policies let in.
    job = m.of("Job")[0]
    assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "test"


def test_configuration_change_rolls_the_flink_pods_and_the_controller() -> None:
    """The controller reads the JobManager's configuration once: it restarts with it."""
    before = Manifests(render(ci_values("minimal")))
    after = Manifests(render(ci_values("minimal"), "flink.configuration.parallelism\\.default=2"))
    assert flink_config(after)["parallelism.default"] == 2
    for name in (JM, TM, CTL):
        a = before.get("Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        b = after.get("Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        assert a["checksum/flink-config"] != b["checksum/flink-config"]


def test_helm_test_hook_checks_flink_and_the_controller() -> None:
    m = Manifests(render(ci_values("minimal")))
    [job] = m.of("Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    compile(script, "helm-test", "exec")  # the rendered check is valid Python
    assert f"http://{JM}:8081" in script
    assert f"http://{CTL}:9247/metrics" in script
    assert not Manifests(render(ci_values("flink-only"))).of("Job")


# -- the chart and the project agree ---------------------------------------------------------------


def test_chart_versions_follow_the_project() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    [flink_pin] = [d for d in project["dependencies"] if d.startswith("apache-flink==")]
    assert chart["annotations"]["eddyline.dev/flink-version"] == flink_pin.split("==")[1]


def test_crd_ships_in_the_chart_crds_folder() -> None:
    docs = render(ci_values("minimal"), crds=True)
    [crd] = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert crd["metadata"]["name"] == "flinkjobs.eddyline.dev"


def test_notes_example_is_a_valid_flinkjob() -> None:
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    block = notes.split("<<'YAML'\n", 1)[1].split("\n  YAML\n", 1)[0]
    text = "\n".join(line.removeprefix("  ") for line in block.splitlines())
    job = spec.load_yaml(text, "NOTES.txt")
    assert job.spec.job.entry == "jobs.ledger"


# -- where job state lives -------------------------------------------------------------------------


def test_without_a_state_location_install_is_refused_saying_what_to_set() -> None:
    """The chart's defaults alone name no bucket or volume: refused with the values to set, never
    a release whose state silently lives on one pod's disk."""
    result = helm(*template_args(None), check=False)
    assert result.returncode != 0
    for value in (
        "flink.state.s3.bucket",
        "flink.state.persistence.enabled",
        "flink.state.ephemeral",
    ):
        assert value in result.stderr, result.stderr


def test_every_state_problem_is_listed_at_once() -> None:
    result = helm(
        *template_args(
            None,
            "flink.state.ephemeral=true",
            "flink.state.persistence.enabled=true",
            "flink.state.s3.endpoint=storage.example.com",
        ),
        check=False,
    )
    assert result.returncode != 0
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3, result.stderr
    assert "flink.state.persistence.enabled and flink.state.ephemeral" in problems[0]
    assert "bucket is empty" in problems[1]
    assert '"storage.example.com" must be a URL' in problems[2]


@pytest.mark.parametrize(
    "key", ["s3.access-key", "s3.secret-key", "fs.s3a.access.key", "fs.s3a.secret.key"]
)
def test_a_credential_in_the_flink_configuration_is_refused(key: str) -> None:
    escaped = key.replace(".", "\\.")
    result = helm(
        *template_args(ci_values("minimal"), f"flink.configuration.{escaped}=AKIA"),
        check=False,
    )
    assert result.returncode != 0
    assert f"flink.configuration.{key} would put a credential into a ConfigMap" in result.stderr


def test_s3_state_with_a_secret_and_kubernetes_ha() -> None:
    m = Manifests(render(ci_values("small")))
    conf = flink_config(m)
    assert conf["execution.checkpointing.dir"] == "s3://flink/streaming/eddyline/checkpoints"
    assert (
        conf["execution.checkpointing.savepoint-dir"] == "s3://flink/streaming/eddyline/savepoints"
    )
    assert conf["s3.endpoint"] == "http://s3.storage.svc:9000"
    assert conf["s3.path.style.access"] is True
    assert conf["s3.endpoint.region"] == "us-east-1"
    assert conf["s3.directory.marker.retention"] == "keep"
    assert "s3.aws.credentials.provider" not in conf  # the Secret's key, from the environment
    assert conf["execution.checkpointing.num-retained"] == 3
    assert conf["high-availability.type"] == "kubernetes"
    assert conf["high-availability.storageDir"] == "s3://flink/streaming/eddyline/ha"
    assert conf["kubernetes.cluster-id"] == RELEASE
    assert conf["kubernetes.namespace"] == NAMESPACE
    # The key only as Secret references, into the Flink pods, never into a ConfigMap.
    for cm in m.of("ConfigMap"):
        assert "secretkey" not in json.dumps(cm).lower()
        assert "aws_" not in json.dumps(cm).lower()
    for name in (JM, TM):
        c = m.get("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in c["env"]
            if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
        }
        assert refs == {
            "AWS_ACCESS_KEY_ID": {"name": "s3-keys", "key": "accesskey"},
            "AWS_SECRET_ACCESS_KEY": {"name": "s3-keys", "key": "secretkey"},
        }
    ctl = m.get("Deployment", CTL)["spec"]["template"]["spec"]["containers"][0]
    assert not [e for e in ctl.get("env", []) if e["name"].startswith("AWS_")]
    # The JobManager advertises its own pod IP: the TaskManagers find the leader in ConfigMaps.
    args = container(m.get("Deployment", JM)["spec"]["template"]["spec"], "jobmanager")["args"]
    assert "jobmanager.rpc.address=$(POD_IP)" in args
    assert not m.of("PersistentVolumeClaim")


def test_a_flink_that_cannot_start_leaves_its_error_in_the_pod_status(release: Manifests) -> None:
    for workload, pod in release.workloads():
        if component(workload) in FLINK_COMPONENTS:
            for c in pod["containers"]:
                assert c["terminationMessagePolicy"] == "FallbackToLogsOnError", c["name"]


def test_the_jobmanager_checks_its_bucket_before_flink_starts() -> None:
    """An init container writes, reads and deletes a probe object under the state location with
    Flink's own credentials: a wrong endpoint or key is named in the pod's status."""
    m = Manifests(render(ci_values("small")))
    pod = m.get("Deployment", JM)["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    assert init["command"] == ["python", "-m", "deploy.kube.statecheck"]
    assert init["args"] == [
        "s3://flink/streaming/eddyline",
        "--endpoint=http://s3.storage.svc:9000",
        "--region=us-east-1",
        "--path-style",
    ]
    assert init["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert init["securityContext"] == container(pod, "jobmanager")["securityContext"]
    assert env(init)["HOME"] == "/tmp"
    assert {e["name"] for e in init["env"] if "secretKeyRef" in e.get("valueFrom", {})} == {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
    aws = Manifests(render(ci_values("production")))  # AWS S3 through the pod's identity
    [init] = aws.get("Deployment", JM)["spec"]["template"]["spec"]["initContainers"]
    assert init["args"] == [
        "s3://acme-flink-state/streaming/prod/streaming/eddyline",
        "--region=eu-west-1",
        "--no-path-style",
    ]
    for values in ("flink-only", "ephemeral"):
        jm = [
            w
            for w, _ in Manifests(render(ci_values(values))).workloads()
            if component(w) == "jobmanager"
        ]
        assert "initContainers" not in jm[0]["spec"]["template"]["spec"], values


def test_ephemeral_state_is_a_choice_without_ha() -> None:
    m = Manifests(render(ci_values("ephemeral")))
    conf = flink_config(m)
    assert conf["execution.checkpointing.dir"] == "file:///opt/flink/state/checkpoints"
    assert "high-availability.type" not in conf
    assert [r["metadata"]["name"] for r in m.of("Role")] == [CTL]
    for name in (JM, TM):
        vols = m.get("Deployment", name)["spec"]["template"]["spec"]["volumes"]
        [state] = [x for x in vols if x["name"] == "flink-state"]
        assert state == {"name": "flink-state", "emptyDir": {}}
