"""kafka.security in the chart: the KAFKA_* environment and the TLS Secrets' mounts that
deploy/kafka_security.py reads, the same in the controller, the JobManager and the TaskManagers;
credentials only ever through kafka.existingSecret (envFrom), never rendered; every mistake
refused at once with the values to set; releases that do not use it render as before. Rendered
with helm, and installed once into the test API server (ci/kafka-sasl-ssl-values.yaml)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from deploy import kafka_security
from tests.k8s.chart import (
    CHART,
    RELEASE,
    VALUES_FILES,
    Manifests,
    ci_values,
    container,
    env,
    helm,
    render,
    scenario,
    template_args,
)
from tests.k8s.envtest import Kube

SCENARIO = ci_values("kafka-sasl-ssl")
JM, TM, CTL = f"{RELEASE}-jobmanager", f"{RELEASE}-taskmanager", f"{RELEASE}-controller"
CONTAINERS = {JM: "jobmanager", TM: "taskmanager", CTL: "controller"}
CA_FILE = "/etc/eddyline/kafka/ca/ca.crt"
CLIENT_DIR = "/etc/eddyline/kafka/client"
SECURED_ENV = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SSL_CA_LOCATION": CA_FILE,
    "KAFKA_SSL_CERTIFICATE_LOCATION": f"{CLIENT_DIR}/tls.crt",
    "KAFKA_SSL_KEY_LOCATION": f"{CLIENT_DIR}/tls.key",
}
SECURED_MOUNTS = [
    {"name": "kafka-ca", "mountPath": "/etc/eddyline/kafka/ca", "readOnly": True},
    {"name": "kafka-client-cert", "mountPath": CLIENT_DIR, "readOnly": True},
]
SECURED_VOLUMES = [
    {
        "name": "kafka-ca",
        "secret": {
            "secretName": "kafka-ca",
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
            "defaultMode": 0o440,
        },
    },
    {
        "name": "kafka-client-cert",
        "secret": {
            "secretName": "kafka-client-tls",
            "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}],
            "defaultMode": 0o440,
        },
    },
]
# Only ever from kafka.existingSecret (envFrom): never an env entry, never a value in a manifest.
SECRET_VARIABLES = ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_KEY_PASSWORD")
KAFKA_VOLUMES = {"kafka-ca", "kafka-client-cert"}


def main_container(m: Manifests, deployment: str) -> dict[str, Any]:
    return container(
        m.get("Deployment", deployment)["spec"]["template"]["spec"], CONTAINERS[deployment]
    )


def kafka_env(c: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in env(c).items() if k.startswith("KAFKA_")}


def kafka_mounts(c: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in c.get("volumeMounts", []) if v["name"] in KAFKA_VOLUMES]


def kafka_volumes(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in pod.get("volumes", []) if v["name"] in KAFKA_VOLUMES]


def refusal(*sets: str, values: Path | None = None) -> str:
    """helm's complaint about a release (the minimal scenario plus `sets`); fails if accepted."""
    result = helm(*template_args(values or ci_values("minimal"), *sets), check=False)
    assert result.returncode != 0, f"{sets} was accepted"
    return result.stderr


def problems_of(stderr: str) -> list[str]:
    return [line.removeprefix("  - ") for line in stderr.splitlines() if line.startswith("  - ")]


@pytest.fixture(scope="module")
def secured() -> Manifests:
    return Manifests(render(SCENARIO))


# -- what the pods get -----------------------------------------------------------------------------


