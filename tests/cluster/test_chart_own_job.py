"""A user's own job with a third-party dependency on the real node, as a user ships it:
examples/own-job copied outside the repository and `eddyline submit --kube`. The CLI resolves
the requirements here, packs them with the code and uploads the zip to the JobManager through
the Kubernetes API server's service proxy; the in-cluster controller submits the job with it
(python.files) to the Flink pods, whose image lacks the dependency. A code change is a savepoint
upgrade that keeps the job's state. Named test_chart_* so that it runs before
test_chart_uninstall.py, which removes the release."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from deploy import kafka_io, paths
from tests.cluster.conftest import Release
from tests.cluster.jobs import delete, describe, kube_args, wait_running
from tests.integration.cli import eddyline
from tests.k8s.chart import RELEASE

EXAMPLE = paths.PROJECT_ROOT / "examples" / "own-job"
JOBMANAGER = {"EDDYLINE_JOBMANAGER_SERVICE": f"{RELEASE}-jobmanager:8081"}


def _submit(release: Release, spec_file: Path) -> dict[str, Any]:
    result = eddyline("submit", str(spec_file), "-o", "json", *kube_args(release), env=JOBMANAGER)
    assert result.returncode == 0, result.stderr + result.stdout
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def _output(release: Release, topic: str, expected: int) -> list[dict[str, Any]]:
    records = kafka_io.read_all(
        release.stack.bootstrap_servers, topic, expected=expected, timeout=600, idle=4.0
    )
    return [json.loads(r.value) for r in records]


def _produce(release: Release, topic: str, words: list[str]) -> None:
    sender = kafka_io.Sender(release.stack.bootstrap_servers)
    for word in words:
        sender.send(topic, None, word.encode())
    sender.close()


def _wait_generation(release: Release, name: str, generation: int, timeout: float = 600) -> Any:
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        doc = describe(release, name)
        st = doc.get("status") or {}
        if (
            st.get("observedGeneration", 0) >= generation
            and not st.get("operation")
            and st.get("lifecycle") in ("RUNNING", "STABLE")
        ):
            return doc
        time.sleep(3)
    raise AssertionError(f"{name} did not run generation {generation}: {json.dumps(doc)}")


def test_own_job_with_a_dependency_runs_in_the_pods_and_upgrades(
    release: Release, tmp_path: Path
) -> None:
    pod = release.pods("jobmanager")[0]["metadata"]["name"]
    absent = release.kubectl(
        "exec", pod, "--", "python", "-c",
        "import importlib.util; print(importlib.util.find_spec('slugify') is None)",
    )  # fmt: skip
    assert absent.strip() == "True", "the image has python-slugify: the test would prove nothing"

    folder = tmp_path / "user-project"
    shutil.copytree(EXAMPLE, folder)
    run = uuid.uuid4().hex[:8]
    words, out, name = f"words-{run}", f"word-slugs-{run}", f"own-{run}"
    kafka_io.create_topics(release.stack.bootstrap_servers, {words: 1, out: 1})
    spec_file = folder / "flinkjob.yaml"
    doc = yaml.safe_load(spec_file.read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["job"]["args"] = [
        "--input-topic", words, "--output-topic", out, "--group-id", f"own-{run}",
    ]  # fmt: skip
    doc["spec"]["kafka"] = {"inputTopics": [words], "outputTopics": [out]}
    doc["spec"]["checkpointing"] = {"interval": "2s"}
    spec_file.write_text(yaml.safe_dump(doc, sort_keys=False))

    first = _submit(release, spec_file)["spec"]["job"]["artifact"]
    assert first["store"] == "jobmanager"
    assert first["uri"].endswith(f"eddyline-artifact-{first['sha256']}.jar")
    try:
        job = wait_running(release, name, timeout=600)
        job.flink.close()
        assert describe(release, name)["status"]["artifactSha256"] == first["sha256"]
        _produce(release, words, ["Crème Brûlée", "Hello, World!", "creme   brulee"])
        got = _output(release, out, 3)
        assert [(o["slug"], o["count"], o["version"]) for o in got] == [
            ("creme-brulee", 1, 1),
            ("hello-world", 1, 1),
            ("creme-brulee", 2, 1),
        ]

        code = folder / "wordcount_plus" / "job.py"
        code.write_text(code.read_text().replace("VERSION = 1", "VERSION = 2"))
        second = _submit(release, spec_file)["spec"]["job"]["artifact"]
        assert second["sha256"] != first["sha256"]
        upgraded = _wait_generation(release, name, 2)
        st = upgraded["status"]
        assert st["artifactSha256"] == second["sha256"]
        assert st.get("upgradeSavepointPath")
        _produce(release, words, ["CRÈME BRÛLÉE"])
        got = _output(release, out, 4)
        assert (got[-1]["slug"], got[-1]["count"], got[-1]["version"]) == ("creme-brulee", 3, 2)

        # `eddyline diff --kube`: the same spec changes nothing; a new uid for the counting
        # operator leaves its state without a home, which Flink's plan of the new code (planned
        # in the JobManager pod) shows, and `submit --kube` refuses it, storing nothing.
        same = eddyline("diff", str(spec_file), "-o", "json", *kube_args(release), env=JOBMANAGER)
        assert same.returncode == 0, same.stderr + same.stdout
        assert json.loads(same.stdout)["action"] == "nothing"
        code.write_text(code.read_text().replace('.uid("count")', '.uid("count-v3")'))
        dropping = eddyline(
            "diff", str(spec_file), "-o", "json", *kube_args(release), env=JOBMANAGER
        )
        assert dropping.returncode == 3, dropping.stderr + dropping.stdout
        check = json.loads(dropping.stdout)
        assert check["action"] == "savepoint-upgrade"
        counting = [o for o in check["stateCheck"]["operators"] if o["verdict"] == "dropped"]
        assert len(counting) == 1, check
        assert "KEYED PROCESS" in counting[0]["name"], check
        refused = eddyline("submit", str(spec_file), *kube_args(release), env=JOBMANAGER)
        assert refused.returncode == 2, refused.stderr + refused.stdout
        assert counting[0]["id"] in refused.stderr
        assert "allowNonRestoredState" in refused.stderr
        assert describe(release, name)["metadata"]["generation"] == 2
    finally:
        delete(release, name)
