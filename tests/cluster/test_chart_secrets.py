"""Kafka's credentials on the real node: they reach the pods from Secrets only, and after the jobs
of test_chart_on_node ran through SCRAM over TLS, no pod log, object, event, Helm record or Flink
REST answer shows the password (nor the state bucket's key). Flink logs a Python process's whole
environment at INFO: a first run found the password in a TaskManager's log that way.
(Runs after test_chart_on_node: the files run in name order.)"""

from __future__ import annotations

from typing import Any

import httpx

from tests.cluster.conftest import KAFKA_CA_SECRET, KAFKA_SECRET, Release
from tests.k8s.chart import RELEASE

COMPONENTS = ("jobmanager", "taskmanager", "controller")


def _password(release: Release) -> str:
    security = release.stack.state.kafka_security()
    assert security is not None
    assert security.password is not None
    return security.password.get_secret_value()


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod["spec"]["containers"][0]
    return container


def _lines(text: str, secret: str, masked: tuple[str, ...]) -> list[str]:
    """The lines that hold `secret`, every secret masked: what wrote them, not repeating them."""
    found = []
    for line in text.splitlines():
        if secret in line:
            shown = line
            for each in masked:
                shown = shown.replace(each, "<SECRET>")
            found.append(shown[:400])
    return found


def test_every_pod_connects_the_same_way_with_credentials_only_from_the_secret(
    release: Release,
) -> None:
    password = _password(release)
    for component in COMPONENTS:
        pods = release.pods(component)
        assert pods, f"no {component} pod"
        for pod in pods:
            c = _container(pod)
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            assert env.get("KAFKA_SECURITY_PROTOCOL") == "SASL_SSL", (component, env)
            assert env.get("KAFKA_SASL_MECHANISM") == "SCRAM-SHA-512", (component, env)
            ca = env.get("KAFKA_SSL_CA_LOCATION")
            assert ca, (component, env)
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert any(ca.startswith(m.rstrip("/") + "/") for m in mounts), (component, mounts)
            assert password not in str(c.get("env", [])), component
            refs = [s["secretRef"]["name"] for s in c.get("envFrom", []) if "secretRef" in s]
            assert KAFKA_SECRET in refs, (component, refs)
            volumes = [v.get("secret", {}).get("secretName") for v in pod["spec"]["volumes"]]
            assert KAFKA_CA_SECRET in volumes, (component, volumes)


def test_no_log_object_event_or_flink_answer_shows_the_password(release: Release) -> None:
    password = _password(release)
    seen: dict[str, str] = {}
    for component in COMPONENTS:
        for pod in release.pods(component):
            name = pod["metadata"]["name"]
            seen[f"logs {name}"] = release.kubectl("logs", name, "--all-containers", check=False)
    for kind in ("flinkjobs", "configmaps", "events", "deployments", "pods", "services"):
        seen[kind] = release.kubectl("get", kind, "-o", "yaml")
    seen["describe flinkjobs"] = release.kubectl("describe", "flinkjobs", check=False)
    for what in ("values", "manifest", "notes"):
        seen[f"helm get {what}"] = release.kube.helm_run(
            "get", what, RELEASE, "--namespace", release.namespace
        ).stdout
    with httpx.Client(base_url=release.flink_url, timeout=30) as flink:
        jobs = flink.get("/jobs/overview").json()["jobs"]
        assert jobs, "no job ran on this release: nothing for the password to leak from"
        paths = ["/config", "/jobmanager/config", "/jobmanager/environment", "/jobmanager/log"]
        for job in jobs:
            jid = job["jid"]
            paths += [f"/jobs/{jid}", f"/jobs/{jid}/config", f"/jobs/{jid}/plan"]
            paths += [f"/jobs/{jid}/exceptions"]
        for tm in flink.get("/taskmanagers").json()["taskmanagers"]:
            paths += [f"/taskmanagers/{tm['id']}", f"/taskmanagers/{tm['id']}/log"]
        for url in paths:
            seen[f"Flink {url}"] = flink.get(url).text
    # The state bucket's key reaches the pods the same way (from a Secret, as environment).
    secrets = {"Kafka password": password, "S3 key": release.s3.store.secret_key}
    for what, secret in secrets.items():
        leaks = {
            where: _lines(text, secret, tuple(secrets.values()))
            for where, text in seen.items()
            if secret in text
        }
        assert leaks == {}, f"the {what} is in {leaks}"
    assert any("SASL_SSL" in text for text in seen.values())  # the grep saw the real setup