def test_every_pod_gets_the_same_kafka_environment_and_mounts(secured: Manifests) -> None:
    """The controller and the job drivers (JobManager) build the Kafka connector's properties
    with these paths; the connector opens them in the TaskManagers: same values everywhere."""
    for name in (JM, TM, CTL):
        c = main_container(secured, name)
        pod = secured.get("Deployment", name)["spec"]["template"]["spec"]
        assert kafka_env(c) == SECURED_ENV, name
        assert kafka_mounts(c) == SECURED_MOUNTS, name
        assert kafka_volumes(pod) == SECURED_VOLUMES, name
        assert c["envFrom"] == [{"secretRef": {"name": "kafka-credentials"}}], name
        # Plain values: nothing secret comes in through `env`.
        assert all("valueFrom" not in e for e in c["env"] if e["name"].startswith("KAFKA_")), name
    # Each variable is one deploy/kafka_security.py reads, and none of them is a credential.
    assert set(SECURED_ENV) <= set(kafka_security.ENV_KEYS)
    assert not set(SECURED_ENV) & set(SECRET_VARIABLES)
    # The helm test Job and the JobManager's bucket check do not talk to Kafka.
    [job] = secured.of("Job")
    assert "KAFKA_" not in json.dumps(job)
    [init] = secured.get("Deployment", JM)["spec"]["template"]["spec"]["initContainers"]
    assert not kafka_env(init)
    assert not kafka_mounts(init)


def test_the_secrets_are_readable_by_the_pods_group_only(secured: Manifests) -> None:
    """Mode 0440 on root's files: the pods run as 9999 with fsGroup 9999, which reads them."""
    for name in (JM, TM, CTL):
        pod = secured.get("Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["fsGroup"] == 9999
        for volume in kafka_volumes(pod):
            assert volume["secret"]["defaultMode"] == 0o440, (name, volume)
            assert not volume["secret"].get("optional"), (name, volume)
    text = helm(*template_args(SCENARIO)).stdout
    assert text.count("defaultMode: 0440") == 6  # two volumes in each of three pods


def test_kafka_security_reads_what_the_chart_sets(secured: Manifests, tmp_path: Path) -> None:
    """The environment a pod gets, with the Secrets' files where the chart mounts them (here
    under tmp_path) and the credentials from the Secret, is a configuration
    deploy/kafka_security.py accepts, saying what the values said."""
    for name in (JM, TM, CTL):
        rebased = {}
        for key, value in kafka_env(main_container(secured, name)).items():
            rebased[key] = value
            if value.startswith("/"):
                path = tmp_path / name / value.lstrip("/")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"-----BEGIN {key}-----\n-----END {key}-----\n")
                rebased[key] = str(path)
        got = kafka_security.KafkaSecurity.from_env(
            {**rebased, "KAFKA_SASL_USERNAME": "eddyline", "KAFKA_SASL_PASSWORD": "pw"}
        )
        assert got.protocol == "SASL_SSL"
        assert got.mechanism == "SCRAM-SHA-512"
        assert str(got.ca_location).endswith(CA_FILE)
        assert str(got.certificate_location).endswith(f"{CLIENT_DIR}/tls.crt")
        assert str(got.key_location).endswith(f"{CLIENT_DIR}/tls.key")


@pytest.mark.parametrize(
    ("sets", "wanted_env", "wanted_volumes"),
    [
        (("kafka.security.protocol=SSL",), {"KAFKA_SECURITY_PROTOCOL": "SSL"}, set()),
        (
            ("kafka.security.protocol=SSL", "kafka.security.caSecret.name=broker-ca"),
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": CA_FILE},
            {"kafka-ca"},
        ),
        (
            ("kafka.security.protocol=SSL", "kafka.security.clientCertSecret.name=me"),
            {
                "KAFKA_SECURITY_PROTOCOL": "SSL",
                "KAFKA_SSL_CERTIFICATE_LOCATION": f"{CLIENT_DIR}/tls.crt",
                "KAFKA_SSL_KEY_LOCATION": f"{CLIENT_DIR}/tls.key",
            },
            {"kafka-client-cert"},
        ),
        (
            (
                "kafka.security.protocol=SASL_PLAINTEXT",
                "kafka.security.saslMechanism=PLAIN",
                "kafka.existingSecret=kafka-credentials",
            ),
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN"},
            set(),
        ),
        (
            (
                "kafka.security.protocol=SASL_SSL",
                "kafka.security.saslMechanism=SCRAM-SHA-256",
                "kafka.existingSecret=kafka-credentials",
            ),
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"},
            set(),
        ),
    ],
    ids=["ssl", "ssl-ca", "ssl-client-cert", "sasl-plaintext", "sasl-ssl-system-trust"],
)
def test_each_setting_reaches_every_pod(
    sets: tuple[str, ...], wanted_env: dict[str, str], wanted_volumes: set[str]
) -> None:
    m = Manifests(render(ci_values("minimal"), *sets))
    for name in (JM, TM, CTL):
        c = main_container(m, name)
        pod = m.get("Deployment", name)["spec"]["template"]["spec"]
        assert kafka_env(c) == wanted_env, name
        assert {v["name"] for v in kafka_volumes(pod)} == wanted_volumes, name
        assert {v["name"] for v in kafka_mounts(c)} == wanted_volumes, name


