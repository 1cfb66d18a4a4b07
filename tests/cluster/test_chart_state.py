"""Job state in an S3 bucket and JobManager high availability, on the real node.

The release keeps checkpoints, savepoints and HA metadata in the run's bucket (a versitygw on the
host, tests/cluster/conftest.py), with nothing but the bucket, the endpoint and a Secret name
set. The exactly-once ledger runs through the deletion of the JobManager pod, of every
TaskManager pod at once and of the S3 server for a minute, through a suspend and resume across
new pods and through `eddyline delete --savepoint` and a new submission from that savepoint;
read with read_committed, every movement is applied exactly once. The controller's savepoint
retention really deletes from the bucket. Recovery times (from the deletion to the first new
committed output) go to test-artifacts/cluster/state-recovery.json.

Runs after test_chart_on_node.py (file order) on the same release.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy import kafka_io
from deploy.datagen.generator import GeneratorConfig, orders
from deploy.errors import EddylineError
from deploy.flink.rest import FlinkClient
from deploy.localkube.__main__ import image_ref
from tests.cluster.conftest import S3_SECRET, VALUES, Release
from tests.cluster.jobs import describe, kube_args, submit, wait_running
from tests.cluster.test_chart_on_node import (
    ARTIFACTS,
    _live_jobs,
    assert_ledger_exactly_once,
    read_output,
    wait_pods,
)
from tests.integration.cli import eddyline
from tests.integration.jobrun import Topics, produce
from tests.k8s.chart import CHART, RELEASE

S3_DOWN_SECONDS = 60


def _state(release: Release) -> str:
    """The release's folder in the bucket: the chart's prefix, the namespace, the full name."""
    return f"eddyline/{release.namespace}/{RELEASE}"


def _flink(release: Release) -> FlinkClient:
    return FlinkClient(release.flink_url)


def _until(what: str, check: Callable[[], Any], timeout: float = 300, every: float = 2) -> Any:
    """check() until it returns something truthy (errors while a pod restarts count as not yet)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (EddylineError, OSError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


def _committed(release: Release, topic: str) -> int:
    """Records of `topic` a read_committed consumer sees now (after 4 quiet seconds)."""
    return len(
        kafka_io.read_all(
            release.stack.bootstrap_servers, topic, timeout=120, idle=4.0, read_committed=True
        )
    )


def _first_new_output(release: Release, topic: str, have: int, since: float) -> float:
    """Seconds from `since` until a committed record beyond the `have` already there appears."""
    got = kafka_io.read_all(
        release.stack.bootstrap_servers,
        topic,
        expected=have + 1,
        timeout=600,
        idle=0.0,
        read_committed=True,
    )
    assert len(got) > have, f"no new output on {topic} within 600 s"
    return round(time.monotonic() - since, 1)


def _job_state(release: Release, job_id: str) -> str:
    with _flink(release) as flink:
        return str(flink.job(job_id)["state"])


def _completed_checkpoints(release: Release, job_id: str) -> int:
    with _flink(release) as flink:
        return int(flink.checkpoints(job_id)["counts"]["completed"])


def _savepoint_keys(release: Release, path: str) -> list[str]:
    prefix = f"s3://{release.s3.bucket}/"
    assert path.startswith(prefix), path
    return release.s3.keys(path.removeprefix(prefix).rstrip("/") + "/")


def test_flink_keeps_state_and_ha_metadata_in_the_bucket(release: Release) -> None:
    with _flink(release) as flink:
        conf = flink.cluster_config()
    base = f"s3://{release.s3.bucket}/{_state(release)}"
    assert conf["execution.checkpointing.dir"] == f"{base}/checkpoints"
    assert conf["execution.checkpointing.savepoint-dir"] == f"{base}/savepoints"
    assert conf["high-availability.type"] == "kubernetes"
    assert conf["high-availability.storageDir"] == f"{base}/ha"
    assert "s3.access-key" not in conf
    assert "s3.secret-key" not in conf
    # The leader's ConfigMap, written by the JobManager through its own identity.
    leader = json.loads(
        release.kubectl("get", "configmap", f"{RELEASE}-cluster-config-map", "-o", "json")
    )
    assert leader["metadata"]["labels"] == {"app": RELEASE, "type": "flink-native-kubernetes"}
    assert "org.apache.flink.k8s.leader.dispatcher" in leader["data"]
    # The credentials reached the pods only through the Secret.
    config_maps = release.kubectl("get", "configmaps", "-o", "json")
    assert release.s3.store.secret_key not in config_maps


def test_ledger_exactly_once_through_pod_deaths_an_s3_outage_and_a_new_submission(
    release: Release, tmp_path: Path
) -> None:
    stack = release.stack
    topics = Topics.fresh("stock-levels")
    name = f"ha-ledger-{topics.run}"
    kafka_io.create_topics(
        stack.bootstrap_servers, {topics.orders: 2, topics.output: 2, topics.dead: 1}
    )
    batches = orders(GeneratorConfig(seed=19, events=8_000, skus=50, duplicate=0.03, malformed=0.0))
    step = len(batches) // 6
    parts = [batches[i * step : (i + 1) * step] for i in range(5)] + [batches[5 * step :]]
    args = [
        "--starting-offsets", "earliest", "--checkpoint-interval", "2s",
        "--orders-topic", topics.orders, "--output-topic", topics.output,
        "--dead-letter-topic", topics.dead,
    ]  # fmt: skip
    kafka = {"inputTopics": [topics.orders], "outputTopics": [topics.output]}
    figures: dict[str, Any] = {}

    produce(stack, parts[0], {"orders": topics.orders})
    submit(release, tmp_path, name, "jobs.ledger", args, kafka=kafka, savepoints={"maxCount": 1})
    job = wait_running(release, name)
    job.flink.close()
    first_id = job.id
    read_output(stack, topics.output, 50, read_committed=True)
    _until(
        "a completed checkpoint in the bucket",
        lambda: [
            k
            for k in release.s3.keys(f"{_state(release)}/checkpoints/{first_id}/")
            if k.endswith("/_metadata")
        ],
    )

    # 1. The JobManager pod dies: the new one takes the job back from HA, under the same id.
    have = _committed(release, topics.output)
    [jm] = release.pods("jobmanager")
    killed = time.monotonic()
    release.kubectl("delete", "pod", jm["metadata"]["name"], "--wait=false")
    produce(stack, parts[1], {"orders": topics.orders})
    figures["jobmanager_pod_deleted_to_first_output_s"] = _first_new_output(
        release, topics.output, have, killed
    )
    [new_jm] = wait_pods(release, "jobmanager", 1)
    assert new_jm["metadata"]["name"] != jm["metadata"]["name"]
    _until("the job RUNNING again", lambda: _job_state(release, first_id) == "RUNNING")
    assert [j["jid"] for j in _live_jobs(release, name)] == [first_id]
    _until("the controller tracking the same job", lambda: describe(release, name)["status"]
           .get("lifecycle") in ("RUNNING", "STABLE"))  # fmt: skip
    assert describe(release, name)["status"]["jobId"] == first_id

    # 2. Every TaskManager pod at once.
    have = _committed(release, topics.output)
    taskmanagers = release.pods("taskmanager")
    killed = time.monotonic()
    for tm in taskmanagers:
        release.kubectl("delete", "pod", tm["metadata"]["name"], "--wait=false")
    produce(stack, parts[2], {"orders": topics.orders})
    figures["taskmanager_pods_deleted_to_first_output_s"] = _first_new_output(
        release, topics.output, have, killed
    )
    wait_pods(release, "taskmanager", len(taskmanagers))
    assert [j["jid"] for j in _live_jobs(release, name)] == [first_id]

    # 3. The S3 server gone for a minute: checkpoints fail meanwhile; once it is back the job
    #    (the same one, or one the controller restarted from its last checkpoint) goes on.
    have = _committed(release, topics.output)
    release.s3.server.stop()
    stopped = time.monotonic()
    produce(stack, parts[3], {"orders": topics.orders})
    time.sleep(S3_DOWN_SECONDS)
    release.s3.server.start()
    figures["s3_stopped_s"] = S3_DOWN_SECONDS
    figures["s3_stopped_to_first_output_s"] = _first_new_output(
        release, topics.output, have, stopped
    )
    status = _until(
        "the ledger running after the S3 outage",
        lambda: (
            (s := describe(release, name)["status"]).get("lifecycle") in ("RUNNING", "STABLE") and s
        ),
        timeout=600,
    )
    after_outage = status["jobId"]
    figures["s3_outage_job_restarted_by_controller"] = after_outage != first_id
    done = _completed_checkpoints(release, after_outage)
    _until(
        "a checkpoint completed in the bucket after the outage",
        lambda: _completed_checkpoints(release, after_outage) > done,
    )

    # 4. Retention: with maxCount 1, the older of two savepoints is disposed of — gone from the
    #    bucket, not only from the controller's list.
    taken = []
    for _ in range(2):
        result = eddyline("savepoint", name, "--wait", "-o", "json", *kube_args(release))
        assert result.returncode == 0, result.stderr + result.stdout
        savepoints = json.loads(result.stdout)["status"]["savepoints"]
        taken.append(max(savepoints, key=lambda s: s["time"])["path"])
    assert _savepoint_keys(release, taken[1])
    _until(
        "the first savepoint gone from the bucket", lambda: not _savepoint_keys(release, taken[0])
    )
    assert [s["path"] for s in describe(release, name)["status"]["savepoints"]] == [taken[1]]

    # 5. Suspended, then resumed after every pod that ran it is gone.
    result = eddyline("suspend", name, "--wait", *kube_args(release))
    assert result.returncode == 0, result.stderr + result.stdout
    for component in ("jobmanager", "taskmanager"):
        for pod in release.pods(component):
            release.kubectl("delete", "pod", pod["metadata"]["name"], "--wait=false")
    produce(stack, parts[4], {"orders": topics.orders})
    wait_pods(release, "jobmanager", 1)
    wait_pods(release, "taskmanager", len(taskmanagers))
    result = eddyline("resume", name, "--wait", *kube_args(release))
    assert result.returncode == 0, result.stderr + result.stdout
    wait_running(release, name).flink.close()

    # 6. Deleted with a final savepoint (in the bucket), then submitted again from it.
    result = eddyline("delete", name, "--savepoint", "--wait", *kube_args(release))
    assert result.returncode == 0, result.stderr + result.stdout
    deleted = release.kubectl(
        "get", "events", "--field-selector", f"involvedObject.name={name},reason=Deleted",
        "-o", "jsonpath={.items[*].message}",
    )  # fmt: skip
    assert "final savepoint s3://" in deleted, deleted
    final = deleted.split("final savepoint ", 1)[1].split()[0]
    assert _savepoint_keys(release, final)
    submit(release, tmp_path, name, "jobs.ledger", args, kafka=kafka,
           job={"entry": "jobs.ledger", "args": args, "parallelism": 1,
                "upgradeMode": "savepoint", "initialSavepointPath": final})  # fmt: skip
    job = wait_running(release, name)
    job.flink.close()
    produce(stack, parts[5], {"orders": topics.orders})

    try:
        assert_ledger_exactly_once(stack, topics.orders, topics.output)
        with _flink(release) as flink:
            history = flink.checkpoints(job.id)
        durations = [
            int(c["end_to_end_duration"])
            for c in history.get("history", [])
            if c.get("status") == "COMPLETED"
        ]
        if durations:
            figures["s3_checkpoint_ms_median"] = sorted(durations)[len(durations) // 2]
            figures["s3_checkpoint_ms_max"] = max(durations)
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "state-recovery.json").write_text(json.dumps(figures, indent=2) + "\n")
        eddyline("delete", name, *kube_args(release))


def test_a_checkpoint_location_that_fails_is_named_on_the_flinkjob(
    release: Release, tmp_path: Path
) -> None:
    """A job whose checkpoints go to a bucket that does not exist: the FlinkJob's error and a
    Warning Event name the location and S3's answer, not just "the job failed"."""
    stack = release.stack
    topics = Topics.fresh("stock-levels")
    name = f"no-bucket-{topics.run}"
    kafka_io.create_topics(
        stack.bootstrap_servers, {topics.orders: 1, topics.output: 1, topics.dead: 1}
    )
    produce(stack, orders(GeneratorConfig(seed=3, events=300, skus=5)), {"orders": topics.orders})
    missing = f"s3://{release.s3.bucket}-missing/checkpoints"
    submit(release, tmp_path, name, "jobs.ledger", [
        "--starting-offsets", "earliest", "--checkpoint-interval", "2s",
        "--orders-topic", topics.orders, "--output-topic", topics.output,
        "--dead-letter-topic", topics.dead,
    ], kafka={"inputTopics": [topics.orders], "outputTopics": [topics.output]},
       flinkConfiguration={"execution.checkpointing.dir": missing})  # fmt: skip
    try:
        # Flink cannot even create the job's checkpoint storage: the job fails at once, and the
        # controller's error and its JobFailed Event carry the location and S3's answer.
        error = _until(
            "the FlinkJob's error",
            lambda: (describe(release, name).get("status") or {}).get("error") or "",
            timeout=300,
        )
        assert missing in error, error
        assert "NoSuchBucket" in error, error
        events = release.kubectl(
            "get", "events", "--field-selector", f"involvedObject.name={name},reason=JobFailed",
            "-o", "jsonpath={.items[*].message}",
        )  # fmt: skip
        assert missing in events, events
    finally:
        eddyline("delete", name, *kube_args(release))


def test_refused_credentials_are_named_in_the_jobmanager_pod_status(release: Release) -> None:
    """A release whose Secret holds a wrong secret key: the JobManager pod's state check fails
    before Flink starts, and the pod's status says why (the location and S3's refusal)."""
    kube = release.kube
    ns = f"bad-keys-{uuid.uuid4().hex[:4]}"
    kube.kubectl_run("create", "namespace", ns)
    try:
        kube.kubectl_run(
            "-n", ns, "create", "secret", "generic", S3_SECRET,
            f"--from-literal=AWS_ACCESS_KEY_ID={release.s3.store.access_key}",
            "--from-literal=AWS_SECRET_ACCESS_KEY=not-the-key",
        )  # fmt: skip
        kube.helm_run(
            "install", "bad", str(CHART), "--namespace", ns, "--values", str(VALUES),
            "--set", f"kafka.bootstrapServers={release.bootstrap}",
            "--set", f"image.tag={image_ref().split(':')[1]}",
            "--set", f"flink.state.s3.bucket={release.s3.bucket}",
            "--set", f"flink.state.s3.endpoint={release.s3.store.endpoint}",
            "--set", f"flink.state.s3.credentialsSecret={S3_SECRET}",
            "--set", "controller.enabled=false", "--set", "tests.enabled=false",
            "--set", "taskmanager.replicas=0",
        )  # fmt: skip

        def exit_message() -> str:
            out = kube.kubectl_run(
                "-n", ns, "get", "pods", "-l", "app.kubernetes.io/component=jobmanager",
                "-o", "json",
            ).stdout  # fmt: skip
            for pod in json.loads(out)["items"]:
                status = pod["status"]
                for c in status.get("initContainerStatuses", []):
                    for state in (c.get("lastState") or {}, c.get("state") or {}):
                        message = (state.get("terminated") or {}).get("message") or ""
                        if message:
                            return str(message)
            return ""

        message = _until("the state check's exit message", exit_message, timeout=300)
        where = f"s3://{release.s3.bucket}/eddyline/{ns}/bad-eddyline"
        assert f"cannot write to {where} (endpoint {release.s3.store.endpoint})" in message
        assert "SignatureDoesNotMatch (HTTP 403)" in message, message
    finally:
        kube.helm_run("uninstall", "bad", "--namespace", ns, "--wait", check=False)
        kube.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)