def test_the_ca_secret_key_is_mounted_as_ca_crt() -> None:
    m = Manifests(
        render(
            ci_values("minimal"),
            "kafka.security.protocol=SSL",
            "kafka.security.caSecret.name=cluster-ca",
            "kafka.security.caSecret.key=ca.pem",
        )
    )
    for name in (JM, TM, CTL):
        pod = m.get("Deployment", name)["spec"]["template"]["spec"]
        [volume] = kafka_volumes(pod)
        assert volume["secret"]["secretName"] == "cluster-ca"
        assert volume["secret"]["items"] == [{"key": "ca.pem", "path": "ca.crt"}]
        assert kafka_env(main_container(m, name))["KAFKA_SSL_CA_LOCATION"] == CA_FILE


def test_flink_only_release_secures_the_flink_pods() -> None:
    m = Manifests(
        render(
            ci_values("flink-only"),
            "kafka.security.protocol=SSL",
            "kafka.security.caSecret.name=ca",
        )
    )
    assert not m.has("Deployment", "stream-controller")
    for name, part in (("stream-jobmanager", "jobmanager"), ("stream-taskmanager", "taskmanager")):
        c = container(m.get("Deployment", name)["spec"]["template"]["spec"], part)
        assert kafka_env(c) == {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": CA_FILE}


def test_controller_extra_env_comes_after_the_charts() -> None:
    """controller.extraEnv is the last word (Kubernetes keeps the last of two same names)."""
    m = Manifests(
        render(
            SCENARIO,
            "controller.extraEnv[0].name=KAFKA_SASL_MECHANISM",
            "controller.extraEnv[0].value=SCRAM-SHA-256",
        )
    )
    names = [e["name"] for e in main_container(m, CTL)["env"]]
    assert names.index("KAFKA_SECURITY_PROTOCOL") < len(names) - 1
    assert names[-1] == "KAFKA_SASL_MECHANISM"


# -- credentials -----------------------------------------------------------------------------------


def test_credentials_are_never_rendered(secured: Manifests) -> None:
    """The user name and password reach the pods only through envFrom of existingSecret: no
    manifest names them, holds a value for them, or creates a Secret."""
    text = helm(*template_args(SCENARIO)).stdout
    for variable in SECRET_VARIABLES:
        assert variable not in text
    assert not secured.of("Secret")
    for workload, pod in secured.workloads():
        for c in pod["containers"] + pod.get("initContainers", []):
            names = {e["name"] for e in c.get("env", [])}
            assert not names & set(SECRET_VARIABLES), workload["metadata"]["name"]
            assert not [n for n in names if n.startswith("KAFKA_") and "PASSWORD" in n]
    for cm in secured.of("ConfigMap"):
        dumped = json.dumps(cm["data"]).lower()
        for word in ("sasl", "jaas", "kafka_", "password"):
            assert word not in dumped, (cm["metadata"]["name"], word)


@pytest.mark.parametrize(
    "setting",
    [
        "kafka.security.password=hunter2",
        "kafka.security.saslPassword=hunter2",
        "kafka.security.username=eddyline",
        "kafka.security.caSecret.password=hunter2",
        "kafka.security.clientCertSecret.keyPassword=hunter2",
        "kafka.password=hunter2",
    ],
)
def test_a_credential_in_kafka_values_is_refused_by_the_schema(setting: str) -> None:
    key = setting.split("=", 1)[0].rsplit(".", 1)[1]
    stderr = refusal(setting)
    assert f"additional properties '{key}' not allowed" in stderr, stderr


@pytest.mark.parametrize(
    "key",
    [
        "properties.sasl.jaas.config",
        "sasl.jaas.config",
        "properties.ssl.key.password",
        "properties.ssl.keystore.password",
        "sasl.password",
    ],
)
def test_a_kafka_credential_in_the_flink_configuration_is_refused(key: str) -> None:
    escaped = key.replace(".", "\\.")
    stderr = refusal(f"flink.configuration.{escaped}=secret")
    assert f"flink.configuration.{key} would put a Kafka credential into a ConfigMap" in stderr


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (
            ("kafka.security.protocol=SASL_SSL", "kafka.existingSecret=kafka-credentials"),
            "kafka.security.protocol SASL_SSL needs kafka.security.saslMechanism: PLAIN, "
            "SCRAM-SHA-256 or SCRAM-SHA-512",
        ),
        (
            ("kafka.security.protocol=SASL_PLAINTEXT", "kafka.security.saslMechanism=PLAIN"),
            "kafka.security.protocol SASL_PLAINTEXT needs kafka.existingSecret: a Secret "
            "(created by you) with the keys KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
        ),
        (
            ("kafka.security.protocol=SSL", "kafka.security.saslMechanism=SCRAM-SHA-256"),
            "kafka.security.saslMechanism SCRAM-SHA-256 is set but kafka.security.protocol is "
            "SSL: set the protocol to SASL_SSL or SASL_PLAINTEXT, or leave saslMechanism empty",
        ),
        (
            ("kafka.security.saslMechanism=PLAIN",),
            "kafka.security.saslMechanism PLAIN is set but kafka.security.protocol is PLAINTEXT",
        ),
        (
            ("kafka.security.caSecret.name=kafka-ca",),
            "kafka.security.caSecret.name is set but kafka.security.protocol PLAINTEXT does not "
            "use TLS: set the protocol to SSL or SASL_SSL, or leave caSecret.name empty",
        ),
        (
            (
                "kafka.security.protocol=SASL_PLAINTEXT",
                "kafka.security.saslMechanism=PLAIN",
                "kafka.existingSecret=kafka-credentials",
                "kafka.security.clientCertSecret.name=me",
            ),
            "kafka.security.clientCertSecret.name is set but kafka.security.protocol "
            "SASL_PLAINTEXT does not use TLS: set the protocol to SSL or SASL_SSL, or leave "
            "clientCertSecret.name empty",
        ),
    ],
    ids=[
        "sasl-without-mechanism",
        "sasl-without-secret",
        "mechanism-with-ssl",
        "mechanism-with-plaintext",
        "ca-without-tls",
        "client-cert-without-tls",
    ],
)
def test_each_kafka_security_mistake_is_refused_naming_the_values(
    sets: tuple[str, ...], complaint: str
) -> None:
    stderr = refusal(*sets)
    assert "how the pods connect to Kafka (kafka.security):" in stderr, stderr
    [problem] = problems_of(stderr)
    assert problem.startswith(complaint), stderr


def test_every_kafka_security_problem_is_listed_at_once() -> None:
    stderr = refusal(
        "kafka.security.protocol=SASL_PLAINTEXT",
        "kafka.security.caSecret.name=kafka-ca",
        "kafka.security.clientCertSecret.name=me",
        "flink.configuration.properties\\.sasl\\.jaas\\.config=x",
    )
    problems = problems_of(stderr)
    assert len(problems) == 5, stderr
    assert "needs kafka.security.saslMechanism" in problems[0]
    assert "needs kafka.existingSecret" in problems[1]
    assert problems[2].startswith("kafka.security.caSecret.name is set")
    assert problems[3].startswith("kafka.security.clientCertSecret.name is set")
    assert problems[4].startswith("flink.configuration.properties.sasl.jaas.config")
    # The other way round: a mechanism and certificates with plain TCP.
    problems = problems_of(
        refusal(
            "kafka.security.saslMechanism=SCRAM-SHA-512",
            "kafka.security.caSecret.name=kafka-ca",
            "kafka.security.clientCertSecret.name=me",
        )
    )
    assert len(problems) == 3, problems


def test_a_flink_only_release_is_checked_too() -> None:
    """No controller: the Flink pods' templates still refuse the mistake."""
    stderr = refusal("kafka.security.protocol=SASL_SSL", values=ci_values("flink-only"))
    assert len(problems_of(stderr)) == 2, stderr


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("kafka.security.protocol=TLS", "/kafka/security/protocol"),
        ("kafka.security.protocol=sasl_ssl", "/kafka/security/protocol"),
        ("kafka.security.saslMechanism=GSSAPI", "/kafka/security/saslMechanism"),
        ("kafka.security.caSecret.name=Not_A_Name", "/kafka/security/caSecret/name"),
        ("kafka.security.caSecret.key=", "/kafka/security/caSecret/key"),
        ("kafka.security.clientCertSecret.name=-bad", "/kafka/security/clientCertSecret/name"),
    ],
)
def test_bad_kafka_security_values_are_refused_by_the_schema(setting: str, complaint: str) -> None:
    stderr = refusal(setting)
    assert complaint in stderr, stderr


# -- releases that do not use it -------------------------------------------------------------------


@pytest.mark.parametrize("values_file", [p for p in VALUES_FILES if p != SCENARIO], ids=scenario)
def test_releases_without_kafka_security_render_no_kafka_env_or_volumes(values_file: Path) -> None:
    m = Manifests(render(values_file))
    given = yaml.safe_load(values_file.read_text()) or {}
    secret = given.get("kafka", {}).get("existingSecret")
    for workload, pod in m.workloads():
        where = workload["metadata"]["name"]
        assert not kafka_volumes(pod), where
        for c in pod["containers"] + pod.get("initContainers", []):
            assert not kafka_env(c), where
            assert not kafka_mounts(c), where
            assert not any(
                v["mountPath"].startswith("/etc/eddyline") for v in c.get("volumeMounts", [])
            )
            if workload["kind"] == "Deployment" and c in pod["containers"]:
                wanted = [{"secretRef": {"name": secret}}] if secret else None
                assert c.get("envFrom") == wanted, where


def test_kafka_security_changes_nothing_but_the_kafka_env_and_mounts() -> None:
    """A secured release is the default one plus the KAFKA_* entries, the two mounts and volumes
    and the envFrom: remove them and the manifests are equal, document for document."""
    plain = render(ci_values("minimal"))
    secured_docs = render(
        ci_values("minimal"),
        "kafka.existingSecret=kafka-credentials",
        "kafka.security.protocol=SASL_SSL",
        "kafka.security.saslMechanism=SCRAM-SHA-512",
        "kafka.security.caSecret.name=kafka-ca",
        "kafka.security.clientCertSecret.name=kafka-client-tls",
    )
    for doc in secured_docs:
        if doc["kind"] != "Deployment":
            continue
        pod = doc["spec"]["template"]["spec"]
        pod["volumes"] = [v for v in pod["volumes"] if v["name"] not in KAFKA_VOLUMES]
        for c in pod["containers"]:
            c["env"] = [e for e in c["env"] if not e["name"].startswith("KAFKA_")]
            c["volumeMounts"] = [v for v in c["volumeMounts"] if v["name"] not in KAFKA_VOLUMES]
            c.pop("envFrom")
    assert secured_docs == plain
    # ...and the defaults spelled out are the defaults.
    spelled = render(
        ci_values("minimal"),
        "kafka.security.protocol=PLAINTEXT",
        "kafka.security.saslMechanism=",
        "kafka.security.caSecret.name=",
        "kafka.security.clientCertSecret.name=",
    )
    assert spelled == plain


# -- on a real API server --------------------------------------------------------------------------

SENTINEL = f"pw-{uuid.uuid4().hex}"  # the password in the Secret: it must show up nowhere else
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


@pytest.fixture(scope="module")
def sasl_ssl_release(kube: Kube) -> Iterator[tuple[str, str]]:
    """helm install of ci/kafka-sasl-ssl-values.yaml, its Secrets created first: (namespace,
    helm's output with the notes)."""
    ns = f"kafka-sec-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    secrets = [
        (
            "kafka-credentials",
            "Opaque",
            {"KAFKA_SASL_USERNAME": "eddyline", "KAFKA_SASL_PASSWORD": SENTINEL},
        ),
        ("kafka-ca", "Opaque", {"ca.crt": PEM}),
        ("kafka-client-tls", "kubernetes.io/tls", {"tls.crt": PEM, "tls.key": KEY}),
        ("flink-state-s3", "Opaque", {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}),
    ]
    for name, kind, data in secrets:
        core.create_namespaced_secret(
            ns,
            client.V1Secret(metadata=client.V1ObjectMeta(name=name), type=kind, string_data=data),
        )
    try:
        result = kube.helm_run(
            "install", RELEASE, str(CHART), "--namespace", ns, "--values", str(SCENARIO),
            "--wait", "--timeout", "180s",
        )  # fmt: skip
        yield ns, result.stdout
    finally:
        kube.helm_run("uninstall", RELEASE, "--namespace", ns, "--wait", check=False)
        core.delete_namespace(ns)


def test_installed_deployments_reference_the_kafka_secrets(
    kube: Kube, sasl_ssl_release: tuple[str, str]
) -> None:
    ns, _ = sasl_ssl_release
    apps = client.AppsV1Api(kube.api_client)
    serialize = kube.api_client.sanitize_for_serialization
    for name in (JM, TM, CTL):
        d = apps.read_namespaced_deployment(name, ns)
        assert d.status.ready_replicas == d.spec.replicas, name
        pod: dict[str, Any] = serialize(d.spec.template.spec)
        c = container(pod, CONTAINERS[name])
        assert kafka_env(c) == SECURED_ENV, name
        assert c["envFrom"] == [{"secretRef": {"name": "kafka-credentials"}}], name
        assert kafka_mounts(c) == SECURED_MOUNTS, name
        assert kafka_volumes(pod) == SECURED_VOLUMES, name
    # The Pods the Deployments made carry them too (kwok runs no container: the Secrets' files are
    # not checked, their references are).
    pods = client.CoreV1Api(kube.api_client).list_namespaced_pod(ns).items
    running = [p for p in pods if p.metadata.labels.get("app.kubernetes.io/component") != "test"]
    assert len(running) == 3
    for p in running:
        secrets = {v.secret.secret_name for v in p.spec.volumes if v.secret}
        assert secrets == {"kafka-ca", "kafka-client-tls"}, p.metadata.name


def test_install_notes_say_how_the_pods_connect_and_never_the_password(
    kube: Kube, sasl_ssl_release: tuple[str, str]
) -> None:
    ns, output = sasl_ssl_release
    notes = output.split("NOTES:", 1)[1]
    [line] = [x for x in notes.splitlines() if x.startswith("Kafka: ")]
    assert line == (
        "Kafka: kafka-0.kafka.streaming.svc:9093,kafka-1.kafka.streaming.svc:9093 over SASL_SSL; "
        "SCRAM-SHA-512 with the credentials in Secret kafka-credentials; "
        "CA from Secret kafka-ca (key ca.crt); client certificate from Secret kafka-client-tls"
    )
    manifest = kube.helm_run("get", "all", RELEASE, "--namespace", ns).stdout
    for text in (output, manifest):
        assert SENTINEL not in text
        assert base64.b64encode(SENTINEL.encode()).decode() not in text
        assert "KAFKA_SASL_PASSWORD" not in text


@pytest.mark.parametrize(
    ("values", "sets", "wanted"),
    [
        ("minimal", (), "Kafka: kafka:9092 over PLAINTEXT"),
        (
            "install",
            (),
            "Kafka: kafka.streaming.svc:9092 over PLAINTEXT; environment from Secret "
            "kafka-credentials",
        ),
        (
            "minimal",
            ("kafka.security.protocol=SSL",),
            "Kafka: kafka:9092 over SSL; CA: the clients' default trust stores",
        ),
    ],
    ids=["plaintext", "plaintext-secret", "ssl-system-trust"],
)
def test_install_notes_say_how_the_pods_connect(
    kube: Kube, values: str, sets: tuple[str, ...], wanted: str
) -> None:
    args = ["install", RELEASE, str(CHART), "--dry-run=client", "--values", str(ci_values(values))]
    for s in sets:
        args += ["--set", s]
    notes = kube.helm_run(*args).stdout.split("NOTES:", 1)[1]
    assert [x for x in notes.splitlines() if x.startswith("Kafka: ")] == [wanted]
